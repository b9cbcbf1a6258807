import { FLAG, folioClearActive, folioPutRefs, folioRefAdd, folioSetFlag, folioSetLru, folioTestClearLru, type Folio } from '@foliolab/folio-flags';
import type { Kernel } from './kernel.js';
import {
  LRU_ACTIVE_ANON,
  LRU_ACTIVE_FILE,
  LRU_INACTIVE_ANON,
  LRU_INACTIVE_FILE,
  lruAdd,
  lruTailHead,
  lruvecAddFolio,
  lruvecDelFolio,
  lruYoungerHead,
  type Lruvec,
} from './lru.js';
import { emptyResult, shrinkFolioList, type ReclaimResult } from './reclaim.js';
import { shrinkDeferredSplit } from './split.js';
import { folioReferenced } from './referenced.js';
import { VM } from './stats.js';
import { MEMCG_SCENARIO, workingsetAgeNonresident } from './workingset.js';

/*
 * Proactive reclaim (memory.reclaim of the scenario's memory cgroup) and node
 * reclaim over the classic LRU, 7.2.13 mm/vmscan.c: user_proactive_reclaim
 * asks in batches of a quarter of what is left and gives up with −EAGAIN
 * after MAX_RECLAIM_RETRIES + 1 rounds that reclaim nothing; each round is
 * try_to_free_mem_cgroup_pages (memcg) or __node_reclaim (node):
 * do_try_to_free_pages' priority loop from DEF_PRIORITY to 0 (again with
 * memcg_full_walk, again with force_deactivate if the active list was
 * skipped) → shrink_node → shrink_lruvec: get_scan_count sizes each list's
 * scan as (size >> priority) balanced by swappiness and the recent cost of
 * anon and file reclaim, shrink_inactive_list isolates from the tail and
 * calls shrink_folio_list (folio_check_references: folio_referenced per
 * folio), shrink_active_list ages the active list (folio_referenced,
 * deactivate). The counts this gives — how often one unreclaimable folio is
 * scanned, activated and deactivated — are the kernel's, not a cost
 * approximation: spec 21's record scans it 69 times.
 *
 * What the kernel reads from rstat (lruvec_page_state: inactive_is_low, the
 * cost decay, cache_trim_mode) is the copy flushed before the step
 * (Lruvec.stat); lru_zone_size (get_scan_count) is exact.
 *
 * Node reclaim (/sys/devices/system/node/nodeN/reclaim) is __node_reclaim,
 * which shrinks the node only when its unmapped page cache exceeds
 * min_unmapped_pages (1% of the node) or its reclaimable slab
 * min_slab_pages: the model has neither, so node reclaim frees nothing and
 * ends in −EAGAIN (recorded: packages/kernel-oracle/recorded/arm64/oracle-node-reclaim.json).
 * One lruvec: the scenario's memcg holds every folio (the oracle runs each
 * scenario in a fresh memory cgroup of its own, docs/ORACLE.md). No memory.low/min
 * protection, no demotion, no MGLRU (the oracle turns it off).
 * Shadow entries (workingset.ts): __remove_mapping leaves one charged to the
 * scenario's memcg (workingset_eviction), a swap-in may activate the folio
 * (workingset_refault), and prepare_scan_control then lets the active anon
 * list be aged while WORKINGSET_ACTIVATE_ANON differs from the snapshot the
 * last reclaim took (snapshot_refaults).
 */

const SWAP_CLUSTER_MAX = 32;
const DEF_PRIORITY = 12;
const MAX_RECLAIM_RETRIES = 16;
const MAX_SWAPPINESS = 200;
/** vm_swappiness; cgroup v2 has no per-memcg swappiness (mem_cgroup_swappiness). */
const VM_SWAPPINESS = 60;
const DEACTIVATE_ANON = 1;
const DEACTIVATE_FILE = 2;

const SCAN_EQUAL = 0;
const SCAN_FRACT = 1;
const SCAN_ANON = 2;
const SCAN_FILE = 3;

/** struct scan_control: the fields these paths read. */
interface ScanControl {
  readonly nrToReclaim: number;
  nrReclaimed: number;
  priority: number;
  mayDeactivate: number;
  forceDeactivate: boolean;
  skippedDeactivate: boolean;
  memcgFullWalk: boolean;
  cacheTrimMode: boolean;
  anonCost: number;
  fileCost: number;
  /** Model-only range restriction of Engine.reclaim (no kernel equivalent; the oracle does not translate it): only these folio heads are scanned (null = all). */
  readonly heads: Set<number> | null;
  readonly res: ReclaimResult;
  /** get_scan_count's nr[] and targets[] (LRU_INACTIVE_ANON..LRU_ACTIVE_FILE). */
  readonly nr: Float64Array;
  readonly targets: Float64Array;
}

