import { EV } from '@foliolab/ledger';
import { doFlushTlbPage, doFlushTlbPageNosync } from './tlb.js';
import {
  PTE_AF,
  PTE_HI_DIRTY,
  PTE_HI_PFN_MASK,
  PTE_HI_WRITE,
  PTE_LO_PFN_MASK,
  PTE_RDONLY,
  PTE_VALID,
  pteSame,
  type PteBits,
} from './pte.js';
import type { PteTable } from './tables.js';
import { tlbMarkChanged, tlbState } from './tlbtrack.js';

/*
 * arm64 private PTE primitives (the `__` API of arch/arm64/include/asm/
 * pgtable.h ≈v6.12–6.15, spec §4). Unchecked: callers validated (table,
 * index, nr). Every store goes through `storePte`, which records TLB
 * visibility when the old value was valid and the bits changed.
 */

/** Store without charging; records a possibly stale TLB entry. */
export function storePte(t: PteTable, i: number, lo: number, hi: number): void {
  const ol = t.lo[i]!;
  if ((ol & PTE_VALID) !== 0 && ((ol ^ lo) | (t.hi[i]! ^ hi)) !== 0) tlbMarkChanged(t, i);
  t.lo[i] = lo;
  t.hi[i] = hi;
}

/** `__ptep_get`: 1 PTE_READ. */
export function rawGet(t: PteTable, i: number, out: PteBits): PteBits {
  t.mm.ledger.charge(EV.PTE_READ);
  out.lo = t.lo[i]!;
  out.hi = t.hi[i]!;
  return out;
}

/** `__set_pte` on a user entry: 1 PTE_WRITE, no barrier. */
export function rawSetPte(t: PteTable, i: number, lo: number, hi: number): void {
  t.mm.ledger.charge(EV.PTE_WRITE);
  storePte(t, i, lo, hi);
}

/** `__set_ptes(nr)`: nr PTE_WRITEs, PFN + 1 per entry. */
export function rawSetPtes(t: PteTable, i: number, lo: number, hi: number, nr: number): void {
  t.mm.ledger.charge(EV.PTE_WRITE, nr);
  const protLo = lo & ~PTE_LO_PFN_MASK;
  const protHi = hi & ~PTE_HI_PFN_MASK;
  // The PFN as (bits 0–19, bits 20–35) = (lo >>> 12, hi & 0xffff), carried by hand: int32 arithmetic only.
  let pLo = lo >>> 12;
  let pHi = hi & PTE_HI_PFN_MASK;
  for (let k = i; k < i + nr; k++) {
    storePte(t, k, (protLo | (pLo << 12)) >>> 0, (protHi | pHi) >>> 0);
    if (++pLo === PFN_LO_LIMIT) {
      pLo = 0;
      pHi = (pHi + 1) & PTE_HI_PFN_MASK;
    }
  }
}

/** PFN values held by the low word (PFN bits 0–19). */
const PFN_LO_LIMIT = 1 << 20;

/** `__ptep_get_and_clear`: 1 PTE_XCHG. */
export function rawGetAndClear(t: PteTable, i: number, out: PteBits): PteBits {
  t.mm.ledger.charge(EV.PTE_XCHG);
  const lo = t.lo[i]!;
  out.lo = lo;
  out.hi = t.hi[i]!;
  // storePte(t, i, 0, 0): a valid old entry is non-zero, so clearing it changes it
  if ((lo & PTE_VALID) !== 0) tlbMarkChanged(t, i);
  t.lo[i] = 0;
  t.hi[i] = 0;
  return out;
}

/**
 * `__get_and_clear_full_ptes(nr)`: nr PTE_XCHG (charged once); returns the
 * first old value with young/dirty OR'ed in from the rest. The hot loop of
 * batched unmap: typed-array work only.
 */
