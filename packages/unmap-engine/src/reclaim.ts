import { MTHP, VM, RS } from './stats.js';
import {
  F_LARGE_MAPCOUNT,
  F_PINCOUNT,
  FLAG,
  folioClearActive,
  folioClearDirty,
  folioClearReclaim,
  folioSetActive,
  folioSetDirty,
  folioSetReclaim,
  folioSetReferenced,
  folioTestClearReclaim,
  folioTestClearReferenced,
  folioTestClearWriteback,
  folioTrylock,
  folioUnlock,
  type Folio,
} from '@foliolab/folio-flags';
import { EV, FoliolabError } from '@foliolab/ledger';
import { tryToUnmapFlush, tryToUnmapFlushDirty } from '@foliolab/pagetable-arm64-contpte';
import { folioOnDeferredList } from '@foliolab/rmap';
import {
  __swapCacheDelFolioUnchecked,
  ENOMEM,
  countSwpoutFallback,
  folioAllocSwapUnchecked,
  folioFreeSwap,
  swapWriteoutUnchecked,
} from '@foliolab/swap';
import { GUP_PIN_COUNTING_BIAS, TTU_BATCH_FLUSH, TTU_SYNC, VM_LOCKED } from './consts.js';
import { freeFolioFinal } from './folio-ops.js';
import type { Kernel } from './kernel.js';
import { folioRotateReclaimable, lruPutback } from './lru.js';
import { folioReferenced } from './referenced.js';
import { splitFolio } from './split.js';
import { folioMappedRaw, tryToUnmap } from './ttu.js';
import { MEMCG_ROOT, workingsetEviction } from './workingset.js';

/*
 * shrink_folio_list() for anonymous folios (7.2.13 mm/vmscan.c; unmap-engine
 * §5, folio-rmap-swap §3.4) and reclaim_pages() (MADV_PAGEOUT). The folio
 * list is a stack whose top is the kernel list's tail (lru_to_folio), so
 * `pop()` takes the next folio and split tails pushed by split_folio_to_list
 * (list_add_tail) are processed next, as in the kernel.
 *
 * reclaim_pages passes ignore_references; LRU reclaim (vmscan.ts) asks
 * folio_check_references, which walks the rmap (folio_referenced) and keeps
 * or activates a folio whose PTEs were young. pageout() writes a dirty
 * swap-cache folio held only by the isolation and the swap cache; on a
 * SWP_SYNCHRONOUS_IO device the write ends inside and the folio is freed at
 * once, on another the folio is kept under writeback with PG_reclaim
 * (swapWritebackEnd completes it when the operation returns).
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

export function emptyResult(): ReclaimResult {
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

/** folio_check_references()'s answers. */
const FOLIOREF_RECLAIM = 0;
const FOLIOREF_RECLAIM_CLEAN = 1;
const FOLIOREF_KEEP = 2;
const FOLIOREF_ACTIVATE = 3;

/**
 * folio_check_references() (7.2.13 mm/vmscan.c, classic LRU): a folio found
 * in a VM_LOCKED VMA (now mlocked) is activated; otherwise PG_referenced is
 * tested and cleared, and a folio whose PTEs were young gets PG_referenced
 * back and is activated if it was referenced before or young in more than
 * one mapping, else kept for another trip round the inactive list. An
 * unreferenced lazyfree (file-LRU) folio with PG_referenced is reclaimed only
 * if clean.
 */
function folioCheckReferences(k: Kernel, f: Folio): number {
  const referencedPtes = folioReferenced(k, f, true);
  if ((k.referencedControl!.vmFlags & VM_LOCKED) !== 0) return FOLIOREF_ACTIVATE;
  if (referencedPtes === -1) return FOLIOREF_KEEP;
  const referencedFolio = folioTestClearReferenced(f);
  if (referencedPtes !== 0) {
    folioSetReferenced(f);
    if (referencedFolio || referencedPtes > 1) return FOLIOREF_ACTIVATE;
    return FOLIOREF_KEEP; // no VM_EXEC file folios in the model
  }
  if (referencedFolio && !hasFlag(k, f, FLAG.swapbacked.mask)) return FOLIOREF_RECLAIM_CLEAN;
  return FOLIOREF_RECLAIM;
}

/**
 * shrink_folio_list(folio_list, …, ignore_references) for anon folios.
 * Kept/activated folios are returned for putback; freed folios are freed
 * after the final try_to_unmap_flush. `targetMemcg` is sc->target_mem_cgroup
 * (workingset.ts: MEMCG_ROOT for reclaim_pages, which has none), the memcg
 * workingset_eviction charges the evictions to.
 */
