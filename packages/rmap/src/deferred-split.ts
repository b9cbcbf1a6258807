import {
  F_DEFERRED_NEXT,
  F_ENTIRE_MAPCOUNT,
  F_LARGE_MAPCOUNT,
  F_NR_PAGES_MAPPED,
  F_PINCOUNT,
  FLAG,
  PAGE_FLAGS_CHECK_AT_FREE,
  folioClearPartiallyMapped,
  folioPutRefs,
  folioSetLargeRmappable,
  folioSetPartiallyMapped,
  folioTestAnon,
  folioTestMlocked,
  folioTestPartiallyMapped,
  folioTestFlagUnchecked,
  folioTestSwapcacheUnchecked,
  folioTrylock,
  folioTryGet,
  folioUnlock,
  type Folio,
} from '@foliolab/folio-flags';
import { EV } from '@foliolab/ledger';
import { modMthpStat } from './mod-stat.js';
import { DEFERRED_NONE, listAddTail, listDelInit, type DeferredSplitQueue } from './split-queue.js';
import { rmapOf, type RmapState } from './state.js';
import { HPAGE_PMD_ORDER } from './types.js';
import { fail, stateOfFolio } from './validate.js';

/*
 * The deferred split queue's operations (mm/huge_memory.c), spec
 * folio-rmap-swap §2.5, in the form of mainline after Usama Arif's atomic
 * PG_partially_mapped fix (Dec 2024) and the folio_batch deferred_split_scan
 * (2025). The folio split itself is a callback: the engine owns splitting.
 */

/** PAGEVEC_SIZE: folios isolated per folio_batch in deferred_split_scan. */
export const DEFERRED_SPLIT_BATCH = 31;

function onList(folio: Folio): boolean {
  return folio.fa[folio.fb + F_DEFERRED_NEXT] !== DEFERRED_NONE;
}

/**
 * @internal deferred_split_folio() body, after the caller checked `folio`
 * live: its flag tests skip the liveness check (same FLAG_LOADs), and order
 * ≥ 2 makes the second-page PG_partially_mapped valid.
 */
export function deferredSplitFolioCore(st: RmapState, folio: Folio, partiallyMapped: boolean): void {
  const ledger = st.ledger;
  ledger.charge(EV.DEFERRED_SPLIT_CALL);
  // Order-1 folios have no _deferred_list (and little to gain).
  if (folio.order <= 1) return;
  if (!partiallyMapped && !st.splitUnderusedThp) return;
  // Reclaim already owns a swap-cache folio: kept as an optimisation.
  if (folioTestSwapcacheUnchecked(folio)) return;
  const q = st.splitQueueOf(folio);
  ledger.lock(q.lockId);
  if (partiallyMapped) {
    if (!folioTestFlagUnchecked(folio, FLAG.partially_mapped)) {
      folioSetPartiallyMapped(folio); // atomic since Dec 2024
      if (folio.order === HPAGE_PMD_ORDER) {
        ledger.charge(EV.PCPU_COUNTER);
        st.stats.thp_deferred_split_page++;
      }
      modMthpStat(st, st.stats.split_deferred, folio.order, 1);
      modMthpStat(st, st.stats.nr_anon_partially_mapped, folio.order, 1);
    }
  }
  // partially_mapped = false on a flagged folio is only a VM_WARN in the kernel: nothing to do.
  if (!onList(folio)) {
    ledger.charge(EV.DEFERRED_SPLIT_ENQUEUE);
    listAddTail(q, folio);
    q.len++;
  }
  ledger.unlock(q.lockId);
}

/**
 * deferred_split_folio(folio, partially_mapped) (mm/huge_memory.c, v6.13+):
 * put a large folio on its deferred split queue. Returns early (after one
 * DEFERRED_SPLIT_CALL) for order ≤ 1, for `!partiallyMapped` with
 * split_underused_thp off, and for a folio in the swap cache. Under
 * split_queue_lock: the first partially-mapped call sets PG_partially_mapped
 * atomically and counts thp_deferred_split_page (PMD-sized),
 * split_deferred[order], nr_anon_partially_mapped[order]; a folio not yet
 * listed is added at the tail (DEFERRED_SPLIT_ENQUEUE) and split_queue_len++.
 */
export function deferredSplitFolio(folio: Folio, partiallyMapped: boolean): void {
  const st = stateOfFolio('deferredSplitFolio', folio);
  if (typeof partiallyMapped !== 'boolean') fail('deferredSplitFolio', 'EINVAL', 'partiallyMapped must be a boolean');
  st.ledger.begin('deferred_split_folio');
  deferredSplitFolioCore(st, folio, partiallyMapped);
  st.ledger.end();
}

