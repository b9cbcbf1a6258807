import { VM, RS } from './stats.js';
import {
  F_LARGE_MAPCOUNT,
  F_PINCOUNT,
  FLAG,
  folioClearActive,
  folioClearDirty,
  folioSetActive,
  folioSetDirty,
  folioTrylock,
  folioUnlock,
  type Folio,
} from '@foliolab/folio-flags';
import { EV, FoliolabError } from '@foliolab/ledger';
import { tryToUnmapFlush, tryToUnmapFlushDirty } from '@foliolab/pagetable-arm64-contpte';
import { folioOnDeferredList } from '@foliolab/rmap';
import {
  __swapCacheDelFolioUnchecked,
  countSwpoutFallback,
  folioAllocSwapUnchecked,
  folioFreeSwap,
  swapWriteoutUnchecked,
} from '@foliolab/swap';
import { GUP_PIN_COUNTING_BIAS, TTU_BATCH_FLUSH, TTU_SYNC } from './consts.js';
import { freeFolioFinal } from './folio-ops.js';
import type { Kernel } from './kernel.js';
import { lruIsolate, lruOldestFirst, lruPutback } from './lru.js';
import { splitFolio } from './split.js';
import { folioMappedRaw, tryToUnmap } from './ttu.js';

/*
 * Reclaim of anonymous folios (mm/vmscan.c shrink_folio_list 2026;
 * unmap-engine §5, folio-rmap-swap §3.4): the folio list is a stack whose
 * top is the kernel list's tail (lru_to_folio), so `pop()` takes the next
 * folio and split tails pushed by split_folio_to_list (list_add_tail) are
 * processed next, as in the kernel.
 *
 * [I] References are ignored in every entry point (reclaim_pages passes
 * ignore_references; for proactive/node reclaim the model skips
 * folio_check_references, i.e. treats every folio as FOLIOREF_RECLAIM), so
 * one pass reclaims what the spec's scenarios expect. Writeback is
 * synchronous (a zram-like device), so pageout is followed by the free.
 */

/** What one reclaim call did. */
export interface ReclaimResult {
  /** Pages scanned (isolated and passed to shrink_folio_list). */
  scanned: number;
  /** Pages freed. */
  reclaimed: number;
  /** Pages still mapped after try_to_unmap. */
  unmapFail: number;
  /** Pages activated. */
  activated: number;
  /** Pages written out (including zeromap-only writes). */
  pageout: number;
  /** Lazyfree pages discarded (PGLAZYFREED). */
  lazyfreed: number;
}

function emptyResult(): ReclaimResult {
  return { scanned: 0, reclaimed: 0, unmapFail: 0, activated: 0, pageout: 0, lazyfreed: 0 };
}

function hasFlag(k: Kernel, f: Folio, mask: number): boolean {
  return (k.memmap.flags[f.head]! & mask) !== 0;
}

/** folio_maybe_dma_pinned(): one ATOMIC_READ. */
function maybePinned(k: Kernel, f: Folio): boolean {
  k.ledger.charge(EV.ATOMIC_READ);
  return f.order > 0 ? f.fa[f.fb + F_PINCOUNT]! > 0 : k.memmap.aux[f.head]! >= GUP_PIN_COUNTING_BIAS;
}

function mapcountOf(k: Kernel, f: Folio): number {
  return f.order === 0 ? k.memmap.mapcount![f.head]! + 1 : f.fa[f.fb + F_LARGE_MAPCOUNT]! + 1;
}

const SC = FLAG.swapcache.mask | FLAG.swapbacked.mask;

function inSwapcache(k: Kernel, f: Folio): boolean {
  return (k.memmap.flags[f.head]! & SC) === SC;
}

/** can_split_folio(folio, caller_pins): mapcount == refcount − swap-cache refs − caller_pins. */
function canSplitFolio(k: Kernel, f: Folio, callerPins: number): boolean {
  const extra = inSwapcache(k, f) ? f.nr : 0;
  return mapcountOf(k, f) === k.memmap.aux[f.head]! - extra - callerPins;
}

/**
 * shrink_folio_list(folio_list, …, ignore_references) for anon folios.
 * Kept/activated folios are returned for putback; freed folios are freed
 * after the final try_to_unmap_flush.
 */