function newScanControl(nrToReclaim: number, heads: Set<number> | null, res: ReclaimResult): ScanControl {
  return {
    nrToReclaim,
    nrReclaimed: 0,
    priority: DEF_PRIORITY,
    mayDeactivate: 0,
    forceDeactivate: false,
    skippedDeactivate: false,
    memcgFullWalk: false,
    cacheTrimMode: false,
    anonCost: 0,
    fileCost: 0,
    heads,
    res,
    nr: new Float64Array(4),
    targets: new Float64Array(4),
  };
}

function isFileLru(lru: number): boolean {
  return lru === LRU_INACTIVE_FILE || lru === LRU_ACTIVE_FILE;
}

function intSqrt(x: number): number {
  return Math.floor(Math.sqrt(x));
}

/** inactive_is_low(lruvec, inactive_lru), on the flushed sizes. */
function inactiveIsLow(v: Lruvec, inactiveLru: number): boolean {
  const inactive = v.stat[inactiveLru]!;
  const active = v.stat[inactiveLru + 1]!;
  const gb = Math.floor((inactive + active) / 2 ** 18); // >> (30 - PAGE_SHIFT)
  const ratio = gb !== 0 ? intSqrt(10 * gb) : 1;
  return inactive * ratio < active;
}

/** The pages of list `lru` the reclaim may scan: lruvec_lru_size, or (model-only range restriction) those of the chosen folios. */
function lruSize(k: Kernel, sc: ScanControl, lru: number): number {
  if (sc.heads === null) return k.lruvec.pages[lru]!;
  let pages = 0;
  for (let h = lruTailHead(k, lru); h >= 0; h = lruYoungerHead(k, h)) if (sc.heads.has(h)) pages += k.memmap.folioAt(h).nr;
  return pages;
}

/** can_reclaim_anon_pages(): swap space left (no demotion). */
function canReclaimAnonPages(k: Kernel): boolean {
  return k.si !== null && k.si.nrSwapPages > 0;
}

/** can_age_anon_pages(): a swap device is configured (total_swap_pages > 0). */
function canAgeAnonPages(k: Kernel): boolean {
  return k.si !== null && k.si.totalSwapPages > 0;
}

/**
 * lru_note_cost_unlock_irq(lruvec, file, nr_io, nr_rotated) (mm/swap.c):
 * IO counts SWAP_CLUSTER_MAX times a rotation; both costs halve when their
 * sum passes a quarter of the LRU (flushed sizes). The kernel adds the cost
 * to every ancestor's lruvec too (7.2.13 mm/swap.c:lru_note_cost_unlock_irq,
 * parent_lruvec), but prepare_scan_control reads only the target memcg's
 * (mm/vmscan.c): memory.reclaim targets the scenario's memcg, whose costs are
 * these, and node reclaim, which targets the root, never scans here
 * (__node_reclaim), so the parents' costs are not kept.
 */
export function lruNoteCost(v: Lruvec, file: boolean, nrIo: number, nrRotated: number): void {
  const cost = nrIo * SWAP_CLUSTER_MAX + nrRotated;
  if (cost === 0) return;
  if (file) v.fileCost += cost;
  else v.anonCost += cost;
  const lrusize = v.stat[LRU_INACTIVE_ANON]! + v.stat[LRU_ACTIVE_ANON]! + v.stat[LRU_INACTIVE_FILE]! + v.stat[LRU_ACTIVE_FILE]!;
  if (v.fileCost + v.anonCost > Math.floor(lrusize / 4)) {
    v.fileCost = Math.floor(v.fileCost / 2);
    v.anonCost = Math.floor(v.anonCost / 2);
  }
}

/** prepare_scan_control() for the classic LRU. */
function prepareScanControl(k: Kernel, sc: ScanControl): void {
  const v = k.lruvec;
  sc.anonCost = v.anonCost;
  sc.fileCost = v.fileCost;
  if (!sc.forceDeactivate) {
    // When refaults are being observed, a new workingset is being established: deactivate.
    if (v.workingsetActivate[0] !== v.refaults[0] || inactiveIsLow(v, LRU_INACTIVE_ANON)) sc.mayDeactivate |= DEACTIVATE_ANON;
    else sc.mayDeactivate &= ~DEACTIVATE_ANON;
    if (v.workingsetActivate[1] !== v.refaults[1] || inactiveIsLow(v, LRU_INACTIVE_FILE)) sc.mayDeactivate |= DEACTIVATE_FILE;
    else sc.mayDeactivate &= ~DEACTIVATE_FILE;
  } else {
    sc.mayDeactivate = DEACTIVATE_ANON | DEACTIVATE_FILE;
  }
  const file = v.stat[LRU_INACTIVE_FILE]!;
  sc.cacheTrimMode = Math.floor(file / 2 ** sc.priority) !== 0 && (sc.mayDeactivate & DEACTIVATE_FILE) === 0;
  // file_is_tiny is computed for global reclaim only.
}