export function rawGetAndClearFullPtes(t: PteTable, i: number, nr: number, out: PteBits): PteBits {
  t.mm.ledger.charge(EV.PTE_XCHG, nr);
  const los = t.lo;
  const his = t.hi;
  const st = tlbState(t);
  let rlo = los[i]!;
  let rhi = his[i]!;
  los[i] = 0;
  his[i] = 0;
  if (st !== null && (rlo & PTE_VALID) !== 0 && (st[i]! & 1) === 0) {
    st[i] = st[i]! | 1;
    t.nrNeed++;
  }
  let young = 0;
  // Non-zero iff some later entry is pte_dirty: DIRTY, or WRITE (hi bit 19) with RDONLY (lo bit 7) clear.
  let dirty = 0;
  const end = i + nr;
  if (st === null) {
    // No TLB tracking (the engine's default): the plain clearing loop.
    for (let k = i + 1; k < end; k++) {
      const l = los[k]!;
      const h = his[k]!;
      los[k] = 0;
      his[k] = 0;
      young |= l;
      dirty |= (h & PTE_HI_DIRTY) | ((h >>> 19) & ~(l >>> 7) & 1);
    }
  } else {
    for (let k = i + 1; k < end; k++) {
      const l = los[k]!;
      const h = his[k]!;
      los[k] = 0;
      his[k] = 0;
      young |= l;
      dirty |= (h & PTE_HI_DIRTY) | ((h >>> 19) & ~(l >>> 7) & 1);
      // storePte(t, k, 0, 0) of a valid entry: it changed
      if ((l & PTE_VALID) !== 0 && (st[k]! & 1) === 0) {
        st[k] = st[k]! | 1;
        t.nrNeed++;
      }
    }
  }
  if ((young & PTE_AF) !== 0) rlo |= PTE_AF;
  if (dirty !== 0) {
    rhi |= PTE_HI_DIRTY;
    if ((rhi & PTE_HI_WRITE) !== 0) rlo &= ~PTE_RDONLY;
  }
  out.lo = rlo >>> 0;
  out.hi = rhi >>> 0;
  return out;
}

/** `__clear_full_ptes(nr)`: nr PTE_XCHG. */
export function rawClearFullPtes(t: PteTable, i: number, nr: number): void {
  t.mm.ledger.charge(EV.PTE_XCHG, nr);
  for (let k = i; k < i + nr; k++) storePte(t, k, 0, 0);
}

// Result of the last failed cas: the value found in memory.
let casLo = 0;
let casHi = 0;

/** One `cmpxchg_relaxed` attempt: 1 PTE_CMPXCHG. On failure `casLo/casHi` hold the current value. */
function cas(t: PteTable, i: number, expLo: number, expHi: number, newLo: number, newHi: number): boolean {
  t.mm.ledger.charge(EV.PTE_CMPXCHG);
  const cl = t.lo[i]!;
  const ch = t.hi[i]!;
  if (((cl ^ expLo) | (ch ^ expHi)) === 0) {
    storePte(t, i, newLo >>> 0, newHi >>> 0);
    return true;
  }
  casLo = cl;
  casHi = ch;
  return false;
}

/**
 * `___ptep_set_wrprotect(ptep, pte)`: CMPXCHG loop from the expected value
 * `pte` (a stale expectation costs an extra attempt, as in the kernel).
 */
export function rawWrprotectFrom(t: PteTable, i: number, lo: number, hi: number): void {
  for (;;) {
    let nlo = lo;
    let nhi = hi;
    if ((nhi & PTE_HI_WRITE) !== 0 && (nlo & PTE_RDONLY) === 0) nhi |= PTE_HI_DIRTY;
    nhi &= ~PTE_HI_WRITE;
    nlo |= PTE_RDONLY;
    if (cas(t, i, lo, hi, nlo, nhi)) return;
    lo = casLo;
    hi = casHi;
  }
}

/** `__ptep_set_wrprotect`: 1 read + CMPXCHG loop. */
export function rawPtepSetWrprotect(t: PteTable, i: number): void {
  t.mm.ledger.charge(EV.PTE_READ);
  rawWrprotectFrom(t, i, t.lo[i]!, t.hi[i]!);
}

/** `__ptep_test_and_clear_young`: 1 read + CMPXCHG loop (always attempted); returns the old young. */
export function rawTestAndClearYoung(t: PteTable, i: number): boolean {
  t.mm.ledger.charge(EV.PTE_READ);
  let lo = t.lo[i]!;
  let hi = t.hi[i]!;
  while (!cas(t, i, lo, hi, lo & ~PTE_AF, hi)) {
    lo = casLo;
    hi = casHi;
  }
  return (lo & PTE_AF) !== 0;
}

/** `__ptep_clear_flush_young`: test-and-clear, then `flush_tlb_page_nosync` if it was young. */
export function rawClearFlushYoung(t: PteTable, i: number): boolean {
  const young = rawTestAndClearYoung(t, i);
  if (young) doFlushTlbPageNosync(t.mm, t.vaOf(i));
  return young;
}

/** CYDP flags of `clear_young_dirty_ptes`. */
export const CYDP_CLEAR_YOUNG = 1;
export const CYDP_CLEAR_DIRTY = 2;

/**
 * `__clear_young_dirty_ptes`: per entry 1 read, then a plain write when both
 * bits are cleared, else (`__clear_young_dirty_pte` / young only:
 * `__ptep_test_and_clear_young`) a CMPXCHG loop.
 */
