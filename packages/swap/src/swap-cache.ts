import { EV, FoliolabError } from '@foliolab/ledger';
import {
  F_SWAP,
  FLAG,
  folioPutRefs,
  folioRefAdd,
  folioSetDirty,
  folioTestSwapcache,
  folioTestWriteback,
  folioTrylock,
  folioTryGet,
  folioUnlock,
  type Folio,
} from '@foliolab/folio-flags';
import { folioSwapEntry, swpOffset, SWP_OFFSET_MASK, SWP_TYPE_SHIFT, type SwpEntry } from './entry.js';
import { NEG_EEXIST, NEG_ENOENT, type NegEEXIST, type NegENOENT } from './errno.js';
import { slotCached, slotCount, slotData, slotMap, slotShadow, slotZero, vmSwapFull, type SwapDevice } from './device.js';
import { COUNT_CONTINUED, ST, SWAP_COUNT_MASK, SWAP_HAS_CACHE, SWAP_MAP_BAD } from './layout.js';
import { clusterLock, clusterUnlock, swapEntriesFree } from './cluster.js';
import {
  assertCacheFolio,
  assertDeviceFolio,
  assertEntryRange,
  assertLocked,
  rawSwapbacked,
  rawSwapcache,
  rawWriteback,
} from './validate.js';

/*
 * The swap cache (mm/swap_state.c, v7.0 swap-table phase II): a slot is
 * cached when its table word holds the folio (here the cluster's `ciCached`
 * entry = the folio's head PFN, for all nr slots of a large folio). The cache holds nr folio
 * references, the folio has PG_swapcache and folio->swap = its first slot,
 * NR_SWAPCACHE counts nr pages.
 */

/** __try_to_reclaim_swap flags. */
export const TTRS_ANYWAY = 1;
export const TTRS_UNMAPPED = 2;
export const TTRS_FULL = 4;

/** NR_FILE_PAGES and NR_SWAPCACHE: two lruvec/node stat updates per add or delete. */
const SWAPCACHE_STATS = 2;

const M_SWAPCACHE = FLAG.swapcache.mask;

/**
 * @internal __swap_cache_add_folio() (v7.0): bind `folio` to its nr slots
 * from `off` under the cluster lock: table words → folio (nr
 * SWAP_SLOT_UPDATE), folio_ref_add(nr), PG_swapcache, folio->swap,
 * NR_SWAPCACHE += nr. The cluster has its table (its slots are in use, or the
 * allocator gave it one). The folio is live (checked by every caller).
 */
export function swapCacheAddLocked(si: SwapDevice, folio: Folio, off: number): void {
  const { head, nr } = folio;
  const c = off >>> si.clusterShift;
  const i = off & (si.clusterSize - 1);
  const end = i + nr;
  const b = i;
  const table = si.ciCached[c]!;
  for (let k = b; k < b + nr; k++) table[k] = head;
  const sh = si.ciShadow[c] ?? null;
  if (sh !== null) for (let k = i; k < end; k++) sh[k] = 0;
  if (si.countModel === 'legacy') {
    const map = si.ciMap[c]!;
    for (let k = b; k < b + nr; k++) map[k] = map[k]! | SWAP_HAS_CACHE;
  }
  const ledger = si.ledger;
  ledger.charge(EV.SWAP_SLOT_UPDATE, nr);
  // folio_ref_add() and folio_set_swapcache() on the memmap words directly
  // (one ATOMIC_REF, one ATOMIC_RMW): the folio is live, so the only error
  // folioRefAdd could raise is the refcount one, left to it.
  const mm = folio.mm;
  const ref = mm.aux[head]!;
  if (ref <= 0) folioRefAdd(folio, nr);
  ledger.charge(EV.ATOMIC_REF);
  mm.aux[head] = ref + nr;
  ledger.charge(EV.ATOMIC_RMW);
  mm.flags[head] = mm.flags[head]! | M_SWAPCACHE;
  folio.fa[folio.fb + F_SWAP] = (si.type << SWP_TYPE_SHIFT) | off;
  si.stat[ST.NR_SWAPCACHE]! += nr;
  ledger.charge(EV.PCPU_COUNTER, SWAPCACHE_STATS);
}

