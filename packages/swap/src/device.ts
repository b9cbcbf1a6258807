import { EV, FoliolabError, type Ledger } from '@foliolab/ledger';
import { F_ENTIRE_MAPCOUNT, F_LARGE_MAPCOUNT, type Folio, type Memmap } from '@foliolab/folio-flags';
import { MAX_SWAPFILES } from './entry.js';
import type { SwapSnapshot } from './stats.js';
import {
  SWAPFILE_CLUSTER,
  SWAP_NR_ORDERS,
  SWAP_MAX_SLOTS,
  COUNT_CONTINUED,
  SWAP_MAP_BAD,
  SWAP_MAP_MAX,
  SWP_TB_COUNT_MAX,
  SWAP_COUNT_MASK,
  LIST_NONE,
  LIST_FREE,
  LIST_NONFULL,
  LIST_FRAG,
  LIST_FULL,
  NR_LISTS,
  ST,
  NR_ST,
} from './layout.js';
import { listAddTail } from './cluster.js';
import { slotView, VIEW_CACHED, VIEW_DATA, VIEW_MAP, VIEW_SHADOW, VIEW_ZEROMAP, type SwapSlotView } from './slots.js';

/*
 * The swap device (struct swap_info_struct + its swap_cluster_info array,
 * mm/swapfile.c, v7.0 swap-table phase II) as struct-of-arrays. No object per
 * slot or per cluster: per-cluster typed arrays (count, order, list links,
 * lock id, extension table) and, per cluster in use, its swap table.
 *
 * Memory follows the kernel's dynamic swap table (Kairui Song's series,
 * v6.18+): [K] mm/swap_table.h — `struct swap_table { atomic_long_t
 * entries[SWAPFILE_CLUSTER]; }`, one per cluster, each entry a folio pointer,
 * a shadow (XA_VALUE) or NULL; [K] mm/swapfile.c — isolate_lock_cluster()
 * allocates it (swap_cluster_alloc_table) for a cluster taken off the free
 * list, __free_cluster() frees it (swap_cluster_free_table), and
 * swap_cluster_setup_bad_slot() allocates one for the header's cluster. Here a
 * cluster gets a table when it gets its first slot and gives it back when it
 * returns to the free list (ci->count 0: nothing counted, nothing cached). An
 * empty device therefore costs its per-cluster info, the header cluster's
 * table and the zeromap bitmap.
 *
 * Tables come from a per-device pool, as the kernel's come from a slab cache
 * (swap_table_cachep). The pool holds `tbCapacity` tables of clusterSize
 * slots, numbered 0..tbCapacity−1, in chunks of 1, 1, 2, 4, 8, … tables: it
 * doubles when full by adding one chunk as large as everything before it,
 * and is halved when at most a quarter is in use by dropping its last chunk
 * (the tables in use there move down first), so it holds fewer than four
 * times the tables in use, or at most POOL_KEEP (8) tables. Growth copies
 * nothing and touches only the new chunk: a typed-array allocation costs
 * microseconds in V8 (about what the 32 64K folios of a cluster cost to swap
 * out), and the earlier copy-on-double cost a fresh device's first pageout
 * about as much again. Each pool table is three typed-array views (table
 * word, count bytes, data) made, and its table words set to −1, when the
 * table is first handed out: a new chunk is as large as the pool before it,
 * so most of the last one is often never used, and its untouched memory
 * then costs neither views nor writes. A cluster in
 * use holds its table's views in `ciCached`, `ciMap`, `ciData` (null while
 * free) and `ciBase[c]` = table number × clusterSize (−1: none), so a slot is
 * one load of the cluster's view and one indexed access.
 *
 * Departures, all deliberate:
 * - One CPU: percpu_swap_cluster is one `offset[order]` array; the
 *   device is a solid-state block device (SWP_SOLIDSTATE, so no HDD
 *   global_cluster path); no discard (no discard list, SWP_PAGE_DISCARD off);
 *   no hibernation slots; no memcg charge; no zswap; the swap table
 *   allocation cannot fail.
 * - One device per SwapDevice: swap_alloc_slow's walk over the priority list
 *   of devices is the walk over this one.
 * - The table word is split in two 32-bit arrays: `ciCached` holds the
 *   cached folio's head PFN (−1 = none) and `ciShadow` the shadow. 7.2.13
 *   (mm/swap_table.h) packs one atomic_long per slot: NULL, a shadow
 *   (XA_VALUE, mark 0b1), a PFN (mark 0b10) or SWP_TB_BAD, with the count
 *   (SWP_TB_COUNT_BITS, 4 on 64-bit arm64/x86: SWP_TB_COUNT_MAX 15) and the
 *   zero flag (SWAP_TABLE_HAS_ZEROFLAG) in the top bits. The model's shadow is
 *   a full 32-bit token at the public boundary and a PFN needs 31 bits, so
 *   one 32-bit word cannot hold both plus a tag. The shadow array is
 *   allocated only when a non-zero shadow is stored (reclaim through the
 *   engine stores none), so the split costs nothing there.
 * - The count bytes (`ciMap`: 7.2.13 keeps the count in the table word,
 *   mm/swap_table.h __swp_tb_get_count; ≤ v7.0 the device-wide
 *   si->swap_map) and the written data tokens ("the disk", `ciData`) live
 *   per cluster with the table. The zeromap stays device-wide, one bit per
 *   slot (si->zeromap ≤ v7.0); 7.2.13 keeps it as SWP_TB_ZERO_FLAG in the
 *   table word (mm/page_io.c:swap_zeromap_folio_set/clear, each one
 *   cluster-lock round trip the model does not charge) — same answers, a
 *   different place.
 */