export function rawClearYoungDirtyPtes(t: PteTable, i: number, nr: number, flags: number): void {
  if (!t.mm.ledger.tracing) {
    rawClearYoungDirtyPtesBulk(t, i, nr, flags);
    return;
  }
  for (let k = i; k < i + nr; k++) {
    if (flags === CYDP_CLEAR_YOUNG) {
      rawTestAndClearYoung(t, k);
      continue;
    }
    t.mm.ledger.charge(EV.PTE_READ);
    let lo = t.lo[k]!;
    let hi = t.hi[k]!;
    if (flags === (CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY)) {
      rawSetPte(t, k, (lo & ~PTE_AF) | PTE_RDONLY, hi & ~PTE_HI_DIRTY);
      continue;
    }
    for (;;) {
      let nlo = lo;
      let nhi = hi;
      if ((flags & CYDP_CLEAR_YOUNG) !== 0) nlo &= ~PTE_AF;
      if ((flags & CYDP_CLEAR_DIRTY) !== 0) {
        nhi &= ~PTE_HI_DIRTY;
        nlo |= PTE_RDONLY;
      }
      if (cas(t, k, lo, hi, nlo, nhi)) break;
      lo = casLo;
      hi = casHi;
    }
  }
}

/**
 * `rawClearYoungDirtyPtes` without a trace sink: the same stores and the
 * same event counts, charged once per kind (nr reads, then nr CMPXCHGs or,
 * clearing both bits, nr WRITEs). Without a sink nothing can observe the
 * order of charges, and in this single-threaded model every CMPXCHG
 * succeeds at the first attempt (it compares against the value just read).
 * With a sink the per-entry path above keeps the trace's event order.
 */
function rawClearYoungDirtyPtesBulk(t: PteTable, i: number, nr: number, flags: number): void {
  const l = t.mm.ledger;
  l.charge(EV.PTE_READ, nr);
  l.charge(flags === (CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY) ? EV.PTE_WRITE : EV.PTE_CMPXCHG, nr);
  clearYoungDirtyStores(t, i, i + nr, flags);
}

/**
 * @internal The stores of `__clear_young_dirty_ptes` over slots [i, end),
 * uncharged: only entries whose value changes are stored (storing the same
 * value is invisible), and a changed valid entry is recorded for the TLB.
 */
export function clearYoungDirtyStores(t: PteTable, i: number, end: number, flags: number): void {
  if (flags === CYDP_CLEAR_YOUNG) {
    // madvise's cold/pageout pass: only AF changes, only young entries are stored to.
    const los = t.lo;
    for (let k = i; k < end; k++) {
      const lo = los[k]!;
      if ((lo & PTE_AF) === 0) continue;
      if ((lo & PTE_VALID) !== 0) tlbMarkChanged(t, k);
      los[k] = lo & ~PTE_AF;
    }
    return;
  }
  const loClear = (flags & CYDP_CLEAR_YOUNG) !== 0 ? PTE_AF : 0;
  const loSet = (flags & CYDP_CLEAR_DIRTY) !== 0 ? PTE_RDONLY : 0;
  const hiClear = (flags & CYDP_CLEAR_DIRTY) !== 0 ? PTE_HI_DIRTY : 0;
  const los = t.lo;
  const his = t.hi;
  for (let k = i; k < end; k++) {
    const lo = los[k]!;
    const hi = his[k]!;
    const nlo = ((lo & ~loClear) | loSet) >>> 0;
    const nhi = (hi & ~hiClear) >>> 0;
    if (nlo === lo && nhi === hi) continue; // the store would write the same value
    if ((lo & PTE_VALID) !== 0) tlbMarkChanged(t, k);
    los[k] = nlo;
    his[k] = nhi;
  }
}

/**
 * `__ptep_set_access_flags` (arch/arm64/mm/fault.c): 1 read; 0 if `pte_same`;
 * else a CMPXCHG loop that ORs in AF/WRITE/DIRTY and takes the most
 * permissive RDONLY; then `flush_tlb_page` if `dirty`.
 */
export function rawSetAccessFlags(t: PteTable, i: number, elo: number, ehi: number, dirty: boolean): boolean {
  t.mm.ledger.charge(EV.PTE_READ);
  let lo = t.lo[i]!;
  let hi = t.hi[i]!;
  if (pteSame(lo, hi, elo, ehi)) return false;
  // keep only RDONLY | AF (low) and WRITE | DIRTY (high), RDONLY inverted
  const eLo = ((elo & (PTE_RDONLY | PTE_AF)) ^ PTE_RDONLY) >>> 0;
  const eHi = (ehi & (PTE_HI_WRITE | PTE_HI_DIRTY)) >>> 0;
  for (;;) {
    const nlo = (((lo ^ PTE_RDONLY) | eLo) ^ PTE_RDONLY) >>> 0;
    const nhi = (hi | eHi) >>> 0;
    if (cas(t, i, lo, hi, nlo, nhi)) break;
    lo = casLo;
    hi = casHi;
  }
  if (dirty) doFlushTlbPage(t.mm, t.vaOf(i));
  return true;
}
