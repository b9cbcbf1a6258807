import { EV, FoliolabError } from '@foliolab/ledger';
import { F_SWAP, type Folio, type FolioSubrange } from '@foliolab/folio-flags';
import { folioSwapEntry, swpOffset, SWP_OFFSET_MASK, type SwpEntry } from './entry.js';
import { NEG_ENOMEM, type NegENOMEM } from './errno.js';
import { injectFires, slotCached, slotCount, type SwapDevice } from './device.js';
import { COUNT_CONTINUED, ST, SWAP_COUNT_MASK } from './layout.js';
import { clusterLock, clusterUnlock, swapEntriesFree } from './cluster.js';
import { chargeSlotUpdates, dupSlotLocked, dupSlotsInline, extendTableAlloc, extendTableTryFree, putSlotLocked } from './count.js';
import { tryToReclaimSwap, TTRS_FULL, TTRS_UNMAPPED } from './swap-cache.js';
import { assertCacheFolio, assertEntryRange } from './validate.js';

/*
 * Count increments and decrements (mm/swapfile.c). Every range handled here
 * lies in one cluster, so a batch is one cluster-lock round trip
 * (SWAP_CLUSTER_OP + LOCK + UNLOCK) plus one SWAP_SLOT_UPDATE per slot, as
 * Dev Jain's [PATCH 6/9, 7/9] "make folio_dup_swap / folio_put_swap
 * batchable" (Mar 2026, [proposal]) proposes. An overflow allocation drops and
 * retakes the lock: one more round trip.
 */

/** GFP context of an extension allocation: reclaim paths GFP_ATOMIC, fork's retry GFP_KERNEL. */
export type SwapGfp = 'atomic' | 'kernel';

/**
 * swap_dup_entries_cluster() (phase III): +1 on [off, off+nr) under one lock;
 * on an overflow without extend_table, drop the lock, allocate, retake it; if
 * the allocation fails, undo the increments already made and return −ENOMEM.
 */
function swapDupEntriesCluster(si: SwapDevice, off: number, nr: number, gfp: SwapGfp, inject: boolean): 0 | NegENOMEM {
  const c = off >>> si.clusterShift;
  clusterLock(si, c);
  if (!inject && dupSlotsInline(si, c, off & (si.clusterSize - 1), nr)) {
    clusterUnlock(si, c);
    return 0;
  }
  for (let s = off; s < off + nr; ) {
    if (!inject && dupSlotLocked(si, s)) {
      s++;
      continue;
    }
    clusterUnlock(si, c);
    const ok = !inject && extendTableAlloc(si, c, gfp);
    clusterLock(si, c);
    if (!ok) {
      if (inject) failedExtendAlloc(si);
      for (let u = off; u < s; u++) putSlotLocked(si, u);
      extendTableTryFree(si, c);
      clusterUnlock(si, c);
      return NEG_ENOMEM;
    }
  }
  clusterUnlock(si, c);
  return 0;
}

/**
 * __swap_duplicate(entry, 1, nr) (≤ v7.0): +1 on each slot in order; at a slot
 * that needs a continuation the cluster lacks, stop with −ENOMEM and keep the
 * increments already made ("if usage == 1, there must be nr == 1").
 */
function __swapDuplicate(si: SwapDevice, off: number, nr: number, inject: boolean): 0 | NegENOMEM {
  const c = off >>> si.clusterShift;
  clusterLock(si, c);
  if (!inject && dupSlotsInline(si, c, off & (si.clusterSize - 1), nr)) {
    clusterUnlock(si, c);
    return 0;
  }
  for (let s = off; s < off + nr; s++) {
    if (inject || !dupSlotLocked(si, s)) {
      clusterUnlock(si, c);
      return NEG_ENOMEM;
    }
  }
  clusterUnlock(si, c);
  return 0;
}

/**
 * The ≤ v7.0 callers' loop (folio_dup_swap, swap_duplicate):
 * `while (!err && __swap_duplicate(entry, 1, nr) == -ENOMEM) err =
 * add_swap_count_continuation(entry, gfp)`. The continuation is installed
 * under the cluster lock (one more round trip).
 */
function swapDuplicateRetry(si: SwapDevice, off: number, nr: number, gfp: SwapGfp, inject: boolean): 0 | NegENOMEM {
  const c = off >>> si.clusterShift;
  for (;;) {
    if (__swapDuplicate(si, off, nr, inject) === 0) return 0;
    if (inject) {
      failedExtendAlloc(si);
      return NEG_ENOMEM;
    }
    if (!extendTableAlloc(si, c, gfp)) return NEG_ENOMEM;
    clusterLock(si, c);
    clusterUnlock(si, c);
  }
}

function swapDup(si: SwapDevice, off: number, nr: number, gfp: SwapGfp, inject: boolean): 0 | NegENOMEM {
  return si.countModel === 'extend' ? swapDupEntriesCluster(si, off, nr, gfp, inject) : swapDuplicateRetry(si, off, nr, gfp, inject);
}

