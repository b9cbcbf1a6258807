import { EV } from '@foliolab/ledger';
import { clusterAllocTable, clusterFreeTable, zeromapSetRange, type SwapDevice } from './device.js';
import { CLUSTER_FLAG, LIST_FRAG, LIST_FREE, LIST_FULL, LIST_NONE, LIST_NONFULL } from './layout.js';

/*
 * Cluster locks, cluster lists and range accounting (mm/swapfile.c, v7.0).
 * Lists are doubly linked through per-cluster Int32Arrays; list_move_tail
 * appends, isolate_lock_cluster takes the head, as the kernel's FIFO lists do.
 */

// --- locks ------------------------------------------------------------------

/** @internal swap_cluster_lock(): one round trip = SWAP_CLUSTER_OP + LOCK (+ UNLOCK at clusterUnlock). */
export function clusterLock(si: SwapDevice, c: number): void {
  let id = si.ciLock[c]!;
  if (id < 0) id = clusterLockRegister(si, c);
  const ledger = si.ledger;
  ledger.lock(id);
  ledger.charge(EV.SWAP_CLUSTER_OP);
}

/**
 * The first lock of cluster `c` registers ci->lock with the ledger, so lock
 * ids (trace tracks) are numbered in first-use order, as before. Out of line:
 * it builds a string, and clusterLock stays small enough to inline.
 */
function clusterLockRegister(si: SwapDevice, c: number): number {
  const id = si.ledger.lockId(si.clusterLockPrefix + String(c), 'swap_cluster');
  si.ciLock[c] = id;
  return id;
}

/** @internal swap_cluster_unlock(). */
export function clusterUnlock(si: SwapDevice, c: number): void {
  si.ledger.unlock(si.ciLock[c]!);
}

// --- cluster lists ----------------------------------------------------------

/** @internal The kernel cluster flag of cluster `c`. */
export function clusterFlag(si: SwapDevice, c: number): number {
  const l = si.ciList[c]!;
  if (l === LIST_NONE) return CLUSTER_FLAG.NONE;
  if (l === LIST_FREE) return CLUSTER_FLAG.FREE;
  if (l === LIST_FULL) return CLUSTER_FLAG.FULL;
  return l < LIST_FRAG ? CLUSTER_FLAG.NONFULL : CLUSTER_FLAG.FRAG;
}

/** @internal list_add_tail(). */
export function listAddTail(si: SwapDevice, c: number, list: number): void {
  const tail = si.listTail[list]!;
  si.ciPrev[c] = tail;
  si.ciNext[c] = -1;
  if (tail < 0) si.listHead[list] = c;
  else si.ciNext[tail] = c;
  si.listTail[list] = c;
  si.listLen[list]!++;
  si.ciList[c] = list;
}

function listDel(si: SwapDevice, c: number): void {
  const list = si.ciList[c]!;
  const p = si.ciPrev[c]!;
  const n = si.ciNext[c]!;
  if (p < 0) si.listHead[list] = n;
  else si.ciNext[p] = n;
  if (n < 0) si.listTail[list] = p;
  else si.ciPrev[n] = p;
  si.ciPrev[c] = -1;
  si.ciNext[c] = -1;
  si.listLen[list]!--;
  si.ciList[c] = LIST_NONE;
}

/** @internal move_cluster(): list_move_tail under si->lock (one LOCK/UNLOCK of swap_info). */
export function moveCluster(si: SwapDevice, c: number, list: number): void {
  si.ledger.lock(si.siLock);
  if (si.ciList[c] !== LIST_NONE) listDel(si, c);
  listAddTail(si, c, list);
  si.ledger.unlock(si.siLock);
}

/**
 * @internal isolate_lock_cluster() (7.2.13 mm/swapfile.c): under si->lock,
 * take the first cluster of `list` off it and return it locked (flags NONE);
 * −1 when the list is empty. A cluster taken off the free list gets its swap
 * table (swap_cluster_populate; the allocation cannot fail here).
 */
