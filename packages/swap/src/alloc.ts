import { FoliolabError } from '@foliolab/ledger';
import { F_SWAP, FLAG, type Folio } from '@foliolab/folio-flags';
import { NEG_EAGAIN, NEG_ENOMEM, type NegEAGAIN, type NegENOMEM } from './errno.js';
import { injectFires, slotCached, slotCount, slotMap, vmSwapFull, type SwapDevice } from './device.js';
import {
  LIST_FRAG,
  LIST_FREE,
  LIST_FULL,
  LIST_NONE,
  LIST_NONFULL,
  PMD_ORDER,
  SWAP_MAP_BAD,
} from './layout.js';
import { clusterLock, clusterUnlock, isolateLockCluster, relocateCluster, swapRangeAlloc } from './cluster.js';
import { swapCacheAddLocked, tryToReclaimSwap, TTRS_ANYWAY } from './swap-cache.js';
import { assertDeviceFolio, assertLocked, rawSwapbacked, rawSwapcache, rawUptodate } from './validate.js';
import { folioSwapEntry } from './entry.js';

/*
 * The slot allocator (mm/swapfile.c, v7.0; checked against 7.2.13, whose
 * order is the same for a solid-state device without discard):
 * folio_alloc_swap() →
 * swap_alloc_fast() (the per-CPU hint of the folio's order) →
 * swap_alloc_slow() / cluster_alloc_swap_entry():
 *
 *   nonfull[order] (all of it)  →  free clusters  →  [vm_swap_full: reclaim
 *   cache-only slots of one full cluster]  →  frag[order] (one cluster)  →
 *   order 0 only: steal from frag[o] / nonfull[o], o = 1..PMD_ORDER
 *
 * (nonfull and frag only for order < PMD_ORDER). Inside a cluster,
 * alloc_swap_scan_cluster() steps from the hint in strides of nr, so every
 * range is aligned to nr and inside one cluster. A cluster serves one order
 * from its first allocation until it is empty again (cluster_is_usable), except
 * that order 0 may use any cluster, and only while it has its swap table (a
 * cluster on the free list has none). After an attempt relocate_cluster() puts
 * the cluster on frag[order] (partly used), full, or free; a free of some of
 * its slots later moves it to nonfull[order] (partial_free_cluster). The hint
 * becomes the offset after the allocation, or invalid when the cluster is full
 * or the attempt failed.
 */

const SCAN_BUSY = 0;
const SCAN_FREE = 1;
const SCAN_RECLAIM = 2;

/** Head flags folio_alloc_swap() needs: locked, uptodate, swap-backed, and PG_swapcache clear. */
const M_ALLOC_CHECK = FLAG.locked.mask | FLAG.uptodate.mask | FLAG.swapbacked.mask | FLAG.swapcache.mask;
const M_ALLOC_OK = FLAG.locked.mask | FLAG.uptodate.mask | FLAG.swapbacked.mask;

const RECLAIM_UNUSABLE = 0;
const RECLAIM_OK = 1;
const RECLAIM_FAILED = 2;

/**
 * cluster_is_usable() (7.2.13 mm/swapfile.c:cluster_is_usable): not full (nor
 * discarding), has its swap table, and then order 0 anywhere, else empty or of
 * the same order. A cluster on the free list has no table (__free_cluster
 * freed it; isolate_lock_cluster gives it one when it takes it off the list),
 * so an emptied cluster is never reused through a stale per-CPU hint, nor
 * after a reclaim that emptied it (cluster_reclaim_range: usable = false).
 */
function clusterIsUsable(si: SwapDevice, c: number, order: number): boolean {
  // clusterFlag(si, c) > FRAG: only FULL (no DISCARD here), read from the list id.
  if (si.ciList[c] === LIST_FULL) return false;
  if (si.ciBase[c]! < 0) return false; // !cluster_table_is_alloced(ci)
  if (order === 0) return true;
  return si.ciCount[c] === 0 || si.ciOrder[c] === order;
}