/**
 * @internal __swap_cache_del_folio() (v7.0) under the cluster lock: every
 * table word becomes `shadow` (nr SWAP_SLOT_UPDATE), folio->swap = 0,
 * PG_swapcache cleared, NR_SWAPCACHE −= nr, then the slots whose count is 0
 * are freed (in one batch when none is still swapped). References are the
 * caller's business. The folio is live and bound to the nr slots from `off`.
 */
export function swapCacheDelLocked(si: SwapDevice, c: number, folio: Folio, off: number, shadow: number): void {
  const nr = folio.nr;
  const i = off & (si.clusterSize - 1);
  const end = i + nr;
  const table = si.ciCached[c]!;
  const map = si.ciMap[c]!;
  const sh = shadow !== 0 ? (si.ciShadow[c] ??= new Uint32Array(si.clusterSize)) : (si.ciShadow[c] ?? null);
  if (sh !== null) for (let k = i; k < end; k++) sh[k] = shadow;
  if (si.countModel === 'legacy') for (let k = i; k < end; k++) map[k] = map[k]! & ~SWAP_HAS_CACHE;
  // Unbind each slot and see whether it is still counted (slotCount, read
  // flat from the count byte), in one pass.
  let swapped = 0;
  for (let k = i; k < end; k++) {
    table[k] = -1;
    const m = map[k]!;
    if ((m & COUNT_CONTINUED) === 0 ? m !== SWAP_MAP_BAD && (m & SWAP_COUNT_MASK) !== 0 : si.ext[c]![k] !== 0) swapped++;
  }
  const ledger = si.ledger;
  ledger.charge(EV.SWAP_SLOT_UPDATE, nr);
  // folio->swap = 0 and folio_clear_swapcache() (one ATOMIC_RMW) on the live folio's words.
  folio.fa[folio.fb + F_SWAP] = 0;
  const mm = folio.mm;
  ledger.charge(EV.ATOMIC_RMW);
  mm.flags[folio.head] = mm.flags[folio.head]! & ~M_SWAPCACHE;
  si.stat[ST.NR_SWAPCACHE]! -= nr;
  ledger.charge(EV.PCPU_COUNTER, SWAPCACHE_STATS);
  if (swapped === 0) {
    swapEntriesFree(si, c, off, nr);
  } else if (swapped !== nr) {
    for (let s = off; s < off + nr; s++) if (slotCount(si, s) === 0) swapEntriesFree(si, c, s, 1);
  }
}

/** Result of swapCacheAddFolio. */
export interface SwapCacheAddResult {
  /** 0, −EEXIST (a slot already has a folio) or −ENOENT (a slot is not in use). */
  readonly err: 0 | NegEEXIST | NegENOENT;
  /** The workingset shadow the table held (0 = none). */
  readonly shadow: number;
}

/**
 * swap_cache_add_folio() (v7.0, the swap-in side, via
 * __swap_cache_prepare_and_add): bind a locked, swap-backed folio that is not
 * in the swap cache to the used, uncached slots [entry, entry + nr). One
 * cluster-lock round trip. Returns the table's shadow (of the last slot, as the
 * kernel's per-slot overwrite does); −EEXIST / −ENOENT change nothing. The
 * entry must be aligned to the folio size (the caller rounds it down).
 */