export function isolateLockCluster(si: SwapDevice, list: number): number {
  si.ledger.lock(si.siLock);
  const c = si.listHead[list]!;
  if (c >= 0) {
    clusterLock(si, c); // spin_trylock cannot fail with one CPU
    listDel(si, c);
  }
  si.ledger.unlock(si.siLock);
  if (c >= 0 && list === LIST_FREE && si.ciBase[c]! < 0) clusterAllocTable(si, c);
  return c;
}

/** @internal free_cluster() / __free_cluster(): table freed (swap_cluster_free_table), to the free list, order reset. */
export function freeCluster(si: SwapDevice, c: number): void {
  clusterFreeTable(si, c);
  moveCluster(si, c, LIST_FREE);
  si.ciOrder[c] = 0;
}

/** @internal partial_free_cluster(): after a free that left slots in use, to nonfull[order]. */
export function partialFreeCluster(si: SwapDevice, c: number): void {
  // clusterFlag(si, c) !== NONFULL, read from the list id: nonfull[o] is LIST_NONFULL..LIST_FRAG−1.
  const l = si.ciList[c]!;
  if (l < LIST_NONFULL || l >= LIST_FRAG) moveCluster(si, c, LIST_NONFULL + si.ciOrder[c]!);
}

/** @internal relocate_cluster(): after an allocation attempt, to free, frag[order] or full. */
export function relocateCluster(si: SwapDevice, c: number): void {
  // The cluster flags (clusterFlag) read from the list id directly: FREE is
  // LIST_FREE, FRAG is frag[o] = LIST_FRAG..LIST_FULL−1, FULL is LIST_FULL.
  const n = si.ciCount[c]!;
  const l = si.ciList[c]!;
  if (n === 0) {
    if (l !== LIST_FREE) freeCluster(si, c);
  } else if (n !== si.clusterSize) {
    if (l < LIST_FRAG || l >= LIST_FULL) moveCluster(si, c, LIST_FRAG + si.ciOrder[c]!);
  } else if (l !== LIST_FULL) {
    moveCluster(si, c, LIST_FULL);
  }
}

// --- range accounting -------------------------------------------------------

/** @internal swap_range_alloc(): si->inuse_pages and nr_swap_pages, two atomics. */
export function swapRangeAlloc(si: SwapDevice, nr: number): void {
  si.ledger.charge(EV.ATOMIC_RMW, 2);
  si.inusePages += nr;
  si.nrSwapPages -= nr;
}

/**
 * @internal swap_entries_free() (v7.0) with swap_range_free(): `nr` slots of
 * cluster `c` whose counts are 0 (or 1, dropped by this free) and that are no
 * longer cached become free: count byte and table word cleared, zeromap bit
 * cleared (swap_range_free), data dropped; ci->count and the usage counters
 * fall; the cluster goes to the free or nonfull list. Cluster lock held.
 * One SWAP_SLOT_UPDATE per slot.
 */
export function swapEntriesFree(si: SwapDevice, c: number, offset: number, nr: number): void {
  const left = si.ciCount[c]! - nr;
  si.ciCount[c] = left;
  if (left !== 0) {
    // A cluster left empty drops its arrays below; otherwise clear the slots.
    const i = offset & (si.clusterSize - 1);
    const map = si.ciMap[c]!;
    const data = si.ciData[c]!;
    for (let k = i; k < i + nr; k++) {
      map[k] = 0;
      data[k] = 0;
    }
    const sh = si.ciShadow[c] ?? null;
    if (sh !== null) for (let k = i; k < i + nr; k++) sh[k] = 0;
  }
  zeromapSetRange(si, offset, nr, false);
  si.ledger.charge(EV.SWAP_SLOT_UPDATE, nr);
  si.ledger.charge(EV.ATOMIC_RMW, 2);
  si.inusePages -= nr;
  si.nrSwapPages += nr;
  if (left === 0) freeCluster(si, c);
  else partialFreeCluster(si, c);
}
