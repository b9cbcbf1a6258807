import { PAGE_SIZE, PMD_SIZE, PTRS_PER_TABLE, alignDown, checkVa, pteIndex } from './geometry.js';
import type { PageTables, PteTable } from './tables.js';

/*
 * TLB visibility (spec §9.7): a PTE change may stay visible through the TLB
 * until a covering TLBI is issued AND a later DSB_ISH completes it.
 *
 * Per PTE one state byte: bit 0 = changed since the last covering TLBI
 * ("needs TLBI"), bit 1 = TLBI issued, waiting for a DSB. Completion is lazy:
 * a DSB only bumps `Machine.dsbGen`; in-flight entries of a table whose
 * `tlbiGen` is older are complete, and are swept (only over the in-flight
 * index range) the next time the table gets a TLBI or is queried. Nothing is
 * allocated; a DSB is O(1) and a TLBI is O(pages covered).
 */

const NEED = 1;
const INFLIGHT = 2;

/** @internal The table's TLB state array, allocated on first use (null when tracking is off). */
export function tlbState(table: PteTable): Uint8Array | null {
  if (table.tlb === null && table.mm.trackTlb) table.tlb = new Uint8Array(PTRS_PER_TABLE);
  return table.tlb;
}

/** Record that slot `i` changed while it may have been cached (old value valid). */
export function tlbMarkChanged(table: PteTable, i: number): void {
  const st = tlbState(table);
  if (st === null) return;
  const s = st[i]!;
  if ((s & NEED) === 0) {
    st[i] = s | NEED;
    table.nrNeed++;
  }
}

function sweep(table: PteTable, st: Uint8Array, gen: number): void {
  if (table.inflHi < table.inflLo || table.tlbiGen === gen) return;
  for (let i = table.inflLo; i <= table.inflHi; i++) st[i] = st[i]! & NEED;
  table.inflLo = PTRS_PER_TABLE;
  table.inflHi = -1;
  if (table.nrNeed === 0) table.tlb = null; // everything completed: a quiet table holds no state
}

/** A TLBI covering slots [i0, i1) of `table` was issued. */
export function tlbMarkInvalidated(table: PteTable, i0: number, i1: number): void {
  const st = table.tlb;
  if (st === null || table.nrNeed === 0) return;
  const gen = table.mm.machine.dsbGen;
  sweep(table, st, gen);
  table.tlbiGen = gen;
  let n = table.nrNeed;
  for (let i = i0; i < i1; i++) {
    if ((st[i]! & NEED) !== 0) {
      st[i] = INFLIGHT;
      n--;
      if (i < table.inflLo) table.inflLo = i;
      if (i > table.inflHi) table.inflHi = i;
    }
  }
  table.nrNeed = n;
}

/** A TLBI covering [start, end) of `mm` was issued. */
export function tlbMarkRange(mm: PageTables, start: number, end: number): void {
  if (!mm.trackTlb) return;
  // The callers' ranges are checked user VAs (the public TLB API validates), so the unchecked lookup applies.
  let va = start;
  while (va < end) {
    const chunkEnd = Math.min(alignDown(va, PMD_SIZE) + PMD_SIZE, end);
    const t = mm.pteTableOfUnchecked(va);
    if (t !== null) {
      const i0 = pteIndex(va);
      tlbMarkInvalidated(t, i0, i0 + (chunkEnd - va) / PAGE_SIZE);
    }
    va = chunkEnd;
  }
}

/** A TLBI covering the whole ASID of `mm` was issued. */
export function tlbMarkAll(mm: PageTables): void {
  if (!mm.trackTlb) return;
  for (const t of mm.pteTables) tlbMarkInvalidated(t, 0, PTRS_PER_TABLE);
}

function stale(table: PteTable, st: Uint8Array, i: number): boolean {
  const s = st[i]!;
  if ((s & NEED) !== 0) return true;
  return (s & INFLIGHT) !== 0 && table.tlbiGen === table.mm.machine.dsbGen;
}

/**
 * Whether a stale translation of `va` may still be cached by some TLB: the
 * PTE changed from a valid value and no covering TLBI has been completed by a
 * later DSB_ISH (spec §9.7). False when TLB tracking is off.
 */
export function tlbMayHoldStale(mm: PageTables, va: number): boolean {
  checkVa('tlbMayHoldStale', va);
  const t = mm.pteTableOf(va);
  if (t === null || t.tlb === null) return false;
  sweep(t, t.tlb, mm.machine.dsbGen);
  return t.tlb !== null && stale(t, t.tlb, pteIndex(va));
}

/** VAs of `mm` that may still be stale in a TLB, ascending (cold path). */
export function tlbStaleVas(mm: PageTables): number[] {
  const out: number[] = [];
  for (const t of mm.pteTables) {
    if (t.tlb !== null) sweep(t, t.tlb, mm.machine.dsbGen);
    if (t.tlb === null) continue;
    for (let i = 0; i < PTRS_PER_TABLE; i++) if (stale(t, t.tlb, i)) out.push(t.vaOf(i));
  }
  return out.sort((a, b) => a - b);
}

/** Number of PTEs of `mm` whose old translation may still be TLB-visible. */
export function tlbStaleCount(mm: PageTables): number {
  let n = 0;
  for (const t of mm.pteTables) {
    if (t.tlb !== null) sweep(t, t.tlb, mm.machine.dsbGen);
    if (t.tlb === null) continue;
    for (let i = 0; i < PTRS_PER_TABLE; i++) if (stale(t, t.tlb, i)) n++;
  }
  return n;
}
