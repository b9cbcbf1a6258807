import { measure } from '@foliolab/ledger';
import {
  PTE_AF,
  makeUserPte,
  pokePte,
  pteBits,
  pteDirty,
  ptePfn,
  ptepGet,
  pteWrite,
  pteYoung,
  setPtes,
} from '@foliolab/pagetable-arm64-contpte';
import { describe, expect, it } from 'vitest';
import {
  FPB_MERGE_WRITE,
  FPB_MERGE_YOUNG_DIRTY,
  FPB_RESPECT_DIRTY,
  FPB_RESPECT_SOFT_DIRTY,
  FPB_RESPECT_WRITE,
  folioPteBatchFlags,
} from './index.js';
import { PFN0, lay } from './test-fixtures.js';

/*
 * folio_pte_batch_flags (spec "Package pvmw" §4 and unmap-engine §2.4):
 * young always ignored; dirty and write ignored unless RESPECTed; uffd-wp
 * and everything else compared; PFN + 1 per step; max_nr clamped to the
 * folio; stepping by pte_batch_hint (one read per contpte block).
 */

const folio = { pfn: PFN0, nrPages: 16 };
const v = pteBits();

/** 16 nocont PTEs of the folio, entry i built with `opt(i)`. */
function entries(opt: (i: number) => Parameters<typeof makeUserPte>[1]) {
  const b = lay('................');
  const t = b.pt.pteAlloc(b.a0);
  for (let i = 0; i < 16; i++) {
    const p = makeUserPte(PFN0 + i, opt(i));
    pokePte(t, i, p.lo, p.hi);
  }
  b.ledger.reset();
  return { b, t };
}

describe('folio_pte_batch_flags', () => {
  it('ignores young and dirty by default; one read per further entry (no contpte)', () => {
    const { b, t } = entries((i) => ({ write: true, young: i % 2 === 0, dirty: i % 3 === 0 }));
    ptepGet(t, 0, v);
    const c = measure(b.ledger, () => expect(folioPteBatchFlags(folio, t, 0, v, 16, 0)).toBe(16)).counts;
    expect(c.PTE_READ).toBe(15);
    expect(folioPteBatchFlags(folio, t, 0, ptepGet(t, 0, v), 16, FPB_RESPECT_DIRTY)).toBe(1);
  });

  it('RESPECT_WRITE stops at a write-bit change; without it the batch spans it', () => {
    const { t } = entries((i) => ({ write: i < 8 }));
    expect(folioPteBatchFlags(folio, t, 0, ptepGet(t, 0, v), 16, FPB_RESPECT_WRITE | FPB_RESPECT_SOFT_DIRTY)).toBe(8);
    expect(folioPteBatchFlags(folio, t, 0, ptepGet(t, 0, v), 16, 0)).toBe(16);
  });

  it('uffd-wp is always compared; a foreign PFN or a non-present entry stops the batch', () => {
    const { t } = entries((i) => ({ write: true, uffdWp: i >= 12 }));
    expect(folioPteBatchFlags(folio, t, 0, ptepGet(t, 0, v), 16, 0)).toBe(12);
    const p = makeUserPte(0x9_0000, { write: true });
    pokePte(t, 5, p.lo, p.hi);
    expect(folioPteBatchFlags(folio, t, 0, ptepGet(t, 0, v), 16, 0)).toBe(5);
    pokePte(t, 3, 0, 0);
    expect(folioPteBatchFlags(folio, t, 0, ptepGet(t, 0, v), 16, 0)).toBe(3);
  });

  it('max_nr and the folio end cap the result', () => {
    const { t } = entries(() => ({ write: true }));
    expect(folioPteBatchFlags(folio, t, 0, ptepGet(t, 0, v), 5, 0)).toBe(5);
    expect(folioPteBatchFlags({ pfn: PFN0, nrPages: 8 }, t, 2, ptepGet(t, 2, v), 14, 0)).toBe(6);
  });

  it('MERGE_WRITE / MERGE_YOUNG_DIRTY fold the other entries into the returned copy', () => {
    const { t } = entries((i) => ({ write: i === 9, young: i === 4, dirty: i === 9 }));
    ptepGet(t, 0, v);
    expect([pteWrite(v.lo, v.hi), pteYoung(v.lo, v.hi), pteDirty(v.lo, v.hi)]).toEqual([false, false, false]);
    expect(folioPteBatchFlags(folio, t, 0, v, 16, FPB_MERGE_WRITE | FPB_MERGE_YOUNG_DIRTY)).toBe(16);
    expect([pteWrite(v.lo, v.hi), pteYoung(v.lo, v.hi), pteDirty(v.lo, v.hi), ptePfn(v.lo, v.hi)]).toEqual([true, true, true, PFN0]);
    expect(v.lo & PTE_AF).toBe(PTE_AF);
  });

  it('contpte: the gathered copy gives hint 16, so a 64-page range costs one read per further block', () => {
    const b = lay('................', { profile: 'arm64-contpte' });
    const t = b.pt.pteAlloc(b.a0);
    const p = makeUserPte(PFN0, { write: true, young: true, dirty: true });
    setPtes(t, 0, p.lo, p.hi, 16);
    setPtes(t, 16, makeUserPte(PFN0 + 16, { write: true, young: true, dirty: true }).lo, p.hi, 16);
    b.ledger.reset();
    ptepGet(t, 0, v);
    const c = measure(b.ledger, () => expect(folioPteBatchFlags({ pfn: PFN0, nrPages: 32 }, t, 0, v, 32, FPB_RESPECT_WRITE)).toBe(32)).counts;
    expect(c.PTE_READ).toBe(3); // one gathering read (G = 3) of block 1
  });

  it('validates: non-present or foreign first entry, a range leaving the table, unknown flags', () => {
    const { t } = entries(() => ({ write: true }));
    expect(() => folioPteBatchFlags(folio, t, 0, pteBits(), 4, 0)).toThrow(/not a present mapping/);
    expect(() => folioPteBatchFlags(folio, t, 510, ptepGet(t, 0, v), 4, 0)).toThrow(expect.objectContaining({ code: 'ERANGE' }));
    expect(() => folioPteBatchFlags(folio, t, 0, ptepGet(t, 0, v), 4, 1 << 9)).toThrow(/unknown flags/);
  });
});
