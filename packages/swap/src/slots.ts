import {
  clusterAllocTable,
  slotCached,
  slotCount,
  slotData,
  slotMap,
  slotShadow,
  slotZero,
  zeromapSetRange,
  type SwapDevice,
} from './device.js';

/*
 * Slot-level access to the per-cluster swap tables (device.ts): small
 * accessors for the engine's non-reclaim paths (state reads, the THP split,
 * the dump), the slot-indexed debug views, and the device's memory size.
 */

// --- accessors for other packages -------------------------------------------

/** @internal __swap_count()/swp_swapcount() of slot `off` (0 ≤ off < nrSlots; extension included, the header 0; not charged). */
export function swapCountAt(si: SwapDevice, off: number): number {
  return slotCount(si, off);
}

/** @internal Head PFN of the swap-cache folio slot `off` is bound to (swap_cache_get_folio without the reference), −1 = none. */
export function swapCacheFolioAt(si: SwapDevice, off: number): number {
  return slotCached(si, off);
}

/**
 * @internal __swap_cache_replace_folio() for one slot: bind the used, cached
 * slot `off` to the folio with head PFN `pfn` (after a split of the swap-cache
 * folio; the caller charges the work).
 */
export function swapCacheSetAt(si: SwapDevice, off: number, pfn: number): void {
  si.ciCached[off >>> si.clusterShift]![off & (si.clusterSize - 1)] = pfn;
}

/** @internal The si->zeromap bit of slot `off`. */
export function swapZeroAt(si: SwapDevice, off: number): boolean {
  return slotZero(si, off);
}

/** @internal The data token written to slot `off` (0 when none was, or it was zero-filled). */
export function swapDataAt(si: SwapDevice, off: number): number {
  return slotData(si, off);
}

// --- memory -----------------------------------------------------------------

/** Bytes a device's state occupies now, by part (`swapMemoryBytes`). */
export interface SwapMemoryBytes {
  /** The swap-table pool, folio half (4 B per slot of each pooled table, in use or free). */
  readonly tables: number;
  /** The pool's count bytes (1 B per slot). */
  readonly counts: number;
  /** The pool's data tokens (4 B per slot). */
  readonly data: number;
  /** Shadow arrays (4 B per slot, clusters that were given a shadow). */
  readonly shadows: number;
  /** The si->zeromap bitmap (1 bit per slot). */
  readonly zeromap: number;
  /** Extension tables / continuations. */
  readonly ext: number;
  /** Per-cluster info (count, order, list links, lock id, extended slots, table base), the pool's free stack, and the per-cluster and per-pool-table array references (8 B each). */
  readonly clusterInfo: number;
  readonly total: number;
}

/** The bytes the device holds (what is allocated now, not the device's size); allocates, not for hot paths. */
export function swapMemoryBytes(si: SwapDevice): SwapMemoryBytes {
  let shadows = 0;
  let ext = 0;
  for (let c = 0; c < si.nrClusters; c++) {
    shadows += si.ciShadow[c]?.byteLength ?? 0;
    ext += si.ext[c]?.byteLength ?? 0;
  }
  // The pool's chunks hold tbCapacity tables of clusterSize slots: 4 B of
  // table word, 1 count byte and 4 B of data per slot.
  const slots = si.tbCapacity * si.clusterSize;
  const tables = slots * 4;
  const counts = slots;
  const data = slots * 4;
  const zeromap = si.zeromapBits.byteLength;
  const clusterInfo =
    si.ciCount.byteLength +
    si.ciOrder.byteLength +
    si.ciList.byteLength +
    si.ciPrev.byteLength +
    si.ciNext.byteLength +
    si.ciLock.byteLength +
    si.ciExtSlots.byteLength +
    si.ciBase.byteLength +
    si.tbFree.byteLength +
    5 * 8 * si.nrClusters + // ciShadow, ext, ciCached, ciMap, ciData
    3 * 8 * si.tbCapacity; // poolCached, poolMap, poolData
  return { tables, counts, data, shadows, zeromap, ext, clusterInfo, total: tables + counts + data + shadows + zeromap + ext + clusterInfo };
}

// --- debug views ------------------------------------------------------------

/** A slot-indexed view of one part of a device's state (SwapDevice.map, .cached, …). */
export interface SwapSlotView {
  [slot: number]: number;
  /** nrSlots. */
  readonly length: number;
  /** Bytes this part of the state holds now. */
  readonly byteLength: number;
}

/** @internal View kinds. */
export const VIEW_MAP = 0;
/** @internal */
export const VIEW_CACHED = 1;
/** @internal */
export const VIEW_SHADOW = 2;
/** @internal */
export const VIEW_ZEROMAP = 3;
/** @internal */
export const VIEW_DATA = 4;

function viewGet(si: SwapDevice, kind: number, s: number): number {
  switch (kind) {
    case VIEW_MAP:
      return slotMap(si, s);
    case VIEW_CACHED:
      return slotCached(si, s);
    case VIEW_SHADOW:
      return slotShadow(si, s);
    case VIEW_ZEROMAP:
      return slotZero(si, s) ? 1 : 0;
    default:
      return slotData(si, s);
  }
}

/** Store as the old per-slot typed arrays did (Uint8 / Int32 / Uint32 conversions), allocating storage on demand. */
function viewSet(si: SwapDevice, kind: number, s: number, v: number): void {
  const c = s >>> si.clusterShift;
  const i = s & (si.clusterSize - 1);
  if (kind === VIEW_ZEROMAP) {
    zeromapSetRange(si, s, 1, (v & 0xff) !== 0);
    return;
  }
  if (si.ciBase[c]! < 0) clusterAllocTable(si, c);
  if (kind === VIEW_MAP) si.ciMap[c]![i] = v;
  else if (kind === VIEW_CACHED) si.ciCached[c]![i] = v;
  else if (kind === VIEW_SHADOW) (si.ciShadow[c] ??= new Uint32Array(si.clusterSize))[i] = v;
  else si.ciData[c]![i] = v;
}

function viewBytes(si: SwapDevice, kind: number): number {
  if (kind === VIEW_ZEROMAP) return si.zeromapBits.byteLength;
  const m = swapMemoryBytes(si);
  return kind === VIEW_MAP ? m.counts : kind === VIEW_CACHED ? m.tables : kind === VIEW_SHADOW ? m.shadows : m.data;
}

function slotIndex(si: SwapDevice, p: string | symbol): number {
  if (typeof p !== 'string') return -1;
  const s = Number(p);
  return Number.isInteger(s) && s >= 0 && s < si.nrSlots && String(s) === p ? s : -1;
}

/** @internal A slot-indexed Proxy over one part of the device's state. */
export function slotView(si: SwapDevice, kind: number): SwapSlotView {
  return new Proxy(Object.create(null) as SwapSlotView, {
    get(_t, p) {
      if (p === 'length') return si.nrSlots;
      if (p === 'byteLength') return viewBytes(si, kind);
      const s = slotIndex(si, p);
      return s < 0 ? undefined : viewGet(si, kind, s);
    },
    set(_t, p, v) {
      const s = slotIndex(si, p);
      if (s >= 0) viewSet(si, kind, s, Number(v));
      return true;
    },
    has(_t, p) {
      return p === 'length' || p === 'byteLength' || slotIndex(si, p) >= 0;
    },
  });
}