function unqueueLocked(st: RmapState, q: DeferredSplitQueue, folio: Folio): void {
  q.len--;
  if (folioTestPartiallyMapped(folio)) {
    folioClearPartiallyMapped(folio);
    modMthpStat(st, st.stats.nr_anon_partially_mapped, folio.order, -1);
  }
  listDelInit(q, folio);
}

/**
 * folio_unqueue_deferred_split(folio) (mm/huge_memory.c, v6.13+): on free,
 * split or memcg move. Order ≤ 1 or !large_rmappable → false; a lockless
 * list_empty check → false; else under the lock: len−−, clear
 * PG_partially_mapped (atomic) and its stat, list_del_init → true.
 * The kernel's WARN on a non-zero refcount is not enforced.
 */
export function folioUnqueueDeferredSplit(folio: Folio): boolean {
  return unqueueDeferredSplitCore(stateOfFolio('folioUnqueueDeferredSplit', folio), folio);
}

/**
 * folio_unqueue_deferred_split() after the caller checked `folio` live (the
 * free path): order ≥ 2 makes the second-page test valid, so it skips the
 * checks (same FLAG_LOAD).
 */
function unqueueDeferredSplitCore(st: RmapState, folio: Folio): boolean {
  if (folio.order <= 1 || !folioTestFlagUnchecked(folio, FLAG.large_rmappable)) return false;
  if (!onList(folio)) return false; // data_race(list_empty())
  const q = st.splitQueueOf(folio);
  st.ledger.lock(q.lockId);
  let unqueued = false;
  if (onList(folio)) {
    unqueueLocked(st, q, folio);
    unqueued = true;
  }
  st.ledger.unlock(q.lockId);
  return unqueued;
}

/**
 * The deferred-split part of __folio_split() after the refcount freeze
 * (mm/huge_memory.c, 2025): under split_queue_lock, unlink the folio if it is
 * listed (len−−), and clear PG_partially_mapped and its stat whether or not
 * it was listed (the scan isolates folios off the list before splitting).
 * For the engine's split callback.
 */
export function folioSplitUnqueueDeferred(folio: Folio): void {
  const st = stateOfFolio('folioSplitUnqueueDeferred', folio);
  if (folio.order <= 1) return;
  const q = st.splitQueueOf(folio);
  st.ledger.lock(q.lockId);
  if (onList(folio)) {
    q.len--;
    listDelInit(q, folio);
  }
  if (folioTestPartiallyMapped(folio)) {
    folioClearPartiallyMapped(folio);
    modMthpStat(st, st.stats.nr_anon_partially_mapped, folio.order, -1);
  }
  st.ledger.unlock(q.lockId);
}

/** deferred_split_count(): `split_queue_len` (READ_ONCE; not charged). */
export function deferredSplitCount(queue: DeferredSplitQueue): number {
  return queue.len;
}

/**
 * The split callback of deferredSplitScan: split the locked, referenced
 * `folio` (split_folio()); return true on success. `underused` says the folio
 * was chosen because thp_underused() said so. A successful split must leave
 * the folio off the deferred list and without PG_partially_mapped
 * (folioSplitUnqueueDeferred does that part).
 */
export type DeferredSplitFn = (folio: Folio, underused: boolean) => boolean;

/** Options of deferredSplitScan. */
export interface DeferredSplitScanOptions {
  /**
   * thp_underused(folio): more zero-filled pages than khugepaged_max_ptes_none.
   * Default: always false (the default max_ptes_none of 511 disables it).
   */
  readonly thpUnderused?: (folio: Folio) => boolean;
  /**
   * The 7.2.13 form (deferred_split_lru, mm/huge_memory.c deferred_split_scan):
   * one list_lru_shrink_walk isolates up to `nrToScan` folios, all before any is
   * split, with no batch of DEFERRED_SPLIT_BATCH and no retry; a folio that
   * fails the trylock goes back on the list even if no longer partially mapped.
   */
  readonly listLru?: boolean;
}

/** What one deferredSplitScan did. */
export interface DeferredSplitScanResult {
  /** Folios split (the shrinker's return value unless `shrinkStop`). */
  readonly split: number;
  /** Folios taken off the list (isolated or lost to a racing free). */
  readonly scanned: number;
  /** Folios whose folio_try_get failed (refcount 0: a racing free). */
  readonly lostRace: number;
  /** Folios put back on the queue (not split, still partially mapped). */
  readonly requeued: number;
  /** SHRINK_STOP: nothing split and the queue is empty. */
  readonly shrinkStop: boolean;
  /** Folios whose refcount the final folios_put dropped to 0: the caller frees them (rmapFreeFolio). */
  readonly zeroRefs: readonly Folio[];
}

