/*
 * Flags, the VMA and target interfaces of page_vma_mapped_walk (spec
 * pagetable-contpte-pvmw.md, "Package pvmw" §1). Flag values follow
 * include/linux/rmap.h (2026); PVMW_BATCH_PRESENT takes bit 2, the value
 * Barry Song's sketch in seed 003 gave it (as PVMW_BATCH_UNMAP).
 */

/** `PVMW_SYNC`: always take the PTE lock before inspecting an entry. */
export const PVMW_SYNC = 1 << 0;
/** `PVMW_MIGRATION`: match migration entries only. */
export const PVMW_MIGRATION = 1 << 1;
/**
 * `PVMW_BATCH_PRESENT` (proposed in seed 003, never merged): look for
 * present entries only, report the run of present PTEs mapping consecutive
 * target pages at each hit (`walk.nr`), and step over the caller's handled
 * run without reading it on the next call. See README "PVMW_BATCH_PRESENT".
 */
export const PVMW_BATCH_PRESENT = 1 << 2;
/** Result flag `PVMW_PGTABLE_CROSSED`: NEXT crossed a PTE-table (2M) boundary. Never cleared by the walker. */
export const PVMW_PGTABLE_CROSSED = 1 << 16;

/** Flags a caller may pass in. */
export const PVMW_INPUT_FLAGS = PVMW_SYNC | PVMW_MIGRATION | PVMW_BATCH_PRESENT;

/** `pvmw->ptl == NULL`. */
export const NO_LOCK = -1;

/** `vma_address` returns `-EFAULT` when the range misses the VMA. */
export const EFAULT = 14;

/**
 * The part of `struct vm_area_struct` the walker reads. A later engine passes
 * its VMAs (structurally). Addresses are bytes, `vmPgoff` is in 4K pages.
 */
export interface PvmwVma {
  readonly vmStart: number;
  readonly vmEnd: number;
  readonly vmPgoff: number;
  /** `is_vm_hugetlb_page`: the walk takes the hugetlb branch (2M hstate only in this model). */
  readonly isHugetlb?: boolean;
  /**
   * Override of `thp_vma_suitable_order(vma, address, PMD_ORDER)` (only used
   * by the SYNC zap-wait). Default: the anonymous-VMA rule, i.e. the 2M-aligned
   * range around the address lies inside the VMA.
   */
  readonly thpPmdOrderSuitable?: boolean;
}

/** What `DEFINE_FOLIO_VMA_WALK` takes from the folio: PFN range and page offset. */
export interface PvmwTarget {
  /** `folio_pfn(folio)`. */
  readonly pfn: number;
  /** `folio_nr_pages(folio)`. */
  readonly nrPages: number;
  /** `folio_pgoff(folio)` (for anon: the linear page index of the folio's first page). */
  readonly pgoff: number;
}

/** Where a test hook may simulate another CPU changing the PMD (see `PageVmaMappedWalk.raceHook`). */
export type PvmwRaceSite =
  /** D.3: a trans-huge/migration PMD was seen locklessly; the PMD lock is about to be taken. */
  | 'pmdLock'
  /** map_pte or the NEXT relock: the PTE lock is about to be taken (the PMD is re-checked under it). */
  | 'ptl';