export function swapCacheAddFolio(si: SwapDevice, folio: Folio, entry: SwpEntry): SwapCacheAddResult {
  const fn = 'swapCacheAddFolio';
  assertDeviceFolio(fn, si, folio);
  assertLocked(fn, folio);
  const off = assertEntryRange(fn, si, entry, folio.nr);
  const { head, nr } = folio;
  if (!rawSwapbacked(folio) || rawSwapcache(folio) || folioSwapEntry(folio) !== 0) {
    throw new FoliolabError('EINVAL', `${fn}: folio ${head} must be swap-backed and not in the swap cache`, { head });
  }
  if (off % nr !== 0) {
    throw new FoliolabError('EINVAL', `${fn}: offset ${off} is not aligned to folio ${head} of ${nr} pages`, { head, offset: off });
  }
  if (nr > si.clusterSize) {
    // A swap-cache folio lies in one cluster (checkSwapInvariants); only a
    // device without CONFIG_THP_SWAP (256-slot clusters) could be asked this.
    throw new FoliolabError('EINVAL', `${fn}: folio ${head} of ${nr} pages is larger than a swap cluster (${si.clusterSize} slots)`, { head });
  }
  const c = off >>> si.clusterShift;
  clusterLock(si, c);
  let err: 0 | NegEEXIST | NegENOENT = 0;
  let shadow = 0;
  for (let s = off; s < off + nr && err === 0; s++) {
    if (slotCached(si, s) >= 0) err = NEG_EEXIST;
    else if (slotCount(si, s) === 0) err = NEG_ENOENT;
    else shadow = slotShadow(si, s);
  }
  if (err === 0) swapCacheAddLocked(si, folio, off);
  clusterUnlock(si, c);
  return { err, shadow: err === 0 ? shadow : 0 };
}

function checkShadow(fn: string, shadow: number): void {
  // (x >>> 0) === x: an integer in 0..2^32−1 (as Number.isInteger && range).
  if (shadow >>> 0 !== shadow) {
    throw new FoliolabError('EINVAL', `${fn}: shadow ${shadow} is not a 32-bit token (0 = none)`, { shadow });
  }
}

function checkDeletable(fn: string, si: SwapDevice, folio: Folio, shadow: number): number {
  const off = assertCacheFolio(fn, si, folio);
  checkShadow(fn, shadow);
  if (rawWriteback(folio)) throw new FoliolabError('EBUSY', `${fn}: folio ${folio.head} is under writeback`, { head: folio.head });
  return off;
}

/**
 * swap_cache_del_folio() / delete_from_swap_cache() (v7.0): remove a locked
 * swap-cache folio (not under writeback) from the swap cache, leaving
 * `shadow` in its table words, freeing its slots whose count is 0, and drop
 * the cache's nr references (one ATOMIC_REF). Returns whether the refcount
 * reached 0 (the folio is not freed: that is the caller's free path).
 */
export function swapCacheDelFolio(si: SwapDevice, folio: Folio, shadow = 0): boolean {
  const off = checkDeletable('swapCacheDelFolio', si, folio, shadow);
  const ref = folio.mm.aux[folio.head]!;
  if (ref < folio.nr) {
    throw new FoliolabError('EINVAL', `swapCacheDelFolio: folio ${folio.head} has refcount ${ref} < ${folio.nr} cache references`, {
      head: folio.head,
      refcount: ref,
    });
  }
  delFolio(si, folio, off, shadow);
  return folioPutRefs(folio, folio.nr);
}

/**
 * __swap_cache_del_folio() as __remove_mapping() uses it (v7.0): the same
 * removal under one cluster-lock round trip, refcount untouched (reclaim froze
 * it at 1 + nr and frees the folio itself).
 */
export function __swapCacheDelFolio(si: SwapDevice, folio: Folio, shadow = 0): void {
  const off = checkDeletable('__swapCacheDelFolio', si, folio, shadow);
  delFolio(si, folio, off, shadow);
}

/**
 * @internal __swap_cache_del_folio() for __remove_mapping(), unchecked (same
 * events and end state as `__swapCacheDelFolio`). The caller guarantees: `si`
 * is a SwapDevice; `folio` is a live folio of its memmap, locked, not under
 * writeback, in this device's swap cache (PG_swapcache, folio->swap of this
 * device, its nr slots bound to it); `shadow` is an integer 0..2^32−1.
 */
