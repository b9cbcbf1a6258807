import { folioSubrange, setPageAnonExclusive } from '@foliolab/folio-flags';
import { FoliolabError, measure, nonZero } from '@foliolab/ledger';
import { describe, expect, it } from 'vitest';
import {
  EBUSY,
  RMAP_EXCLUSIVE,
  RMAP_NONE,
  folioEntireMapcount,
  folioLargeMapcount,
  folioNeedsCowForDma,
  folioTryDupAnonRmapPmd,
  folioTryDupAnonRmapPtes,
  folioTryShareAnonRmapPmd,
  folioTryShareAnonRmapPte,
  folioTryShareAnonRmapPtes,
  pageMapcount,
  tryGrabFolio,
  type MapcountMode,
  type RmapConfig,
} from './index.js';
import { MODES, exclusiveMap, faultIn, folioCounters, makeMm, makeVma, makeWorld, mmIdLock, pageMapcountOn } from './test-fixtures.js';

function setup(mode: MapcountMode, order = 4, config: Partial<RmapConfig> = {}) {
  const w = makeWorld(mode, config);
  const parent = makeMm(1);
  const vma = makeVma(w, parent, 0x200000, 512);
  const folio = faultIn(w, order, vma, 0x200000, RMAP_EXCLUSIVE);
  const child = { ...vma, mm: makeMm(2) };
  return { w, parent, vma, folio, child };
}

