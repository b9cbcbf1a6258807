import {
  PTE_AF,
  PTE_ATTRINDX_MASK,
  PTE_HI_CONT,
  PTE_HI_DIRTY,
  PTE_HI_GP,
  PTE_HI_PXN,
  PTE_HI_SPECIAL,
  PTE_HI_UFFD_WP,
  PTE_HI_UXN,
  PTE_HI_WRITE,
  PTE_NG,
  PTE_PRESENT_INVALID,
  PTE_RDONLY,
  PTE_SHARED,
  PTE_TYPE_PAGE,
  PTE_USER,
  PTE_VALID,
  pfnHi,
  pfnLo,
  pteHwDirty,
  pteMkdirty,
  pteSwDirty,
  type PteBits,
  type PteTable,
  pteMkwriteNovma,
} from '@foliolab/pagetable-arm64-contpte';
import { PAGE_SIZE, PMD_SIZE, VM_READ } from './consts.js';
import type { Vma } from './vma.js';

/*
 * PTE construction the engine needs beyond the page-table package: the
 * arm64 vm_page_prot of a private anonymous VMA (PAGE_READONLY /
 * PAGE_NONE: private writable mappings start read-only, COW makes them
 * writable), mk_pte into a caller's register, and pte_modify. No allocation.
 */

/** PAGE_READONLY-style prot of a private mapping (write comes from pte_mkwrite). */
const PROT_LO = (PTE_TYPE_PAGE | PTE_SHARED | PTE_NG | PTE_RDONLY | PTE_VALID | PTE_USER | PTE_AF) >>> 0;
const PROT_HI = (PTE_HI_PXN | PTE_HI_UXN) >>> 0;
/** PAGE_NONE: present-invalid, not user, UXN. */
const PROT_NONE_LO = (PTE_TYPE_PAGE | PTE_SHARED | PTE_NG | PTE_RDONLY | PTE_PRESENT_INVALID | PTE_AF) >>> 0;
const PROT_NONE_HI = (PTE_HI_PXN | PTE_HI_UXN) >>> 0;

/** Bits pte_modify replaces (arm64 pte_modify mask). */
const MODIFY_LO = (PTE_USER | PTE_RDONLY | PTE_PRESENT_INVALID | PTE_VALID | PTE_ATTRINDX_MASK) >>> 0;
const MODIFY_HI = (PTE_HI_PXN | PTE_HI_UXN | PTE_HI_WRITE | PTE_HI_GP) >>> 0;

/** vm_get_page_prot(vm_flags) for a private anon VMA, low word. */
export function protLo(flags: number): number {
  return (flags & VM_READ) !== 0 ? PROT_LO : PROT_NONE_LO;
}

/** vm_get_page_prot(vm_flags), high word. */
export function protHi(flags: number): number {
  return (flags & VM_READ) !== 0 ? PROT_HI : PROT_NONE_HI;
}

/**
 * `folio_mk_pte(page, vma->vm_page_prot)` (+ pte_sw_mkyoung: AF is in the
 * prot) into `out`: young, read-only; then `write` → pte_mkwrite(pte_mkdirty)
 * when the caller asks (VM_WRITE fault paths), `dirty` alone → pte_mkdirty.
 */
export function mkPte(out: PteBits, pfn: number, vma: Vma, write: boolean, dirty: boolean): PteBits {
  out.lo = (protLo(vma.flags) | pfnLo(pfn)) >>> 0;
  out.hi = (protHi(vma.flags) | pfnHi(pfn)) >>> 0;
  if (dirty || write) pteMkdirty(out);
  if (write) mkwrite(out);
  return out;
}

/** The special zero-page PTE (pte_mkspecial(pfn_pte(my_zero_pfn, vm_page_prot))). */
export function mkZeroPte(out: PteBits, zeroPfn: number, vma: Vma): PteBits {
  out.lo = (protLo(vma.flags) | pfnLo(zeroPfn)) >>> 0;
  out.hi = (protHi(vma.flags) | pfnHi(zeroPfn) | PTE_HI_SPECIAL) >>> 0;
  return out;
}

/**
 * arm64 `pte_modify(pte, newprot)`: keep pfn, AF, DIRTY, CONT, SPECIAL,
 * UFFD_WP; replace USER/RDONLY/VALID/PRESENT_INVALID/WRITE/PXN/UXN/GP/
 * AttrIndx; hardware dirtiness survives as DIRTY.
 */
export function pteModify(p: PteBits, vmFlags: number): PteBits {
  if (pteHwDirty(p.lo, p.hi)) p.hi = (p.hi | PTE_HI_DIRTY) >>> 0;
  p.lo = ((p.lo & ~MODIFY_LO) | (protLo(vmFlags) & MODIFY_LO)) >>> 0;
  p.hi = ((p.hi & ~MODIFY_HI) | (protHi(vmFlags) & MODIFY_HI)) >>> 0;
  if (pteSwDirty(p.lo, p.hi)) pteMkdirty(p);
  return p;
}

/** arm64 `pte_mkwrite_novma`: the page-table package's current form (a clean entry stays clean). */
export const mkwrite = pteMkwriteNovma;

const TWO20 = 1 << 20;

/**
 * `swp_entry_to_pte(swp_entry(type, offset))` + swp-exclusive / swp-uffd-wp
 * into `out`, for the unmap hot path: the layout of the page-table package's
 * mkSwapPte (arm64: type bits 6–10, offset from bit 12, exclusive bit 2,
 * uffd-wp bit 3) without its per-call validation (the caller's offsets come
 * from a swap-cache folio, so they are valid). A round-trip test pins it to
 * mkSwapPte.
 */
export function swapPteInto(out: PteBits, type: number, offset: number, exclusive: boolean, uffdWp: boolean): PteBits {
  const bits = (type << 6) | (exclusive ? 4 : 0) | (uffdWp ? 8 : 0);
  if (offset <= 0x7fffffff) {
    // An int32 offset (every real swap device): integer bit operations, no float divide.
    out.lo = (bits | ((offset & 0xfffff) << 12)) >>> 0;
    out.hi = offset >>> 20;
  } else {
    out.lo = (bits | ((offset % TWO20) << 12)) >>> 0;
    out.hi = Math.floor(offset / TWO20) >>> 0;
  }
  return out;
}

/** Whether (lo, hi) is the special zero-page PTE. */
export function isSpecial(hi: number): boolean {
  return (hi & PTE_HI_SPECIAL) !== 0;
}

/** Strip CONT from a register (a copy returned by ptep_get keeps it). */
export function noCont(p: PteBits): PteBits {
  p.hi = (p.hi & ~PTE_HI_CONT) >>> 0;
  return p;
}

/** The uffd-wp bit of a present PTE. */
export function uffdBit(hi: number): boolean {
  return (hi & PTE_HI_UFFD_WP) !== 0;
}

/** Slot index of `va` in its PTE table. */
export function pteIdx(va: number): number {
  // va ≥ 0: ToInt32 truncation keeps the low 9 bits of the page number (no float modulo on the hot path)
  return (va / PAGE_SIZE) & 511;
}

/** pmd_addr_end(addr, end). */
export function pmdAddrEnd(addr: number, end: number): number {
  const b = (Math.floor(addr / PMD_SIZE) + 1) * PMD_SIZE; // exact: PMD_SIZE is a power of two
  return b < end ? b : end;
}

/** Uncharged raw read of slot `i` (dumps, census, the engine's own bookkeeping). */
export function peekLo(t: PteTable, i: number): number {
  return t.lo[i]!;
}