export function shrinkFolioList(k: Kernel, list: Folio[], res: ReclaimResult): Folio[] {
  const ret: Folio[] = [];
  const toFree: Folio[] = [];
  const si = k.si;
  while (list.length > 0) {
    let f = list.pop()!;
    let nrPages = f.nr;
    res.scanned += nrPages;
    k.stats.addReclaim(RS.nr_scanned, nrPages);
    if (!folioTrylock(f)) {
      ret.push(f);
      continue;
    }
    const outcome = shrinkOne(k, f, list, res, nrPages);
    f = outcome.folio;
    if (outcome.kind === 'free') {
      res.reclaimed += outcome.nr;
      k.stats.addReclaim(RS.nr_reclaimed, outcome.nr);
      toFree.push(f);
      continue;
    }
    nrPages = outcome.nr;
    if (outcome.kind === 'activate') {
      if (inSwapcache(k, f) && si !== null && (si.nrSwapPages * 2 < si.totalSwapPages || hasFlag(k, f, FLAG.mlocked.mask))) folioFreeSwap(si, f);
      if (!hasFlag(k, f, FLAG.mlocked.mask)) {
        folioSetActive(f);
        res.activated += nrPages;
        k.stats.addReclaim(RS.nr_activate, nrPages);
        k.stats.count(VM.pgactivate, nrPages);
      }
    } else {
      k.stats.addReclaim(RS.nr_keep, nrPages);
    }
    if (outcome.kind !== 'keep') folioUnlock(f);
    ret.push(f);
  }
  tryToUnmapFlush(k.tlb);
  for (const f of toFree) freeFolioFinal(k, f, true); // unmapped, frozen, unlocked by shrinkOne
  return ret;
}

type Outcome = { kind: 'free' | 'activate' | 'keepLocked' | 'keep'; nr: number; folio: Folio };

/** shrinkOne's result, reused (no object per folio): read by shrinkFolioList before the next shrinkOne. */
const lastOutcome: Outcome = { kind: 'keep', nr: 0, folio: null as unknown as Folio };

function outcome(kind: Outcome['kind'], nr: number, folio: Folio): Outcome {
  lastOutcome.kind = kind;
  lastOutcome.nr = nr;
  lastOutcome.folio = folio;
  return lastOutcome;
}

function shrinkOne(k: Kernel, f0: Folio, list: Folio[], res: ReclaimResult, nr0: number): Outcome {
  let f = f0;
  const si = k.si;
  let nrPages = nr0;
  if (hasFlag(k, f, FLAG.unevictable.mask) || hasFlag(k, f, FLAG.mlocked.mask)) return outcome('activate', nrPages, f);
  const anon = true;
  if (anon && hasFlag(k, f, FLAG.swapbacked.mask) && !inSwapcache(k, f)) {
    // [I] No swap device: the kernel would not scan anon folios at all (get_scan_count); activate, do not split.
    if (si === null) return outcome('activate', nrPages, f);
    if (maybePinned(k, f)) {
      k.stats.addReclaim(RS.nr_pinned_keep, nrPages);
      return outcome('keepLocked', nrPages, f);
    }
    if (f.order > 0) {
      if (!canSplitFolio(k, f, 1)) return outcome('activate', nrPages, f);
      if (folioOnDeferredList(f) && (k.memmap.flags[f.head + 1]! & FLAG.partially_mapped.mask) !== 0) {
        if (splitFolio(k, f, list) !== 0) return outcome('activate', nrPages, f);
        f = k.memmap.folioAt(f.head);
      }
    }
    if (folioAllocSwapUnchecked(si, f) !== 0) { // locked, uptodate, swap-backed, not in the swap cache (checked above)
      if (f.order === 0) return outcome('activate', 1, f);
      const order = f.order;
      if (splitFolio(k, f, list) !== 0) return outcome('activate', nrPages, f);
      f = k.memmap.folioAt(f.head);
      countSwpoutFallback(si, order);
      if (folioAllocSwapUnchecked(si, f) !== 0) return outcome('activate', 1, f);
    }
    k.ledger.charge(EV.FLAG_LOAD);
    if (!hasFlag(k, f, FLAG.dirty.mask)) folioSetDirty(f);
  }
  if (nrPages > 1 && f.order === 0) nrPages = 1;
  if (folioMappedRaw(k, f)) {
    const wasSwapbacked = hasFlag(k, f, FLAG.swapbacked.mask);
    const flags = TTU_BATCH_FLUSH | (f.order > 0 ? TTU_SYNC : 0);
    tryToUnmap(k, f, flags);
    if (folioMappedRaw(k, f)) {
      res.unmapFail += nrPages;
      k.stats.addReclaim(RS.nr_unmap_fail, nrPages);
      if (!wasSwapbacked && hasFlag(k, f, FLAG.swapbacked.mask)) k.stats.addReclaim(RS.nr_lazyfree_fail, nrPages);
      return outcome('activate', nrPages, f);
    }
  }
  if (maybePinned(k, f)) return outcome('activate', nrPages, f);
  if (hasFlag(k, f, FLAG.dirty.mask) && hasFlag(k, f, FLAG.swapbacked.mask)) {
    if (si === null || !inSwapcache(k, f)) return outcome('keepLocked', nrPages, f);
    tryToUnmapFlushDirty(k.tlb);
    folioClearDirty(f); // folio_clear_dirty_for_io
    swapWriteoutUnchecked(si, f); // in the swap cache (checked above), locked; unlocks the folio
    res.pageout += nrPages;
    k.stats.addReclaim(RS.nr_pageout, nrPages);
    if (hasFlag(k, f, FLAG.writeback.mask) || hasFlag(k, f, FLAG.dirty.mask)) return outcome('keep', nrPages, f);
    if (!folioTrylock(f)) return outcome('keep', nrPages, f);
  }
  const mm = k.memmap;
  if (!hasFlag(k, f, FLAG.swapbacked.mask)) {
    // lazyfree: folio_ref_freeze(folio, 1)
    k.ledger.charge(EV.ATOMIC_REF);
    if (mm.aux[f.head] !== 1) return outcome('keepLocked', nrPages, f);
    mm.aux[f.head] = 0;
    k.stats.count(VM.pglazyfreed, nrPages);
    res.lazyfreed += nrPages;
  } else {
    // __remove_mapping(): freeze at 1 + nr (isolation + swap cache), delete from the swap cache.
    if (si === null || !inSwapcache(k, f)) return outcome('keepLocked', nrPages, f);
    k.ledger.charge(EV.ATOMIC_REF);
    if (mm.aux[f.head] !== 1 + f.nr) return outcome('keepLocked', nrPages, f);
    __swapCacheDelFolioUnchecked(si, f); // locked, in the swap cache (checked above), refcount frozen
    mm.aux[f.head] = 0;
  }
  folioUnlock(f);
  return outcome('free', nrPages, f);
}

