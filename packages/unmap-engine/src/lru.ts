import {
  F_SPARE0,
  F_SPARE1,
  FLAG,
  folioPutRefs,
  folioRefAdd,
  folioSetLru,
  folioTestClearLru,
  type Folio,
} from '@foliolab/folio-flags';
import { FoliolabError } from '@foliolab/ledger';
import type { Kernel } from './kernel.js';

/*
 * The LRU (mm/swap.c, mm/vmscan.c), simplified to one list per node: the
 * youngest folio at the head, the oldest at the tail; PG_active,
 * PG_unevictable and PG_swapbacked say which of the kernel's lists a folio
 * would be on. [I] One list instead of inactive/active/unevictable and
 * anon/file: reclaim scans oldest first and skips unevictable folios, which
 * gives the same order for the scenarios the spec describes. The per-CPU
 * LRU-add batch is drained at once (spec §1: its +1 reference is never
 * observable between operations).
 *
 * Links are intrusive: prev/next as PFN + 1 (0 = none) in the folio's
 * F_SPARE0/F_SPARE1 fields, so the LRU costs no memory per page.
 */

const LRU_MASK = FLAG.lru.mask;

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
  return f.fa[f.fb + F_SPARE0]!;
}
function nextOf(f: FieldRef): number {
  return f.fa[f.fb + F_SPARE1]!;
}
function setPrev(f: FieldRef, v: number): void {
  f.fa[f.fb + F_SPARE0] = v;
}
function setNext(f: FieldRef, v: number): void {
  f.fa[f.fb + F_SPARE1] = v;
}

/** Whether PG_lru is set (uncharged read). */
export function onLru(f: Folio): boolean {
  return (f.mm.flags[f.head]! & LRU_MASK) !== 0;
}

/** Link `f` right after `anchorLink` (PFN + 1; 0 = at the head). */
function linkAfter(k: Kernel, anchorLink: number, f: Folio): void {
  const me = f.head + 1;
  const nextLink = anchorLink === 0 ? k.lruHead : nextOf(at(k, anchorLink));
  setPrev(f, anchorLink);
  setNext(f, nextLink);
  if (anchorLink === 0) k.lruHead = me;
  else setNext(at(k, anchorLink), me);
  if (nextLink === 0) k.lruTail = me;
  else setPrev(at(k, nextLink), me);
  k.lruLen++;
}

/** Unlink `f` from the list (lruvec_del_folio); PG_lru is the caller's. */
export function lruUnlink(k: Kernel, f: Folio): void {
  const p = prevOf(f);
  const n = nextOf(f);
  if (p === 0 && n === 0 && k.lruHead !== f.head + 1) {
    throw new FoliolabError('EINVARIANT', `lruUnlink: folio ${f.head} is not on the LRU list`);
  }
  if (p === 0) k.lruHead = n;
  else setNext(at(k, p), n);
  if (n === 0) k.lruTail = p;
  else setPrev(at(k, n), p);
  setPrev(f, 0);
  setNext(f, 0);
  k.lruLen--;
}

/** folio_add_lru() + drain (lru_add): PG_lru set, linked at the head (youngest). */
export function lruAdd(k: Kernel, f: Folio): void {
  folioSetLru(f);
  linkAfter(k, 0, f);
}

/** Link `f` (with PG_lru set) right after `anchor` (lru_add_split_folio's list_add_tail after the head). */
export function lruAddAfter(k: Kernel, anchor: Folio, f: Folio): void {
  folioSetLru(f);
  linkAfter(k, anchor.head + 1, f);
}

/** Move `f` (on the list) to the head: folio_activate / putback of a young folio. */
export function lruRotateToHead(k: Kernel, f: Folio): void {
  lruUnlink(k, f);
  linkAfter(k, 0, f);
}

/**
 * folio_isolate_lru(): test-and-clear PG_lru; if it was set, unlink and take
 * the isolation reference (+1). Returns whether the folio was isolated.
 */
export function lruIsolate(k: Kernel, f: Folio): boolean {
  if (!folioTestClearLru(f)) return false;
  lruUnlink(k, f);
  folioRefAdd(f, 1);
  return true;
}

/**
 * folio_putback_lru() / move_folios_to_lru(): PG_lru set, linked at the head,
 * isolation reference dropped; a folio whose last reference that was is freed.
 */
export function lruPutback(k: Kernel, f: Folio): void {
  if (folioPutRefs(f, 1)) {
    k.releaseFolio(f);
    return;
  }
  lruAdd(k, f);
}

/** Heads of the folios on the LRU, oldest first. */
export function lruOldestFirst(k: Kernel): number[] {
  const out: number[] = [];
  for (let l = k.lruTail; l !== 0; l = prevOf(at(k, l))) out.push(l - 1);
  return out;
}

/** Remove a folio being freed from the list (__page_cache_release); true if it was listed. */
export function lruRemoveOnFree(k: Kernel, f: Folio): boolean {
  if (!onLru(f)) return false;
  lruUnlink(k, f);
  return true;
}

/** @internal Saved neighbours of a folio while a split rewrites its fields. */
export function lruNeighbours(f: Folio): { prev: number; next: number } {
  return { prev: prevOf(f), next: nextOf(f) };
}

/** @internal Re-link a folio whose field block moved (split), between known neighbours. */
export function lruRelink(k: Kernel, f: Folio, prev: number, next: number): void {
  const me = f.head + 1;
  setPrev(f, prev);
  setNext(f, next);
  if (prev === 0) k.lruHead = me;
  else setNext(at(k, prev), me);
  if (next === 0) k.lruTail = me;
  else setPrev(at(k, next), me);
}
