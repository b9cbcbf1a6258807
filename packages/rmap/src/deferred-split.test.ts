import {
  FLAG,
  folioPutRefs,
  folioRefCount,
  folioSetMlocked,
  folioSetSwapcache,
  folioSubrange,
  folioTestPartiallyMapped,
  type Folio,
} from '@foliolab/folio-flags';
import { measure, nonZero } from '@foliolab/ledger';
import { describe, expect, it } from 'vitest';
import {
  DEFERRED_SPLIT_BATCH,
  RMAP_EXCLUSIVE,
  checkRmapInvariants,
  deferredQueueIndexOf,
  deferredSplitCount,
  deferredSplitFolio,
  deferredSplitScan,
  folioOnDeferredList,
  folioPrepLargeRmappable,
  folioRemoveRmapPtes,
  folioSplitUnqueueDeferred,
  folioUnqueueDeferredSplit,
  rmapFreeFolio,
  type RmapVma,
} from './index.js';
import { MODES, faultIn, folioCounters, makeMm, makeVma, makeWorld, mmIdLock, pageMapcountOn, type World } from './test-fixtures.js';

const MM = makeMm(4);

function fault64k(w: World, at = 0x100000): { vma: RmapVma; folio: Folio } {
  const vma = makeVma(w, MM, at, 16);
  return { vma, folio: faultIn(w, 4, vma, at, RMAP_EXCLUSIVE) };
}

/** zap one PTE at a time, as zap_pte_range did before batching (Ryan Roberts, 2023; seed 001). */
function removePerPte(folio: Folio, vma: RmapVma): void {
  for (let i = 0; i < folio.nr; i++) folioRemoveRmapPtes(folioSubrange(folio, i, 1), vma);
}

describe('seed 001: per-PTE rmap removal spuriously enqueues, batched removal does not (spec §2.5 "Why batching matters")', () => {
  for (const mode of MODES) {
    it(`${mode}: MADV_DONTNEED of a whole 64K folio — per PTE queues it once, one batch queues nothing`, () => {
      const per = makeWorld(mode);
      const a = fault64k(per);
      const perCost = measure(per.ledger, () => removePerPte(a.folio, a.vma)).counts;
      const bat = makeWorld(mode);
      const b = fault64k(bat);
      const batCost = measure(bat.ledger, () => folioRemoveRmapPtes(folioSubrange(b.folio, 0, 16), b.vma)).counts;

      expect([folioOnDeferredList(a.folio), folioTestPartiallyMapped(a.folio), per.rmap.splitQueue.len]).toEqual([true, true, 1]);
      expect(deferredQueueIndexOf(a.folio)).toBe(0); // the node queue
      expect(per.rmap.stats.split_deferred[4]).toBe(1);
      expect(per.rmap.stats.nr_anon_partially_mapped[4]).toBe(1);
      expect([perCost.DEFERRED_SPLIT_CALL, perCost.DEFERRED_SPLIT_ENQUEUE]).toEqual([1, 1]);
      expect(per.ledger.locks.acquisitions()['split_queue']).toBe(1);

      expect([folioOnDeferredList(b.folio), folioTestPartiallyMapped(b.folio), bat.rmap.splitQueue.len]).toEqual([false, false, 0]);
      expect(bat.rmap.stats.split_deferred[4]).toBe(0);
      expect([batCost.DEFERRED_SPLIT_CALL, batCost.DEFERRED_SPLIT_ENQUEUE]).toEqual([0, 0]);
      expect(bat.ledger.locks.acquisitions()['split_queue']).toBeUndefined();

      // Both end fully unmapped with the same NR_ANON_MAPPED; the spurious entry is unqueued at free.
      expect([per.rmap.stats.NR_ANON_MAPPED, bat.rmap.stats.NR_ANON_MAPPED]).toEqual([0, 0]);
      folioPutRefs(a.folio, 16);
      rmapFreeFolio(a.folio);
      expect([per.rmap.splitQueue.len, per.rmap.stats.nr_anon_partially_mapped[4], per.rmap.stats.nr_anon[4]]).toEqual([0, 0, 0]);
      expect(per.ledger.locks.acquisitions()['split_queue']).toBe(2);
    });

    it(`${mode}: the enqueueing removal's full cost`, () => {
      const w = makeWorld(mode);
      const { vma, folio } = fault64k(w);
      const { counts } = measure(w.ledger, () => folioRemoveRmapPtes(folioSubrange(folio, 0, 1), vma));
      // PAGE_MAPCOUNT: large sub + page add-negative + _nr_pages_mapped sub; the large sub takes the _mm_ids
      // bit lock with MM_ID (7.2.13 mm/rmap.c:__folio_remove_rmap → folio_sub_large_mapcount).
      const rmap: { ATOMIC_MAPCOUNT: number; LOOP_ITER?: number; LOCK?: number; UNLOCK?: number } = pageMapcountOn(mode)
        ? { ATOMIC_MAPCOUNT: 3, LOOP_ITER: 1, ...mmIdLock(mode) }
        : { ATOMIC_MAPCOUNT: 1, LOCK: 1, UNLOCK: 1 };
      expect(nonZero(counts)).toEqual({
        RMAP_CALL: 1,
        ...rmap,
        // test PG_partially_mapped; deferred_split_folio: swapcache test (swapbacked ∧ swapcache: 2 loads),
        // lock, test + atomic set of the flag, two mTHP stats, list add, unlock; then NR_ANON_MAPPED (legacy).
        FLAG_LOAD: 4,
        DEFERRED_SPLIT_CALL: 1,
        LOCK: (rmap.LOCK ?? 0) + 1,
        UNLOCK: (rmap.UNLOCK ?? 0) + 1,
        ATOMIC_RMW: 1,
        PCPU_COUNTER: pageMapcountOn(mode) ? 3 : 2,
        DEFERRED_SPLIT_ENQUEUE: 1,
      });
    });

    it(`${mode}: a swap-cache folio is never queued, but every partial removal still pays the call`, () => {
      const w = makeWorld(mode);
      const { vma, folio } = fault64k(w);
      folioSetSwapcache(folio);
      const { counts } = measure(w.ledger, () => removePerPte(folio, vma));
      expect(counts.DEFERRED_SPLIT_CALL).toBe(15); // removals 1..15 leave it partially mapped; the 16th unmaps it
      expect(counts.DEFERRED_SPLIT_ENQUEUE).toBe(0);
      expect([folioOnDeferredList(folio), folioTestPartiallyMapped(folio), w.rmap.stats.split_deferred[4]]).toEqual([false, false, 0]);
    });
  }
});

