import { FoliolabError } from '@foliolab/ledger';

/*
 * 4K granule, 48-bit VA, 4 levels (spec §1). VAs go up to 2^48, past the
 * 32-bit range of JS bit operators, so index math uses division.
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
/** Entries per table at every level (`PTRS_PER_PTE`, `PTRS_PER_PMD`, …). */
export const PTRS_PER_TABLE = 512;
export const PTRS_PER_PTE = 512;
export const PMD_SHIFT = 21;
export const PMD_SIZE = 2 * 1024 * 1024;
export const PUD_SHIFT = 30;
export const PUD_SIZE = 1024 * 1024 * 1024;
export const PGDIR_SHIFT = 39;
export const PGDIR_SIZE = 512 * PUD_SIZE;
/** Number of PTEs in a contiguous block (`CONT_PTES`). */
export const CONT_PTES = 16;
/** Bytes covered by one contiguous block (`CONT_PTE_SIZE`). */
export const CONT_PTE_SIZE = CONT_PTES * PAGE_SIZE;
export const VA_BITS = 48;
/** First VA past the 48-bit user range. */
export const VA_LIMIT = 2 ** VA_BITS;
/** PFNs have 36 bits (PA bits 12–47). */
export const PFN_LIMIT = 2 ** 36;

/** `pte_index(va)`: slot of `va` in its PTE table. */
export function pteIndex(va: number): number {
  return Math.floor(va / PAGE_SIZE) % PTRS_PER_TABLE;
}

/** `pmd_index(va)`. */
export function pmdIndex(va: number): number {
  return Math.floor(va / PMD_SIZE) % PTRS_PER_TABLE;
}

/** `pud_index(va)`. */
export function pudIndex(va: number): number {
  return Math.floor(va / PUD_SIZE) % PTRS_PER_TABLE;
}

/** `pgd_index(va)`. */
export function pgdIndex(va: number): number {
  return Math.floor(va / PGDIR_SIZE) % PTRS_PER_TABLE;
}

/** `ALIGN_DOWN(va, size)` for power-of-two sizes beyond 32 bits. */
export function alignDown(va: number, size: number): number {
  return va - (va % size);
}

/** `pmd_addr_end(addr, end)`: the next 2M boundary, or `end` if that comes first. */
export function pmdAddrEnd(addr: number, end: number): number {
  const boundary = alignDown(addr, PMD_SIZE) + PMD_SIZE;
  return boundary - 1 < end - 1 ? boundary : end;
}

/** `pte_cont_addr_end(addr, end)`: the next 64K boundary, or `end` if that comes first. */
export function pteContAddrEnd(addr: number, end: number): number {
  const boundary = alignDown(addr, CONT_PTE_SIZE) + CONT_PTE_SIZE;
  return boundary - 1 < end - 1 ? boundary : end;
}

/** Throw unless `va` is an integer user VA below 2^48 (and 4K aligned when `aligned`). */
export function checkVa(fn: string, va: number, aligned = true): void {
  if (!Number.isInteger(va) || va < 0 || va >= VA_LIMIT) {
    throw new FoliolabError('ERANGE', `${fn}: va ${String(va)} is not a 48-bit user address`, { va });
  }
  if (aligned && va % PAGE_SIZE !== 0) {
    throw new FoliolabError('EINVAL', `${fn}: va 0x${va.toString(16)} is not 4K aligned`, { va });
  }
}

/** Throw unless [start, end) is a non-empty, 4K-aligned range of user VAs. */
export function checkVaRange(fn: string, start: number, end: number): void {
  checkVa(fn, start);
  if (!Number.isInteger(end) || end <= start || end > VA_LIMIT || end % PAGE_SIZE !== 0) {
    throw new FoliolabError('EINVAL', `${fn}: bad range [0x${start.toString(16)}, ${String(end)})`, { start, end });
  }
}