/** cluster_scan_range(): all nr slots free, or free but for count-0 cache-only slots worth reclaiming. */
function clusterScanRange(si: SwapDevice, c: number, off: number, nr: number): number {
  if (si.ciCount[c] === 0) return SCAN_FREE;
  // A used cluster has its table; a slot is free when its count byte is 0
  // and its table word holds no folio (the common case, read flat).
  const map = si.ciMap[c]!;
  const table = si.ciCached[c]!;
  const b = off & (si.clusterSize - 1);
  let r = SCAN_FREE;
  for (let k = b; k < b + nr; k++) {
    const m = map[k]!;
    const p = table[k]!;
    if ((m | (p + 1)) === 0) continue;
    if (m === SWAP_MAP_BAD || slotCount(si, off + k - b) !== 0) return SCAN_BUSY;
    if (p >= 0) {
      if (!vmSwapFull(si)) return SCAN_BUSY;
      r = SCAN_RECLAIM;
    }
  }
  return r;
}

/**
 * cluster_reclaim_range(): drop the cluster lock, reclaim the swap cache of
 * the range (TTRS_ANYWAY), retake the lock and recheck.
 */
function clusterReclaimRange(si: SwapDevice, c: number, start: number, order: number): number {
  const end = start + (1 << order);
  clusterUnlock(si, c);
  for (let s = start; s < end; s++) {
    if (slotMap(si, s) === SWAP_MAP_BAD || slotCount(si, s) !== 0) break;
    if (slotCached(si, s) >= 0 && tryToReclaimSwap(si, s, TTRS_ANYWAY) < 0) break;
  }
  clusterLock(si, c);
  if (!clusterIsUsable(si, c, order)) return RECLAIM_UNUSABLE;
  if (si.ciCount[c] === 0) return RECLAIM_OK;
  for (let s = start; s < end; s++) if (slotMap(si, s) !== 0 || slotCached(si, s) >= 0) return RECLAIM_FAILED;
  return RECLAIM_OK;
}

/**
 * __swap_cluster_alloc_entries() with a folio (7.2.13
 * mm/swapfile.c:__swap_cluster_alloc_entries): bind the folio in the same
 * cluster-lock section (counts stay 0), claim the cluster for the folio's
 * order if it was empty, ci->count += nr, swap_range_alloc(). The cluster
 * has its swap table: an empty one got it when isolate_lock_cluster() took it
 * off the free list (swap_cluster_populate), and cluster_is_usable() refuses
 * a cluster without one.
 */
function clusterAllocRange(si: SwapDevice, c: number, folio: Folio, off: number): void {
  swapCacheAddLocked(si, folio, off);
  if (si.ciCount[c] === 0) si.ciOrder[c] = folio.order;
  si.ciCount[c]! += folio.nr;
  swapRangeAlloc(si, folio.nr);
}

/**
 * alloc_swap_scan_cluster() (v7.0): cluster `c` is locked on entry and
 * unlocked on return; scan from `offset` in strides of nr. Returns the
 * allocated offset or 0; relocates the cluster and rewrites the hint.
 */
function allocSwapScanCluster(si: SwapDevice, c: number, folio: Folio, offset: number): number {
  const cs = si.clusterSize;
  const start = c << si.clusterShift;
  const { nr, order } = folio;
  let found = 0;
  let next = 0;
  if (si.ciCount[c]! + nr <= cs) {
    const end = start + cs - nr;
    for (; offset <= end; offset += nr) {
      const r = clusterScanRange(si, c, offset, nr);
      if (r === SCAN_BUSY) continue;
      if (r === SCAN_RECLAIM) {
        const rr = clusterReclaimRange(si, c, offset, order);
        if (rr === RECLAIM_UNUSABLE) break;
        if (si.ciCount[c] === 0) offset = start;
        if (rr === RECLAIM_FAILED) continue;
      }
      clusterAllocRange(si, c, folio, offset);
      found = offset;
      offset += nr;
      if (si.ciCount[c]! < cs && offset <= end) next = offset;
      break;
    }
  }
  relocateCluster(si, c);
  clusterUnlock(si, c);
  si.pcpOffset[order] = next;
  return found;
}

