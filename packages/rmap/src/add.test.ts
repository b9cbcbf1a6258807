import { ENTIRELY_MAPPED, FLAG, anonMapping, fileMapping, F_MAPPING, folioSubrange, folioTestSwapbacked } from '@foliolab/folio-flags';
import { FoliolabError, measure, nonZero } from '@foliolab/ledger';
import { describe, expect, it } from 'vitest';
import {
  RMAP_EXCLUSIVE,
  RMAP_NONE,
  anonVmaAlloc,
  checkRmapInvariants,
  folioAddAnonRmapPmd,
  folioAddAnonRmapPtes,
  folioAddFileRmapPmd,
  folioAddFileRmapPtes,
  folioAddNewAnonRmap,
  folioEntireMapcount,
  folioLargeMapcount,
  folioMapcount,
  folioMmId,
  folioMmIdMapcount,
  folioPrepLargeRmappable,
  folioRemoveRmapPmd,
  folioRemoveRmapPtes,
  pageMapcount,
} from './index.js';
import { MODES, exclusiveMap, faultIn, folioCounters, makeMm, makeVma, makeWorld, mmIdLock, mmIdOn, pageMapcountOn } from './test-fixtures.js';

const MM_A = makeMm(7);

describe('folio_add_new_anon_rmap (spec §2.2)', () => {
  for (const mode of MODES) {
    it(`${mode}: small folio — _mapcount 0, exclusive bit, swapbacked, mapping/index, NR_ANON_MAPPED +1`, () => {
      const w = makeWorld(mode);
      const vma = makeVma(w, MM_A, 0x100000, 16);
      const folio = w.memmap.allocFolio(0)!;
      const { counts } = measure(w.ledger, () => folioAddNewAnonRmap(folio, vma, 0x103000, RMAP_EXCLUSIVE));
      expect(folioMapcount(folio)).toBe(1);
      expect(w.memmap.mapcount![folio.head]).toBe(0);
      expect(exclusiveMap(folio)).toBe('E');
      expect(folioTestSwapbacked(folio)).toBe(true);
      expect(folio.fa[folio.fb + F_MAPPING]).toBe(anonMapping(vma.anonVma!.id));
      expect(folioCounters(folio).index).toBe(0x103);
      expect(w.rmap.stats.NR_ANON_MAPPED).toBe(1);
      expect(w.rmap.stats.nr_anon.every((x) => x === 0)).toBe(true); // no mTHP stat for order 0
      // RMAP_CALL, folio_test_swapbacked load, non-atomic __folio_set_swapbacked, SetPageAnonExclusive, one stat.
      expect(nonZero(counts)).toEqual({ RMAP_CALL: 1, FLAG_LOAD: 1, PLAIN_RMW: 1, ATOMIC_RMW: 1, PCPU_COUNTER: 1 });
    });

    it(`${mode}: mTHP (order 4) — every page mapped once, exclusive per page, large mapcount 16, nr_anon[4]`, () => {
      const w = makeWorld(mode);
      const vma = makeVma(w, MM_A, 0x100000, 16);
      const folio = w.memmap.allocFolio(4)!;
      folioPrepLargeRmappable(folio);
      const { counts } = measure(w.ledger, () => folioAddNewAnonRmap(folio, vma, 0x100000, RMAP_EXCLUSIVE));
      expect(folioLargeMapcount(folio)).toBe(16);
      expect(folioEntireMapcount(folio)).toBe(0);
      expect(exclusiveMap(folio)).toBe('E'.repeat(16));
      const c = folioCounters(folio);
      if (pageMapcountOn(mode)) {
        expect(c.pageMapcount).toEqual(new Array<number>(16).fill(0));
        expect(c.nrPagesMapped).toBe(16);
        expect(pageMapcount(folio, 5)).toBe(1);
      } else {
        expect(c.pageMapcount).toEqual(new Array<number>(16).fill(-1)); // NO_PAGE_MAPCOUNT
        expect(c.nrPagesMapped).toBe(0);
        expect(() => pageMapcount(folio, 5)).toThrow(FoliolabError);
      }
      if (mmIdOn(mode)) {
        // 7.2.13 include/linux/rmap.h:folio_set_large_mapcount (CONFIG_MM_ID): slot 0 takes the mm
        expect([folioMmId(folio, 0), folioMmIdMapcount(folio, 0), folioMmId(folio, 1)]).toEqual([7, 16, 0]);
      } else {
        expect([c.mmId0, c.mmIdMapcount0]).toEqual([0, -1]); // no MM_ID before 6.15
      }
      expect(w.rmap.stats.NR_ANON_MAPPED).toBe(16);
      expect(w.rmap.stats.nr_anon[4]).toBe(1);
      expect(nonZero(counts)).toEqual({ RMAP_CALL: 1, FLAG_LOAD: 1, PLAIN_RMW: 1, LOOP_ITER: 16, ATOMIC_RMW: 16, PCPU_COUNTER: 2 });
    });

    it(`${mode}: PMD-sized — entire mapcount 0, large 1, ENTIRELY_MAPPED (legacy), head-only exclusive, NR_ANON_THPS`, () => {
      const w = makeWorld(mode);
      const vma = makeVma(w, MM_A, 0x200000, 512);
      const folio = w.memmap.allocFolio(9)!;
      folioPrepLargeRmappable(folio);
      const { counts } = measure(w.ledger, () => folioAddNewAnonRmap(folio, vma, 0x200000, RMAP_EXCLUSIVE));
      expect([folioLargeMapcount(folio), folioEntireMapcount(folio)]).toEqual([1, 1]);
      expect(folioCounters(folio).nrPagesMapped).toBe(pageMapcountOn(mode) ? ENTIRELY_MAPPED : 0);
      expect(exclusiveMap(folio)).toBe('E' + '.'.repeat(511));
      expect(w.rmap.stats.NR_ANON_MAPPED).toBe(512);
      expect(w.rmap.stats.NR_ANON_THPS).toBe(512);
      expect(w.rmap.stats.nr_anon[9]).toBe(1);
      expect(nonZero(counts)).toEqual({ RMAP_CALL: 1, FLAG_LOAD: 1, PLAIN_RMW: 1, ATOMIC_RMW: 1, PCPU_COUNTER: 3 });
    });

    it(`${mode}: without RMAP_EXCLUSIVE the mapping is the root anon_vma and no bit is set`, () => {
      const w = makeWorld(mode);
      const vma = makeVma(w, MM_A, 0x100000, 16);
      const child = anonVmaAlloc(w.rmap, vma.anonVma);
      vma.anonVma = child;
      const folio = w.memmap.allocFolio(2)!;
      folioPrepLargeRmappable(folio);
      folioAddNewAnonRmap(folio, vma, 0x104000, RMAP_NONE);
      expect(folio.fa[folio.fb + F_MAPPING]).toBe(anonMapping(child.root.id));
      expect(exclusiveMap(folio)).toBe('....');
      // VM_DROPPABLE: not swapbacked.
      const dropped = w.memmap.allocFolio(0)!;
      folioAddNewAnonRmap(dropped, { ...vma, droppable: true }, 0x100000, RMAP_EXCLUSIVE);
      expect(folioTestSwapbacked(dropped)).toBe(false);
    });

    it(`${mode}: rejects, changing nothing: not large_rmappable, already mapped, outside the VMA, no anon_vma`, () => {
      const w = makeWorld(mode);
      const vma = makeVma(w, MM_A, 0x100000, 16);
      const plain = w.memmap.allocFolio(4)!;
      const before = folioCounters(plain);
      const snap = w.ledger.snapshot();
      expect(() => folioAddNewAnonRmap(plain, vma, 0x100000, RMAP_EXCLUSIVE)).toThrow(/large_rmappable/);
      folioPrepLargeRmappable(plain);
      const before2 = folioCounters(plain);
      expect(() => folioAddNewAnonRmap(plain, vma, 0x101000, RMAP_EXCLUSIVE)).toThrow(/does not fit/);
      expect(() => folioAddNewAnonRmap(plain, { ...vma, anonVma: null }, 0x100000, RMAP_EXCLUSIVE)).toThrow(/anon_vma/);
      expect(() => folioAddNewAnonRmap(plain, vma, 0x100000, 3)).toThrow(/flags/);
      expect(folioCounters(plain)).toEqual(before2);
      expect(before2.flags).not.toEqual(before.flags); // only folioPrepLargeRmappable changed it
      const mapped = faultIn(w, 4, makeVma(w, MM_A, 0x400000, 16), 0x400000, RMAP_EXCLUSIVE);
      expect(() => folioAddNewAnonRmap(mapped, vma, 0x100000, RMAP_EXCLUSIVE)).toThrow(/not new/);
      void snap;
    });
  }
});

