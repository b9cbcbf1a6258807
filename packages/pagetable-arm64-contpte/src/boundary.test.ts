import { FoliolabError } from '@foliolab/ledger';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CYDP_CLEAR_YOUNG,
  PTE_HI_SPECIAL,
  clearFullPtes,
  clearYoungDirtyPtes,
  contpteTryUnfoldPartial,
  flushTlbRange,
  getAndClearFullPtes,
  makeUserPte,
  pteBits,
  ptepGet,
  setPtes,
  wrprotectPtes,
} from './index.js';
import { PFN0, VA0, makeMm, mapBlock, snapshot } from './test-fixtures.js';

/** Run `fn`, expect a FoliolabError, and check that no PTE and no ledger count changed. */
function rejects(fn: () => unknown, f: ReturnType<typeof makeMm>, code?: string): void {
  const before = snapshot(f.table);
  const counts = f.ledger.counts.slice();
  let err: unknown = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FoliolabError);
  if (code !== undefined) expect((err as FoliolabError).code).toBe(code);
  expect(snapshot(f.table)).toEqual(before);
  expect(Array.from(f.ledger.counts)).toEqual(Array.from(counts));
}

describe('§9.8 boundary: batch helpers never cross a PTE table', () => {
  it('nr = 0, non-integer nr, crossing the table end and bad indexes are rejected before any change', () => {
    const f = makeMm();
    mapBlock(f, 0, PFN0);
    mapBlock(f, 496, PFN0 + 496);
    const out = pteBits();
    rejects(() => getAndClearFullPtes(f.table, 0, 0, false, out), f, 'EINVAL');
    rejects(() => getAndClearFullPtes(f.table, 0, 1.5, false, out), f, 'EINVAL');
    rejects(() => getAndClearFullPtes(f.table, 500, 16, false, out), f, 'ERANGE');
    rejects(() => clearFullPtes(f.table, 496, 17, false), f, 'ERANGE');
    rejects(() => wrprotectPtes(f.table, -1, 2), f, 'ERANGE');
    rejects(() => clearYoungDirtyPtes(f.table, 511, 2, CYDP_CLEAR_YOUNG), f, 'ERANGE');
    rejects(() => contpteTryUnfoldPartial(f.table, 508, 8), f, 'ERANGE');
    rejects(() => ptepGet(f.table, 512, out), f, 'ERANGE');
  });

  it('random out-of-table ranges are always rejected with state untouched (fast-check)', () => {
    const f = makeMm();
    mapBlock(f, 496, PFN0 + 496);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 511 }), fc.integer({ min: 1, max: 600 }), (i, nr) => {
        fc.pre(i + nr > 512);
        rejects(() => clearFullPtes(f.table, i, nr, false), f, 'ERANGE');
      }),
      { numRuns: 100 },
    );
  });

  it('set_ptes(nr > 1) requires none targets, present entries, one folio, no special', () => {
    const f = makeMm();
    mapBlock(f, 0, PFN0);
    const p = makeUserPte(PFN0 + 16);
    rejects(() => setPtes(f.table, 8, p.lo, p.hi, 16), f); // overlaps the mapped block
    rejects(() => setPtes(f.table, 32, 0x4, 0, 2), f); // swap entries are not batch-set
    rejects(() => setPtes(f.table, 32, p.lo, p.hi | PTE_HI_SPECIAL, 2), f);
    const q = makeUserPte(PFN0 + 24);
    rejects(() => setPtes(f.table, 32, q.lo, q.hi, 16), f); // [PFN0+24, PFN0+40) spans two 64K folios
    rejects(() => setPtes(f.table, 32, -1, 0, 1), f); // not a uint32
  });

  it('wrprotect / clear_young_dirty reject non-present targets', () => {
    const f = makeMm();
    mapBlock(f, 0, PFN0);
    rejects(() => wrprotectPtes(f.table, 10, 10), f);
    rejects(() => clearYoungDirtyPtes(f.table, 15, 2, CYDP_CLEAR_YOUNG), f);
    rejects(() => clearYoungDirtyPtes(f.table, 0, 2, 4), f);
  });

  it('VAs out of the 48-bit range are rejected', () => {
    const f = makeMm();
    expect(() => flushTlbRange(f.mm, 2 ** 48 - 4096, 2 ** 48 + 4096)).toThrow(FoliolabError);
    expect(() => f.mm.pteAlloc(2 ** 48)).toThrow(/48-bit/);
    expect(() => flushTlbRange(f.mm, VA0 + 1, VA0 + 4096)).toThrow(/aligned/);
  });
});