/**
 * deferred_split_scan(shrinker, sc) (mm/huge_memory.c, 2025 folio_batch
 * form), for `queue` and `nrToScan` folios. Under the lock, up to 31 folios
 * at a time: folio_try_get succeeds → isolate (off the list, len−−); fails →
 * clear PG_partially_mapped and its stat, unlink, len−−. Then per isolated
 * folio: not partially mapped → skip if mlocked or split_underused_thp is off,
 * else ask thp_underused(); trylock and `splitFn`; unlock; requeue only if
 * not split and still partially mapped. folios_put; retry while budget and
 * folios remain. With `opts.listLru`, 7.2.13's list_lru form (see there).
 */
export function deferredSplitScan(
  queue: DeferredSplitQueue,
  nrToScan: number,
  splitFn: DeferredSplitFn,
  opts: DeferredSplitScanOptions = {},
): DeferredSplitScanResult {
  const fn = 'deferredSplitScan';
  const st = stateOfQueue(fn, queue);
  if (!Number.isInteger(nrToScan) || nrToScan < 1) fail(fn, 'EINVAL', `nrToScan ${nrToScan} must be a positive integer`, { nrToScan });
  if (typeof splitFn !== 'function') fail(fn, 'EINVAL', 'splitFn must be a function');
  const ledger = st.ledger;
  const underusedFn = opts.thpUnderused ?? ((): boolean => false);
  const zeroRefs: Folio[] = [];
  let left = nrToScan;
  let split = 0;
  let scanned = 0;
  let lostRace = 0;
  let requeued = 0;
  const listLru = opts.listLru === true;
  ledger.begin('deferred_split_scan');
  do {
    const batch = isolateBatch(st, queue, left, listLru);
    left -= batch.taken;
    scanned += batch.taken;
    lostRace += batch.lost;
    const toPut: Folio[] = [];
    for (const folio of batch.folios) {
      const r = scanOne(st, folio, splitFn, underusedFn, listLru);
      if (r.split) split++;
      if (r.requeued) requeued++;
      toPut.push(r.split ? folio.mm.folioAt(folio.head) : folio); // after a split: the folio now at that head
    }
    // folios_put(&fbatch): drop the references the isolation took, after the whole batch.
    for (const f of toPut) if (folioPutRefs(f, 1)) zeroRefs.push(f);
  } while (!listLru && left > 0 && queue.first >= 0);
  ledger.end();
  return { split, scanned, lostRace, requeued, shrinkStop: split === 0 && queue.first < 0, zeroRefs };
}

function stateOfQueue(fn: string, queue: DeferredSplitQueue): RmapState {
  if (queue === null || typeof queue !== 'object' || queue.memmap === undefined) fail(fn, 'EINVAL', 'expected a DeferredSplitQueue');
  const st = rmapOf(queue.memmap);
  if (st.splitQueue !== queue) fail(fn, 'EINVAL', `queue ${queue.name} does not belong to the memmap's RmapState`);
  return st;
}

function isolateBatch(
  st: RmapState,
  q: DeferredSplitQueue,
  budget: number,
  listLru: boolean,
): { folios: Folio[]; taken: number; lost: number } {
  const folios: Folio[] = [];
  let taken = 0;
  let lost = 0;
  st.ledger.lock(q.lockId);
  let cur = q.first;
  while (cur >= 0) {
    const folio = q.memmap.folioAt(cur);
    const next = folio.fa[folio.fb + F_DEFERRED_NEXT]!;
    if (folioTryGet(folio)) {
      folios.push(folio);
    } else {
      lost++;
      if (folioTestPartiallyMapped(folio)) {
        // We lost the race with folio_put().
        folioClearPartiallyMapped(folio);
        modMthpStat(st, st.stats.nr_anon_partially_mapped, folio.order, -1);
      }
    }
    listDelInit(q, folio);
    q.len--;
    taken++;
    if (taken === budget || (!listLru && folios.length === DEFERRED_SPLIT_BATCH)) break;
    cur = next >= 0 ? next : -1;
  }
  st.ledger.unlock(q.lockId);
  return { folios, taken, lost };
}

