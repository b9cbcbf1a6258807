import {
  F_SPARE0,
  F_SPARE1,
  FLAG,
  folioPutRefs,
  folioRefAdd,
  folioClearActive,
  folioClearReferenced,
  folioClearUnevictable,
  folioSetActive,
  folioSetLru,
  folioSetReferenced,
  folioSetUnevictable,
  folioTestClearLru,
  type Folio,
} from '@foliolab/folio-flags';
import { FoliolabError } from '@foliolab/ledger';
import type { Kernel } from './kernel.js';
import { VM } from './stats.js';
import { workingsetActivation } from './workingset.js';

/*
 * The LRU of the scenario's memory cgroup (7.2.13 include/linux/mm_inline.h,
 * mm/swap.c, the classic LRU — the kernel oracle turns MGLRU off): one
 * lruvec with the kernel's five lists, inactive/active anon, inactive/active
 * file (lazyfree folios, !PG_swapbacked) and unevictable. Each list has the
 * youngest folio at its head and the oldest at its tail (lru_to_folio), as
 * lruvec_add_folio / lruvec_add_folio_tail leave them. Which list a folio
 * joins is folio_lru_list() of its flags at that moment; a folio remembers
 * the list it is on, so lruvec_del_folio never depends on flags changed since.
 * The per-CPU folio batches are drained at once (their +1 reference and their
 * delay are never observable between operations; where the order of two
 * drains matters, the caller says so). The kernel does not link
 * unevictable folios (7.2.13 include/linux/mm_inline.h:lruvec_add_folio:
 * `if (lru != LRU_UNEVICTABLE) list_add`, and mlock_count overlays the list
 * head); the model links them on their own list, which nothing scans (the
 * order is never observable), and keeps mlock_count in Kernel.mlockCount.
 *
 * Links are intrusive: prev/next as PFN + 1 (0 = none) in the folio's
 * F_SPARE0/F_SPARE1 fields, the list number + 1 packed above the prev link
 * (PFNs stay below 2^26, MEMMAP_MAX_PAGES), so the LRU costs no memory per page.
 */

export const LRU_INACTIVE_ANON = 0;
export const LRU_ACTIVE_ANON = 1;
export const LRU_INACTIVE_FILE = 2;
export const LRU_ACTIVE_FILE = 3;
export const LRU_UNEVICTABLE = 4;
export const NR_LRU_LISTS = 5;

const LINK_BITS = 27;
const LINK_MASK = (1 << LINK_BITS) - 1;

/**
 * struct lruvec: the lists, their sizes in pages (lru_zone_size, exact), and
 * the reclaim state mm/vmscan.c keeps per lruvec (anon_cost / file_cost,
 * refaults) with the memcg statistics it reads (lruvec_page_state: the rstat
 * copy, see `statFlush`).
 */
export class Lruvec {
  /** PFN + 1 of the youngest folio of each list (0 = empty). */
  readonly head = new Int32Array(NR_LRU_LISTS);
  /** PFN + 1 of the oldest folio of each list. */
  readonly tail = new Int32Array(NR_LRU_LISTS);
  /** Pages on each list (mem_cgroup_get_zone_lru_size summed over the zones). */
  readonly pages = new Float64Array(NR_LRU_LISTS);
  /** Folios on all lists. */
  count = 0;
  /** lruvec->anon_cost / file_cost (lru_note_cost). */
  anonCost = 0;
  fileCost = 0;
  /**
   * lruvec_page_state(NR_LRU_BASE + lru): the memcg's rstat copy, which
   * reclaim reads (inactive_is_low, the cost decay, cache_trim_mode). Nothing
   * in a reclaim flushes it (mem_cgroup_flush_stats_ratelimited flushes only
   * when the 2 s periodic flusher is a full cycle late), so a reclaim reads the
   * sizes of its start — or older: the kernel oracle reads memory.stat before
   * each step, but mem_cgroup_flush_stats flushes only once more than
   * MEMCG_CHARGE_BATCH updates are pending (memcg_vmstats_needs_flush), a
   * count of every memcg statistic the model does not keep. The oracle's
   * guest makes the kernel flush before every step (a pump process pushes
   * the pending count over that threshold before it reads memory.stat,
   * guest/koracle.c flush_memcg_stats), and the model does the same
   * (Engine.run → statFlush).
   */
  readonly stat = new Float64Array(NR_LRU_LISTS);
  /** lruvec_page_state(WORKINGSET_ACTIVATE_ANON/FILE) as flushed, and target_lruvec->refaults[] (snapshot_refaults). */
  readonly workingsetActivate = new Float64Array(2);
  readonly refaults = new Float64Array(2);
  /** WORKINGSET_ACTIVATE_ANON of the memcg as counted (workingset.ts); `workingsetActivate[0]` is its flushed copy. */
  activateAnon = 0;
  /** lruvec->nonresident_age of the scenario's memcg and of the root memcg (workingset.ts: the same lists, two ages). */
  nonresidentAge = 0;
  rootNonresidentAge = 0;

