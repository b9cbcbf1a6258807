import { F_DEFERRED_NEXT, F_DEFERRED_PREV, type Folio, type Memmap } from '@foliolab/folio-flags';
import type { Ledger } from '@foliolab/ledger';

/*
 * The deferred split queue object (`struct deferred_split`, mm/huge_memory.c):
 * `{split_queue_lock, split_queue, split_queue_len}`. The list is threaded
 * through the folios' own `_deferred_list` fields (F_DEFERRED_PREV/NEXT, head
 * PFNs), as the kernel threads it through struct folio; only folios of order
 * ≥ 2 have those fields.
 *
 * Link encoding: −1 = not on any list (INIT_LIST_HEAD / list_del_init);
 * ≥ 0 = the neighbour's head PFN; ≤ −2 = the list head of queue number
 * (−2 − v). Queue 0 is the node queue; per-memcg queues would take 1, 2, …
 * (the kernel has one queue per node and one per memcg), so a folio's links
 * say which queue holds it.
 */

/** Link value meaning "not on a deferred list". */
export const DEFERRED_NONE = -1;

/** One deferred split queue (one per node; per-memcg queues fit the same shape). */
export class DeferredSplitQueue {
  /** Head PFN of the first listed folio, −1 when empty. */
  first = -1;
  /** Head PFN of the last listed folio, −1 when empty. */
  last = -1;
  /** `split_queue_len`. */
  len = 0;
  /** The queue's `split_queue_lock` (ledger lock id, kind 'split_queue'). */
  readonly lockId: number;
  /** The value a folio's link holds when its neighbour is this queue's list head. */
  readonly listHead: number;

  /** @internal Built by RmapState; `index` 0 is the node queue. */
  constructor(
    readonly memmap: Memmap,
    readonly index: number,
    readonly name: string,
    ledger: Ledger,
  ) {
    this.lockId = ledger.lockId(name, 'split_queue');
    this.listHead = -2 - index;
  }

  /** Head PFNs of the listed folios, in list order (a walk; for dumps and invariants). */
  heads(limit = Number.POSITIVE_INFINITY): number[] {
    const out: number[] = [];
    let cur = this.first;
    while (cur >= 0 && out.length < limit) {
      out.push(cur);
      const f = this.memmap.folioAt(cur);
      cur = f.fa[f.fb + F_DEFERRED_NEXT]!;
    }
    return out;
  }
}

/** Whether `folio` is on some deferred list: `!list_empty(&folio->_deferred_list)` (a field read). */
export function folioOnDeferredList(folio: Folio): boolean {
  return folio.order >= 2 && folio.fa[folio.fb + F_DEFERRED_NEXT] !== DEFERRED_NONE;
}

/** Index of the queue whose list holds `folio`, or −1 (follows the links to a list head). */
export function deferredQueueIndexOf(folio: Folio): number {
  if (!folioOnDeferredList(folio)) return -1;
  const mm = folio.mm;
  let f = folio;
  // Walk forward to the list head; bounded by the number of folios.
  for (let steps = 0; steps <= mm.nrPages; steps++) {
    const next = f.fa[f.fb + F_DEFERRED_NEXT]!;
    if (next <= -2) return -2 - next;
    if (next < 0) return -1;
    f = mm.folioAt(next);
  }
  return -1;
}

/** @internal list_add_tail(&folio->_deferred_list, &queue->split_queue); no len change. */
export function listAddTail(q: DeferredSplitQueue, folio: Folio): void {
  const { fa, fb } = folio;
  const prev = q.last;
  fa[fb + F_DEFERRED_PREV] = prev >= 0 ? prev : q.listHead;
  fa[fb + F_DEFERRED_NEXT] = q.listHead;
  if (prev >= 0) {
    const p = q.memmap.folioAt(prev);
    p.fa[p.fb + F_DEFERRED_NEXT] = folio.head;
  } else {
    q.first = folio.head;
  }
  q.last = folio.head;
}

/** @internal list_del_init(&folio->_deferred_list); no len change. */
export function listDelInit(q: DeferredSplitQueue, folio: Folio): void {
  const { fa, fb } = folio;
  const prev = fa[fb + F_DEFERRED_PREV]!;
  const next = fa[fb + F_DEFERRED_NEXT]!;
  if (prev >= 0) {
    const p = q.memmap.folioAt(prev);
    p.fa[p.fb + F_DEFERRED_NEXT] = next;
  } else {
    q.first = next >= 0 ? next : -1;
  }
  if (next >= 0) {
    const n = q.memmap.folioAt(next);
    n.fa[n.fb + F_DEFERRED_PREV] = prev;
  } else {
    q.last = prev >= 0 ? prev : -1;
  }
  fa[fb + F_DEFERRED_PREV] = DEFERRED_NONE;
  fa[fb + F_DEFERRED_NEXT] = DEFERRED_NONE;
}