/**
 * swap_alloc_fast(): try the per-CPU hint of this order.
 *
 * The steady state of a swap-out is a hint into a used cluster of the
 * folio's order whose range at the hint is free: that first step of
 * allocSwapScanCluster's scan (SCAN_FREE at `off`) is done inline here, with
 * the same events in the same order (cluster lock; slot updates, reference,
 * flag and stats of the binding; the two usage atomics; relocation; unlock).
 * Anything else (an empty cluster, a busy or reclaimable range, no room)
 * goes to allocSwapScanCluster, which rescans from `off` (a scan charges
 * nothing).
 */
function swapAllocFast(si: SwapDevice, folio: Folio): number {
  const order = folio.order;
  const off = si.pcpOffset[order]!;
  if (off === 0) return 0;
  const shift = si.clusterShift;
  const c = off >>> shift;
  clusterLock(si, c);
  const n = si.ciCount[c]!;
  if (!clusterIsUsable(si, c, order)) {
    clusterUnlock(si, c);
    return 0;
  }
  const start = c << shift;
  if (n === 0) return allocSwapScanCluster(si, c, folio, start);
  const nr = folio.nr;
  const cs = si.clusterSize;
  const end = start + cs - nr;
  if (n + nr > cs || off > end) return allocSwapScanCluster(si, c, folio, off);
  // clusterScanRange(): a used cluster has its table; free = count byte 0 and no folio.
  const map = si.ciMap[c]!;
  const table = si.ciCached[c]!;
  const b = off - start;
  for (let k = b; k < b + nr; k++) if ((map[k]! | (table[k]! + 1)) !== 0) return allocSwapScanCluster(si, c, folio, off);
  // clusterAllocRange() of a used cluster (it has its table and its order).
  swapCacheAddLocked(si, folio, off);
  const left = n + nr;
  si.ciCount[c] = left;
  swapRangeAlloc(si, nr);
  relocateCluster(si, c);
  clusterUnlock(si, c);
  si.pcpOffset[order] = left < cs && off + nr <= end ? off + nr : 0;
  return off;
}

/** alloc_swap_scan_list(): isolate clusters from the head of `list` and try them (all of them if scanAll). */
function allocSwapScanList(si: SwapDevice, list: number, folio: Folio, scanAll: boolean): number {
  let guard = si.nrClusters;
  do {
    const c = isolateLockCluster(si, list);
    if (c < 0) return 0;
    const found = allocSwapScanCluster(si, c, folio, c << si.clusterShift);
    if (found !== 0) return found;
    if (--guard < 0) throw new FoliolabError('EFAULT', `allocSwapScanList: list ${list} does not drain`, { list });
  } while (scanAll);
  return 0;
}

/**
 * swap_reclaim_full_clusters(si, force = false): rotate one cluster off the
 * full list and reclaim its cache-only (count 0, cached) slots.
 */
function swapReclaimFullClusters(si: SwapDevice): void {
  const c = isolateLockCluster(si, LIST_FULL);
  if (c < 0) return;
  const end = (c + 1) << si.clusterShift;
  let off = c << si.clusterShift;
  while (off < end) {
    if (slotMap(si, off) !== SWAP_MAP_BAD && slotCount(si, off) === 0 && slotCached(si, off) >= 0) {
      clusterUnlock(si, c);
      const r = tryToReclaimSwap(si, off, TTRS_ANYWAY);
      clusterLock(si, c);
      if (r !== 0) {
        off += Math.abs(r);
        continue;
      }
    }
    off++;
  }
  if (si.ciList[c] === LIST_NONE) relocateCluster(si, c);
  clusterUnlock(si, c);
}