  /** The rstat flush the oracle does before each step: lruvec_page_state catches up with the lists. */
  statFlush(): void {
    this.stat.set(this.pages);
    this.workingsetActivate[0] = this.activateAnon;
  }
}

/** Where a folio's head-only fields live, without a Folio handle (neighbours on the list). */
interface FieldRef {
  fa: Int32Array;
  fb: number;
}

interface MemmapFields {
  orderAt(head: number): number;
  spillRows: Map<number, number>;
  spill: { chunkOf(row: number): Int32Array; baseOf(row: number): number };
}

const ref: FieldRef = { fa: new Int32Array(0), fb: 0 };

/** The field block of the folio headed at `link − 1` (memmap internals: tails from order 4, else the spill row). */
function at(k: Kernel, link: number): FieldRef {
  const mm = k.memmap as unknown as MemmapFields;
  const head = link - 1;
  if (mm.orderAt(head) >= 4) {
    ref.fa = k.memmap.aux;
    ref.fb = head;
  } else {
    const row = mm.spillRows.get(head);
    if (row === undefined) throw new FoliolabError('EINVARIANT', `lru: list entry ${head} is not a folio head`);
    ref.fa = mm.spill.chunkOf(row);
    ref.fb = mm.spill.baseOf(row);
  }
  return ref;
}

function prevOf(f: FieldRef): number {
  return f.fa[f.fb + F_SPARE0]! & LINK_MASK;
}
function nextOf(f: FieldRef): number {
  return f.fa[f.fb + F_SPARE1]!;
}
/** The list `f` is on (−1: none). */
function listIdOf(f: FieldRef): number {
  return (f.fa[f.fb + F_SPARE0]! >>> LINK_BITS) - 1;
}
function setPrev(f: FieldRef, v: number): void {
  const w = f.fa[f.fb + F_SPARE0]!;
  f.fa[f.fb + F_SPARE0] = (w & ~LINK_MASK) | v;
}
function setNext(f: FieldRef, v: number): void {
  f.fa[f.fb + F_SPARE1] = v;
}
function setLinks(f: FieldRef, lru: number, prev: number, next: number): void {
  f.fa[f.fb + F_SPARE0] = lru < 0 ? prev : ((lru + 1) << LINK_BITS) | prev;
  f.fa[f.fb + F_SPARE1] = next;
}

/** Whether PG_lru is set (uncharged read). */
export function onLru(f: Folio): boolean {
  return (f.mm.flags[f.head]! & FLAG.lru.mask) !== 0;
}

/** The list `f` is linked on, or −1. */
export function lruListOf(f: Folio): number {
  return listIdOf(f);
}

/** folio_lru_list(folio): unevictable, else (file = !PG_swapbacked) + active. */
export function folioLruList(f: Folio): number {
  const w = f.mm.flags[f.head]!;
  if ((w & FLAG.unevictable.mask) !== 0) return LRU_UNEVICTABLE;
  return ((w & FLAG.swapbacked.mask) === 0 ? LRU_INACTIVE_FILE : LRU_INACTIVE_ANON) + ((w & FLAG.active.mask) !== 0 ? 1 : 0);
}

/** Link `f` on list `lru` between `prev` and `next` (links, 0 = list end). */
function linkBetween(k: Kernel, lru: number, f: Folio, prev: number, next: number): void {
  const v = k.lruvec;
  const me = f.head + 1;
  setLinks(f, lru, prev, next);
  if (prev === 0) v.head[lru] = me;
  else setNext(at(k, prev), me);
  if (next === 0) v.tail[lru] = me;
  else setPrev(at(k, next), me);
  v.pages[lru]! += f.nr;
  v.count++;
}

/** lruvec_add_folio(): at the head (youngest end) of folio_lru_list(folio). */
export function lruvecAddFolio(k: Kernel, f: Folio): void {
  const lru = folioLruList(f);
  linkBetween(k, lru, f, 0, k.lruvec.head[lru]!);
}