export function shrinkFolioList(k: Kernel, list: Folio[], res: ReclaimResult, ignoreReferences = true, targetMemcg = MEMCG_ROOT): Folio[] {
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
    const outcome = shrinkOne(k, f, list, res, nrPages, ignoreReferences, targetMemcg);
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

/**
 * folio_alloc_swap(folio) (7.2.13 mm/swapfile.c) of a folio shrinkOne checked
 * (locked, uptodate, swap-backed, not in the swap cache): nonzero when no slot
 * was found — always without a swap device (swap_alloc_fast and
 * swap_alloc_slow find no device), which MADV_PAGEOUT's reclaim_pages reaches
 * since it does not go through get_scan_count.
 */
function allocSwap(si: Kernel['si'], f: Folio): number {
  return si === null ? -ENOMEM : folioAllocSwapUnchecked(si, f);
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

function shrinkOne(k: Kernel, f0: Folio, list: Folio[], res: ReclaimResult, nr0: number, ignoreReferences: boolean, targetMemcg: number): Outcome {
  let f = f0;
  const si = k.si;
  let nrPages = nr0;
  if (hasFlag(k, f, FLAG.unevictable.mask) || hasFlag(k, f, FLAG.mlocked.mask)) return outcome('activate', nrPages, f);
  if (hasFlag(k, f, FLAG.writeback.mask)) {
    // Still being written (a device without SWP_SYNCHRONOUS_IO): case 2, mark for immediate reclaim, activate.
    folioSetReclaim(f);
    return outcome('activate', nrPages, f);
  }
  const references = ignoreReferences ? FOLIOREF_RECLAIM : folioCheckReferences(k, f);
  if (references === FOLIOREF_ACTIVATE) return outcome('activate', nrPages, f);
  if (references === FOLIOREF_KEEP) {
    k.stats.addReclaim(RS.nr_ref_keep, nrPages);
    return outcome('keepLocked', nrPages, f);
  }
  const anon = true;
  if (anon && hasFlag(k, f, FLAG.swapbacked.mask) && !inSwapcache(k, f)) {
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
    if (allocSwap(si, f) !== 0) {
      if (f.order === 0) return outcome('activate', 1, f);
      const order = f.order;
      if (splitFolio(k, f, list) !== 0) return outcome('activate', nrPages, f);
      f = k.memmap.folioAt(f.head);
      if (si !== null) countSwpoutFallback(si, order);
      else k.stats.mthpCount(order, MTHP.swpout_fallback);
      if (allocSwap(si, f) !== 0) return outcome('activate', 1, f);
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
  if (hasFlag(k, f, FLAG.dirty.mask)) {
    if (!hasFlag(k, f, FLAG.swapbacked.mask)) {
      // A dirty file-LRU folio (a VM_DROPPABLE one: try_to_unmap_one discards it dirty): "immediately reclaim when written back".
      if (!hasFlag(k, f, FLAG.reclaim.mask)) folioSetReclaim(f);
      return outcome('activate', nrPages, f);
    }
    if (references === FOLIOREF_RECLAIM_CLEAN) return outcome('keepLocked', nrPages, f);
    tryToUnmapFlushDirty(k.tlb);
    // pageout(): only the isolation and the swap cache may hold the folio (else PAGE_KEEP).
    if (si === null || !inSwapcache(k, f)) return outcome('keepLocked', nrPages, f);
    k.ledger.charge(EV.ATOMIC_READ);
    if (k.memmap.aux[f.head] !== 1 + f.nr) return outcome('keepLocked', nrPages, f);
    folioClearDirty(f); // folio_clear_dirty_for_io
    folioSetReclaim(f);
    swapWriteoutUnchecked(si, f); // in the swap cache (checked above), locked; unlocks the folio
    if (!hasFlag(k, f, FLAG.writeback.mask)) folioClearReclaim(f); // a synchronous write
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
    // __remove_mapping(): freeze at 1 + nr (isolation + swap cache), delete from the swap cache leaving the eviction's shadow.
    if (si === null || !inSwapcache(k, f)) return outcome('keepLocked', nrPages, f);
    k.ledger.charge(EV.ATOMIC_REF);
    if (mm.aux[f.head] !== 1 + f.nr) return outcome('keepLocked', nrPages, f);
    __swapCacheDelFolioUnchecked(si, f, workingsetEviction(k, f, targetMemcg)); // locked, in the swap cache (checked above), refcount frozen
    mm.aux[f.head] = 0;
  }
  folioUnlock(f);
  return outcome('free', nrPages, f);
}

/**
 * The end of an asynchronous swap write (end_swap_bio_write →
 * folio_end_writeback, 7.2.13 mm/page_io.c, mm/filemap.c) for every folio
 * still under writeback: PG_reclaim cleared and the folio rotated to the tail
 * of its inactive list (folio_rotate_reclaimable), then PG_writeback cleared.
 * When: the loop device's worker completes the bio when the scheduler lets
 * it run (drivers/block/loop.c loop_queue_work → loop_workfn) — after the
 * submitting task returns to user space, or earlier at one of reclaim's
 * cond_resched points; no source fixes which. The oracle has recorded both
 * for a memory.reclaim that writes a folio and scans it again at a later
 * priority (still under writeback: activated; already written: freed;
 * oracle-swap-async-writeback.yaml says why that case is not recorded).
 * Model choice: every write ends when the operation that started it
 * returns, so it is always seen in flight within the operation and done by
 * the next one (as every record shows for MADV_PAGEOUT).
 */
export function swapWritebackEnd(k: Kernel): void {
  const si = k.si;
  if (si === null || si.writebackInFlight.length === 0) return;
  const heads = si.writebackInFlight.splice(0);
  for (const h of heads) {
    const f = k.memmap.folioAt(h);
    if (folioTestClearReclaim(f)) folioRotateReclaimable(k, f);
    folioTestClearWriteback(f);
  }
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