/**
 * How a slot's count is stored and what happens when it overflows
 * (spec folio-rmap-swap.md §3.2):
 * - `'extend'` (default): phase III [mm-tree]. A count reaching `countMax`
 *   (SWP_TB_COUNT_MAX, default 15) moves to a per-cluster extend_table
 *   allocated on demand with GFP_ATOMIC and freed when all zero; a failed
 *   allocation undoes the increments of the batch and returns −ENOMEM. Cache
 *   semantics are phase II (v7.0): "cached" = the table word holds the folio.
 * - `'continuation'`: v7.0 exactly: a swap_map byte up to SWAP_MAP_MAX (0x3e),
 *   overflow into a continuation allocated by add_swap_count_continuation()
 *   (GFP_ATOMIC) and retried; a batched increment is not rolled back on
 *   failure, and a retry after a successful allocation re-increments the slots
 *   already raised (the kernel assumes usage 1 ⇒ nr 1). Continuations are kept
 *   until swapoff (never freed here).
 * - `'legacy'`: ≤ v6.19: `'continuation'` plus SWAP_HAS_CACHE (0x40) in the
 *   byte, set exactly while the slot is bound to a swap-cache folio.
 * Model simplification for both continuation models: the continuation is one
 * 32-bit counter per slot in a per-cluster table (the kernel chains base-128
 * digit pages per swap_map page).
 */
export type SwapCountModel = 'extend' | 'continuation' | 'legacy';

/** Options of a SwapDevice. */
export interface SwapDeviceOptions {
  /** The memmap whose folios this device swaps (its ledger is charged). */
  readonly memmap: Memmap;
  /** Slots, including the header slot 0: a positive multiple of 512, at most 2^26. */
  readonly nrSlots: number;
  /** Swap type 0..23 (default 0). */
  readonly type?: number;
  /** CONFIG_THP_SWAP (default true): 512-slot clusters and large allocations; off: 256-slot clusters, order 0 only. */
  readonly thpSwap?: boolean;
  /** SWP_BLKDEV (default true); a swapfile on a filesystem takes no large allocation. */
  readonly blockDevice?: boolean;
  /**
   * SWP_SYNCHRONOUS_IO (default true, a zram-like device): a write ends inside
   * swap_writeout. False (a loop device, a disk): the bio completes later,
   * so the folio leaves swap_writeout under writeback and stays so until the
   * owner of the device ends it (`writebackInFlight`, folio_end_writeback).
   */
  readonly synchronousIo?: boolean;
  /** Count storage and overflow model (default 'extend'). */
  readonly countModel?: SwapCountModel;
  /** SWP_TB_COUNT_MAX ('extend', default 15, 2..62) or SWAP_MAP_MAX (continuation models, default 0x3e, 1..0x3e). */
  readonly countMax?: number;
  /**
   * folio_mapped() for TTRS_UNMAPPED. Default: any of `_large_mapcount`,
   * `_entire_mapcount` or a per-page `_mapcount` (when the memmap keeps them)
   * says mapped — whichever convention the rmap layer uses for small folios.
   */
  readonly folioMapped?: (folio: Folio) => boolean;
  /**
   * What happens when a reference this package drops is a folio's last one
   * (the __folio_put of the final folio_put in __try_to_reclaim_swap). Default:
   * Memmap.freeFolio, which rejects folios still on an LRU: an engine with an
   * LRU passes its own.
   */
  readonly releaseFolio?: (folio: Folio) => void;
}

