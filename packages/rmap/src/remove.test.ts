import { F_MAPPING, anonMapping, folioSubrange, folioTestPartiallyMapped } from '@foliolab/folio-flags';
import { FoliolabError, measure, nonZero } from '@foliolab/ledger';
import { describe, expect, it } from 'vitest';
import {
  RMAP_EXCLUSIVE,
  RMAP_NONE,
  folioAddAnonRmapPtes,
  folioLargeMapcount,
  folioMapcount,
  folioMapped,
  folioOnDeferredList,
  folioRemoveRmapPmd,
  folioRefAdd,
  folioRemoveRmapPtes,
  folioTryDupAnonRmapPtes,
} from './index.js';
import { MODES, faultIn, folioCounters, makeMm, makeVma, makeWorld, mmIdLock, pageMapcountOn, type World } from './test-fixtures.js';

const MM_A = makeMm(1);
const MM_B = makeMm(2);

/** A 64K folio fully mapped exclusively by mm A at 0x100000. */
function mapped64k(w: World): { vma: ReturnType<typeof makeVma>; folio: ReturnType<typeof faultIn> } {
  const vma = makeVma(w, MM_A, 0x100000, 16);
  return { vma, folio: faultIn(w, 4, vma, 0x100000, RMAP_EXCLUSIVE) };
}

/** fork(): the child VMA shares the parent's anon_vma family; dup every PTE mapping. */
function forkAll(vma: ReturnType<typeof makeVma>, folio: ReturnType<typeof faultIn>, mm = MM_B, first = 0, nr = folio.nr) {
  const child = { ...vma, mm, anonVma: vma.anonVma };
  folioRefAdd(folio, nr); // copy_present_ptes: folio_ref_add(nr) before the dup
  expect(folioTryDupAnonRmapPtes(folioSubrange(folio, first, nr), child, vma)).toBe(0);
  return child;
}

describe('__folio_remove_rmap, PTE level (spec §2.2, unmap-engine §2.3 / §6)', () => {
  it('legacy: removing 1 PTE of a mapped large folio = 3 ATOMIC_MAPCOUNT (per-page, _nr_pages_mapped, large)', () => {
    const w = makeWorld('legacy');
    const { vma, folio } = mapped64k(w);
    const { counts } = measure(w.ledger, () => folioRemoveRmapPtes(folioSubrange(folio, 0, 1), vma));
    expect(counts.ATOMIC_MAPCOUNT).toBe(3);
    expect(counts.RMAP_CALL).toBe(1);
    expect(counts.LOOP_ITER).toBe(1);
    const c = folioCounters(folio);
    expect(c.pageMapcount).toEqual([-1, ...new Array<number>(15).fill(0)]);
    expect([c.nrPagesMapped, folioLargeMapcount(folio)]).toEqual([15, 15]);
    expect(w.rmap.stats.NR_ANON_MAPPED).toBe(15);
  });

  it('mm_id: removing all 16 PTEs = 1 ATOMIC_MAPCOUNT under the bit-lock pair, NR_ANON_MAPPED −16 at once', () => {
    const w = makeWorld('mm_id');
    const { vma, folio } = mapped64k(w);
    const { counts } = measure(w.ledger, () => folioRemoveRmapPtes(folioSubrange(folio, 0, 16), vma));
    expect(nonZero(counts)).toEqual({ RMAP_CALL: 1, LOCK: 1, UNLOCK: 1, ATOMIC_MAPCOUNT: 1, PCPU_COUNTER: 1 });
    expect(w.ledger.locks.acquisitions()[`mm_ids:${folio.head}`]).toBeGreaterThan(0);
    expect(folioMapped(folio)).toBe(false);
    expect(w.rmap.stats.NR_ANON_MAPPED).toBe(0);
    expect(folioCounters(folio).mmId0).toBe(0); // slot freed, lock bit clear
  });

  it('legacy: removing all 16 = nr + 2 ATOMIC_MAPCOUNT, one loop of 16, one stat update', () => {
    const w = makeWorld('legacy');
    const { vma, folio } = mapped64k(w);
    const { counts } = measure(w.ledger, () => folioRemoveRmapPtes(folioSubrange(folio, 0, 16), vma));
    expect(nonZero(counts)).toEqual({ RMAP_CALL: 1, ATOMIC_MAPCOUNT: 18, LOOP_ITER: 16, PCPU_COUNTER: 1 });
    expect(folioCounters(folio)).toMatchObject({ large: -1, nrPagesMapped: 0, pageMapcount: new Array<number>(16).fill(-1) });
    // `mapping` is left alone when fully unmapped.
    expect(folio.fa[folio.fb + F_MAPPING]).toBe(anonMapping(vma.anonVma!.id));
  });

  it('legacy: a page still mapped by the child goes no lower than 0: 2 ATOMIC_MAPCOUNT, no stat, not partial', () => {
    const w = makeWorld('legacy');
    const { vma, folio } = mapped64k(w);
    forkAll(vma, folio);
    const { counts } = measure(w.ledger, () => folioRemoveRmapPtes(folioSubrange(folio, 0, 1), vma));
    expect(nonZero(counts)).toEqual({ RMAP_CALL: 1, ATOMIC_MAPCOUNT: 2, LOOP_ITER: 1 });
    expect(folioTestPartiallyMapped(folio)).toBe(false);
  });

  for (const mode of MODES) {
    it(`${mode}: order-0 removal = one add-negative on _mapcount, NR_ANON_MAPPED −1`, () => {
      const w = makeWorld(mode);
      const vma = makeVma(w, MM_A, 0x100000, 16);
      const small = faultIn(w, 0, vma, 0x100000, RMAP_EXCLUSIVE);
      const { counts } = measure(w.ledger, () => folioRemoveRmapPtes(folioSubrange(small, 0, 1), vma));
      expect(nonZero(counts)).toEqual({ RMAP_CALL: 1, ATOMIC_MAPCOUNT: 1, PCPU_COUNTER: 1 });
      expect(folioMapcount(small)).toBe(0);
      expect(w.rmap.stats.NR_ANON_MAPPED).toBe(0);
    });

    it(`${mode}: removing a mapping that does not exist is rejected and changes nothing`, () => {
      const w = makeWorld(mode);
      const { vma, folio } = mapped64k(w);
      folioRemoveRmapPtes(folioSubrange(folio, 0, 8), vma);
      const before = folioCounters(folio);
      const stats = w.rmap.stats.snapshot();
      const ledger = w.ledger.snapshot();
      const again = (): void => folioRemoveRmapPtes(folioSubrange(folio, 0, 9), vma);
      if (pageMapcountOn(mode)) expect(again).toThrow(/not PTE-mapped/);
      else {
        folioRemoveRmapPtes(folioSubrange(folio, 8, 4), vma); // 4 left
        expect(() => folioRemoveRmapPtes(folioSubrange(folio, 0, 5), vma)).toThrow(/cannot remove 5 PTE mappings/);
        folioAddAnonRmapPtes(folioSubrange(folio, 8, 4), vma, RMAP_NONE);
        expect(folioCounters(folio)).toEqual(before);
        return;
      }
      expect(folioCounters(folio)).toEqual(before);
      expect(w.rmap.stats.snapshot()).toEqual(stats);
      expect(w.ledger.snapshot()).toEqual(ledger);
      expect(() => folioRemoveRmapPmd(folio, vma)).toThrow(FoliolabError);
    });

    it(`${mode}: partially_mapped per mode — legacy exact, mm_id an average test (unmap-engine §2.3)`, () => {
      // parent A and child B both map all 16 pages; A drops 8..15, then B drops 8..15, then A drops 0.
      const w = makeWorld(mode);
      const { vma, folio } = mapped64k(w);
      const child = forkAll(vma, folio);
      folioRemoveRmapPtes(folioSubrange(folio, 8, 8), vma);
      expect(folioOnDeferredList(folio)).toBe(false); // pages 8..15 still mapped by B: not partial in either mode
      folioRemoveRmapPtes(folioSubrange(folio, 8, 8), child);
      // Pages 8..15 are now unmapped. Legacy sees it; mm_id sees m = 16 = nr and misses it.
      expect(folioOnDeferredList(folio)).toBe(pageMapcountOn(mode));
      folioRemoveRmapPtes(folioSubrange(folio, 0, 1), vma);
      expect(folioOnDeferredList(folio)).toBe(true); // m = 15 < 16: caught once the average drops
      expect(w.rmap.stats.split_deferred[4]).toBe(1);
    });
  }
});

