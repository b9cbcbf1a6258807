import { EV, FoliolabError } from '@foliolab/ledger';
import { checkRange, checkSlot, checkWords } from './check.js';
import {
  contpteBatchHint,
  contpteGather,
  contpteGatherLockless,
  contpteTryFold,
  contpteTryUnfold,
  contpteTryUnfoldPartial,
} from './contpte.js';
import { CONT_PTES, PFN_LIMIT } from './geometry.js';
import { rawClearFullPtes, rawGetAndClear, rawGetAndClearFullPtes, rawSetPte, rawSetPtes, storePte } from './primitives.js';
import { tlbMarkChanged } from './tlbtrack.js';
import { PTE_HI_CONT, PTE_HI_PFN_MASK, PTE_HI_SPECIAL, PTE_LO_PFN_MASK, PTE_VALID, pfnHi, pfnLo, ptePfn, ptePresent, type PteBits } from './pte.js';
import { PTE_SWP_EXCLUSIVE, PTE_SWP_UFFD_WP, SWP_TYPE_MASK, SWP_TYPE_SHIFT } from './softleaf.js';
import type { PteTable } from './tables.js';

const TWO20 = 1 << 20;
/** High-word bits of swap offset bits 20–49. */
const SWP_HI_OFFSET_MASK = 0x3fffffff;

/*
 * The public ptep API the arch presents to core mm (spec §6): arm64 with
 * CONFIG_ARM64_CONTPTE (arch/arm64/include/asm/pgtable.h ≈v6.12–6.15), the
 * same without contpte (`arm64-nocont`: the `__` primitives directly), and
 * x86 (generic include/linux/pgtable.h helpers over x86 primitives). Every
 * function validates (table, index, nr) first and changes nothing on error.
 */

/** @internal `ptep_get`, unchecked: 1 read, or G on a valid-CONT entry (contpte). */
export function doPtepGet(t: PteTable, i: number, out: PteBits): PteBits {
  const lo = t.lo[i]!;
  const hi = t.hi[i]!;
  out.lo = lo;
  out.hi = hi;
  const mm = t.mm;
  // The entry's own bits first: most entries read on the hot paths are not valid-CONT.
  mm.ledger.charge(EV.PTE_READ, (lo & PTE_VALID) !== 0 && (hi & PTE_HI_CONT) !== 0 && mm.contpte ? 1 + contpteGather(t, i, out) : 1);
  return out;
}

/**
 * `ptep_get`: 1 PTE_READ, or G on a valid-CONT entry (G = 17 for `old17`;
 * 3..17 for `earlyExit`). The returned copy keeps the CONT bit (so
 * `pteBatchHint` works on it) and the block's OR'ed young/dirty.
 */
export function ptepGet(table: PteTable, index: number, out: PteBits): PteBits {
  checkSlot('ptepGet', table, index);
  return doPtepGet(table, index, out);
}

/** @internal `ptep_get_lockless`, unchecked. */
export function doPtepGetLockless(t: PteTable, i: number, out: PteBits): PteBits {
  out.lo = t.lo[i]!;
  out.hi = t.hi[i]!;
  let reads = 1;
  if (t.mm.contpte && (out.lo & PTE_VALID) !== 0 && (out.hi & PTE_HI_CONT) !== 0) reads += contpteGatherLockless(t, i, out);
  t.mm.ledger.charge(EV.PTE_READ, reads);
  return out;
}

/** `ptep_get_lockless`: 1 PTE_READ, or G+1 on a valid-CONT entry (contpte re-reads the target). */
export function ptepGetLockless(table: PteTable, index: number, out: PteBits): PteBits {
  checkSlot('ptepGetLockless', table, index);
  return doPtepGetLockless(table, index, out);
}

/** `pte_batch_hint(ptep, pte)`: on contpte 16 − (index % 16) for a valid-CONT value, else (and on other arches) 1. */
export function pteBatchHint(table: PteTable, index: number, lo: number, hi: number): number {
  checkSlot('pteBatchHint', table, index);
  return table.mm.contpte ? contpteBatchHint(index, lo, hi) : 1;
}