/** lruvec_add_folio_tail(): at the tail (oldest end) of folio_lru_list(folio). */
export function lruvecAddFolioTail(k: Kernel, f: Folio): void {
  const lru = folioLruList(f);
  linkBetween(k, lru, f, k.lruvec.tail[lru]!, 0);
}

/** lruvec_del_folio(): unlink `f` from the list it is on; PG_lru is the caller's. */
export function lruvecDelFolio(k: Kernel, f: Folio): void {
  const lru = listIdOf(f);
  if (lru < 0) throw new FoliolabError('EINVARIANT', `lruvecDelFolio: folio ${f.head} is not on an LRU list`);
  const v = k.lruvec;
  const p = prevOf(f);
  const n = nextOf(f);
  if (p === 0) v.head[lru] = n;
  else setNext(at(k, p), n);
  if (n === 0) v.tail[lru] = p;
  else setPrev(at(k, n), p);
  setLinks(f, -1, 0, 0);
  v.pages[lru]! -= f.nr;
  v.count--;
}

/**
 * folio_add_lru() + the drained lru_add() (mm/swap.c, 7.2.13): an evictable
 * folio loses PG_unevictable; a mlocked one loses PG_active and gets
 * PG_unevictable; then lruvec_add_folio at the head of its list and PG_lru.
 */
export function lruAdd(k: Kernel, f: Folio): void {
  const w = f.mm.flags[f.head]!;
  if ((w & FLAG.mlocked.mask) === 0) {
    if ((w & FLAG.unevictable.mask) !== 0) folioClearUnevictable(f);
  } else {
    if ((w & FLAG.active.mask) !== 0) folioClearActive(f);
    if ((w & FLAG.unevictable.mask) === 0) folioSetUnevictable(f);
    k.mlockCount.delete(f.head); // mlock_count = 0: "underestimate, let page reclaim fix it" (7.2.13 mm/swap.c lru_add)
  }
  lruvecAddFolio(k, f);
  folioSetLru(f);
}

/**
 * Link `f` (with PG_lru set) right before `anchor` on anchor's list, on its younger side:
 * lru_add_split_folio's list_add_tail(&new_folio->lru, &folio->lru) (mm/huge_memory.c, 7.2.13).
 */
export function lruAddBefore(k: Kernel, anchor: Folio, f: Folio): void {
  folioSetLru(f);
  const lru = listIdOf(anchor);
  linkBetween(k, lru, f, prevOf(anchor), anchor.head + 1);
}

/** Link `f` (with PG_lru set) right after `anchor` on anchor's list (split: a new folio beside the old one). */
export function lruAddAfter(k: Kernel, anchor: Folio, f: Folio): void {
  folioSetLru(f);
  const lru = listIdOf(anchor);
  linkBetween(k, lru, f, anchor.head + 1, nextOf(anchor));
}

/**
 * folio_isolate_lru(): test-and-clear PG_lru; if it was set, unlink and take
 * the isolation reference (+1). Returns whether the folio was isolated.
 */
export function lruIsolate(k: Kernel, f: Folio): boolean {
  if (!folioTestClearLru(f)) return false;
  lruvecDelFolio(k, f);
  folioRefAdd(f, 1);
  return true;
}

/**
 * folio_putback_lru(): folio_add_lru (lru_add, drained), then the isolation
 * reference dropped; a folio whose last reference that was is freed.
 */
export function lruPutback(k: Kernel, f: Folio): void {
  if (folioPutRefs(f, 1)) {
    k.releaseFolio(f);
    return;
  }
  lruAdd(k, f);
}

/** Heads of the folios on the LRU, oldest first, list by list. */
export function lruOldestFirst(k: Kernel): number[] {
  const out: number[] = [];
  for (let lru = 0; lru < NR_LRU_LISTS; lru++) {
    for (let l = k.lruvec.tail[lru]!; l !== 0; l = prevOf(at(k, l))) out.push(l - 1);
  }
  return out;
}

/** The oldest folio's head of list `lru` (lru_to_folio), or −1. */
export function lruTailHead(k: Kernel, lru: number): number {
  return k.lruvec.tail[lru]! - 1;
}

/** The next younger folio's head after the one headed at `head` on its list, or −1. */
export function lruYoungerHead(k: Kernel, head: number): number {
  return prevOf(at(k, head + 1)) - 1;
}