/**
 * Fault injection (named switches, as tools/testing/vma's fail_prealloc).
 * The `number | boolean` switches follow the engine contract
 * (docs/ENGINE-API.md InjectName): a number N fails the Nth call from now
 * (1 = the next) and then turns off; true fails every call; false / 0 is off.
 */
export interface SwapFaults {
  /** Every GFP_ATOMIC extend-table / continuation allocation fails while set. */
  failExtendAlloc: boolean;
  /** The next n GFP_ATOMIC extend-table / continuation allocations fail. */
  failNextExtendAllocs: number;
  /**
   * folioDupSwap fails with −ENOMEM as if its first slot needed a count
   * extension whose GFP_ATOMIC allocation failed (the only way folio_dup_swap
   * fails): nothing changes, the attempt is charged (engine: swapDupEnomem).
   */
  dupEnomem: number | boolean;
  /** folioAllocSwap returns −ENOMEM as if no aligned run were free, changing and charging nothing (engine: swapAllocFail). */
  allocEnomem: number | boolean;
}

/** @internal Whether a `number | boolean` switch fires on this call (and count it down). */
export function injectFires(faults: SwapFaults, key: 'dupEnomem' | 'allocEnomem'): boolean {
  const v = faults[key];
  if (v === true) return true;
  if (typeof v !== 'number' || v <= 0) return false;
  faults[key] = v - 1;
  return v === 1;
}

/**
 * A swap device. Public fields are the model's state, readable by dumps and
 * invariant checks; change it only through the exported kernel-named
 * functions (folioAllocSwap, folioDupSwap, …).
 */
export class SwapDevice {
  readonly memmap: Memmap;
  readonly ledger: Ledger;
  readonly type: number;
  readonly nrSlots: number;
  /** SWAPFILE_CLUSTER of this device. */
  readonly clusterSize: number;
  readonly clusterShift: number;
  readonly nrClusters: number;
  /** SWAP_NR_ORDERS of this device. */
  readonly nrOrders: number;
  readonly thpSwap: boolean;
  readonly blockDevice: boolean;
  /** SWP_SYNCHRONOUS_IO. */
  readonly synchronousIo: boolean;
  /**
   * Heads of the folios whose write was submitted to a device without
   * SWP_SYNCHRONOUS_IO and has not completed (PG_writeback still set), in
   * submission order.
   */
  readonly writebackInFlight: number[] = [];
  readonly countModel: SwapCountModel;
  readonly countMax: number;
  /** Largest count held in the count byte without the extension table. */
  readonly inlineLimit: number;
  /** Inline value stored in a slot whose count lives in the extension table. */
  readonly extMarker: number;