export function __swapCacheDelFolioUnchecked(si: SwapDevice, folio: Folio, shadow = 0): void {
  delFolio(si, folio, folio.fa[folio.fb + F_SWAP]! & SWP_OFFSET_MASK, shadow);
}

function delFolio(si: SwapDevice, folio: Folio, off: number, shadow: number): void {
  const c = off >>> si.clusterShift;
  clusterLock(si, c);
  swapCacheDelLocked(si, c, folio, off, shadow);
  clusterUnlock(si, c);
}

/**
 * swap_cache_get_folio() (v7.0): the folio the slot's table word points to,
 * with a reference taken (folio_try_get: one ATOMIC_REF), or null. The caller
 * drops the reference (folioPutRefs).
 */
export function swapCacheGetFolio(si: SwapDevice, entry: SwpEntry): Folio | null {
  const off = assertEntryRange('swapCacheGetFolio', si, entry, 1);
  return cacheGet(si, off);
}

function cacheGet(si: SwapDevice, off: number): Folio | null {
  const pfn = slotCached(si, off);
  if (pfn < 0) return null;
  const folio = si.memmap.folioAt(pfn);
  return folioTryGet(folio) ? folio : null;
}

/** folio_swapcache_freeable() (v7.0): in the swap cache and not under writeback (hibernation not modelled). */
function folioSwapcacheFreeable(folio: Folio): boolean {
  return folioTestSwapcache(folio) && !folioTestWriteback(folio);
}

/**
 * swap_only_has_cache() negated (7.2.13 mm/swapfile.c:__try_to_reclaim_swap):
 * any slot count > 0, read under one cluster-lock round trip.
 */
function folioSwapped(si: SwapDevice, off: number, nr: number): boolean {
  const c = off >>> si.clusterShift;
  clusterLock(si, c);
  let swapped = false;
  for (let s = off; s < off + nr && !swapped; s++) swapped = slotCount(si, s) !== 0;
  clusterUnlock(si, c);
  return swapped;
}

/**
 * @internal folio_maybe_swapped() (7.2.13 mm/swapfile.c): any slot count > 0, read
 * under rcu_read_lock() — the folio lock keeps the slots, so no cluster lock
 * and nothing charged (a plain read of the table words).
 */
export function folioMaybeSwapped(si: SwapDevice, off: number, nr: number): boolean {
  for (let s = off; s < off + nr; s++) if (slotCount(si, s) !== 0) return true;
  return false;
}

/**
 * folio_free_swap() (7.2.13 mm/swapfile.c): if the locked folio is in this
 * device's swap cache, not under writeback (folio_swapcache_freeable), and no
 * slot is still referenced (folio_maybe_swapped: all counts 0, read without
 * the cluster lock), remove it from the swap cache (swap_cache_del_folio: one
 * cluster-lock round trip, dropping the nr references), mark it dirty (its
 * only copy is now in memory) and return true; else false, unchanged.
 */
export function folioFreeSwap(si: SwapDevice, folio: Folio): boolean {
  const fn = 'folioFreeSwap';
  assertDeviceFolio(fn, si, folio);
  assertLocked(fn, folio);
  if (rawSwapcache(folio)) {
    assertCacheFolio(fn, si, folio);
    const ref = folio.mm.aux[folio.head]!;
    if (ref <= folio.nr) {
      throw new FoliolabError('EINVAL', `${fn}: folio ${folio.head} has refcount ${ref}: the caller holds no reference besides the cache's ${folio.nr}`, {
        head: folio.head,
        refcount: ref,
      });
    }
  }
  if (!folioSwapcacheFreeable(folio)) return false;
  const off = swpOffset(folioSwapEntry(folio));
  if (folioMaybeSwapped(si, off, folio.nr)) return false;
  freeSwapLocked(si, folio, off);
  return true;
}

/**
 * @internal The tail of folio_free_swap() once it decided to free:
 * swap_cache_del_folio() (one cluster-lock round trip, the nr references
 * dropped) and folio_set_dirty(). The folio is locked, in this device's swap
 * cache at `off`, not under writeback, and the caller holds a reference.
 */