/** get_scan_count(lruvec, sc, nr): how many pages of each evictable list to scan at this priority. */
function getScanCount(k: Kernel, sc: ScanControl): void {
  let balance: number;
  let fa = 0;
  let ff = 0;
  const swappiness: number = VM_SWAPPINESS;
  if (!canReclaimAnonPages(k)) balance = SCAN_FILE;
  else if (sc.priority === 0 && swappiness !== 0) balance = SCAN_EQUAL;
  else if (sc.cacheTrimMode) balance = SCAN_FILE;
  else {
    balance = SCAN_FRACT;
    // calculate_pressure_balance()
    let totalCost = sc.anonCost + sc.fileCost;
    const anonCost = totalCost + sc.anonCost;
    const fileCost = totalCost + sc.fileCost;
    totalCost = anonCost + fileCost;
    fa = Math.floor((swappiness * (totalCost + 1)) / (anonCost + 1));
    ff = Math.floor(((MAX_SWAPPINESS - swappiness) * (totalCost + 1)) / (fileCost + 1));
  }
  for (let lru = LRU_INACTIVE_ANON; lru <= LRU_ACTIVE_FILE; lru++) {
    const file = isFileLru(lru);
    let scan = Math.floor(lruSize(k, sc, lru) / 2 ** sc.priority);
    if (balance === SCAN_FRACT) scan = Math.floor((scan * (file ? ff : fa)) / (fa + ff)); // the memcg is online: rounded down
    else if ((balance === SCAN_FILE && !file) || (balance === SCAN_ANON && file)) scan = 0;
    sc.nr[lru] = scan;
  }
}

/**
 * isolate_lru_folios(nr_to_scan, lruvec, dst, &nr_scanned, sc, lru): folios
 * from the list's tail (oldest first) until `nrToScan` pages were looked at;
 * each taken loses PG_lru and gains the isolation reference. Returns the
 * folios in the order taken; `isolated.scanned` is every page looked at.
 * A (model-only) range restriction skips the other folios where they are, unscanned.
 */
function isolateLruFolios(k: Kernel, sc: ScanControl, nrToScan: number, lru: number, out: Folio[]): number {
  let scan = 0;
  let totalScan = 0;
  let h = lruTailHead(k, lru);
  while (scan < nrToScan && h >= 0) {
    const younger = lruYoungerHead(k, h);
    const f = k.memmap.folioAt(h);
    if (sc.heads !== null && !sc.heads.has(h)) {
      h = younger;
      continue;
    }
    totalScan += f.nr;
    scan += f.nr;
    if (folioTestClearLru(f)) {
      lruvecDelFolio(k, f);
      folioRefAdd(f, 1);
      out.push(f);
    }
    h = younger;
  }
  return totalScan;
}

/**
 * move_folios_to_lru(list): each folio back on the head of its list (an
 * unevictable one through folio_putback_lru), the isolation reference
 * dropped (a folio whose last it was is freed); an active one ages the
 * lruvec's nonresident pages (workingset_age_nonresident). Returns the pages moved.
 */
function moveFoliosToLru(k: Kernel, list: Folio[]): number {
  let moved = 0;
  for (const f of list) {
    if ((f.mm.flags[f.head]! & FLAG.mlocked.mask) !== 0) {
      if (folioPutRefs(f, 1)) k.releaseFolio(f);
      else lruAdd(k, f);
      continue;
    }
    if (folioPutRefs(f, 1)) {
      k.releaseFolio(f);
      continue;
    }
    if ((f.mm.flags[f.head]! & FLAG.unevictable.mask) !== 0) lruAdd(k, f);
    else {
      lruvecAddFolio(k, f);
      folioSetLru(f);
    }
    moved += f.nr;
    if ((f.mm.flags[f.head]! & FLAG.active.mask) !== 0) workingsetAgeNonresident(k, MEMCG_SCENARIO, f.nr);
  }
  return moved;
}