/** An injected failure: the GFP_ATOMIC attempt is charged and counted like a real failed one. */
function failedExtendAlloc(si: SwapDevice): void {
  si.ledger.charge(EV.SWAP_ALLOC_ATOMIC);
  si.stat[ST.EXT_ALLOC_FAILURES]!++;
}

/**
 * swap_put_entries_cluster() (v7.0): −1 on [start, start+nr) of one cluster
 * under one lock. Slots reaching 0 that are not cached are freed (batched);
 * cached slots are never freed here — they go when their folio leaves the swap
 * cache. With `reclaim`, afterwards try __try_to_reclaim_swap(TTRS_UNMAPPED |
 * TTRS_FULL) over the range if some cached slot reached 0.
 */
function swapPutEntriesCluster(si: SwapDevice, start: number, nr: number, reclaim: boolean): void {
  const c = start >>> si.clusterShift;
  const end = start + nr;
  let batch = 0;
  let needReclaim = false;
  clusterLock(si, c);
  for (let s = start; s < end; s++) {
    if (slotCount(si, s) === 1) {
      if (slotCached(si, s) < 0) {
        if (batch === 0) batch = s;
        continue;
      }
      needReclaim = true;
    }
    putSlotLocked(si, s);
    if (batch !== 0) {
      swapEntriesFree(si, c, batch, s - batch);
      batch = 0;
    }
  }
  if (batch !== 0) swapEntriesFree(si, c, batch, end - batch);
  extendTableTryFree(si, c);
  clusterUnlock(si, c);
  if (!needReclaim || !reclaim) return;
  for (let s = start; s < end; ) {
    const r = tryToReclaimSwap(si, s, TTRS_UNMAPPED | TTRS_FULL);
    s++;
    if (r !== 0) {
      const n = Math.abs(r);
      s = (s + n - 1) & ~(n - 1);
    }
  }
}

function checkCounted(fn: string, si: SwapDevice, off: number, nr: number): void {
  for (let s = off; s < off + nr; s++) {
    if (slotCount(si, s) < 1) {
      throw new FoliolabError('EINVAL', `${fn}: slot ${s} has count 0: there is no reference to drop`, { slot: s });
    }
  }
}

function subrangeOffset(fn: string, si: SwapDevice, sub: FolioSubrange): number {
  if (sub === null || typeof sub !== 'object' || !Number.isInteger(sub.nr) || sub.nr < 1) {
    throw new FoliolabError('EINVAL', `${fn}: not a FolioSubrange`, {});
  }
  return assertCacheFolio(fn, si, sub.folio) + sub.firstPage;
}

/**
 * folio_dup_swap(folio, page, nr) (v7.0 folio_dup_swap, batched as in Dev
 * Jain's [PATCH 6/9], Mar 2026 [proposal]): +1 on the slots of the pages of
 * `sub`; the folio must be locked and in this device's swap cache. One
 * cluster-lock round trip. All-or-nothing in the default 'extend' model: after
 * −ENOMEM (a failed GFP_ATOMIC extension allocation) no count changed. In the
 * continuation models the kernel's retry loop runs as it is (see SwapCountModel).
 * Fault switch: SwapDevice.faults.dupEnomem.
 */
export function folioDupSwap(si: SwapDevice, sub: FolioSubrange): 0 | NegENOMEM {
  const off = subrangeOffset('folioDupSwap', si, sub);
  return swapDup(si, off, sub.nr, 'atomic', injectFires(si.faults, 'dupEnomem'));
}

/**
 * folio_put_swap(folio, page, nr) (v7.0, batched as in [PATCH 7/9]
 * [proposal]): −1 on the slots of `sub`; never fails and never frees a slot
 * (they are all cached: freed when the folio leaves the swap cache). The folio
 * must be locked and in this device's swap cache; every count must be ≥ 1.
 */
export function folioPutSwap(si: SwapDevice, sub: FolioSubrange): void {
  const fn = 'folioPutSwap';
  const off = subrangeOffset(fn, si, sub);
  checkCounted(fn, si, off, sub.nr);
  swapPutEntriesCluster(si, off, sub.nr, false);
}

/**
 * @internal folio_dup_swap(folio, page, nr), unchecked: the caller holds the
 * folio lock and the folio is in this device's swap cache (same events as
 * `folioDupSwap`, no FolioSubrange).
 */