export function freeSwapLocked(si: SwapDevice, folio: Folio, off: number): void {
  delFolio(si, folio, off, 0);
  folioPutRefs(folio, folio.nr);
  folioSetDirty(folio);
}

/**
 * @internal __try_to_reclaim_swap() (v7.0): for the folio cached at slot
 * `off`, if it can be locked with a trylock, `flags` allow it (ANYWAY;
 * UNMAPPED and not mapped; FULL and vm_swap_full()), it is freeable and all
 * its counts are 0, remove it from the swap cache and mark it dirty. Returns
 * 0 (no folio), nr (reclaimed) or −nr (kept). Called without cluster locks.
 * The final folio_put may drop the last reference: SwapDevice.releaseFolio.
 */
export function tryToReclaimSwap(si: SwapDevice, off: number, flags: number): number {
  const folio = cacheGet(si, off);
  if (folio === null) return 0;
  const nr = folio.nr;
  let ret = -nr;
  if (folioTrylock(folio)) {
    const start = swpOffset(folioSwapEntry(folio));
    const need =
      (flags & TTRS_ANYWAY) !== 0 ||
      ((flags & TTRS_UNMAPPED) !== 0 && !si.folioMapped(folio)) ||
      ((flags & TTRS_FULL) !== 0 && vmSwapFull(si));
    if (need && folioSwapcacheFreeable(folio) && !folioSwapped(si, start, nr)) {
      delFolio(si, folio, start, 0);
      folioPutRefs(folio, nr);
      folioSetDirty(folio);
      ret = nr;
    }
    folioUnlock(folio);
  }
  if (folioPutRefs(folio, 1)) si.releaseFolio(folio);
  return ret;
}

/** swp_swapcount() (v7.1) / swap_swapcount(): the full count of a slot, extension included (a read, not charged). */
export function swapCount(si: SwapDevice, entry: SwpEntry): number {
  return slotCount(si, assertEntryRange('swapCount', si, entry, 1));
}

/** __swap_count(): the count as the slot's own byte/word holds it — saturated at the extension marker (not charged). */
export function __swapCount(si: SwapDevice, entry: SwpEntry): number {
  const m = slotMap(si, assertEntryRange('__swapCount', si, entry, 1));
  return m === SWAP_MAP_BAD ? 0 : m & SWAP_COUNT_MASK;
}

/** What one slot holds, for dumps and tests (allocates; not a hot path). */
export interface SwapSlotInfo {
  readonly offset: number;
  /** Full count (extension included). */
  readonly count: number;
  /** The count lives in the cluster's extension table. */
  readonly extended: boolean;
  /** Head PFN of the swap-cache folio, −1 = none. */
  readonly cached: number;
  readonly shadow: number;
  readonly zeromap: boolean;
  /** Data token written to the slot. */
  readonly data: number;
  /** The header slot (SWAP_MAP_BAD). */
  readonly bad: boolean;
  /** The raw count byte (legacy: count | SWAP_HAS_CACHE | COUNT_CONTINUED). */
  readonly map: number;
}

/** The state of the slot at `entry` (uncharged). The header slot 0 is accepted here. */
export function swapSlotInfo(si: SwapDevice, entry: SwpEntry): SwapSlotInfo {
  const off = swpOffset(entry);
  if (off === 0) assertEntryRange('swapSlotInfo', si, (entry + 1) as SwpEntry, 1);
  else assertEntryRange('swapSlotInfo', si, entry, 1);
  const m = slotMap(si, off);
  return {
    offset: off,
    count: slotCount(si, off),
    extended: (m & COUNT_CONTINUED) !== 0,
    cached: slotCached(si, off),
    shadow: slotShadow(si, off),
    zeromap: slotZero(si, off),
    data: slotData(si, off),
    bad: m === SWAP_MAP_BAD,
    map: m,
  };
}
