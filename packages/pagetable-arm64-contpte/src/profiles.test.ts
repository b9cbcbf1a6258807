import { FoliolabError } from '@foliolab/ledger';
import { describe, expect, it } from 'vitest';
import {
  CYDP_CLEAR_DIRTY,
  CYDP_CLEAR_YOUNG,
  PTE_HI_CONT,
  archProfile,
  clearYoungDirtyPtes,
  contpteTryFold,
  getAndClearFullPtes,
  makeUserPte,
  pteBatchHint,
  pteBits,
  pteClear,
  pteCont,
  pteDirty,
  pteYoung,
  ptepClearFlushYoung,
  ptepGet,
  ptepGetAndClearFull,
  ptepGetLockless,
  ptepSetAccessFlags,
  ptepTestAndClearYoung,
  setPtes,
  wrprotectPtes,
} from './index.js';
import { PFN0, cost, makeMm, mapBlock } from './test-fixtures.js';

describe('arch profiles', () => {
  it('defaults: no range TLBI, no KPTI, no BBML2, hardware AF/DBM, earlyExit gather', () => {
    const p = archProfile('arm64-contpte');
    expect(p).toMatchObject({ arch: 'arm64', contpte: true, hasTlbiRange: false, kpti: false, bbml2NoAbort: false, hwAF: true, hwDBM: true, gatherVariant: 'earlyExit' });
    expect(archProfile('arm64-nocont').contpte).toBe(false);
    expect(archProfile('x86')).toMatchObject({ arch: 'x86', contpte: false, x86OtherCpus: 0 });
    expect(Object.isFrozen(p)).toBe(true);
  });

  it('rejects unknown names and bad switches', () => {
    expect(() => archProfile('riscv' as never)).toThrow(FoliolabError);
    expect(() => archProfile('x86', { x86OtherCpus: -1 })).toThrow(/x86OtherCpus/);
    expect(() => archProfile('arm64-contpte', { gatherVariant: 'fast' as never })).toThrow(/gatherVariant/);
    expect(() => archProfile('arm64-contpte', { kpti: 1 as never })).toThrow(/boolean/);
  });
});

describe('arm64-nocont: plain arm64, never CONT', () => {
  it('batched set_ptes never sets CONT; ptep_get is 1 read; hint is 1', () => {
    const f = makeMm('arm64-nocont');
    mapBlock(f, 0, PFN0);
    expect(pteCont(f.table.lo[0]!, f.table.hi[0]!)).toBe(false);
    const out = pteBits();
    expect(cost(f.ledger, () => ptepGet(f.table, 0, out))).toEqual({ PTE_READ: 1 });
    expect(cost(f.ledger, () => ptepGetLockless(f.table, 0, out))).toEqual({ PTE_READ: 1 });
    expect(pteBatchHint(f.table, 0, out.lo, out.hi)).toBe(1);
    expect(() => contpteTryFold(f.table, 15, out.lo, out.hi)).toThrow(/no contpte/);
  });

  it('primitives go straight to the __ versions: no unfold reads', () => {
    const f = makeMm('arm64-nocont');
    mapBlock(f, 0, PFN0);
    const p = makeUserPte(PFN0);
    expect(cost(f.ledger, () => setPtes(f.table, 20, p.lo, p.hi, 1))).toEqual({ PTE_WRITE: 1 });
    expect(cost(f.ledger, () => pteClear(f.table, 20))).toEqual({ PTE_WRITE: 1 });
    expect(cost(f.ledger, () => getAndClearFullPtes(f.table, 0, 1, false, pteBits()))).toEqual({ PTE_XCHG: 1 });
    expect(cost(f.ledger, () => wrprotectPtes(f.table, 1, 3))).toEqual({ PTE_READ: 3, PTE_CMPXCHG: 3 });
    expect(cost(f.ledger, () => ptepTestAndClearYoung(f.table, 5))).toEqual({ PTE_READ: 1, PTE_CMPXCHG: 1 });
    expect(cost(f.ledger, () => ptepClearFlushYoung(f.table, 6))).toEqual({ PTE_READ: 1, PTE_CMPXCHG: 1, DSB_ISHST: 1, TLBI_VA: 1 });
    expect(cost(f.ledger, () => clearYoungDirtyPtes(f.table, 7, 2, CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY))).toEqual({ PTE_READ: 2, PTE_WRITE: 2 });
  });
});