function checkSetPtes(t: PteTable, i: number, lo: number, hi: number, nr: number): void {
  checkRange('setPtes', t, i, nr);
  checkWords('setPtes', lo, hi);
  if (nr === 1) return;
  const fail = (why: string): never => {
    throw new FoliolabError('EINVAL', `setPtes: nr ${nr} at index ${i}: ${why}`, { index: i, nr, lo, hi });
  };
  if (!ptePresent(lo, hi)) fail('a batch must install present entries');
  const pfn = ptePfn(lo, hi);
  if (pfn + nr > PFN_LIMIT) fail(`pfn ${pfn} + ${nr} overflows 36 bits`);
  // 7.2.13 include/linux/pgtable.h:set_ptes: "The pages all belong to the same folio"; special
  // entries (zero page, PFN maps) have none and are installed one at a time with set_pte_at
  // (mm/memory.c:insert_page_into_pte_locked, remap_pte_range; mm/huge_memory.c:__split_huge_zero_page_pmd).
  if ((hi & PTE_HI_SPECIAL) !== 0) fail('special entries are not batch-set');
  const f = t.mm.folios;
  if (f !== null && (f.folioHead(pfn) !== f.folioHead(pfn + nr - 1) || f.folioHead(pfn) + f.folioNrPages(pfn) < pfn + nr)) {
    fail(`pfns [${pfn}, ${pfn + nr}) are not in one folio`);
  }
  // "When nr>1, initial state of all ptes must be not present" (set_ptes; contpte_set_ptes relies on it):
  // none or a non-present entry such as the swap PTEs do_swap_page replaces in one call.
  for (let k = i; k < i + nr; k++) if (ptePresent(t.lo[k]!, t.hi[k]!)) fail(`target ${k} is present`);
}

/**
 * `set_ptes(mm, addr, ptep, pte, nr)`; the CONT bit of the input is stripped.
 * contpte, nr == 1: read, `contpte_try_unfold`, 1 WRITE, `contpte_try_fold`.
 * contpte, nr > 1 (`contpte_set_ptes`): no target may be present; chunks at
 * 64K boundaries whose VA, end and PA are 64K-aligned get CONT; nr WRITEs.
 * arm64-nocont and x86: nr WRITEs.
 */
export function setPtes(table: PteTable, index: number, lo: number, hi: number, nr: number): void {
  checkSetPtes(table, index, lo, hi, nr);
  hi = (hi & ~PTE_HI_CONT) >>> 0;
  const mm = table.mm;
  if (!mm.contpte) {
    rawSetPtes(table, index, lo, hi, nr);
    return;
  }
  if (nr === 1) {
    mm.ledger.charge(EV.PTE_READ);
    contpteTryUnfold(table, index, table.lo[index]!, table.hi[index]!);
    rawSetPte(table, index, lo, hi);
    contpteTryFold(table, index, lo, hi);
    return;
  }
  if (!mm.userMm) {
    rawSetPtes(table, index, lo, hi, nr);
    return;
  }
  const protLo = lo & ~PTE_LO_PFN_MASK;
  const protHi = hi & ~PTE_HI_PFN_MASK;
  let pfn = ptePfn(lo, hi);
  const end = index + nr;
  for (let a = index; a < end; ) {
    const next = Math.min(a - (a % CONT_PTES) + CONT_PTES, end);
    const n = next - a;
    const cont = a % CONT_PTES === 0 && next % CONT_PTES === 0 && pfn % CONT_PTES === 0;
    rawSetPtes(table, a, (protLo | pfnLo(pfn)) >>> 0, (protHi | pfnHi(pfn) | (cont ? PTE_HI_CONT : 0)) >>> 0, n);
    a = next;
    pfn += n;
  }
}

/** `set_pte_at(mm, addr, ptep, pte)` = `set_ptes(…, 1)`. */
export function setPteAt(table: PteTable, index: number, lo: number, hi: number): void {
  setPtes(table, index, lo, hi, 1);
}

/**
 * @internal `set_pte_at`, unchecked: the caller guarantees a slot of `t` and
 * uint32 halves (same events as `setPteAt`).
 */
export function doSetPteAt(t: PteTable, i: number, lo: number, hi: number): void {
  hi = (hi & ~PTE_HI_CONT) >>> 0;
  const mm = t.mm;
  if (!mm.contpte) {
    rawSetPtes(t, i, lo, hi, 1);
    return;
  }
  mm.ledger.charge(EV.PTE_READ);
  const ol = t.lo[i]!;
  // contpte_try_unfold's and contpte_try_fold's own first tests, inline: most targets are not CONT, most values not valid.
  if ((ol & PTE_VALID) !== 0 && (t.hi[i]! & PTE_HI_CONT) !== 0) contpteTryUnfold(t, i, ol, t.hi[i]!);
  rawSetPte(t, i, lo, hi);
  if ((lo & PTE_VALID) !== 0) contpteTryFold(t, i, lo, hi);
}

