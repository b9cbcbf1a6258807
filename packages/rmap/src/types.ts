import type { AnonVma } from './anon-vma.js';

/*
 * The small vocabulary the rmap shares with its callers: an mm identity and a
 * VMA shape, kernel flag values and errno returns. The engine package (later)
 * owns real mms and VMAs; it only has to satisfy these interfaces.
 */

/** Base-page size and shift (4 KiB pages, as on the arm64/x86 configurations modelled). */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/** HPAGE_PMD_ORDER with 4 KiB pages: a PMD maps 512 pages. */
export const HPAGE_PMD_ORDER = 9;
/** HPAGE_PMD_NR. */
export const HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER;

/** GUP_PIN_COUNTING_BIAS: a FOLL_PIN on a small folio adds this to the refcount. */
export const GUP_PIN_COUNTING_BIAS = 1024;

/** `rmap_t` flags (include/linux/rmap.h). */
export type RmapFlags = number;
/** RMAP_NONE: no special semantics. */
export const RMAP_NONE = 0;
/** RMAP_EXCLUSIVE: the (sub)pages are exclusive to this process: set PageAnonExclusive. */
export const RMAP_EXCLUSIVE = 1;

/** errno values returned (negated) by the try_* helpers and vma_address. */
export const EBUSY = 16;
export const EFAULT = 14;
/** @internal −EBUSY as a literal type. */
export const NEG_EBUSY: -16 = -16;

/** Result of a try_dup / try_share helper: 0 or −EBUSY (all-or-nothing). */
export type RmapTryResult = 0 | -16;

/**
 * What the rmap needs of an `mm_struct`: its MM_ID (from an IDA in the
 * kernel; 1..0x7fffffff here, 0 is MM_ID_DUMMY) and MMF_HAS_PINNED, which
 * FOLL_PIN sets and never clears.
 */
export interface RmapMm {
  readonly mmId: number;
  /** MMF_HAS_PINNED. */
  hasPinned: boolean;
}

/**
 * What the rmap needs of a `vm_area_struct`. Addresses are byte addresses;
 * `vmPgoff` is the page offset of `vmStart` in the anon "file" (for anon VMAs,
 * vm_start >> PAGE_SHIFT at creation, preserved by mremap).
 *
 * While a VMA is linked into an anon_vma interval tree its `vmStart`,
 * `vmEnd` and `vmPgoff` must not change: unlink, change, link again (the
 * kernel's anon_vma_interval_tree_pre/post_update_vma do the same).
 */
export interface RmapVma {
  readonly mm: RmapMm;
  vmStart: number;
  vmEnd: number;
  vmPgoff: number;
  anonVma: AnonVma | null;
  /** VM_DROPPABLE: folio_add_new_anon_rmap leaves a new folio !swapbacked (dropped, never swapped). */
  readonly droppable?: boolean;
}

/** vma_pages(): pages spanned by the VMA. */
export function vmaPages(vma: RmapVma): number {
  return (vma.vmEnd - vma.vmStart) / PAGE_SIZE;
}

/** linear_page_index(vma, address): the pgoff `address` maps in `vma`. */
export function linearPageIndex(vma: RmapVma, address: number): number {
  return Math.floor((address - vma.vmStart) / PAGE_SIZE) + vma.vmPgoff;
}