/** shrink_inactive_list(nr_to_scan, lruvec, sc, lru): isolate, shrink_folio_list (with references), put back. */
function shrinkInactiveList(k: Kernel, sc: ScanControl, nrToScan: number, lru: number): number {
  const list: Folio[] = [];
  const nrScanned = isolateLruFolios(k, sc, nrToScan, lru, list);
  k.stats.count(VM.pgscan, nrScanned);
  if (list.length === 0) return 0;
  const res = sc.res;
  const reclaimedBefore = res.reclaimed;
  const pageoutBefore = res.pageout;
  const ret = shrinkFolioList(k, list.reverse(), res, false, MEMCG_SCENARIO);
  moveFoliosToLru(k, ret);
  const nrReclaimed = res.reclaimed - reclaimedBefore;
  k.stats.count(VM.pgsteal, nrReclaimed);
  lruNoteCost(k.lruvec, isFileLru(lru), res.pageout - pageoutBefore, nrScanned - nrReclaimed);
  return nrReclaimed;
}

/**
 * shrink_active_list(nr_to_scan, lruvec, sc, lru): isolate from the active
 * list's tail (PGREFILL), ask folio_referenced of each (its young bits are
 * cleared; a folio found in a VM_LOCKED VMA is mlocked), and deactivate
 * every evictable one — anon folios are not rotated, however referenced.
 */
function shrinkActiveList(k: Kernel, sc: ScanControl, nrToScan: number, lru: number): void {
  const hold: Folio[] = [];
  const nrScanned = isolateLruFolios(k, sc, nrToScan, lru, hold);
  k.stats.count(VM.pgrefill, nrScanned);
  const inactive: Folio[] = [];
  for (const f of hold) {
    if ((f.mm.flags[f.head]! & FLAG.mlocked.mask) !== 0) {
      if (folioPutRefs(f, 1)) k.releaseFolio(f);
      else lruAdd(k, f); // folio_putback_lru
      continue;
    }
    folioReferenced(k, f, false); // VM_EXEC file folios would rotate: the model has none
    folioClearActive(f);
    folioSetFlag(f, FLAG.workingset);
    inactive.push(f);
  }
  const nrDeactivate = moveFoliosToLru(k, inactive);
  k.stats.count(VM.pgdeactivate, nrDeactivate);
}

/** shrink_list(lru, nr_to_scan, lruvec, sc). */
function shrinkList(k: Kernel, sc: ScanControl, lru: number, nrToScan: number): number {
  if (lru === LRU_ACTIVE_ANON || lru === LRU_ACTIVE_FILE) {
    if ((sc.mayDeactivate & (isFileLru(lru) ? DEACTIVATE_FILE : DEACTIVATE_ANON)) !== 0) shrinkActiveList(k, sc, nrToScan, lru);
    else sc.skippedDeactivate = true;
    return 0;
  }
  return shrinkInactiveList(k, sc, nrToScan, lru);
}

/** shrink_lruvec(lruvec, sc) (classic LRU). */
function shrinkLruvec(k: Kernel, sc: ScanControl): void {
  const nr = sc.nr;
  const targets = sc.targets;
  getScanCount(k, sc);
  targets.set(nr);
  const nrToReclaim = sc.nrToReclaim;
  let nrReclaimed = 0;
  while (nr[LRU_INACTIVE_ANON] !== 0 || nr[LRU_ACTIVE_FILE] !== 0 || nr[LRU_INACTIVE_FILE] !== 0) {
    for (let lru = LRU_INACTIVE_ANON; lru <= LRU_ACTIVE_FILE; lru++) {
      if (nr[lru] === 0) continue;
      const nrToScan = Math.min(nr[lru]!, SWAP_CLUSTER_MAX);
      nr[lru]! -= nrToScan;
      nrReclaimed += shrinkList(k, sc, lru, nrToScan);
    }
    if (nrReclaimed < nrToReclaim) continue; // (proportional_reclaim is for global direct reclaim only)
    // Reclaimed enough: scan the other type only in proportion to what get_scan_count asked.
    const nrFile = nr[LRU_INACTIVE_FILE]! + nr[LRU_ACTIVE_FILE]!;
    const nrAnon = nr[LRU_INACTIVE_ANON]! + nr[LRU_ACTIVE_ANON]!;
    if (nrFile === 0 || nrAnon === 0) break;
    let stop: number;
    let percentage: number;
    if (nrFile > nrAnon) {
      stop = LRU_INACTIVE_ANON;
      percentage = Math.floor((nrAnon * 100) / (targets[LRU_INACTIVE_ANON]! + targets[LRU_ACTIVE_ANON]! + 1));
    } else {
      stop = LRU_INACTIVE_FILE;
      percentage = Math.floor((nrFile * 100) / (targets[LRU_INACTIVE_FILE]! + targets[LRU_ACTIVE_FILE]! + 1));
    }
    nr[stop] = 0;
    nr[stop + 1] = 0;
    const other = stop === LRU_INACTIVE_FILE ? LRU_INACTIVE_ANON : LRU_INACTIVE_FILE;
    for (const lru of [other, other + 1]) {
      const scanned = targets[lru]! - nr[lru]!;
      nr[lru] = Math.floor((targets[lru]! * (100 - percentage)) / 100);
      nr[lru] -= Math.min(nr[lru], scanned);
    }
  }
  sc.nrReclaimed += nrReclaimed;
  // Even without evicting anon, keep the anon inactive:active ratio.
  if (canAgeAnonPages(k) && inactiveIsLow(k.lruvec, LRU_INACTIVE_ANON)) shrinkActiveList(k, sc, SWAP_CLUSTER_MAX, LRU_ACTIVE_ANON);
}