  /** Per cluster: its swap table's number in the pool × clusterSize, −1 while the cluster is free. */
  readonly ciBase: Int32Array;
  /** Per cluster: its swap table, folio half: head PFN of the swap-cache folio of each slot, −1 = none (null while free). */
  readonly ciCached: (Int32Array | null)[];
  /** Per cluster: its count bytes (inline count | SWAP_HAS_CACHE | COUNT_CONTINUED; SWAP_MAP_BAD for the header). */
  readonly ciMap: (Uint8Array | null)[];
  /** Per cluster: its data tokens, the token last written to each slot (the "disk"). */
  readonly ciData: (Uint32Array | null)[];
  /**
   * @internal The pool's tables by table number (views into its chunks),
   * tbCapacity of each; null until the table is first handed out (its chunk
   * memory is still untouched zeroes then).
   */
  readonly poolCached: (Int32Array | null)[] = [];
  /** @internal */ readonly poolMap: (Uint8Array | null)[] = [];
  /** @internal */ readonly poolData: (Uint32Array | null)[] = [];
  /** @internal The pool's chunks (chunk k ≥ 1 holds tables 2^(k−1)..2^k − 1, chunk 0 table 0). */
  readonly poolChunks: ArrayBuffer[] = [];
  /** Tables the pool holds (in use or free). */
  tbCapacity = 0;
  /** Tables in use (clusters with ci->count > 0, the header's included). */
  tbInUse = 0;
  /** @internal Stack of free table numbers (base / clusterSize) of the pool, tbFreeTop entries. */
  tbFree: Int32Array;
  /** @internal */ tbFreeTop = 0;
  /** Per cluster: the workingset shadow of each slot's table word (0 = none), allocated at the first non-zero shadow. */
  readonly ciShadow: (Uint32Array | null)[];
  /** si->zeromap: one bit per slot (bit s & 31 of word s >>> 5). */
  readonly zeromapBits: Uint32Array;

  /**
   * Slot-indexed views of the state above, for tests, dumps and debugging:
   * `map` (count byte), `cached` (head PFN, −1), `shadow`, `zeromap` (0/1),
   * `data`. Reads of a slot without storage give the empty value; writes
   * store (allocating the cluster's arrays if needed). `byteLength` is what
   * that part of the state holds now. Slow (a Proxy): never on a hot path.
   */
  readonly map: SwapSlotView;
  readonly cached: SwapSlotView;
  readonly shadow: SwapSlotView;
  readonly zeromap: SwapSlotView;
  readonly data: SwapSlotView;

  /** Per cluster: ci->count (used slots, the bad header slot included). */
  readonly ciCount: Uint16Array;
  /** Per cluster: ci->order. */
  readonly ciOrder: Uint8Array;
  /** Per cluster: which list it is on (LIST_*), −1 while isolated. */
  readonly ciList: Int8Array;
  /** @internal */ readonly ciPrev: Int32Array;
  /** @internal */ readonly ciNext: Int32Array;
  /** @internal Ledger lock id of ci->lock, −1 until first use. */ readonly ciLock: Int32Array;
  /** Per cluster: slots whose count lives in the extension table. */
  readonly ciExtSlots: Uint16Array;
  /** Per cluster: extend_table (or continuation counters), null when not allocated. */
  readonly ext: (Uint32Array | null)[];
  /** @internal */ readonly listHead: Int32Array;
  /** @internal */ readonly listTail: Int32Array;
  /** Clusters on each list (LIST_* order). */
  readonly listLen: Int32Array;
  /** @internal Ledger lock id of si->lock (guards the cluster lists). */
  readonly siLock: number;
  /** @internal The name of cluster c's ci->lock is this prefix (`swap_cluster:<type>:`) + c. */
  readonly clusterLockPrefix: string;
  /** percpu_swap_cluster.offset[order] of the one modelled CPU (0 = SWAP_ENTRY_INVALID). */
  readonly pcpOffset: Int32Array;

  /** total_swap_pages contributed by this device (good slots). */
  readonly totalSwapPages: number;
  /** nr_swap_pages: free good slots. */
  nrSwapPages: number;
  /** si->inuse_pages. */
  inusePages = 0;
  /** @internal Scalar stats by ST index. */
  readonly stat = new Float64Array(NR_ST);
  /** mTHP stat swpout[order] (MTHP_STAT_SWPOUT). */
  readonly swpout: Float64Array;
  /** mTHP stat swpout_fallback[order]. */
  readonly swpoutFallback: Float64Array;
  /** mTHP stat swpin[order]. */
  readonly swpin: Float64Array;
  /** Fault injection switches. */
  readonly faults: SwapFaults = { failExtendAlloc: false, failNextExtendAllocs: 0, dupEnomem: false, allocEnomem: false };
  /** @internal */ readonly folioMapped: (folio: Folio) => boolean;
  /** @internal */ readonly releaseFolio: (folio: Folio) => void;