/** Put kept folios back on the LRU (folio_putback_lru), in list order. */
function putback(k: Kernel, ret: Folio[]): void {
  for (const f of ret) {
    if (!k.memmap.folioIsLive(f)) throw new FoliolabError('EINVARIANT', `reclaim: kept folio ${f.head} was freed`);
    lruPutback(k, f);
  }
}

/**
 * reclaim_pages(folio_list) (MADV_PAGEOUT): folios in the order they were
 * isolated; one shrink_folio_list(ignore_references) and putback.
 */
export function reclaimPages(k: Kernel, isolated: Folio[]): ReclaimResult {
  const res = emptyResult();
  if (isolated.length === 0) return res;
  const list = isolated.slice().reverse();
  for (const f of list) if (hasFlag(k, f, FLAG.active.mask)) folioClearActive(f);
  const ret = shrinkFolioList(k, list, res);
  putback(k, ret);
  k.stats.count(VM.pgsteal, res.reclaimed);
  return res;
}

/** SWAP_CLUSTER_MAX: folios isolated per shrink_folio_list call. */
const SWAP_CLUSTER_MAX = 32;

/**
 * Proactive / node reclaim over the LRU, oldest first, evictable folios only
 * (optionally only those in `heads`), in batches of SWAP_CLUSTER_MAX, until
 * `nrToReclaim` pages are freed. [I] The inactive/active aging is not
 * modelled: active folios are reclaimable too (deactivated on isolation).
 */
export function reclaimLru(k: Kernel, nrToReclaim: number, heads: Set<number> | null): ReclaimResult {
  const res = emptyResult();
  const candidates = lruOldestFirst(k).filter((h) => {
    if (heads !== null && !heads.has(h)) return false;
    return (k.memmap.flags[h]! & (FLAG.unevictable.mask | FLAG.mlocked.mask)) === 0;
  });
  for (let c = 0; c < candidates.length && res.reclaimed < nrToReclaim; c += SWAP_CLUSTER_MAX) {
    const batch: Folio[] = [];
    for (const h of candidates.slice(c, c + SWAP_CLUSTER_MAX)) {
      if ((k.memmap.flags[h]! & 0x80000000) === 0) continue; // freed meanwhile (not a head any more)
      const f = k.memmap.folioOf(h);
      if (f === null || f.head !== h) continue;
      k.stats.count(VM.pgscan, f.nr);
      if (lruIsolate(k, f)) batch.push(f);
    }
    const r = reclaimPages(k, batch);
    res.scanned += r.scanned;
    res.reclaimed += r.reclaimed;
    res.unmapFail += r.unmapFail;
    res.activated += r.activated;
    res.pageout += r.pageout;
    res.lazyfreed += r.lazyfreed;
  }
  return res;
}
