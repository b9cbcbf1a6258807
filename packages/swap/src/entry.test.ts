import { FoliolabError } from '@foliolab/ledger';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anonFolio, makeRig } from './test-fixtures.js';
import {
  MAX_SWAPFILES,
  SWP_OFFSET_MASK,
  folioAllocSwap,
  folioPageSwapEntry,
  folioSwapEntry,
  swpEntry,
  swpOffset,
  swpType,
} from './index.js';

describe('swp_entry_t (folio-rmap-swap.md §3.1; pagetable-contpte-pvmw.md §3 type field)', () => {
  it('type and offset round-trip for every 5-bit type and model offset', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 31 }), fc.integer({ min: 0, max: SWP_OFFSET_MASK }), (t, o) => {
        const e = swpEntry(t, o);
        expect([swpType(e), swpOffset(e)]).toEqual([t, o]);
        expect(e).toBeGreaterThanOrEqual(0);
        expect(e).toBeLessThan(2 ** 31); // fits folio->swap's Int32 field
      }),
      { numRuns: 300 },
    );
  });

  it('real swap types are 0..23 (MAX_SWAPFILES = 24); out-of-field values throw ERANGE', () => {
    expect(MAX_SWAPFILES).toBe(24);
    for (const [t, o] of [
      [32, 0],
      [-1, 0],
      [0, SWP_OFFSET_MASK + 1],
      [0, -1],
      [0, 1.5],
    ] as const) {
      expect(() => swpEntry(t, o)).toThrow(FoliolabError);
    }
  });

  it('folio_page_swap_entry(folio, i) = folio->swap + i', () => {
    const { mm, si } = makeRig();
    const f = anonFolio(mm, 4);
    expect(folioSwapEntry(f)).toBe(0);
    expect(() => folioPageSwapEntry(f, 0)).toThrow(/no swap entry/);
    expect(folioAllocSwap(si, f)).toBe(0);
    const base = folioSwapEntry(f);
    for (let i = 0; i < 16; i++) expect(folioPageSwapEntry(f, i)).toBe(base + i);
    expect(() => folioPageSwapEntry(f, 16)).toThrow(FoliolabError);
  });
});
