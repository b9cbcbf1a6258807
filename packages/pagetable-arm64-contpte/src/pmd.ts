import { PMD_SIZE, PAGE_SIZE } from './geometry.js';
import { PTE_LO_PFN_MASK, PTE_HI_PFN_MASK, PTE_TYPE_PAGE, PTE_VALID, pfnHi, pfnLo, ptePfn, ptePresent, type PteBits } from './pte.js';
import { SWP_DEVICE_READ, SWP_DEVICE_WRITE, SWP_MIGRATION_READ, SWP_MIGRATION_WRITE, softleafType } from './softleaf.js';

/*
 * PMD (L2) descriptors (spec §1), same 64-bit layout as a PTE:
 * - table: bits 0–1 = 0b11, output address = next-level table. The simulator
 *   stores its table id in the address field (bits 12–47) instead of a
 *   physical address: page-table pages are not part of the memmap.
 * - block (PMD-mapped THP): bit 1 clear, PFN 2M-aligned, PTE attribute bits.
 * - non-present: the swap-PTE layout (PMD migration / device-private entries).
 */

export const PMD_TYPE_MASK = 3;
export const PMD_TYPE_TABLE = 3;
export const PMD_TYPE_SECT = 1;
/** Pages mapped by one PMD block. */
export const HPAGE_PMD_NR = PMD_SIZE / PAGE_SIZE;

/** `pmd_none`. */
export function pmdNone(lo: number, hi: number): boolean {
  return (lo | hi) === 0;
}

/** `pmd_present` = `pte_present(pmd_pte(pmd))`. */
export function pmdPresent(lo: number, hi: number): boolean {
  return ptePresent(lo, hi);
}

/** `pmd_table`: type bits 0b11. */
export function pmdIsTable(lo: number, _hi: number): boolean {
  return (lo & PMD_TYPE_MASK) === PMD_TYPE_TABLE;
}

/**
 * `pmd_trans_huge`: non-zero, present, and not a table once VALID is forced on
 * (so a present-invalid block still counts).
 */
export function pmdTransHuge(lo: number, hi: number): boolean {
  return (lo | hi) !== 0 && pmdPresent(lo, hi) && ((lo | PTE_VALID) & PMD_TYPE_MASK) !== PMD_TYPE_TABLE;
}

/** `pmd_leaf`: present and not a table. */
export function pmdLeaf(lo: number, hi: number): boolean {
  return pmdPresent(lo, hi) && !pmdIsTable(lo, hi);
}

/** `pmd_pfn`: the PFN masked to 2 MiB alignment. */
export function pmdPfn(lo: number, hi: number): number {
  const pfn = ptePfn(lo, hi);
  return pfn - (pfn % HPAGE_PMD_NR);
}

/** `is_pmd_migration_entry`. */
export function isPmdMigrationEntry(lo: number, hi: number): boolean {
  const t = softleafType(lo, hi);
  return t >= SWP_MIGRATION_READ && t <= SWP_MIGRATION_WRITE;
}

/** `is_pmd_device_private_entry`. */
export function isPmdDevicePrivateEntry(lo: number, hi: number): boolean {
  const t = softleafType(lo, hi);
  return t === SWP_DEVICE_WRITE || t === SWP_DEVICE_READ;
}

/**
 * `pmd_mkhuge(pfn_pmd(pfn, prot))` with the prot taken from a PTE value:
 * clears the page/table type bit, keeping VALID as it is (present-invalid
 * stays present-invalid). `pfn` must be 512-aligned.
 */
export function pmdMkhuge(out: PteBits, pteProtLo: number, pteProtHi: number, pfn: number): PteBits {
  out.lo = ((pteProtLo & ~PTE_LO_PFN_MASK & ~PTE_TYPE_PAGE) | pfnLo(pfn)) >>> 0;
  out.hi = ((pteProtHi & ~PTE_HI_PFN_MASK) | pfnHi(pfn)) >>> 0;
  return out;
}

/** @internal A table descriptor pointing at simulator table `id`. */
export function tableDescLo(id: number): number {
  return (pfnLo(id) | PMD_TYPE_TABLE) >>> 0;
}

/** @internal */
export function tableDescHi(id: number): number {
  return pfnHi(id);
}

/** @internal The simulator table id a table descriptor points at. */
export function tableDescId(lo: number, hi: number): number {
  return ptePfn(lo, hi);
}
