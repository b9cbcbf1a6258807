import { FoliolabError } from '@foliolab/ledger';
import type { PvmwVma } from '@foliolab/pvmw';
import { anonVmaChainLink, anonVmaClone, unlinkAnonVmas, vmaAnonVmas, type AnonVma, type RmapVma } from '@foliolab/rmap';
import { PAGE_SIZE, VM_LOCKED, VM_MERGE_MASK, VM_READ, VM_WRITE, VM_ANON, VM_DONTCOPY, VM_DROPPABLE, VM_UFFD_WP, VM_WIPEONFORK, VM_EXEC, VM_NORESERVE, VM_MAYREAD, VM_MAYWRITE } from './consts.js';
import type { Proc } from './proc.js';

/**
 * A `vm_area_struct` of a private anonymous mapping: range, pgoff, flags,
 * anon_vma, and the userfaultfd context features that matter for merging.
 * Satisfies the rmap package's RmapVma and the pvmw package's PvmwVma.
 */
export class Vma implements RmapVma, PvmwVma {
  constructor(
    readonly mm: Proc,
    public vmStart: number,
    public vmEnd: number,
    public vmPgoff: number,
    public flags: number,
    public anonVma: AnonVma | null = null,
    /** uffd ctx: UFFD_FEATURE_WP_ASYNC (write faults resolve themselves). */
    public uffdAsync = false,
    /** uffd ctx: UFFD_FEATURE_WP_UNPOPULATED (none PTEs get markers on protect). */
    public uffdUnpopulated = false,
  ) {}

  /** vma_pages(). */
  get pages(): number {
    return (this.vmEnd - this.vmStart) / PAGE_SIZE;
  }
}

/** Dump names of VMA flags, in a stable order. */
export function vmaFlagNames(v: Vma): string[] {
  const out: string[] = [];
  const f = v.flags;
  if (f & VM_READ) out.push('read');
  if (f & VM_WRITE) out.push('write');
  if (f & VM_EXEC) out.push('exec');
  if (f & VM_MAYREAD) out.push('mayread');
  if (f & VM_MAYWRITE) out.push('maywrite');
  if (f & VM_ANON) out.push('anon');
  out.push('private');
  if (f & VM_LOCKED) out.push('locked');
  if (f & VM_DROPPABLE) out.push('droppable');
  if (f & VM_WIPEONFORK) out.push('wipeonfork');
  if (f & VM_NORESERVE) out.push('noreserve');
  if (f & VM_DONTCOPY) out.push('dontcopy');
  if (f & VM_UFFD_WP) out.push('uffdWp');
  return out;
}