/**
 * @internal `nr` × `set_pte_at` of the swap PTEs for (type, offset + k) at
 * slots i + k: try_to_unmap_one's swap-PTE loop after a batched clear, with
 * the same stores and events as `nr` `internalSetPteAt` calls of the
 * `swp_entry_to_pte` values (per entry: on contpte 1 PTE_READ for the
 * try-unfold, then 1 PTE_WRITE; a swap PTE is never valid, so never folds).
 * Unchecked: the caller guarantees [i, i + nr) inside `t`, nr ≥ 1, a swap
 * type 0..23 and offsets offset..offset + nr − 1 below 2^50.
 */
export function doSetSwapPtes(t: PteTable, i: number, nr: number, type: number, offset: number, exclusive: boolean, uffdWp: boolean): void {
  const flagsLo = ((type & SWP_TYPE_MASK) << SWP_TYPE_SHIFT) | (exclusive ? PTE_SWP_EXCLUSIVE : 0) | (uffdWp ? PTE_SWP_UFFD_WP : 0);
  const mm = t.mm;
  const end = i + nr;
  let k = i;
  let off = offset;
  if (!mm.ledger.tracing) {
    // No sink can see the order of charges: store until a target would need an unfold (none does after
    // get_and_clear_full_ptes), then charge those entries' reads and writes at once.
    const contpte = mm.contpte;
    const los = t.lo;
    const his = t.hi;
    // The offset as (bits 0–19, bits 20–49), carried by hand: int32 arithmetic only.
    let offLo = off % TWO20;
    let offHi = Math.floor(off / TWO20);
    for (; k < end; k++) {
      const ol = los[k]!;
      if ((ol & PTE_VALID) !== 0) {
        if (contpte && (his[k]! & PTE_HI_CONT) !== 0) break;
        tlbMarkChanged(t, k); // a swap PTE always differs from a valid entry
      }
      los[k] = flagsLo | (offLo << 12);
      // set_pte_at strips CONT (hi bit 20 = offset bit 40) before storing.
      his[k] = offHi & SWP_HI_OFFSET_MASK & ~PTE_HI_CONT;
      if (++offLo === TWO20) {
        offLo = 0;
        offHi++;
      }
    }
    off += k - i;
    if (k > i) {
      if (contpte) mm.ledger.charge(EV.PTE_READ, k - i);
      mm.ledger.charge(EV.PTE_WRITE, k - i);
    }
  }
  // The rest one at a time: the whole run with a sink (the trace keeps its order), else from a valid-CONT target on.
  for (; k < end; k++, off++) doSetPteAt(t, k, (flagsLo | ((off % TWO20) << 12)) >>> 0, Math.floor(off / TWO20) & SWP_HI_OFFSET_MASK);
}

/**
 * `__set_pte` (arm64 private API): one plain store, 1 PTE_WRITE, no contpte
 * handling. Rejects a target that is valid-CONT or a value with CONT (either
 * would leave a partial contpte block). Use it where a spec counts a bare
 * store (the §8 swap-PTE install); core-mm code calls `setPteAt`.
 */
export function __setPte(table: PteTable, index: number, lo: number, hi: number): void {
  checkSlot('__setPte', table, index);
  checkWords('__setPte', lo, hi);
  if ((hi & PTE_HI_CONT) !== 0 && ptePresent(lo, hi)) throw new FoliolabError('EINVAL', '__setPte: value has CONT set', { lo, hi });
  if ((table.lo[index]! & PTE_VALID) !== 0 && (table.hi[index]! & PTE_HI_CONT) !== 0) {
    throw new FoliolabError('EBUSY', `__setPte: slot ${index} is part of a contpte block`, { index });
  }
  rawSetPte(table, index, lo, hi);
}

/** `pte_clear`: contpte: read, `contpte_try_unfold`, WRITE 0; otherwise 1 WRITE. */
export function pteClear(table: PteTable, index: number): void {
  checkSlot('pteClear', table, index);
  if (table.mm.contpte) {
    table.mm.ledger.charge(EV.PTE_READ);
    contpteTryUnfold(table, index, table.lo[index]!, table.hi[index]!);
  }
  rawSetPte(table, index, 0, 0);
}

/** @internal `ptep_get_and_clear`, unchecked. */
export function doPtepGetAndClear(t: PteTable, i: number, out: PteBits): PteBits {
  if (t.mm.contpte) {
    t.mm.ledger.charge(EV.PTE_READ);
    contpteTryUnfold(t, i, t.lo[i]!, t.hi[i]!);
  }
  return rawGetAndClear(t, i, out);
}