describe('deferred_split_folio early returns and flag handling (spec §2.5)', () => {
  it('order ≤ 1: counted call, nothing else', () => {
    const w = makeWorld('legacy');
    const f = w.memmap.allocFolio(1)!;
    const { counts } = measure(w.ledger, () => deferredSplitFolio(f, true));
    expect(nonZero(counts)).toEqual({ DEFERRED_SPLIT_CALL: 1 });
  });

  it('!partially_mapped: queued unflagged when split_underused_thp is on (THP fault), nothing when off', () => {
    const w = makeWorld('mm_id', { splitUnderusedThp: false });
    const { folio } = fault64k(w);
    deferredSplitFolio(folio, false);
    expect(folioOnDeferredList(folio)).toBe(false);
    w.rmap.splitUnderusedThp = true;
    const { counts } = measure(w.ledger, () => deferredSplitFolio(folio, false));
    expect(folioOnDeferredList(folio)).toBe(true);
    expect(folioTestPartiallyMapped(folio)).toBe(false);
    expect(w.rmap.stats.split_deferred[4]).toBe(0);
    expect(counts.DEFERRED_SPLIT_ENQUEUE).toBe(1);
    // A later partial unmap flags it and counts the stats, but it is already listed: no second enqueue.
    const c2 = measure(w.ledger, () => deferredSplitFolio(folio, true)).counts;
    expect([c2.DEFERRED_SPLIT_ENQUEUE, w.rmap.stats.split_deferred[4], w.rmap.splitQueue.len]).toEqual([0, 1, 1]);
    // partially_mapped = false on a flagged folio is only a WARN: nothing changes.
    const before = folioCounters(folio);
    deferredSplitFolio(folio, false);
    expect(folioCounters(folio)).toEqual(before);
  });

  it('a PMD-sized folio also counts thp_deferred_split_page', () => {
    const w = makeWorld('legacy');
    const vma = makeVma(w, MM, 0x200000, 512);
    const f = faultIn(w, 9, vma, 0x200000, RMAP_EXCLUSIVE);
    deferredSplitFolio(f, true);
    expect([w.rmap.stats.thp_deferred_split_page, w.rmap.stats.split_deferred[9]]).toEqual([1, 1]);
  });

  it('folio_unqueue_deferred_split: lockless miss, or lock + clear flag + stat − 1', () => {
    const w = makeWorld('legacy');
    const { folio } = fault64k(w);
    const miss = measure(w.ledger, () => folioUnqueueDeferredSplit(folio));
    expect(miss.result).toBe(false);
    expect(nonZero(miss.counts)).toEqual({ FLAG_LOAD: 1 }); // folio_test_large_rmappable
    deferredSplitFolio(folio, true);
    const hit = measure(w.ledger, () => folioUnqueueDeferredSplit(folio));
    expect(hit.result).toBe(true);
    expect([folioOnDeferredList(folio), folioTestPartiallyMapped(folio), w.rmap.splitQueue.len]).toEqual([false, false, 0]);
    expect(w.rmap.stats.nr_anon_partially_mapped[4]).toBe(0);
    expect(hit.counts.LOCK).toBe(1);
  });
});

