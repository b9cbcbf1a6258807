import { PAGE_SIZE } from '@foliolab/pagetable-arm64-contpte';
import { EFAULT, type PvmwVma } from './types.js';

/*
 * vma_address / vma_address_end (mm/internal.h, 2026; spec "Package pvmw" §1).
 * Addresses are exact JS integers (< 2^48), so the kernel's unsigned wrap
 * checks become sign checks.
 */

/**
 * `vma_address(vma, pgoff, nr_pages)`: the first address at which
 * [pgoff, pgoff + nr) may be mapped in `vma`, or `-EFAULT`.
 */
export function vmaAddress(vma: PvmwVma, pgoff: number, nrPages: number): number {
  if (pgoff >= vma.vmPgoff) {
    const address = vma.vmStart + (pgoff - vma.vmPgoff) * PAGE_SIZE;
    return address < vma.vmStart || address >= vma.vmEnd ? -EFAULT : address;
  }
  // The range starts before the VMA: it is mapped from vm_start if it reaches vm_pgoff.
  if (pgoff + nrPages - 1 >= vma.vmPgoff) return vma.vmStart;
  return -EFAULT;
}

/**
 * `vma_address_end` on explicit fields: `address + 4K` when nr_pages == 1,
 * else the address past the range's last page, clamped to vm_end.
 */
export function vmaAddressEndOf(vma: PvmwVma, pgoff: number, nrPages: number, address: number): number {
  // Common case, and ->pgoff is invalid for KSM pages.
  if (nrPages === 1) return address + PAGE_SIZE;
  const end = vma.vmStart + (pgoff + nrPages - vma.vmPgoff) * PAGE_SIZE;
  return end < vma.vmStart || end > vma.vmEnd ? vma.vmEnd : end;
}