/**
 * `ptep_get_and_clear`: contpte: read, `contpte_try_unfold` (unfolds the
 * whole block), 1 XCHG. Otherwise 1 XCHG.
 */
export function ptepGetAndClear(table: PteTable, index: number, out: PteBits): PteBits {
  checkSlot('ptepGetAndClear', table, index);
  return doPtepGetAndClear(table, index, out);
}

/**
 * `ptep_get_and_clear_full`: arm64 uses the generic version, which ignores
 * `full`. x86 clears non-atomically when `full`, else xchg; both are one
 * PTE_XCHG (the ledger counts the x86 full clear as XCHG).
 */
export function ptepGetAndClearFull(table: PteTable, index: number, _full: boolean, out: PteBits): PteBits {
  checkSlot('ptepGetAndClearFull', table, index);
  return doPtepGetAndClear(table, index, out);
}

/** @internal `get_and_clear_full_ptes`, unchecked. */
export function doGetAndClearFullPtes(t: PteTable, i: number, nr: number, out: PteBits): PteBits {
  const mm = t.mm;
  if (nr === 1) {
    // One entry (try_to_unmap_one per PTE): `ptep_get_and_clear`, whose result and events are the
    // same as the one-entry batch (nothing to OR in), without the batch loop.
    if (mm.contpte) {
      const lo = t.lo[i]!;
      mm.ledger.charge(EV.PTE_READ);
      if ((lo & PTE_VALID) !== 0 && (t.hi[i]! & PTE_HI_CONT) !== 0) contpteTryUnfold(t, i, lo, t.hi[i]!);
    }
    return rawGetAndClear(t, i, out);
  }
  if (mm.contpte) contpteTryUnfoldPartial(t, i, nr);
  return rawGetAndClearFullPtes(t, i, nr, out);
}

/**
 * `get_and_clear_full_ptes(mm, addr, ptep, nr, full)`: returns the first old
 * value with young/dirty OR'ed from the rest. contpte: nr == 1 reads and
 * try-unfolds; nr > 1 runs `contpte_try_unfold_partial` (0–2 reads/unfolds;
 * an aligned whole-block range never unfolds), then nr XCHG. Elsewhere nr XCHG.
 */
export function getAndClearFullPtes(table: PteTable, index: number, nr: number, _full: boolean, out: PteBits): PteBits {
  checkRange('getAndClearFullPtes', table, index, nr);
  return doGetAndClearFullPtes(table, index, nr, out);
}

/** `get_and_clear_ptes` = `get_and_clear_full_ptes(…, full = 0)`. */
export function getAndClearPtes(table: PteTable, index: number, nr: number, out: PteBits): PteBits {
  checkRange('getAndClearPtes', table, index, nr);
  return doGetAndClearFullPtes(table, index, nr, out);
}

/** `clear_full_ptes`: as `get_and_clear_full_ptes` without the merged result. */
export function clearFullPtes(table: PteTable, index: number, nr: number, _full: boolean): void {
  checkRange('clearFullPtes', table, index, nr);
  doClearFullPtes(table, index, nr);
}

/** `clear_ptes` = `clear_full_ptes(…, full = 0)`. */
export function clearPtes(table: PteTable, index: number, nr: number): void {
  checkRange('clearPtes', table, index, nr);
  doClearFullPtes(table, index, nr);
}

function doClearFullPtes(t: PteTable, i: number, nr: number): void {
  if (t.mm.contpte) {
    if (nr === 1) {
      t.mm.ledger.charge(EV.PTE_READ);
      contpteTryUnfold(t, i, t.lo[i]!, t.hi[i]!);
    } else {
      contpteTryUnfoldPartial(t, i, nr);
    }
  }
  rawClearFullPtes(t, i, nr);
}

/** Uncharged copy of a slot (state dumps, tests, invariant checks). */
export function peekPte(table: PteTable, index: number, out: PteBits): PteBits {
  checkSlot('peekPte', table, index);
  out.lo = table.lo[index]!;
  out.hi = table.hi[index]!;
  return out;
}

/** Uncharged raw store for fixtures and fault injection (not a kernel operation: no contpte handling; TLB staleness is still recorded). */
export function pokePte(table: PteTable, index: number, lo: number, hi: number): void {
  checkSlot('pokePte', table, index);
  checkWords('pokePte', lo, hi);
  storePte(table, index, lo, hi);
}