/** cluster_alloc_swap_entry() (v7.0), SSD path without discard. */
function clusterAllocSwapEntry(si: SwapDevice, folio: Folio): number {
  const order = folio.order;
  if (order > 0 && !si.blockDevice) return 0;
  let found = 0;
  if (order < PMD_ORDER) found = allocSwapScanList(si, LIST_NONFULL + order, folio, true);
  if (found === 0) found = allocSwapScanList(si, LIST_FREE, folio, false);
  if (found === 0 && vmSwapFull(si)) swapReclaimFullClusters(si);
  if (found === 0 && order < PMD_ORDER) found = allocSwapScanList(si, LIST_FRAG + order, folio, false);
  if (found !== 0 || order !== 0) return found;
  for (let o = 1; o < si.nrOrders; o++) {
    found = allocSwapScanList(si, LIST_FRAG + o, folio, true);
    if (found !== 0) return found;
    found = allocSwapScanList(si, LIST_NONFULL + o, folio, true);
    if (found !== 0) return found;
  }
  return 0;
}

/**
 * folio_alloc_swap() (v7.0): the only slot allocator. Finds 2^order free
 * contiguous slots aligned to nr inside one cluster and, in the same
 * cluster-lock section, binds them to the folio: counts 0, table words →
 * folio, PG_swapcache, folio->swap, nr references (folio_ref_add), NR_SWAPCACHE
 * += nr. The folio must be locked, uptodate, swap-backed and not in the swap
 * cache. Returns 0; −EAGAIN for a large folio without CONFIG_THP_SWAP; −ENOMEM
 * when no aligned run is free (nothing bound; the per-CPU hint and cluster
 * lists may have moved, as in the kernel). A large folio's caller then splits
 * it and counts the fallback (countSwpoutFallback).
 */
export function folioAllocSwap(si: SwapDevice, folio: Folio): 0 | NegEAGAIN | NegENOMEM {
  const fn = 'folioAllocSwap';
  assertDeviceFolio(fn, si, folio);
  // One load of the head's flags word for the common case; the detailed
  // checks below only run to name what is wrong.
  const w = folio.mm.flags[folio.head]!;
  if ((w & M_ALLOC_CHECK) !== M_ALLOC_OK || folio.fa[folio.fb + F_SWAP] !== 0) {
    assertLocked(fn, folio);
    const { head } = folio;
    if (!rawUptodate(folio)) throw new FoliolabError('EINVAL', `${fn}: folio ${head} is not uptodate`, { head });
    if (!rawSwapbacked(folio) || rawSwapcache(folio) || folioSwapEntry(folio) !== 0) {
      throw new FoliolabError('EINVAL', `${fn}: folio ${head} must be swap-backed and not in the swap cache`, { head });
    }
  }
  return folioAllocSwapUnchecked(si, folio);
}

/**
 * @internal folio_alloc_swap(), unchecked: the same events, results and end
 * states as `folioAllocSwap`. The caller guarantees: `si` is a SwapDevice;
 * `folio` is a live folio of its memmap, locked, uptodate, swap-backed, not in
 * the swap cache, with folio->swap 0 and a refcount ≥ 1.
 */
export function folioAllocSwapUnchecked(si: SwapDevice, folio: Folio): 0 | NegEAGAIN | NegENOMEM {
  if (folio.order > 0 && !si.thpSwap) return NEG_EAGAIN;
  const inj = si.faults.allocEnomem;
  if (inj !== false && inj !== 0 && injectFires(si.faults, 'allocEnomem')) return NEG_ENOMEM;
  let found = swapAllocFast(si, folio);
  if (found === 0) found = clusterAllocSwapEntry(si, folio);
  return found === 0 ? NEG_ENOMEM : 0;
}