  constructor(opts: SwapDeviceOptions) {
    const { memmap, nrSlots } = opts;
    const type = opts.type ?? 0;
    const bad = (msg: string, details: Record<string, unknown>): never => {
      throw new FoliolabError('EINVAL', `SwapDevice: ${msg}`, details);
    };
    if (!Number.isInteger(nrSlots) || nrSlots <= 0 || nrSlots % SWAPFILE_CLUSTER !== 0 || nrSlots > SWAP_MAX_SLOTS) {
      bad(`nrSlots ${nrSlots} must be a positive multiple of ${SWAPFILE_CLUSTER} and at most ${SWAP_MAX_SLOTS}`, { nrSlots });
    }
    if (!Number.isInteger(type) || type < 0 || type >= MAX_SWAPFILES) bad(`type ${type} is outside 0..${MAX_SWAPFILES - 1}`, { type });
    const countModel = opts.countModel ?? 'extend';
    if (countModel !== 'extend' && countModel !== 'continuation' && countModel !== 'legacy') {
      bad(`countModel ${String(countModel)} is not 'extend', 'continuation' or 'legacy'`, { countModel });
    }
    const extend = countModel === 'extend';
    const countMax = opts.countMax ?? (extend ? SWP_TB_COUNT_MAX : SWAP_MAP_MAX);
    const [lo, hi] = extend ? [2, SWAP_MAP_MAX] : [1, SWAP_MAP_MAX];
    if (!Number.isInteger(countMax) || countMax < lo || countMax > hi) {
      bad(`countMax ${countMax} is outside ${lo}..${hi} for countModel '${countModel}'`, { countMax, countModel });
    }
    this.memmap = memmap;
    this.ledger = memmap.ledger;
    this.type = type;
    this.nrSlots = nrSlots;
    this.thpSwap = opts.thpSwap ?? true;
    this.blockDevice = opts.blockDevice ?? true;
    this.synchronousIo = opts.synchronousIo ?? true;
    this.clusterSize = this.thpSwap ? SWAPFILE_CLUSTER : SWAPFILE_CLUSTER / 2;
    this.clusterShift = Math.log2(this.clusterSize);
    this.nrClusters = nrSlots / this.clusterSize;
    this.nrOrders = this.thpSwap ? SWAP_NR_ORDERS : 1;
    this.countModel = countModel;
    this.countMax = countMax;
    this.inlineLimit = extend ? countMax - 1 : countMax;
    this.extMarker = countMax;

    const nc = this.nrClusters;
    this.ciCount = new Uint16Array(nc);
    this.ciOrder = new Uint8Array(nc);
    this.ciList = new Int8Array(nc).fill(LIST_NONE);
    this.ciPrev = new Int32Array(nc).fill(-1);
    this.ciNext = new Int32Array(nc).fill(-1);
    this.ciLock = new Int32Array(nc).fill(-1);
    this.ciExtSlots = new Uint16Array(nc);
    this.ext = new Array<Uint32Array | null>(nc).fill(null);
    this.ciBase = new Int32Array(nc).fill(-1);
    this.ciCached = new Array<Int32Array | null>(nc).fill(null);
    this.ciMap = new Array<Uint8Array | null>(nc).fill(null);
    this.ciData = new Array<Uint32Array | null>(nc).fill(null);
    this.tbFree = new Int32Array(0);
    this.ciShadow = new Array<Uint32Array | null>(nc).fill(null);
    this.zeromapBits = new Uint32Array(nrSlots >>> 5);
    this.listHead = new Int32Array(NR_LISTS).fill(-1);
    this.listTail = new Int32Array(NR_LISTS).fill(-1);
    this.listLen = new Int32Array(NR_LISTS);
    this.siLock = this.ledger.lockId(`swap_info:${type}`, 'other');
    this.clusterLockPrefix = `swap_cluster:${type}:`;
    this.pcpOffset = new Int32Array(SWAP_NR_ORDERS);
    this.swpout = new Float64Array(SWAP_NR_ORDERS);
    this.swpoutFallback = new Float64Array(SWAP_NR_ORDERS);
    this.swpin = new Float64Array(SWAP_NR_ORDERS);

    // swapon: slot 0 holds the swap header and is marked bad; a cluster with
    // a bad slot starts on nonfull_clusters[0], the others on the free list
    // (setup_clusters()).
    // swap_cluster_setup_bad_slot(): the header's cluster gets its table now.
    clusterAllocTable(this, 0);
    this.ciMap[0]![0] = SWAP_MAP_BAD;
    this.ciCount[0] = 1;
    listAddTail(this, 0, LIST_NONFULL);
    for (let c = 1; c < nc; c++) listAddTail(this, c, LIST_FREE);
    this.totalSwapPages = nrSlots - 1;
    this.nrSwapPages = this.totalSwapPages;
    this.folioMapped = opts.folioMapped ?? folioMappedDefault;
    this.releaseFolio = opts.releaseFolio ?? ((f: Folio): void => f.mm.freeFolio(f));
    this.map = slotView(this, VIEW_MAP);
    this.cached = slotView(this, VIEW_CACHED);
    this.shadow = slotView(this, VIEW_SHADOW);
    this.zeromap = slotView(this, VIEW_ZEROMAP);
    this.data = slotView(this, VIEW_DATA);
  }