describe('folio_add_anon_rmap_ptes / _pmd (spec §2.2 "PTE level" / "PMD level")', () => {
  for (const mode of MODES) {
    it(`${mode}: re-adding 8 PTEs of a partly mapped mTHP — counters, per-mode NR_ANON_MAPPED, costs`, () => {
      // 0123456789abcdef
      // MMMMMMMM........   after removing PTEs 8..15; then re-add them exclusively (swap-in)
      const w = makeWorld(mode);
      const vma = makeVma(w, MM_A, 0x100000, 16);
      const folio = faultIn(w, 4, vma, 0x100000, RMAP_EXCLUSIVE);
      folioRemoveRmapPtes(folioSubrange(folio, 8, 8), vma);
      const mappedBefore = w.rmap.stats.NR_ANON_MAPPED;
      const { counts } = measure(w.ledger, () => folioAddAnonRmapPtes(folioSubrange(folio, 8, 8), vma, RMAP_EXCLUSIVE));
      expect(folioLargeMapcount(folio)).toBe(16);
      if (pageMapcountOn(mode)) {
        expect(folioCounters(folio).pageMapcount).toEqual(new Array<number>(16).fill(0));
        expect(folioCounters(folio).nrPagesMapped).toBe(16);
        expect(w.rmap.stats.NR_ANON_MAPPED - mappedBefore).toBe(8); // per newly mapped page
        // 8 per-page inc_and_test + 1 _nr_pages_mapped add_return + 1 large add (under the _mm_ids bit lock
        // with MM_ID: 7.2.13 mm/rmap.c:__folio_add_rmap → folio_add_large_mapcount); 2 loops of 8; 8 bit sets.
        expect(nonZero(counts)).toEqual({ RMAP_CALL: 1, ATOMIC_MAPCOUNT: 10, LOOP_ITER: 16, ATOMIC_RMW: 8, PCPU_COUNTER: 1, ...mmIdLock(mode) });
        if (mmIdOn(mode)) expect(folioMmIdMapcount(folio, 0)).toBe(16);
      } else {
        expect(folioMmIdMapcount(folio, 0)).toBe(16);
        expect(w.rmap.stats.NR_ANON_MAPPED - mappedBefore).toBe(0); // still mapped: whole-folio accounting
        expect(nonZero(counts)).toEqual({ RMAP_CALL: 1, LOCK: 1, UNLOCK: 1, ATOMIC_MAPCOUNT: 1, LOOP_ITER: 8, ATOMIC_RMW: 8 });
      }
    });

    it(`${mode}: PTE-mapped PMD-sized folio gets a PMD: nr = 512 − PTE-mapped pages (legacy), NR_ANON_THPS +512`, () => {
      const w = makeWorld(mode);
      const vma = makeVma(w, MM_A, 0x200000, 512);
      const folio = faultIn(w, 9, vma, 0x200000, RMAP_EXCLUSIVE);
      // __split_huge_pmd_locked: PTE-map all 512 (head bit copied to all pages), then drop the PMD.
      folioAddAnonRmapPtes(folioSubrange(folio, 0, 512), vma, RMAP_EXCLUSIVE);
      folioRemoveRmapPmd(folio, vma);
      expect(w.rmap.stats.NR_ANON_THPS).toBe(0);
      expect(w.rmap.stats.NR_ANON_MAPPED).toBe(512);
      folioRemoveRmapPtes(folioSubrange(folio, 100, 412), vma);
      const mapped = w.rmap.stats.NR_ANON_MAPPED;
      expect(mapped).toBe(pageMapcountOn(mode) ? 100 : 512);
      folioAddAnonRmapPmd(folio, vma, RMAP_NONE);
      expect(w.rmap.stats.NR_ANON_THPS).toBe(512);
      expect(w.rmap.stats.NR_ANON_MAPPED).toBe(512);
      expect([folioLargeMapcount(folio), folioEntireMapcount(folio)]).toEqual([101, 1]);
      if (pageMapcountOn(mode)) expect(folioCounters(folio).nrPagesMapped).toBe(ENTIRELY_MAPPED + 100);
    });

    it(`${mode}: a PMD add costs entire inc + (legacy) ENTIRELY_MAPPED add + large inc`, () => {
      const w = makeWorld(mode);
      const vma = makeVma(w, MM_A, 0x200000, 512);
      const folio = faultIn(w, 9, vma, 0x200000, RMAP_NONE);
      const vma2 = makeVma(w, makeMm(8), 0x400000, 512);
      vma2.anonVma = vma.anonVma;
      const { counts } = measure(w.ledger, () => folioAddAnonRmapPmd(folio, vma2, RMAP_NONE));
      // Not the first PMD mapping: no ENTIRELY_MAPPED add, no stats.
      expect(nonZero(counts)).toEqual(
        { RMAP_CALL: 1, ATOMIC_MAPCOUNT: 2, ...mmIdLock(mode) },
      );
      expect(folioEntireMapcount(folio)).toBe(2);
    });

    it(`${mode}: an exclusive page may not gain a second mapping (VM_WARN of __folio_add_anon_rmap)`, () => {
      const w = makeWorld(mode);
      const vma = makeVma(w, MM_A, 0x100000, 16);
      const folio = faultIn(w, 4, vma, 0x100000, RMAP_EXCLUSIVE);
      const add = (): void => folioAddAnonRmapPtes(folioSubrange(folio, 3, 1), vma, RMAP_NONE);
      if (pageMapcountOn(mode)) {
        const before = folioCounters(folio);
        expect(add).toThrow(/AnonExclusive and mapped more than once/);
        expect(folioCounters(folio)).toEqual(before);
      } else {
        expect(add).not.toThrow(); // NO_PAGE_MAPCOUNT cannot see per-page mapcounts; the engine's census can
      }
      const small = faultIn(w, 0, vma, 0x10e000, RMAP_EXCLUSIVE);
      expect(() => folioAddAnonRmapPtes(folioSubrange(small, 0, 1), vma, RMAP_NONE)).toThrow(/mapped more than once/);
    });

    it(`${mode}: rejects anon ops on a file folio, PMD ops on a non-PMD-sized folio, a foreign anon_vma`, () => {
      const w = makeWorld(mode);
      const vma = makeVma(w, MM_A, 0x100000, 16);
      const file = w.memmap.allocFolio(4)!;
      file.fa[file.fb + F_MAPPING] = fileMapping(3);
      expect(() => folioAddAnonRmapPtes(folioSubrange(file, 0, 1), vma, RMAP_NONE)).toThrow(/not anonymous/);
      const anon = faultIn(w, 4, vma, 0x100000, RMAP_NONE);
      expect(() => folioAddAnonRmapPmd(anon, vma, RMAP_NONE)).toThrow(/not PMD-sized/);
      const other = makeVma(w, makeMm(9), 0x800000, 16);
      expect(() => folioAddAnonRmapPtes(folioSubrange(anon, 0, 1), other, RMAP_NONE)).toThrow(/anon_vma root/);
      expect(() => folioAddFileRmapPtes(folioSubrange(anon, 0, 1), vma)).toThrow(/is anonymous/);
    });
  }
});