function scanOne(
  st: RmapState,
  folio: Folio,
  splitFn: DeferredSplitFn,
  underusedFn: (folio: Folio) => boolean,
  listLru: boolean,
): { split: boolean; requeued: boolean } {
  let didSplit = false;
  let underused = false;
  let tryIt = true;
  let lockFailed = false;
  if (!folioTestPartiallyMapped(folio)) {
    // Zero-filled pages of an mlocked folio cannot be optimised after a split.
    if (folioTestMlocked(folio) || !st.splitUnderusedThp) tryIt = false;
    else {
      underused = underusedFn(folio);
      tryIt = underused;
    }
  }
  if (tryIt && !folioTrylock(folio)) lockFailed = true;
  else if (tryIt) {
    if (splitFn(folio, underused)) {
      didSplit = true;
      if (underused) {
        st.ledger.charge(EV.PCPU_COUNTER);
        st.stats.thp_underused_split_page++;
      }
    }
    const cur = didSplit ? folio.mm.folioAt(folio.head) : folio;
    folioUnlock(cur);
  }
  if (didSplit || (!folioTestPartiallyMapped(folio) && !(listLru && lockFailed))) return { split: didSplit, requeued: false };
  // Only a still partially mapped folio goes back on the queue.
  const q = st.splitQueueOf(folio);
  st.ledger.lock(q.lockId);
  let requeued = false;
  if (!onList(folio)) {
    listAddTail(q, folio);
    q.len++;
    requeued = true;
  }
  st.ledger.unlock(q.lockId);
  return { split: false, requeued };
}

/**
 * folio_prep_large_rmappable(folio) (mm/huge_memory.c): INIT_LIST_HEAD of the
 * deferred list (already −1 after allocation) and folio_set_large_rmappable
 * (one ATOMIC_RMW). What vma_alloc_folio does for every large anon folio; a
 * no-op for order 0.
 */
export function folioPrepLargeRmappable(folio: Folio): void {
  stateOfFolio('folioPrepLargeRmappable', folio);
  if (folio.order === 0) return;
  folioSetLargeRmappable(folio);
}


/**
 * Free a folio whose last reference is gone, with the rmap-side work the
 * kernel does on the way (__folio_put → folio_unqueue_deferred_split; then
 * free_pages_prepare → mod_mthp_stat(order, NR_ANON, −1) for an anon large
 * folio), then Memmap.freeFolio. Every check of freeFolio that the unqueue
 * could make unrecoverable is done first, so a rejected call changes nothing.
 */
export function rmapFreeFolio(folio: Folio): void {
  const fn = 'rmapFreeFolio';
  const st = stateOfFolio(fn, folio);
  const { fa, fb, head } = folio;
  const mm = folio.mm;
  if (mm.aux[head] !== 0) fail(fn, 'EBUSY', `folio ${head} has refcount ${mm.aux[head]}, not 0`, { head });
  if (fa[fb + F_PINCOUNT] !== 0) fail(fn, 'EBUSY', `folio ${head} has pincount ${fa[fb + F_PINCOUNT]}`, { head });
  let mapped = fa[fb + F_LARGE_MAPCOUNT] !== -1 || fa[fb + F_ENTIRE_MAPCOUNT] !== -1 || fa[fb + F_NR_PAGES_MAPPED] !== 0;
  for (let p = head; p < head + folio.nr && !mapped; p++) mapped = mm.mapcount![p] !== -1;
  if (mapped) fail(fn, 'EBUSY', `folio ${head} is still mapped`, { head });
  if ((mm.flags[head]! & PAGE_FLAGS_CHECK_AT_FREE) !== 0) {
    fail(fn, 'EINVAL', `folio ${head} has PAGE_FLAGS_CHECK_AT_FREE flags set`, { head, flags: mm.flags[head] });
  }
  if (folio.order >= 2 && onList(folio) && (mm.flags[head + 1]! & FLAG.large_rmappable.mask) === 0) {
    fail(fn, 'EINVAL', `folio ${head} is on a deferred list but not large_rmappable`, { head });
  }
  doFreeFolio(st, folio);
}

/**
 * @internal rmapFreeFolio, unchecked: the caller guarantees a live folio with
 * refcount 0, no pins, no mappings and no PAGE_FLAGS_CHECK_AT_FREE flags
 * (same events as `rmapFreeFolio`; Memmap.freeFolio still checks).
 */
export function rmapFreeFolioUnchecked(folio: Folio): void {
  doFreeFolio(rmapOf(folio.mm), folio);
}

function doFreeFolio(st: RmapState, folio: Folio): void {
  st.ledger.begin('free_folio');
  unqueueDeferredSplitCore(st, folio);
  if (folioTestAnon(folio)) modMthpStat(st, st.stats.nr_anon, folio.order, -1);
  folio.mm.freeFolio(folio);
  st.ledger.end();
}