  /** The device's counters (vmstat, mTHP stats, usage, cluster lists, hints) as a plain object. */
  snapshot(): SwapSnapshot {
    const n = SWAP_NR_ORDERS;
    const s = this.stat;
    const per = (a: Float64Array | Int32Array, from = 0): number[] => Array.from(a.subarray(from, from + n));
    return {
      type: this.type,
      nrSlots: this.nrSlots,
      clusterSize: this.clusterSize,
      countModel: this.countModel,
      countMax: this.countMax,
      totalSwapPages: this.totalSwapPages,
      nrSwapPages: this.nrSwapPages,
      inusePages: this.inusePages,
      nrSwapcache: s[ST.NR_SWAPCACHE]!,
      swpout: per(this.swpout),
      swpoutFallback: per(this.swpoutFallback),
      swpin: per(this.swpin),
      thpSwpout: s[ST.THP_SWPOUT]!,
      thpSwpoutFallback: s[ST.THP_SWPOUT_FALLBACK]!,
      pswpout: s[ST.PSWPOUT]!,
      pswpin: s[ST.PSWPIN]!,
      swpoutZero: s[ST.SWPOUT_ZERO]!,
      swpinZero: s[ST.SWPIN_ZERO]!,
      extendTables: s[ST.EXT_TABLES]!,
      extendAllocs: s[ST.EXT_ALLOCS]!,
      extendAllocFailures: s[ST.EXT_ALLOC_FAILURES]!,
      clusters: {
        free: this.listLen[LIST_FREE]!,
        nonfull: per(this.listLen, LIST_NONFULL),
        frag: per(this.listLen, LIST_FRAG),
        full: this.listLen[LIST_FULL]!,
      },
      pcpOffset: per(this.pcpOffset),
    };
  }
}

/** folio_mapped() read from the memmap fields (not charged). */
function folioMappedDefault(folio: Folio): boolean {
  const { fa, fb } = folio;
  if (fa[fb + F_LARGE_MAPCOUNT]! >= 0 || fa[fb + F_ENTIRE_MAPCOUNT]! >= 0) return true;
  const mc = folio.mm.mapcount;
  if (mc !== null) for (let p = folio.head; p < folio.head + folio.nr; p++) if (mc[p]! >= 0) return true;
  return false;
}

// --- swap tables ------------------------------------------------------------

/**
 * Tables a pool keeps when it shrinks (36 KiB with 512-slot clusters): a
 * device emptied by a swap-in is often filled again, and regrowing costs
 * reallocations (a fresh device starts with the header's table only).
 */
const POOL_KEEP = 8;

/**
 * @internal swap_cluster_alloc_table(): give cluster `c` a table from the
 * pool (all slots uncached, counts and data 0), doubling the pool when it is
 * full. Returns the table's base (ciBase[c]).
 */