describe('§7 x86 page-table side', () => {
  it('no CONT bit ever; ptep_get 1 read; hint always 1', () => {
    const f = makeMm('x86');
    mapBlock(f, 0, PFN0);
    const p = makeUserPte(PFN0 + 16);
    setPtes(f.table, 16, p.lo, p.hi | PTE_HI_CONT, 1);
    for (let i = 0; i < 17; i++) expect(pteCont(f.table.lo[i]!, f.table.hi[i]!)).toBe(false);
    const out = pteBits();
    expect(cost(f.ledger, () => ptepGet(f.table, 0, out))).toEqual({ PTE_READ: 1 });
    expect(pteBatchHint(f.table, 0, out.lo, out.hi)).toBe(1);
  });

  it('set_ptes writes without reading; the generic batched helpers are plain loops that OR young/dirty', () => {
    const f = makeMm('x86');
    const p = makeUserPte(PFN0, { write: true, young: false });
    expect(cost(f.ledger, () => setPtes(f.table, 0, p.lo, p.hi, 16))).toEqual({ PTE_WRITE: 16 });
    expect(cost(f.ledger, () => setPtes(f.table, 40, p.lo, p.hi, 1))).toEqual({ PTE_WRITE: 1 });
    f.table.lo[9] = f.table.lo[9]! | (1 << 10); // hardware A on entry 9
    const out = pteBits();
    expect(cost(f.ledger, () => getAndClearFullPtes(f.table, 0, 16, true, out))).toEqual({ PTE_XCHG: 16 });
    expect(pteYoung(out.lo, out.hi)).toBe(true);
    expect(pteDirty(out.lo, out.hi)).toBe(false);
  });

  it('ptep_get_and_clear_full is one clear whether or not `full`', () => {
    const f = makeMm('x86');
    mapBlock(f, 0, PFN0);
    expect(cost(f.ledger, () => ptepGetAndClearFull(f.table, 0, true, pteBits()))).toEqual({ PTE_XCHG: 1 });
    expect(cost(f.ledger, () => ptepGetAndClearFull(f.table, 1, false, pteBits()))).toEqual({ PTE_XCHG: 1 });
  });

  it('wrprotect is a read + cmpxchg per entry; young helpers only touch young entries; no flush on clear_flush_young', () => {
    const f = makeMm('x86');
    mapBlock(f, 0, PFN0);
    // 7.2.13 arch/x86/include/asm/pgtable.h:ptep_set_wrprotect: READ_ONCE, then a try_cmpxchg loop.
    expect(cost(f.ledger, () => wrprotectPtes(f.table, 0, 4))).toEqual({ PTE_READ: 4, PTE_CMPXCHG: 4 });
    expect(cost(f.ledger, () => ptepClearFlushYoung(f.table, 5))).toEqual({ PTE_READ: 1, PTE_CMPXCHG: 1 });
    expect(cost(f.ledger, () => ptepTestAndClearYoung(f.table, 5))).toEqual({ PTE_READ: 1 });
    // generic clear_young_dirty_ptes: xchg + set_pte_at per entry unless only clearing young
    expect(cost(f.ledger, () => clearYoungDirtyPtes(f.table, 6, 2, CYDP_CLEAR_DIRTY))).toEqual({ PTE_XCHG: 2, PTE_WRITE: 2 });
    expect(cost(f.ledger, () => clearYoungDirtyPtes(f.table, 8, 2, CYDP_CLEAR_YOUNG))).toEqual({ PTE_READ: 2, PTE_CMPXCHG: 2 });
  });

  it('ptep_set_access_flags: read, and one write only when changed and dirty', () => {
    const f = makeMm('x86');
    mapBlock(f, 0, PFN0, { write: true, young: false });
    const e = makeUserPte(PFN0 + 3, { write: true, young: true, dirty: true });
    expect(cost(f.ledger, () => ptepSetAccessFlags(f.table, 3, e.lo, e.hi, false))).toEqual({ PTE_READ: 1 });
    expect(cost(f.ledger, () => ptepSetAccessFlags(f.table, 3, e.lo, e.hi, true))).toEqual({ PTE_READ: 1, PTE_WRITE: 1 });
    expect(cost(f.ledger, () => ptepSetAccessFlags(f.table, 3, e.lo, e.hi, true))).toEqual({ PTE_READ: 1 });
  });
});

describe('non-user mm (init_mm / EFI) on the contpte profile', () => {
  it('never folds or sets CONT, but still pays the contpte wrapper reads', () => {
    const f = makeMm('arm64-contpte', {}, { userMm: false });
    mapBlock(f, 0, PFN0);
    expect(pteCont(f.table.lo[0]!, f.table.hi[0]!)).toBe(false);
    const p = makeUserPte(PFN0 + 0x1f);
    const c = cost(f.ledger, () => setPtes(f.table, 31, p.lo, p.hi, 1));
    expect(c).toEqual({ PTE_READ: 1, PTE_WRITE: 1 });
  });
});
