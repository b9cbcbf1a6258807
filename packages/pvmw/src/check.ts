import { EV } from '@foliolab/ledger';
import {
  HPAGE_PMD_NR,
  ptePfn,
  ptePresent,
  internalPtepGet,
  softleafIsDeviceExclusive,
  softleafIsDevicePrivate,
  softleafIsMigration,
  softleafPfn,
} from '@foliolab/pagetable-arm64-contpte';
import type { PageVmaMappedWalk } from './state.js';
import { PVMW_BATCH_PRESENT, PVMW_MIGRATION } from './types.js';

/*
 * The helpers of mm/page_vma_mapped.c (2026, post-softleaf; spec "Package
 * pvmw" §2): check_pte, check_pmd, step_forward.
 */

/**
 * The decision of `check_pte` on an already-read entry (lo, hi) describing
 * `n` pages: does it map some page of [walk.pfn, walk.pfn + nrPages)?
 * - PVMW_MIGRATION: only migration softleaf entries, by their PFN;
 * - otherwise present entries by `pte_pfn`, and device-private /
 *   device-exclusive softleaf entries by their PFN;
 * - PVMW_BATCH_PRESENT ("look for present entries", seed 003): present only.
 * None, swap, marker and hwpoison entries never match.
 */
export function pteMatches(w: PageVmaMappedWalk, lo: number, hi: number, n: number): boolean {
  let pfn: number;
  if ((w.flags & PVMW_MIGRATION) !== 0) {
    if (!softleafIsMigration(lo, hi)) return false;
    pfn = softleafPfn(lo, hi);
  } else if (ptePresent(lo, hi)) {
    pfn = ptePfn(lo, hi);
  } else {
    if ((w.flags & PVMW_BATCH_PRESENT) !== 0) return false;
    // Un-addressable ZONE_DEVICE memory still counts as a mapping of the page.
    if (!softleafIsDevicePrivate(lo, hi) && !softleafIsDeviceExclusive(lo, hi)) return false;
    pfn = softleafPfn(lo, hi);
  }
  // Overlap of [pfn, pfn + n) with the target, written as the kernel does to avoid overflow.
  if (pfn + n - 1 < w.pfn) return false;
  return !(pfn > w.pfn + w.nrPages - 1);
}

/**
 * `check_pte(pvmw, pte_nr)`: one gathering `ptep_get` of the current PTE
 * (1 PTE_READ, or G on a valid-CONT entry), kept in `walk.pteval`, then
 * `pteMatches`.
 */
export function checkPte(w: PageVmaMappedWalk, n: number): boolean {
  // Unchecked read: the walker's (pte, pteIndex) is a slot of a mapped table by construction.
  const v = internalPtepGet(w.pte!, w.pteIndex, w.pteval);
  return pteMatches(w, v.lo, v.hi, n);
}

/** `check_pmd(pfn, pvmw)`: [pfn, pfn + 512) overlaps the target. */
export function checkPmd(w: PageVmaMappedWalk, pfn: number): boolean {
  if (pfn + HPAGE_PMD_NR - 1 < w.pfn) return false;
  return !(pfn > w.pfn + w.nrPages - 1);
}

/** The kernel's ULONG_MAX sentinel after an address wrap. */
export const ULONG_MAX = Number.MAX_SAFE_INTEGER;

/**
 * `step_forward(pvmw, size)`: address = next `size` boundary (PVMW_STEP).
 * A wrap to 0 becomes ULONG_MAX; with 48-bit VAs in 64-bit longs it cannot
 * happen, but the branch is kept to mirror the kernel.
 */
export function stepForward(w: PageVmaMappedWalk, size: number): void {
  w.pt.ledger.charge(EV.PVMW_STEP);
  const a = w.address + size;
  w.address = a - (a % size);
  if (w.address === 0) w.address = ULONG_MAX;
}