export function clusterAllocTable(si: SwapDevice, c: number): number {
  if (si.tbFreeTop === 0) poolGrow(si);
  const t = si.tbFree[--si.tbFreeTop]!;
  const base = t * si.clusterSize;
  si.ciBase[c] = base;
  si.ciCached[c] = si.poolCached[t] ?? poolInitTable(si, t);
  si.ciMap[c] = si.poolMap[t]!;
  si.ciData[c] = si.poolData[t]!;
  si.tbInUse++;
  return base;
}

/**
 * First use of pool table `t`: make its three views into its chunk and set
 * its table words to −1 (none); counts and data are the chunk's zeroes.
 * Returns the table-word view.
 */
function poolInitTable(si: SwapDevice, t: number): Int32Array {
  const cs = si.clusterSize;
  const k = t === 0 ? 0 : 32 - Math.clz32(t); // chunk number (chunks of 1, 1, 2, 4, … tables)
  const first = k === 0 ? 0 : 1 << (k - 1);
  const n = k === 0 ? 1 : first; // tables in chunk k
  const buf = si.poolChunks[k]!;
  const len = n * cs;
  const i = t - first;
  const cached = new Int32Array(buf, i * cs * 4, cs).fill(-1);
  si.poolCached[t] = cached;
  si.poolData[t] = new Uint32Array(buf, (len + i * cs) * 4, cs);
  si.poolMap[t] = new Uint8Array(buf, len * 8 + i * cs, cs);
  return cached;
}

/**
 * @internal swap_cluster_free_table(): cluster `c` has no used slot (so no
 * count, binding, shadow or data is lost); its table goes back to the pool,
 * cleared, and the pool shrinks to half when at most a quarter is in use.
 */
export function clusterFreeTable(si: SwapDevice, c: number): void {
  const base = si.ciBase[c]!;
  si.ciShadow[c] = null;
  if (base < 0) return;
  si.ciCached[c]!.fill(-1);
  si.ciMap[c]!.fill(0);
  si.ciData[c]!.fill(0);
  si.ciBase[c] = -1;
  si.ciCached[c] = null;
  si.ciMap[c] = null;
  si.ciData[c] = null;
  si.tbFree[si.tbFreeTop++] = base / si.clusterSize;
  si.tbInUse--;
  if (si.tbCapacity > POOL_KEEP && si.tbInUse * 4 <= si.tbCapacity) poolShrink(si, Math.max(POOL_KEEP, si.tbCapacity >>> 1));
}

/**
 * The pool is full: add a chunk of max(1, tbCapacity) clean tables (one
 * allocation; views made at each table's first use, poolInitTable) and put
 * them on the free stack, lowest number on top. Nothing is copied.
 */
function poolGrow(si: SwapDevice): void {
  const cs = si.clusterSize;
  const old = si.tbCapacity;
  const n = Math.max(1, old);
  const cap = old + n;
  // One buffer per chunk (one allocation, not three): table words, data
  // tokens, then count bytes.
  si.poolChunks.push(new ArrayBuffer(n * cs * 9));
  for (let k = 0; k < n; k++) {
    si.poolCached.push(null);
    si.poolData.push(null);
    si.poolMap.push(null);
  }
  const free = new Int32Array(cap); // the stack is empty: the pool was full
  let top = 0;
  for (let t = cap - 1; t >= old; t--) free[top++] = t;
  si.tbFree = free;
  si.tbFreeTop = top;
  si.tbCapacity = cap;
}

/**
 * Halve the pool to `cap` tables (at most a quarter of it is in use): move
 * every table in use at or above `cap` into a free table below it (the free
 * tables are clean), then drop the views of the last chunk, which frees it.
 */