describe('folio_try_dup_anon_rmap_ptes (spec §2.2 "fork", unmap-engine §5 / §7 #24)', () => {
  for (const mode of MODES) {
    it(`${mode}: fork of an exclusive 64K folio clears all 16 bits and doubles the mappings in one call`, () => {
      const { w, vma, folio, child } = setup(mode);
      const { result, counts } = measure(w.ledger, () => folioTryDupAnonRmapPtes(folioSubrange(folio, 0, 16), child, vma));
      expect(result).toBe(0);
      expect(exclusiveMap(folio)).toBe('.'.repeat(16));
      expect(folioLargeMapcount(folio)).toBe(32);
      if (pageMapcountOn(mode)) {
        expect(pageMapcount(folio, 9)).toBe(2);
        // 16 per-page increments + the large add (under the _mm_ids bit lock with MM_ID:
        // 7.2.13 include/linux/rmap.h:__folio_try_dup_anon_rmap → folio_add_large_mapcount).
        expect(nonZero(counts)).toEqual({ RMAP_CALL: 1, LOOP_ITER: 16, FLAG_LOAD: 16, ATOMIC_RMW: 16, ATOMIC_MAPCOUNT: 17, ...mmIdLock(mode) });
      } else {
        // §6 fork: nr ATOMIC_BIT + 1 ATOMIC_MAPCOUNT (+ the MM_ID bit-lock pair).
        expect(nonZero(counts)).toEqual({ RMAP_CALL: 1, LOOP_ITER: 16, FLAG_LOAD: 16, ATOMIC_RMW: 16, ATOMIC_MAPCOUNT: 1, LOCK: 1, UNLOCK: 1 });
      }
      expect(w.rmap.stats.NR_ANON_MAPPED).toBe(16); // dup never changes the mapped-page stats
    });

    it(`${mode}: pinned + MMF_HAS_PINNED + an exclusive page → −EBUSY, nothing changed (all-or-nothing)`, () => {
      const { w, parent, vma, folio, child } = setup(mode);
      tryGrabFolio(folio, 1, 'pin', parent);
      expect(parent.hasPinned).toBe(true);
      const before = folioCounters(folio);
      const stats = w.rmap.stats.snapshot();
      const { result, counts } = measure(w.ledger, () => folioTryDupAnonRmapPtes(folioSubrange(folio, 0, 16), child, vma));
      expect(result).toBe(-EBUSY);
      expect(folioCounters(folio)).toEqual(before);
      expect(w.rmap.stats.snapshot()).toEqual(stats);
      // The pin check reads _pincount once; the scan stops at the first exclusive page.
      expect(nonZero(counts)).toEqual({ RMAP_CALL: 1, ATOMIC_READ: 1, LOOP_ITER: 1, FLAG_LOAD: 1 });
    });

    it(`${mode}: pinned but no exclusive page, or pinned without MMF_HAS_PINNED → duplicated`, () => {
      const { w, parent, vma, folio, child } = setup(mode);
      tryGrabFolio(folio, 1, 'pin', null); // pinned by someone whose mm flag is not the parent's
      expect(folioNeedsCowForDma(vma, folio)).toBe(false);
      expect(folioTryDupAnonRmapPtes(folioSubrange(folio, 0, 8), child, vma)).toBe(0);
      parent.hasPinned = true;
      expect(folioNeedsCowForDma(vma, folio)).toBe(true);
      // Pages 0..7 are no longer exclusive: a second fork of them goes through despite the pin.
      expect(folioTryDupAnonRmapPtes(folioSubrange(folio, 0, 8), { ...child, mm: makeMm(3) }, vma)).toBe(0);
      expect(folioTryDupAnonRmapPtes(folioSubrange(folio, 7, 2), { ...child, mm: makeMm(3) }, vma)).toBe(-EBUSY);
      void w;
    });

    it(`${mode}: a device-private folio is never "maybe pinned"`, () => {
      const w0 = makeWorld(mode);
      const probe = w0.memmap.allocFolio(4)!; // the first order-4 block of a fresh memmap
      const { parent, vma, folio, child } = setup(mode, 4, { devicePrivatePfns: { start: probe.head, end: probe.head + 16 } });
      tryGrabFolio(folio, 1, 'pin', parent);
      expect(folioTryDupAnonRmapPtes(folioSubrange(folio, 0, 16), child, vma)).toBe(0);
    });

    it(`${mode}: PMD flavour looks at the head bit only`, () => {
      const w = makeWorld(mode);
      const parent = makeMm(1);
      const vma = makeVma(w, parent, 0x200000, 512);
      const folio = faultIn(w, 9, vma, 0x200000, RMAP_EXCLUSIVE);
      const child = { ...vma, mm: makeMm(2) };
      tryGrabFolio(folio, 1, 'pin', parent);
      const before = folioCounters(folio);
      expect(folioTryDupAnonRmapPmd(folio, child, vma)).toBe(-EBUSY);
      expect(folioCounters(folio)).toEqual(before);
      parent.hasPinned = false;
      setPageAnonExclusive(w.memmap, folio.head + 3); // a stale tail bit is not looked at
      const { result, counts } = measure(w.ledger, () => folioTryDupAnonRmapPmd(folio, child, vma));
      expect(result).toBe(0);
      expect(exclusiveMap(folio).slice(0, 4)).toBe('...E');
      expect([folioEntireMapcount(folio), folioLargeMapcount(folio)]).toEqual([2, 2]);
      expect(counts.ATOMIC_MAPCOUNT).toBe(2);
      expect(counts.ATOMIC_RMW).toBe(1);
    });

    it(`${mode}: rejects duplicating pages that are not PTE-mapped`, () => {
      const { w, vma, child, folio: pmdMapped } = setup(mode, 9);
      const small = faultIn(w, 0, vma, 0x3ff000, RMAP_NONE);
      expect(folioTryDupAnonRmapPtes(folioSubrange(small, 0, 1), child, vma)).toBe(0);
      expect(folioCounters(small).pageMapcount).toEqual([1]);
      // Only a PMD maps it: there is no PTE mapping to duplicate.
      expect(() => folioTryDupAnonRmapPtes(folioSubrange(pmdMapped, 0, 1), child, vma)).toThrow(FoliolabError);
    });
  }
});

