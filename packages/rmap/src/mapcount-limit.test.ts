import { F_MAPPING, PAGE_MAPCOUNT_MAX, fileMapping, folioSubrange, type Folio } from '@foliolab/folio-flags';
import { FoliolabError } from '@foliolab/ledger';
import { describe, expect, it } from 'vitest';
import { RMAP_NONE, folioAddAnonRmapPtes, folioAddFileRmapPtes, folioTryDupAnonRmapPtes } from './index.js';
import { MODES, faultIn, folioCounters, makeMm, makeVma, makeWorld, type World } from './test-fixtures.js';

/*
 * The per-page `_mapcount` is an Int16Array in the model (struct page's is an
 * atomic_t): at most PAGE_MAPCOUNT_MAX = 32767 stored, i.e. 32768 PTE mappings
 * of one page. Every public operation that would add one more PTE mapping to
 * such a page throws EOVERFLOW naming the PFN, before changing anything. The
 * count is written directly instead of mapping 32768 processes.
 */

const MM_A = makeMm(7);
const MM_B = makeMm(8);

function expectOverflow(w: World, f: Folio, pfn: number, op: () => unknown): void {
  const before = folioCounters(f);
  const counts = w.ledger.counts.slice();
  const stats = w.rmap.stats.snapshot();
  let err: unknown;
  try {
    op();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FoliolabError);
  expect((err as FoliolabError).code).toBe('EOVERFLOW');
  expect((err as FoliolabError).message).toContain(`pfn ${pfn}`);
  expect(folioCounters(f)).toEqual(before);
  expect(w.ledger.counts).toEqual(counts);
  expect(w.rmap.stats.snapshot()).toEqual(stats);
}

describe('per-page _mapcount limit (model: Int16Array, PAGE_MAPCOUNT_MAX)', () => {
  for (const mode of MODES) {
    it(`${mode}: order 0 — folio_add_anon_rmap_ptes and folio_try_dup_anon_rmap_ptes at the limit throw EOVERFLOW, changing nothing`, () => {
      const w = makeWorld(mode);
      const vma = makeVma(w, MM_A, 0x100000, 16);
      const f = faultIn(w, 0, vma, 0x100000, RMAP_NONE);
      w.memmap.mapcount![f.head] = PAGE_MAPCOUNT_MAX;
      expectOverflow(w, f, f.head, () => folioAddAnonRmapPtes(folioSubrange(f, 0, 1), vma, RMAP_NONE));
      const child = makeVma(w, MM_B, 0x100000, 16);
      expectOverflow(w, f, f.head, () => folioTryDupAnonRmapPtes(folioSubrange(f, 0, 1), child, vma));
      // One below the limit still maps: the last value the array can hold.
      w.memmap.mapcount![f.head] = PAGE_MAPCOUNT_MAX - 1;
      folioAddAnonRmapPtes(folioSubrange(f, 0, 1), vma, RMAP_NONE);
      expect(w.memmap.mapcount![f.head]).toBe(PAGE_MAPCOUNT_MAX);
    });
  }

  it('legacy: a batched add or dup over a range checks every page first (pfn named, nothing applied)', () => {
    const w = makeWorld('legacy');
    const vma = makeVma(w, MM_A, 0x100000, 16);
    const f = faultIn(w, 4, vma, 0x100000, RMAP_NONE);
    w.memmap.mapcount![f.head + 5] = PAGE_MAPCOUNT_MAX;
    expectOverflow(w, f, f.head + 5, () => folioAddAnonRmapPtes(folioSubrange(f, 0, 16), vma, RMAP_NONE));
    const child = makeVma(w, MM_B, 0x100000, 16);
    expectOverflow(w, f, f.head + 5, () => folioTryDupAnonRmapPtes(folioSubrange(f, 2, 8), child, vma));
    // A range that avoids the full page is unaffected.
    folioAddAnonRmapPtes(folioSubrange(f, 6, 10), vma, RMAP_NONE);
    expect(w.memmap.mapcount![f.head + 6]).toBe(1);
  });

  it('legacy: folio_add_file_rmap_ptes at the limit throws EOVERFLOW', () => {
    const w = makeWorld('legacy');
    const vma = makeVma(w, MM_A, 0x100000, 16);
    const f = w.memmap.allocFolio(0)!;
    f.fa[f.fb + F_MAPPING] = fileMapping(3);
    w.memmap.mapcount![f.head] = PAGE_MAPCOUNT_MAX;
    expectOverflow(w, f, f.head, () => folioAddFileRmapPtes(folioSubrange(f, 0, 1), vma));
  });
});