/** n order-2 anon folios, each partially unmapped (PTE 0 removed): flagged and queued. */
function queuedFolios(w: World, n: number): Folio[] {
  const out: Folio[] = [];
  const vma = makeVma(w, MM, 0x1000000, 4 * n);
  for (let i = 0; i < n; i++) {
    const f = faultIn(w, 2, vma, 0x1000000 + i * 0x4000, RMAP_EXCLUSIVE);
    folioRemoveRmapPtes(folioSubrange(f, 0, 1), vma);
    folioPutRefs(f, 1);
    out.push(f);
  }
  return out;
}

describe('deferred_split_scan (spec §2.5)', () => {
  it('splits what the callback splits; requeues what is still partially mapped; FIFO order', () => {
    const w = makeWorld('legacy');
    const fs = queuedFolios(w, 3);
    expect(w.rmap.splitQueue.heads()).toEqual(fs.map((f) => f.head));
    const seen: number[] = [];
    const r = deferredSplitScan(w.rmap.splitQueue, 3, (f, underused) => {
      seen.push(f.head);
      expect(underused).toBe(false);
      expect(folioRefCount(f)).toBe(3 + 1); // 3 mappings + the scan's reference
      if (f.head !== fs[1]!.head) return false;
      folioSplitUnqueueDeferred(f); // the split's own deferred-list work
      return true;
    });
    expect(seen).toEqual(fs.map((f) => f.head));
    expect(r).toMatchObject({ split: 1, scanned: 3, lostRace: 0, requeued: 2, shrinkStop: false });
    expect(w.rmap.splitQueue.heads()).toEqual([fs[0]!.head, fs[2]!.head]);
    // With budget left and folios queued the scan retries: requeued folios are scanned again.
    const r2 = deferredSplitScan(w.rmap.splitQueue, 5, () => false);
    expect(r2).toMatchObject({ split: 0, scanned: 5, requeued: 5, shrinkStop: false });
    expect(deferredSplitCount(w.rmap.splitQueue)).toBe(2);
    expect(w.rmap.stats.nr_anon_partially_mapped[2]).toBe(2);
    expect(folioRefCount(fs[0]!)).toBe(3);
    expect(checkRmapInvariants(w.rmap, fs, { allFolios: true })).toEqual([]);
  });

  it('a folio whose folio_try_get fails lost the race with folio_put: flag and stat cleared, unlinked', () => {
    const w = makeWorld('mm_id');
    const [a, b] = queuedFolios(w, 2);
    folioPutRefs(a!, folioRefCount(a!)); // refcount 0, not yet freed
    const r = deferredSplitScan(w.rmap.splitQueue, 2, () => false);
    expect(r).toMatchObject({ scanned: 2, lostRace: 1, requeued: 1, split: 0 });
    expect([folioTestPartiallyMapped(a!), folioOnDeferredList(a!), folioOnDeferredList(b!)]).toEqual([false, false, true]);
    expect(w.rmap.stats.nr_anon_partially_mapped[2]).toBe(1);
  });

  it('not partially mapped: skipped unless thp_underused; mlocked is skipped; an underused split counts', () => {
    const w = makeWorld('legacy');
    const vma = makeVma(w, MM, 0x100000, 64);
    const plain = faultIn(w, 4, vma, 0x100000, RMAP_EXCLUSIVE);
    const locked = faultIn(w, 4, vma, 0x110000, RMAP_EXCLUSIVE);
    const used = faultIn(w, 4, vma, 0x120000, RMAP_EXCLUSIVE);
    for (const f of [plain, locked, used]) deferredSplitFolio(f, false); // THP fault path
    folioSetMlocked(locked);
    const asked: number[] = [];
    const r = deferredSplitScan(w.rmap.splitQueue, 3, () => true, {
      thpUnderused: (f) => {
        asked.push(f.head);
        return f.head === used.head;
      },
    });
    expect(asked).toEqual([plain.head, used.head]); // the mlocked folio is not even tested
    expect(r).toMatchObject({ split: 1, requeued: 0 });
    expect(w.rmap.stats.thp_underused_split_page).toBe(1);
    expect(w.rmap.splitQueue.len).toBe(0); // "consider it used": not requeued
  });

  it(`isolates at most ${DEFERRED_SPLIT_BATCH} folios per lock round and stops at nr_to_scan`, () => {
    const w = makeWorld('mm_id', {}, 2048);
    queuedFolios(w, 40);
    const locksBefore = w.ledger.locks.acquisitions()['split_queue'] ?? 0;
    let calls = 0;
    const r = deferredSplitScan(w.rmap.splitQueue, 40, () => {
      calls++;
      return false;
    });
    expect([calls, r.scanned, r.requeued, w.rmap.splitQueue.len]).toEqual([40, 40, 40, 40]);
    // Two isolation rounds (31 + 9) plus one lock per requeue.
    expect(w.ledger.locks.acquisitions()['split_queue']! - locksBefore).toBe(2 + 40);
    const r2 = deferredSplitScan(w.rmap.splitQueue, 5, () => false);
    expect(r2.scanned).toBe(5);
  });

  it('reports folios whose last reference the scan dropped, for the caller to free', () => {
    const w = makeWorld('legacy');
    const vma = makeVma(w, MM, 0x100000, 16);
    const f = faultIn(w, 4, vma, 0x100000, RMAP_EXCLUSIVE);
    folioRemoveRmapPtes(folioSubrange(f, 1, 15), vma); // partially mapped: queued
    folioPutRefs(f, 15);
    const r = deferredSplitScan(w.rmap.splitQueue, 1, (folio) => {
      folioRemoveRmapPtes(folioSubrange(folio, 0, 1), vma); // a racing zap unmaps the rest
      folioPutRefs(folio, 1);
      return false;
    });
    expect(r.zeroRefs.map((x) => x.head)).toEqual([f.head]);
    expect(folioOnDeferredList(f)).toBe(true); // still flagged partially mapped: requeued
    rmapFreeFolio(f);
    expect([w.rmap.splitQueue.len, w.rmap.stats.nr_anon[4], w.memmap.nrFolios]).toEqual([0, 0, 0]);
  });
});

describe('rmapFreeFolio', () => {
  it('rejects a mapped or referenced folio without touching the queue', () => {
    const w = makeWorld('legacy');
    const { vma, folio } = fault64k(w);
    folioRemoveRmapPtes(folioSubrange(folio, 0, 1), vma);
    expect(() => rmapFreeFolio(folio)).toThrow(/refcount/);
    folioPutRefs(folio, 16);
    expect(() => rmapFreeFolio(folio)).toThrow(/still mapped/);
    expect([folioOnDeferredList(folio), w.rmap.splitQueue.len]).toEqual([true, 1]);
    const small = w.memmap.allocFolio(2)!;
    folioPrepLargeRmappable(small);
    expect((w.memmap.flags[small.head + 1]! & FLAG.large_rmappable.mask) !== 0).toBe(true);
  });
});