/**
 * shrink_node(pgdat, sc) for memcg reclaim: prepare_scan_control, then
 * shrink_node_memcgs' one lruvec and its shrink_slab (the deferred split
 * shrinker, split.ts); order-0 reclaim does not continue. What the
 * shrinker frees is not counted in nr_reclaimed (flush_reclaim_state counts
 * pages freed outside vmscan for global reclaim only).
 */
function shrinkNode(k: Kernel, sc: ScanControl): void {
  prepareScanControl(k, sc);
  shrinkLruvec(k, sc);
  shrinkDeferredSplit(k, sc.priority);
}

/** do_try_to_free_pages(zonelist, sc): the priority loop and its retries. */
function doTryToFreePages(k: Kernel, sc: ScanControl): number {
  const initialPriority = sc.priority;
  for (;;) {
    do {
      shrinkNode(k, sc);
      if (sc.nrReclaimed >= sc.nrToReclaim) break;
    } while (--sc.priority >= 0);
    // snapshot_refaults(): WORKINGSET_ACTIVATE_* as flushed.
    k.lruvec.refaults.set(k.lruvec.workingsetActivate);
    if (sc.nrReclaimed !== 0) return sc.nrReclaimed;
    if (!sc.memcgFullWalk) {
      sc.priority = initialPriority;
      sc.memcgFullWalk = true;
      continue;
    }
    if (sc.skippedDeactivate) {
      sc.priority = initialPriority;
      sc.forceDeactivate = true;
      sc.skippedDeactivate = false;
      continue;
    }
    return 0;
  }
}

/** try_to_free_mem_cgroup_pages(memcg, nr_pages, GFP_KERNEL, MAY_SWAP | PROACTIVE, NULL). */
function tryToFreeMemCgroupPages(k: Kernel, nrPages: number, heads: Set<number> | null, res: ReclaimResult): number {
  return doTryToFreePages(k, newScanControl(Math.max(nrPages, SWAP_CLUSTER_MAX), heads, res));
}

/**
 * __node_reclaim(pgdat, gfp, nr_pages, sc): shrink_node runs only if
 * node_pagecache_reclaimable(pgdat) > min_unmapped_pages or the reclaimable
 * slab > min_slab_pages — never in a model of anonymous memory alone.
 */
function nodeReclaim(): number {
  return 0;
}

/**
 * user_proactive_reclaim(buf, memcg, pgdat) (7.2.13 mm/vmscan.c) asked for
 * `nrToReclaim` pages: memory.reclaim (`node` false) or node reclaim.
 * Returns what was done; `reclaimed` below `nrToReclaim` is the kernel's
 * −EAGAIN.
 */
export function userProactiveReclaim(k: Kernel, nrToReclaim: number, node: boolean, heads: Set<number> | null): ReclaimResult {
  const res = emptyResult();
  let nrRetries = MAX_RECLAIM_RETRIES;
  let nrReclaimed = 0;
  while (nrReclaimed < nrToReclaim) {
    // Will converge on zero, but reclaim enforces a minimum.
    const batchSize = Math.floor((nrToReclaim - nrReclaimed) / 4);
    const reclaimed = node ? nodeReclaim() : tryToFreeMemCgroupPages(k, batchSize, heads, res);
    if (reclaimed === 0 && nrRetries-- === 0) break;
    nrReclaimed += reclaimed;
  }
  return res;
}
