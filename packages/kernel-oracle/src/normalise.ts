import type { PageObs, PageRun } from './types.js';

/*
 * One normal form for the kernel's and the engine's pages: PFNs become
 * (folio number, index in the folio), folios numbered in order of first
 * appearance (slots ascending, addresses ascending), and pages that continue
 * each other are stored as runs. Both sides go through these functions, so
 * the numbering cannot differ for a reason other than the state.
 */

const PAGE = 4096;

/** A page before normalisation: its process slot, its address, and the PFN of its folio's head. */
export interface RawPage extends Omit<PageObs, 'folio'> {
  slot: number;
  addr: number;
  head?: number;
}

/** The fields that must be equal along a run (everything but the advancing ones). */
const SAME_KEYS = ['kind', 'folio', 'order', 'mapcount', 'exclusive', 'anonExclusiveHead', 'poisoned', 'type', 'uffdWp', 'softDirty', 'guard'] as const;

function sameFlags(a: string[] | undefined, b: string[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((f, i) => f === b[i]);
}

/** Whether `q` is the page after `p` in one run. */
function continues(p: PageObs, q: PageObs): boolean {
  for (const k of SAME_KEYS) if (p[k] !== q[k]) return false;
  if (!sameFlags(p.flags, q.flags)) return false;
  if (p.idx !== undefined && q.idx !== p.idx + 1) return false;
  if (p.offset !== undefined && q.offset !== p.offset + 1) return false;
  return p.idx !== undefined || p.offset !== undefined || p.kind === 'zero' || p.kind === 'marker';
}

function clean(o: PageObs): PageObs {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== false) out[k] = v;
  return out as unknown as PageObs;
}

/** Number folios by first appearance and compress each slot's pages (sorted by slot, then address) into runs. */
export function normalisePages(pages: readonly RawPage[]): Map<number, PageRun[]> {
  const ids = new Map<number, number>();
  const out = new Map<number, PageRun[]>();
  let last: PageRun | null = null;
  let lastSlot = -1;
  let lastEnd = -1;
  for (const p of pages) {
    const { slot, addr, head, ...rest } = p;
    const obs: PageObs = clean(rest);
    if (head !== undefined && p.kind === 'present') {
      let id = ids.get(head);
      if (id === undefined) {
        id = ids.size;
        ids.set(head, id);
      }
      obs.folio = id;
    }
    let runs = out.get(slot);
    if (runs === undefined) out.set(slot, (runs = []));
    const prevPage = last === null ? null : { ...last, idx: last.idx === undefined ? undefined : last.idx + last.n - 1, offset: last.offset === undefined ? undefined : last.offset + last.n - 1 };
    if (last !== null && prevPage !== null && slot === lastSlot && addr === lastEnd && continues(prevPage, obs)) {
      last.n++;
    } else {
      last = { addr: `0x${addr.toString(16)}`, n: 1, ...obs };
      runs.push(last);
    }
    lastSlot = slot;
    lastEnd = addr + PAGE;
  }
  return out;
}

/** The pages of runs, one entry per page, keyed by address. */
export function expandRuns(runs: readonly PageRun[]): Map<number, PageObs> {
  const out = new Map<number, PageObs>();
  for (const r of runs) {
    const { addr, n, ...obs } = r;
    const a0 = Number.parseInt(addr, 16);
    for (let i = 0; i < n; i++) {
      const o: PageObs = { ...obs };
      if (o.idx !== undefined) o.idx += i;
      if (o.offset !== undefined) o.offset += i;
      out.set(a0 + i * PAGE, o);
    }
  }
  return out;
}