describe('folio_add_file_rmap_ptes / _pmd and __folio_mod_stat for file folios', () => {
  for (const mode of MODES) {
    it(`${mode}: NR_FILE_MAPPED per mode, NR_FILE_PMDMAPPED vs NR_SHMEM_PMDMAPPED`, () => {
      const w = makeWorld(mode, {}, 2048);
      const vma = makeVma(w, MM_A, 0x200000, 512);
      const f = w.memmap.allocFolio(4)!;
      f.fa[f.fb + F_MAPPING] = fileMapping(5);
      folioAddFileRmapPtes(folioSubrange(f, 0, 4), vma);
      expect(w.rmap.stats.NR_FILE_MAPPED).toBe(pageMapcountOn(mode) ? 4 : 16);
      expect(w.rmap.stats.NR_ANON_MAPPED).toBe(0);
      folioRemoveRmapPtes(folioSubrange(f, 0, 4), vma);
      expect(w.rmap.stats.NR_FILE_MAPPED).toBe(0);
      expect(w.rmap.splitQueue.len).toBe(0); // never anon: no deferred split
      const thp = w.memmap.allocFolio(9)!;
      thp.fa[thp.fb + F_MAPPING] = fileMapping(6);
      folioAddFileRmapPmd(thp, vma);
      expect([w.rmap.stats.NR_FILE_PMDMAPPED, w.rmap.stats.NR_SHMEM_PMDMAPPED, w.rmap.stats.NR_FILE_MAPPED]).toEqual([512, 0, 512]);
      const shm = w.memmap.allocFolio(9)!;
      shm.fa[shm.fb + F_MAPPING] = fileMapping(7);
      w.memmap.flags[shm.head] = w.memmap.flags[shm.head]! | FLAG.swapbacked.mask;
      folioAddFileRmapPmd(shm, vma);
      expect(w.rmap.stats.NR_SHMEM_PMDMAPPED).toBe(512);
      expect(() => folioAddFileRmapPmd(f, vma)).toThrow(/not PMD-sized/);
      expect(checkRmapInvariants(w.rmap, [f, thp, shm], { allFolios: true })).toEqual([]);
      w.rmap.stats.NR_FILE_MAPPED++;
      expect(checkRmapInvariants(w.rmap, [f, thp, shm], { allFolios: true }).map((v) => v.rule)).toEqual(['stats']);
    });
  }
});