function poolShrink(si: SwapDevice, cap: number): void {
  const cs = si.clusterSize;
  const used = new Uint8Array(cap);
  for (let c = 0; c < si.nrClusters; c++) {
    const t = si.ciBase[c]! / cs;
    if (t >= 0 && t < cap) used[t] = 1;
  }
  let to = 0;
  for (let c = 0; c < si.nrClusters; c++) {
    const t = si.ciBase[c]! / cs;
    if (t < cap) continue;
    while (used[to] === 1) to++;
    used[to] = 1;
    if (si.poolCached[to] === null) poolInitTable(si, to);
    si.poolCached[to]!.set(si.poolCached[t]!);
    si.poolMap[to]!.set(si.poolMap[t]!);
    si.poolData[to]!.set(si.poolData[t]!);
    si.ciBase[c] = to * cs;
    si.ciCached[c] = si.poolCached[to]!;
    si.ciMap[c] = si.poolMap[to]!;
    si.ciData[c] = si.poolData[to]!;
  }
  si.poolCached.length = cap;
  si.poolMap.length = cap;
  si.poolData.length = cap;
  si.poolChunks.length = 32 - Math.clz32(cap - 1) + 1; // the chunks of tables 0..cap−1 (cap a power of two ≥ 8)
  const free = new Int32Array(cap);
  let top = 0;
  for (let t = cap - 1; t >= 0; t--) if (used[t] === 0) free[top++] = t;
  si.tbFree = free;
  si.tbFreeTop = top;
  si.tbCapacity = cap;
}

// --- slots ------------------------------------------------------------------

/** @internal The full count of slot `s` (swp_swapcount: the extension table included). */
export function slotCount(si: SwapDevice, s: number): number {
  const c = s >>> si.clusterShift;
  const map = si.ciMap[c] ?? null;
  if (map === null) return 0;
  const m = map[s & (si.clusterSize - 1)]!;
  if ((m & COUNT_CONTINUED) === 0) return m === SWAP_MAP_BAD ? 0 : m & SWAP_COUNT_MASK;
  return si.ext[c]![s & (si.clusterSize - 1)]!;
}

/** @internal The count byte of slot `s` (0 when its cluster has no table). */
export function slotMap(si: SwapDevice, s: number): number {
  const map = si.ciMap[s >>> si.clusterShift] ?? null;
  return map === null ? 0 : map[s & (si.clusterSize - 1)]!;
}

/** @internal Head PFN of the swap-cache folio slot `s` is bound to, −1 = none. */
export function slotCached(si: SwapDevice, s: number): number {
  const table = si.ciCached[s >>> si.clusterShift] ?? null;
  return table === null ? -1 : table[s & (si.clusterSize - 1)]!;
}

/** @internal The shadow in slot `s`'s table word (0 = none). */
export function slotShadow(si: SwapDevice, s: number): number {
  const a = si.ciShadow[s >>> si.clusterShift];
  return a === null || a === undefined ? 0 : a[s & (si.clusterSize - 1)]!;
}

/** @internal The data token written to slot `s` (0 when none was stored). */
export function slotData(si: SwapDevice, s: number): number {
  const data = si.ciData[s >>> si.clusterShift] ?? null;
  return data === null ? 0 : data[s & (si.clusterSize - 1)]!;
}

/** @internal si->zeromap bit of slot `s`. */
export function slotZero(si: SwapDevice, s: number): boolean {
  return (si.zeromapBits[s >>> 5]! & (1 << (s & 31))) !== 0;
}

/** @internal Set (`zero`) or clear the zeromap bits of [off, off + nr). */
export function zeromapSetRange(si: SwapDevice, off: number, nr: number, zero: boolean): void {
  const bits = si.zeromapBits;
  const end = off + nr;
  for (let s = off; s < end; ) {
    const w = s >>> 5;
    const lo = s & 31;
    const n = Math.min(32 - lo, end - s);
    const mask = n === 32 ? -1 : ((1 << n) - 1) << lo;
    bits[w] = zero ? bits[w]! | mask : bits[w]! & ~mask;
    s += n;
  }
}

/** @internal Whether slot `s` is allocated: counted, cached, or bad. */
export function slotUsed(si: SwapDevice, s: number): boolean {
  return slotMap(si, s) !== 0 || slotCached(si, s) >= 0;
}

/** @internal vm_swap_full(): more than half of the swap space is in use. */
export function vmSwapFull(si: SwapDevice): boolean {
  return si.nrSwapPages * 2 < si.totalSwapPages;
}

/** @internal One per-CPU counter update (vm events, mTHP and lruvec stats). */
export function chargePcpu(si: SwapDevice, n = 1): void {
  si.ledger.charge(EV.PCPU_COUNTER, n);
}