describe('__folio_remove_rmap, PMD level (spec §2.2)', () => {
  for (const mode of MODES) {
    it(`${mode}: last PMD unmap of a PMD-only folio: nr = nr_pmdmapped = 512, not partial`, () => {
      const w = makeWorld(mode);
      const vma = makeVma(w, MM_A, 0x200000, 512);
      const folio = faultIn(w, 9, vma, 0x200000, RMAP_EXCLUSIVE);
      const { counts } = measure(w.ledger, () => folioRemoveRmapPmd(folio, vma));
      expect(nonZero(counts)).toEqual(
        pageMapcountOn(mode)
          ? { RMAP_CALL: 1, ATOMIC_MAPCOUNT: 3, PCPU_COUNTER: 2, ...mmIdLock(mode) }
          : { RMAP_CALL: 1, ATOMIC_MAPCOUNT: 2, LOCK: 1, UNLOCK: 1, PCPU_COUNTER: 2 },
      );
      expect([w.rmap.stats.NR_ANON_MAPPED, w.rmap.stats.NR_ANON_THPS]).toEqual([0, 0]);
      expect(folioCounters(folio)).toMatchObject({ large: -1, entire: -1, nrPagesMapped: 0 });
      expect(folioOnDeferredList(folio)).toBe(false);
    });

    it(`${mode}: PMD unmap leaving 100 PTE-mapped pages is partial: queued; NR_ANON_MAPPED −412 (legacy) / 0 (mm_id)`, () => {
      const w = makeWorld(mode);
      const vma = makeVma(w, MM_A, 0x200000, 512);
      const folio = faultIn(w, 9, vma, 0x200000, RMAP_NONE);
      folioAddAnonRmapPtes(folioSubrange(folio, 0, 100), vma, RMAP_NONE);
      expect(w.rmap.stats.NR_ANON_MAPPED).toBe(512);
      folioRemoveRmapPmd(folio, vma);
      expect(w.rmap.stats.NR_ANON_MAPPED).toBe(pageMapcountOn(mode) ? 100 : 512);
      expect(w.rmap.stats.NR_ANON_THPS).toBe(0);
      expect(folioOnDeferredList(folio)).toBe(true);
      expect(w.rmap.stats.thp_deferred_split_page).toBe(1);
      expect(w.rmap.stats.split_deferred[9]).toBe(1);
      expect(() => folioRemoveRmapPmd(folio, vma)).toThrow(/not PMD-mapped/);
      // legacy sees page 100 is unmapped; mm_id only sees that 101 > the 100 PTE mappings.
      if (pageMapcountOn(mode)) expect(() => folioRemoveRmapPtes(folioSubrange(folio, 100, 1), vma)).toThrow(/not PTE-mapped/);
      else expect(() => folioRemoveRmapPtes(folioSubrange(folio, 0, 101), vma)).toThrow(/cannot remove 101/);
    });
  }
});