/** Index of the first VMA with vmEnd > addr (find_vma's position). */
function lowerIndex(vmas: readonly Vma[], addr: number): number {
  let lo = 0;
  let hi = vmas.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (vmas[mid]!.vmEnd <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** vma_lookup(): the VMA containing `addr`, or null. */
export function vmaLookup(p: Proc, addr: number): Vma | null {
  const v = p.vmas[lowerIndex(p.vmas, addr)];
  return v !== undefined && v.vmStart <= addr ? v : null;
}

/** VMAs intersecting [start, end), in address order. */
export function vmasInRange(p: Proc, start: number, end: number): Vma[] {
  const out: Vma[] = [];
  for (let i = lowerIndex(p.vmas, start); i < p.vmas.length; i++) {
    const v = p.vmas[i]!;
    if (v.vmStart >= end) break;
    out.push(v);
  }
  return out;
}

/** Whether VMAs cover every byte of [start, end) without holes. */
export function rangeCovered(p: Proc, start: number, end: number): boolean {
  let at = start;
  for (const v of vmasInRange(p, start, end)) {
    if (v.vmStart > at) return false;
    at = v.vmEnd;
    if (at >= end) return true;
  }
  return at >= end;
}

/** Insert `v` into the sorted list (the caller checked there is no overlap). */
export function vmaInsert(p: Proc, v: Vma): void {
  p.vmas.splice(lowerIndex(p.vmas, v.vmStart), 0, v);
}

/** Remove `v` from its mm and unlink it from every anon_vma (unlink_anon_vmas). */
export function vmaRemove(p: Proc, v: Vma): void {
  const i = p.vmas.indexOf(v);
  if (i < 0) throw new FoliolabError('EINVARIANT', `vmaRemove: VMA [0x${v.vmStart.toString(16)}, 0x${v.vmEnd.toString(16)}) is not in pid ${p.pid}`);
  p.vmas.splice(i, 1);
  unlinkAnonVmas(v);
}

/**
 * Change a VMA's range/pgoff while it is chained into anon_vma interval
 * trees (anon_vma_interval_tree_pre/post_update_vma): unlink, change, link
 * again in the same order.
 */
export function vmaAdjust(v: Vma, start: number, end: number, pgoff: number): void {
  const chains = vmaAnonVmas(v);
  unlinkAnonVmas(v);
  v.vmStart = start;
  v.vmEnd = end;
  v.vmPgoff = pgoff;
  for (const av of chains) anonVmaChainLink(v, av);
}

/**
 * __split_vma(vma, addr) (mm/vma.c): `v` keeps [vmStart, addr), a new VMA
 * gets [addr, vmEnd) with the same flags, anon_vma and anon_vma chains
 * (anon_vma_clone). Returns the new (upper) VMA. [I] The kernel chooses which
 * half is the new object by `new_below`; no observable state depends on it.
 */
export function splitVma(p: Proc, v: Vma, addr: number): Vma {
  const upper = new Vma(p, addr, v.vmEnd, v.vmPgoff + (addr - v.vmStart) / PAGE_SIZE, v.flags, v.anonVma, v.uffdAsync, v.uffdUnpopulated);
  anonVmaClone(upper, v);
  vmaAdjust(v, v.vmStart, addr, v.vmPgoff);
  vmaInsert(p, upper);
  return upper;
}

/** is_mergeable_anon_vma(): equal, or one side NULL while the other VMA has a single chain. */
function anonVmaCompatible(a: Vma, b: Vma): boolean {
  if (a.anonVma === b.anonVma) return true;
  if (a.anonVma === null) return vmaAnonVmas(b).length === 1;
  if (b.anonVma === null) return vmaAnonVmas(a).length === 1;
  return false;
}

/** can_vma_merge_after/before: adjacent, same flags and uffd ctx, contiguous pgoff, compatible anon_vma. */
export function canMerge(a: Vma, b: Vma): boolean {
  return (
    a.vmEnd === b.vmStart &&
    (a.flags & VM_MERGE_MASK) === (b.flags & VM_MERGE_MASK) &&
    a.uffdAsync === b.uffdAsync &&
    a.uffdUnpopulated === b.uffdUnpopulated &&
    a.vmPgoff + a.pages === b.vmPgoff &&
    anonVmaCompatible(a, b)
  );
}

/** Merge `b` into `a` (a.vmEnd === b.vmStart); `b` disappears. dup_anon_vma when `a` had none. */
function mergeInto(p: Proc, a: Vma, b: Vma): void {
  if (a.anonVma === null && b.anonVma !== null) {
    anonVmaClone(a, b);
    a.anonVma = b.anonVma;
  }
  const end = b.vmEnd;
  vmaRemove(p, b);
  vmaAdjust(a, a.vmStart, end, a.vmPgoff);
}

/**
 * vma_merge around `v` (mm/vma.c vma_merge_existing_range / vma_merge_new_range):
 * merge with the previous and then the next VMA when the kernel's rules allow.
 * Returns the VMA that now covers `v`'s range.
 */
export function vmaMergeAround(p: Proc, v: Vma): Vma {
  let cur = v;
  const i = p.vmas.indexOf(cur);
  const prev = i > 0 ? p.vmas[i - 1]! : null;
  if (prev !== null && canMerge(prev, cur)) {
    mergeInto(p, prev, cur);
    cur = prev;
  }
  const j = p.vmas.indexOf(cur);
  const next = p.vmas[j + 1] ?? null;
  if (next !== null && canMerge(cur, next)) mergeInto(p, cur, next);
  return cur;
}

/**
 * vma_modify_flags() over [start, end) (mprotect_fixup, madvise_update_vma,
 * mlock_fixup, userfaultfd_register): split at the boundaries, apply `update`
 * to every VMA in the range, then merge each with its neighbours. The range
 * must be covered (the caller validated). Returns the resulting VMAs that
 * cover [start, end), in order.
 */
export function vmaModify(p: Proc, start: number, end: number, update: (v: Vma) => void): Vma[] {
  const touched: Vma[] = [];
  for (const v0 of vmasInRange(p, start, end)) {
    let v = v0;
    if (v.vmStart < start) v = splitVma(p, v, start);
    if (v.vmEnd > end) splitVma(p, v, end);
    update(v);
    touched.push(v);
  }
  for (const v of touched) if (p.vmas.includes(v)) vmaMergeAround(p, v);
  return vmasInRange(p, start, end);
}

/** Split so that no VMA straddles `start` or `end`; returns the VMAs inside [start, end). */
export function vmaSplitRange(p: Proc, start: number, end: number): Vma[] {
  for (const v0 of vmasInRange(p, start, end)) {
    let v = v0;
    if (v.vmStart < start) v = splitVma(p, v, start);
    if (v.vmEnd > end) splitVma(p, v, end);
  }
  return vmasInRange(p, start, end);
}
