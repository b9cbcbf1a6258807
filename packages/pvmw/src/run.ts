import { FoliolabError } from '@foliolab/ledger';
import { CONT_PTES, PAGE_SIZE, PTRS_PER_PTE, internalPtepGet, ptePfn, ptePresent, pteValidCont, type PteTable } from '@foliolab/pagetable-arm64-contpte';
import type { PageVmaMappedWalk } from './state.js';

/*
 * PVMW_BATCH_PRESENT, the walker side (this package's reading of seed 003;
 * see README). At a hit the walker measures the run of present PTEs that map
 * consecutive target pages; on the next call it steps over the part of the
 * run the caller handled without reading it (Barry Song: "skip nr − 1").
 */

/** `pte_batch_hint(ptep, pte)` without the slot check (the walker's index is in range by construction). */
export function batchHint(t: PteTable, i: number, lo: number, hi: number): number {
  return t.mm.contpte && pteValidCont(lo, hi) ? CONT_PTES - (i & (CONT_PTES - 1)) : 1;
}

/** Forget the measured run: the ptl protecting it was (or is being) dropped. */
export function forgetRun(w: PageVmaMappedWalk): void {
  w.runTable = null;
}

/**
 * The run at the current hit, with `walk.pteval` holding check_pte's copy.
 * Capped at the PTE table, `end` and the target's last PFN. Reads like
 * `folio_pte_batch` without attribute comparison: the hit's gathered copy
 * gives the first hint, then one gathering `ptep_get` per following slot
 * (one per contpte block). A run measured earlier under the same, still
 * held ptl is reused when the hit lies inside it: the caller only changed
 * the entries it reported handled, all before the hit.
 */
export function measureRun(w: PageVmaMappedWalk, end: number): number {
  const t = w.pte!;
  const i = w.pteIndex;
  const pfn0 = ptePfn(w.pteval.lo, w.pteval.hi);
  if (w.runTable === t && i >= w.runStart && i < w.runEnd && pfn0 === w.runPfn + (i - w.runStart)) return w.runEnd - i;
  let maxNr = PTRS_PER_PTE - i;
  const toEnd = (end - w.address) / PAGE_SIZE;
  if (toEnd < maxNr) maxNr = toEnd;
  const toTargetEnd = w.pfn + w.nrPages - pfn0;
  if (toTargetEnd < maxNr) maxNr = toTargetEnd;
  let nr = batchHint(t, i, w.pteval.lo, w.pteval.hi);
  const v = w.scratch;
  while (nr < maxNr) {
    internalPtepGet(t, i + nr, v); // i + nr < i + maxNr ≤ 512
    if (!ptePresent(v.lo, v.hi) || ptePfn(v.lo, v.hi) !== pfn0 + nr) break;
    nr += batchHint(t, i + nr, v.lo, v.hi);
  }
  if (nr > maxNr) nr = maxNr;
  w.runTable = t;
  w.runStart = i;
  w.runEnd = i + nr;
  w.runPfn = pfn0;
  return nr;
}

/**
 * Entry of a call that resumes after a PTE hit under PVMW_BATCH_PRESENT:
 * move pte/address onto the last entry the caller handled (`nr − 1` slots,
 * no reads), so NEXT lands on the first unhandled one. Validates `walk.nr`.
 */
export function skipHandledRun(w: PageVmaMappedWalk): void {
  const k = w.nr;
  if (!Number.isInteger(k) || k < 1 || k > w.lastRun) {
    throw new FoliolabError('EINVAL', `page_vma_mapped_walk: PVMW_BATCH_PRESENT walk.nr ${String(k)} is not within 1..${w.lastRun} (the run returned)`, { nr: k, run: w.lastRun });
  }
  w.pteIndex += k - 1;
  w.address += (k - 1) * PAGE_SIZE;
  w.nr = 1;
}