/** Remove a folio being freed from its list (__page_cache_release); true if it was listed. */
export function lruRemoveOnFree(k: Kernel, f: Folio): boolean {
  if (!onLru(f)) return false;
  lruvecDelFolio(k, f);
  return true;
}

/** Pages of the folio whose links `lruNeighbours` handed out last (a split is never re-entered). */
let splitOldNr = 0;

/**
 * @internal The links (with the list) of a folio a split is about to rewrite;
 * `lruRelink` puts the new head folio in its place, its list's size adjusted
 * from this folio's pages to the head's (the tails join through `lruAddAfter`).
 */
export function lruNeighbours(f: Folio): { prev: number; next: number } {
  splitOldNr = f.nr;
  return { prev: f.fa[f.fb + F_SPARE0]!, next: nextOf(f) };
}

/** @internal Re-link a folio whose field block moved (split), between the neighbours `lruNeighbours` saved. */
export function lruRelink(k: Kernel, f: Folio, savedPrev: number, next: number): void {
  const v = k.lruvec;
  const lru = (savedPrev >>> LINK_BITS) - 1;
  const prev = savedPrev & LINK_MASK;
  const me = f.head + 1;
  setLinks(f, lru, prev, next);
  if (prev === 0) v.head[lru] = me;
  else setNext(at(k, prev), me);
  if (next === 0) v.tail[lru] = me;
  else setPrev(at(k, next), me);
  v.pages[lru]! += f.nr - splitOldNr;
}

/** A walk of list `lru` from its head (for the invariant checker): [head, prevLink, list] per folio. */
export function lruWalk(k: Kernel, lru: number, visit: (head: number, prev: number, list: number) => boolean): void {
  for (let l = k.lruvec.head[lru]!; l !== 0; ) {
    const f = at(k, l);
    const prev = prevOf(f);
    const list = listIdOf(f);
    const next = nextOf(f);
    if (!visit(l - 1, prev, list)) return;
    l = next;
  }
}

/** lru_activate() (drained folio_activate): an evictable inactive folio on the LRU moves to the active list; PGACTIVATE. */
export function lruActivate(k: Kernel, f: Folio): void {
  const w = f.mm.flags[f.head]!;
  if ((w & (FLAG.active.mask | FLAG.unevictable.mask)) !== 0 || (w & FLAG.lru.mask) === 0) return;
  lruvecDelFolio(k, f);
  folioSetActive(f);
  lruvecAddFolio(k, f);
  k.stats.count(VM.pgactivate, f.nr);
}

/**
 * folio_mark_accessed() (7.2.13 mm/swap.c, classic LRU): the first access
 * sets PG_referenced; a second one activates the folio (folio_activate on the
 * LRU, else __lru_cache_activate_folio, which finds it in the LRU-add batch
 * and sets PG_active) and clears PG_referenced, and ages the lruvec's
 * nonresident pages (workingset_activation) — unless it is unevictable or
 * already active. A large folio is never held in a per-CPU batch
 * (folio_may_be_lru_cached), so its activation is immediate; a small one
 * waits for the drain, which the model does at once.
 */
export function folioMarkAccessed(k: Kernel, f: Folio): void {
  const w = f.mm.flags[f.head]!;
  if ((w & FLAG.referenced.mask) === 0) {
    folioSetReferenced(f);
    return;
  }
  if ((w & FLAG.unevictable.mask) !== 0 || (w & FLAG.active.mask) !== 0) return;
  if ((w & FLAG.lru.mask) !== 0) lruActivate(k, f);
  else folioSetActive(f);
  folioClearReferenced(f);
  workingsetActivation(k, f);
}

/**
 * folio_rotate_reclaimable() + the drained lru_move_tail() (mm/swap.c): at the
 * end of writeback of a folio marked PG_reclaim, a folio still on the LRU,
 * unlocked, clean and evictable loses PG_active and goes to the tail of its
 * inactive list (PGROTATED).
 */
export function folioRotateReclaimable(k: Kernel, f: Folio): void {
  const w = f.mm.flags[f.head]!;
  if ((w & (FLAG.locked.mask | FLAG.dirty.mask | FLAG.unevictable.mask)) !== 0 || (w & FLAG.lru.mask) === 0) return;
  lruvecDelFolio(k, f);
  if ((w & FLAG.active.mask) !== 0) folioClearActive(f);
  lruvecAddFolioTail(k, f);
  k.stats.count(VM.pgrotated, f.nr);
}