export function folioDupSwapUnchecked(si: SwapDevice, folio: Folio, firstPage: number, nr: number): 0 | NegENOMEM {
  const off = (folio.fa[folio.fb + F_SWAP]! & SWP_OFFSET_MASK) + firstPage;
  const inj = si.faults.dupEnomem;
  if (inj === false || inj === 0) {
    // The unmap's common case, inline (one slot per PTE, or a sub-batch):
    // every count of the range is in its byte with room. The same charges in
    // the same order as clusterLock() + dupSlotsInline() + clusterUnlock().
    // The cluster's lock id exists (the allocator took the lock to bind the
    // folio) and its table too (the folio's slots are in use).
    const c = off >>> si.clusterShift;
    const id = si.ciLock[c]!;
    if (id >= 0 && si.countModel === 'extend') {
      const map = si.ciMap[c]!;
      const i = off & (si.clusterSize - 1);
      if (nr !== 1) {
        if (dupRangeInline(si, id, map, i, nr)) return 0;
      } else {
        // The per-PTE unmap: one slot, no loop.
        const m = map[i]!;
        if ((m & COUNT_CONTINUED) === 0 && (m & SWAP_COUNT_MASK) < si.inlineLimit) {
          const ledger = si.ledger;
          ledger.lock(id); // throws (EDEADLK) before anything changed, as clusterLock
          ledger.charge(EV.SWAP_CLUSTER_OP);
          map[i] = m + 1;
          ledger.charge(EV.SWAP_SLOT_UPDATE);
          ledger.unlock(id);
          return 0;
        }
      }
    }
    return si.countModel === 'extend' ? swapDupEntriesCluster(si, off, nr, 'atomic', false) : swapDuplicateRetry(si, off, nr, 'atomic', false);
  }
  const inject = injectFires(si.faults, 'dupEnomem');
  return si.countModel === 'extend' ? swapDupEntriesCluster(si, off, nr, 'atomic', inject) : swapDuplicateRetry(si, off, nr, 'atomic', inject);
}

/**
 * folioDupSwapUnchecked's sub-batch: when every count of [i, i + nr) of the
 * cluster (lock `id`, count bytes `map`) is in its byte with room, take the
 * lock, raise them all, drop it and return true; else change and charge
 * nothing and return false.
 */
function dupRangeInline(si: SwapDevice, id: number, map: Uint8Array, i: number, nr: number): boolean {
  const end = i + nr;
  const lim = si.inlineLimit;
  for (let k = i; k < end; k++) {
    const m = map[k]!;
    if ((m & COUNT_CONTINUED) !== 0 || (m & SWAP_COUNT_MASK) >= lim) return false;
  }
  const ledger = si.ledger;
  ledger.lock(id); // throws (EDEADLK) before anything changed, as clusterLock
  ledger.charge(EV.SWAP_CLUSTER_OP);
  for (let k = i; k < end; k++) map[k]!++;
  chargeSlotUpdates(si, nr);
  ledger.unlock(id);
  return true;
}

/** @internal folio_put_swap, unchecked: as `folioDupSwapUnchecked`; the slots were duplicated by the caller. */
export function folioPutSwapUnchecked(si: SwapDevice, folio: Folio, firstPage: number, nr: number): void {
  swapPutEntriesCluster(si, swpOffset(folioSwapEntry(folio)) + firstPage, nr, false);
}

/**
 * swap_dup_entry_direct() (v7.0; fork's copy_nonpresent_pte): +1 on one slot
 * that already has count ≥ 1 (the caller holds the PTL of a swap PTE that
 * references it). Returns 0 or −ENOMEM (fork turns it into −EIO and retries
 * after a GFP_KERNEL allocation: pass gfp 'kernel' for that retry).
 */
export function swapDupEntryDirect(si: SwapDevice, entry: SwpEntry, gfp: SwapGfp = 'atomic'): 0 | NegENOMEM {
  const fn = 'swapDupEntryDirect';
  const off = assertEntryRange(fn, si, entry, 1);
  if (gfp !== 'atomic' && gfp !== 'kernel') throw new FoliolabError('EINVAL', `${fn}: gfp ${String(gfp)} is not 'atomic' or 'kernel'`, {});
  checkCounted(fn, si, off, 1);
  return swapDup(si, off, 1, gfp, false);
}

/**
 * swap_put_entries_direct(entry, nr) (v7.0, ex free_swap_and_cache_nr; zap,
 * MADV_FREE, shmem truncate): −1 on each of nr slots, one cluster at a time.
 * Slots reaching 0 that are not cached are freed; a swap-cache folio whose
 * slots all reached 0 is reclaimed if it can be trylocked, is not under
 * writeback, and is not mapped (or swap is more than half full) — it leaves
 * the cache and is marked dirty. Every count must be ≥ 1 (checked up front).
 */
export function swapPutEntriesDirect(si: SwapDevice, entry: SwpEntry, nr: number): void {
  const fn = 'swapPutEntriesDirect';
  const off = assertEntryRange(fn, si, entry, nr);
  checkCounted(fn, si, off, nr);
  const cs = si.clusterSize;
  for (let s = off, left = nr; left > 0; ) {
    const n = Math.min(left, cs - (s & (cs - 1)));
    swapPutEntriesCluster(si, s, n, true);
    s += n;
    left -= n;
  }
}