describe('folio_try_share_anon_rmap_pte(s) / _pmd (spec §2.3, seed 000)', () => {
  for (const mode of MODES) {
    it(`${mode}: batched share of 16 exclusive pages: one barrier pair, one pin read, 16 atomic clears`, () => {
      const { w, folio } = setup(mode);
      const { result, counts } = measure(w.ledger, () => folioTryShareAnonRmapPtes(folioSubrange(folio, 0, 16)));
      expect(result).toBe(0);
      expect(exclusiveMap(folio)).toBe('.'.repeat(16));
      expect(nonZero(counts)).toEqual({ MB_FULL: 1, ATOMIC_READ: 1, ATOMIC_RMW: 16, MB_AFTER_ATOMIC: 1, LOOP_ITER: 16 });
    });

    it(`${mode}: per-PTE share: the same barriers for one page (unmap-engine §6 "today")`, () => {
      const { w, folio } = setup(mode);
      const { result, counts } = measure(w.ledger, () => folioTryShareAnonRmapPte(folio, 5));
      expect(result).toBe(0);
      expect(exclusiveMap(folio)).toBe('EEEEE.EEEEEEEEEE');
      expect(nonZero(counts)).toEqual({ MB_FULL: 1, ATOMIC_READ: 1, ATOMIC_RMW: 1, MB_AFTER_ATOMIC: 1 });
    });

    it(`${mode}: pinned → −EBUSY after the full barrier; no bit cleared`, () => {
      const { w, folio } = setup(mode);
      tryGrabFolio(folio, 1, 'pin', null);
      const before = folioCounters(folio);
      const { result, counts } = measure(w.ledger, () => folioTryShareAnonRmapPtes(folioSubrange(folio, 4, 8)));
      expect(result).toBe(-EBUSY);
      expect(folioCounters(folio)).toEqual(before);
      expect(nonZero(counts)).toEqual({ MB_FULL: 1, ATOMIC_READ: 1, LOOP_ITER: 8 });
    });

    it(`${mode}: a small folio counts as pinned at refcount ≥ 1024`, () => {
      const { w, vma } = setup(mode);
      const small = faultIn(w, 0, vma, 0x300000, RMAP_EXCLUSIVE);
      expect(folioTryShareAnonRmapPte(small, 0)).toBe(0);
      setPageAnonExclusive(w.memmap, small.head);
      tryGrabFolio(small, 1, 'pin', null);
      expect(folioTryShareAnonRmapPte(small, 0)).toBe(-EBUSY);
    });

    it(`${mode}: a non-exclusive page is a caller bug: rejected, nothing changed`, () => {
      const { w, folio } = setup(mode);
      folioTryShareAnonRmapPte(folio, 3);
      const before = folioCounters(folio);
      const ledger = w.ledger.snapshot();
      expect(() => folioTryShareAnonRmapPtes(folioSubrange(folio, 0, 8))).toThrow(/page 3 .* not PageAnonExclusive/);
      expect(folioCounters(folio)).toEqual(before);
      expect(w.ledger.snapshot()).toEqual(ledger);
    });

    it(`${mode}: PMD flavour clears only the head (nr forced to 1)`, () => {
      const w = makeWorld(mode);
      const vma = makeVma(w, makeMm(1), 0x200000, 512);
      const folio = faultIn(w, 9, vma, 0x200000, RMAP_EXCLUSIVE);
      setPageAnonExclusive(w.memmap, folio.head + 1);
      const { result, counts } = measure(w.ledger, () => folioTryShareAnonRmapPmd(folio));
      expect(result).toBe(0);
      expect(exclusiveMap(folio).slice(0, 3)).toBe('.E.');
      expect(counts.ATOMIC_RMW).toBe(1);
      expect(() => folioTryShareAnonRmapPmd(folio)).toThrow(/not PageAnonExclusive/);
    });

    it(`${mode}: device-private: clear and return 0 without barriers or pin check; no GUP-fast: no barriers`, () => {
      const w0 = makeWorld(mode);
      const probe = w0.memmap.allocFolio(4)!;
      const dp = setup(mode, 4, { devicePrivatePfns: { start: probe.head, end: probe.head + 16 } });
      tryGrabFolio(dp.folio, 1, 'pin', null);
      const { result, counts } = measure(dp.w.ledger, () => folioTryShareAnonRmapPtes(folioSubrange(dp.folio, 0, 4)));
      expect(result).toBe(0);
      expect(nonZero(counts)).toEqual({ ATOMIC_RMW: 4, LOOP_ITER: 4 });
      const ng = setup(mode, 4, { haveGupFast: false });
      const r2 = measure(ng.w.ledger, () => folioTryShareAnonRmapPte(ng.folio, 0));
      expect(nonZero(r2.counts)).toEqual({ ATOMIC_READ: 1, ATOMIC_RMW: 1 });
    });
  }
});
