import { FoliolabError } from '@foliolab/ledger';
import {
  MMAP_BASE,
  MMAP_MIN,
  PAGE_SIZE,
  PMD_SIZE,
  VM_ACCOUNT,
  VM_ANON,
  VM_DROPPABLE,
  VM_LOCKED,
  VM_MAYREAD,
  VM_MAYWRITE,
  VM_NORESERVE,
  VM_READ,
  VM_WIPEONFORK,
  VM_WRITE,
} from './consts.js';
import type { Kernel } from './kernel.js';
import type { Proc } from './proc.js';
import { Vma, vmaInsert, vmaMergeNewRange, vmaRemove, vmaSplitRange, vmasInRange } from './vma.js';
import { zapRange } from './zap.js';

/*
 * mmap / munmap of private anonymous memory (mm/mmap.c, mm/vma.c):
 * get_unmapped_area (top-down, PMD-aligned for 2M-multiple lengths, as
 * thp_get_unmapped_area does for anonymous mappings), vma_merge_new_range,
 * do_vmi_munmap (split at the boundaries, unmap_vmas, remove the VMAs).
 */

export type Prot = 'r' | 'rw' | 'none';

/** vm_flags for a protection (calc_vm_prot_bits + VM_MAYREAD|VM_MAYWRITE). */
export function protFlags(prot: Prot): number {
  if (prot === 'rw') return VM_READ | VM_WRITE;
  if (prot === 'r') return VM_READ;
  return 0;
}

/**
 * vm_pgoff of a new anonymous VMA: addr >> PAGE_SHIFT in the kernel. The
 * memmap keeps folio->index in an Int32 field, so the model takes it modulo
 * 2^31 (8 TiB of address space); mmap refuses a range that would wrap
 * (PGOFF_WINDOW). Only pgoff differences matter to the rmap.
 */
export function anonPgoff(addr: number): number {
  return (addr / PAGE_SIZE) % PGOFF_WINDOW;
}

/** Pages per pgoff window (2^31). */
export const PGOFF_WINDOW = 2 ** 31;

/** Whether [addr, addr + len) stays inside one pgoff window. */
export function pgoffWindowOk(addr: number, len: number): boolean {
  return Math.floor(addr / PAGE_SIZE / PGOFF_WINDOW) === Math.floor((addr + len - 1) / PAGE_SIZE / PGOFF_WINDOW);
}

/** Validated mmap options. */
export interface MmapArgs {
  addr: number | null;
  len: number;
  prot: Prot;
  locked: boolean;
  droppable: boolean;
}

/** get_unmapped_area(): the highest free gap below MMAP_BASE that fits `len` (aligned), or −1. */
export function getUnmappedArea(p: Proc, len: number): number {
  const align = len % PMD_SIZE === 0 ? PMD_SIZE : PAGE_SIZE;
  let top = MMAP_BASE;
  for (let i = p.vmas.length - 1; i >= -1; i--) {
    const v = i >= 0 ? p.vmas[i]! : null;
    if (v !== null && v.vmStart >= top) continue;
    const gapLo = v === null ? MMAP_MIN : v.vmEnd;
    let cand = Math.floor((top - len) / align) * align;
    if (!pgoffWindowOk(cand, len)) cand = Math.floor((Math.floor(top / PAGE_SIZE / PGOFF_WINDOW) * PGOFF_WINDOW * PAGE_SIZE - len) / align) * align;
    if (cand >= gapLo && cand >= MMAP_MIN) return cand;
    if (v === null) break;
    top = Math.min(top, v.vmStart);
  }
  return -1;
}

/**
 * do_mmap(MAP_PRIVATE | MAP_ANONYMOUS [| MAP_FIXED_NOREPLACE | MAP_LOCKED |
 * MAP_DROPPABLE]) — an explicit address is MAP_FIXED_NOREPLACE, which the
 * oracle's translation passes too (an overlap is refused, never silently
 * unmapped: 7.2.13 mm/mmap.c:do_mmap returns −EEXIST when
 * find_vma_intersection finds one): __mmap_region (7.2.13
 * mm/vma.c) charges a writable private mapping (accountable_mapping:
 * VM_ACCOUNT unless VM_NORESERVE), tries vma_merge_new_range with the
 * neighbours and otherwise inserts a new VMA (pgoff = addr >> PAGE_SHIFT).
 * MAP_LOCKED populates the range (the caller faults it in). Returns the
 * address.
 */
export function doMmap(p: Proc, a: MmapArgs): number {
  const addr = a.addr ?? getUnmappedArea(p, a.len);
  if (addr < 0) throw new FoliolabError('ENOMEM', `mmap: no free range of ${a.len} bytes in pid ${p.pid}`);
  let flags = protFlags(a.prot) | VM_MAYREAD | VM_MAYWRITE | VM_ANON;
  if (a.locked) flags |= VM_LOCKED;
  if (a.droppable) flags |= VM_DROPPABLE | VM_NORESERVE | VM_WIPEONFORK;
  if ((flags & (VM_NORESERVE | VM_WRITE)) === VM_WRITE) flags |= VM_ACCOUNT;
  const attrs = { flags, uffdAsync: false, uffdUnpopulated: false };
  if (vmaMergeNewRange(p, addr, addr + a.len, anonPgoff(addr), attrs, null, null) === null) vmaInsert(p, new Vma(p, addr, addr + a.len, anonPgoff(addr), flags));
  return addr;
}

/**
 * do_vmi_munmap(): split the VMAs at start/end, unmap_vmas over the range
 * (one gather, markers dropped), then remove the VMAs and their anon_vma
 * chains. free_pgtables is not modelled (page-table pages stay allocated).
 */
export function doMunmap(k: Kernel, p: Proc, start: number, end: number): void {
  const vmas = vmaSplitRange(p, start, end);
  if (vmas.length === 0) return;
  zapRange(k, p, vmas, start, end, false);
  for (const v of vmas) vmaRemove(p, v);
}

/** exit_mmap(): zap every VMA with a fullmm gather, then remove them. */
export function exitMmap(k: Kernel, p: Proc): void {
  const vmas = [...p.vmas];
  if (vmas.length > 0) zapRange(k, p, vmas, 0, Number.MAX_SAFE_INTEGER, true);
  for (const v of vmas) vmaRemove(p, v);
}

/** Whether any VMA intersects [start, end). */
export function anyVmaIn(p: Proc, start: number, end: number): boolean {
  return vmasInRange(p, start, end).length > 0;
}
