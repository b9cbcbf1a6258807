import { FoliolabError } from '@foliolab/ledger';
import { MAX_FOLIO_ORDER } from '@foliolab/folio-flags';
import { chargePcpu, slotCached, slotCount, SwapDevice, type SwapCountModel } from './device.js';
import { PMD_ORDER, ST } from './layout.js';

/** A copy of a device's counters (vmstat / mTHP stats / swap_info usage), for dumps and assertions. */
export interface SwapSnapshot {
  readonly type: number;
  readonly nrSlots: number;
  readonly clusterSize: number;
  readonly countModel: SwapCountModel;
  readonly countMax: number;
  /** total_swap_pages: good slots (the header excluded). */
  readonly totalSwapPages: number;
  /** nr_swap_pages: free good slots. */
  readonly nrSwapPages: number;
  /** si->inuse_pages. */
  readonly inusePages: number;
  /** NR_SWAPCACHE: pages of this device's swap-cache folios. */
  readonly nrSwapcache: number;
  /** mTHP swpout[order]: folios written out, by order. */
  readonly swpout: number[];
  /** mTHP swpout_fallback[order]: large folios split after folio_alloc_swap failed. */
  readonly swpoutFallback: number[];
  /** mTHP swpin[order]. */
  readonly swpin: number[];
  readonly thpSwpout: number;
  readonly thpSwpoutFallback: number;
  /** PSWPOUT / PSWPIN: pages written / read. */
  readonly pswpout: number;
  readonly pswpin: number;
  /** SWPOUT_ZERO / SWPIN_ZERO (`swpout_zero`, `swpin_zero`): zero-filled pages kept only in the zeromap. */
  readonly swpoutZero: number;
  readonly swpinZero: number;
  /** Live extension tables (extend_table / continuations). */
  readonly extendTables: number;
  /** Successful and failed extension allocations. */
  readonly extendAllocs: number;
  readonly extendAllocFailures: number;
  /** Clusters on each list (between operations every cluster is on exactly one). */
  readonly clusters: {
    readonly free: number;
    readonly nonfull: number[];
    readonly frag: number[];
    readonly full: number;
  };
  /** percpu_swap_cluster.offset[order] (0 = invalid). */
  readonly pcpOffset: number[];
}

/** The device's counters as a plain object (the same as `si.snapshot()`). */
export function swapSnapshot(si: SwapDevice): SwapSnapshot {
  if (!(si instanceof SwapDevice)) throw new FoliolabError('EINVAL', 'swapSnapshot: not a SwapDevice', {});
  return si.snapshot();
}

/**
 * The fallback accounting of shrink_folio_list() (v7.0) after folio_alloc_swap
 * failed for a large folio and the split succeeded: count_mthp_stat(order,
 * MTHP_STAT_SWPOUT_FALLBACK), plus THP_SWPOUT_FALLBACK for a PMD-sized folio.
 * The split and the retry as small folios are the caller's.
 */
export function countSwpoutFallback(si: SwapDevice, order: number): void {
  if (!(si instanceof SwapDevice)) throw new FoliolabError('EINVAL', 'countSwpoutFallback: not a SwapDevice', {});
  if (!Number.isInteger(order) || order < 1 || order > MAX_FOLIO_ORDER) {
    throw new FoliolabError('ERANGE', `countSwpoutFallback: order ${order} is not a large-folio order 1..${MAX_FOLIO_ORDER}`, { order });
  }
  if (order >= PMD_ORDER) {
    si.stat[ST.THP_SWPOUT_FALLBACK]!++;
    chargePcpu(si);
  }
  si.swpoutFallback[order]!++;
  chargePcpu(si);
}

/** The `swap` section of the foliolab.state/v1 dump (docs/ENGINE-API.md). */
export interface SwapDump {
  /** Non-free slots (the header excluded), ascending. */
  readonly slots: { readonly offset: number; readonly count: number; readonly cached: number | null }[];
  /** Swap-cache folios of this device, by first slot. */
  readonly swapCache: { readonly pfn: number; readonly offset: number; readonly nr: number }[];
}

/** The device's slots and swap cache in the state-dump shape (allocates; for dumps, not hot paths). */
export function swapDump(si: SwapDevice): SwapDump {
  if (!(si instanceof SwapDevice)) throw new FoliolabError('EINVAL', 'swapDump: not a SwapDevice', {});
  const slots: { offset: number; count: number; cached: number | null }[] = [];
  const swapCache: { pfn: number; offset: number; nr: number }[] = [];
  for (let s = 1; s < si.nrSlots; s++) {
    const count = slotCount(si, s);
    const pfn = slotCached(si, s);
    if (count === 0 && pfn < 0) continue;
    slots.push({ offset: s, count, cached: pfn < 0 ? null : pfn });
    if (pfn >= 0 && slotCached(si, s - 1) !== pfn) {
      let nr = 1;
      while (s + nr < si.nrSlots && slotCached(si, s + nr) === pfn) nr++;
      swapCache.push({ pfn, offset: s, nr });
    }
  }
  return { slots, swapCache };
}
