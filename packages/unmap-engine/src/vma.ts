import { FoliolabError } from '@foliolab/ledger';
import type { PvmwVma } from '@foliolab/pvmw';
import { anonVmaChainLink, anonVmaClone, anonVmaPrepare, unlinkAnonVmas, vmaAnonVmas, type AnonVma, type RmapVma } from '@foliolab/rmap';
import { PAGE_SIZE, VM_LOCKED, VM_MERGE_MASK, VM_READ, VM_WRITE, VM_ANON, VM_DONTCOPY, VM_DROPPABLE, VM_UFFD_WP, VM_WIPEONFORK, VM_EXEC, VM_NORESERVE, VM_MAYREAD, VM_MAYWRITE } from './consts.js';
import type { Kernel } from './kernel.js';
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

  /**
   * vma->swap_readahead_info (7.2.13 mm/swap_state.c): SWAP_RA_VAL(address,
   * win, hits) of the last swap fault, 0 until the first (read as 4 hits).
   * vm_area_dup copies it (split, fork, mremap's copy_vma).
   */
  swapRaInfo = 0;

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
 * (anon_vma_clone). Returns the new (upper) VMA. The kernel makes the lower
 * half the new object when `new_below` (7.2.13 mm/vma.c:__split_vma); either
 * way the new VMA joins each anon_vma tree in anon_vma_clone and the old one
 * is taken out and put back in the same call (vma_prepare / vma_complete:
 * anon_vma_interval_tree_pre/post_update_vma), so both halves end up after
 * every chain of an equal key, as here, and the rmap walk order is the same.
 */
export function splitVma(p: Proc, v: Vma, addr: number): Vma {
  const upper = new Vma(p, addr, v.vmEnd, v.vmPgoff + (addr - v.vmStart) / PAGE_SIZE, v.flags, v.anonVma, v.uffdAsync, v.uffdUnpopulated);
  upper.swapRaInfo = v.swapRaInfo;
  anonVmaClone(upper, v);
  vmaAdjust(v, v.vmStart, addr, v.vmPgoff);
  vmaInsert(p, upper);
  return upper;
}

/** The attributes vma_modify changes: vm_flags and the userfaultfd context (its features). */
export interface VmaAttrs {
  flags: number;
  uffdAsync: boolean;
  uffdUnpopulated: boolean;
}

/** vma_is_fork_child(): has an anon_vma and more than one anon_vma_chain (cloned from a parent). */
function vmaIsForkChild(v: Vma | null): boolean {
  return v !== null && v.anonVma !== null && vmaAnonVmas(v).length !== 1;
}

/**
 * is_mergeable_vma() (7.2.13 mm/vma.c): the same flags (VM_SOFTDIRTY, the only
 * sticky flag, is not modelled) and the same userfaultfd context. The model
 * has one context per mm (the oracle's guest opens one userfaultfd per
 * process), so registered VMAs share it when their features agree; an
 * unregistered VMA has none. No file, mempolicy or anon_vma_name.
 */
function isMergeableVma(tgt: Vma, a: VmaAttrs): boolean {
  if ((tgt.flags & VM_MERGE_MASK) !== (a.flags & VM_MERGE_MASK)) return false;
  return (tgt.flags & VM_UFFD_WP) === 0 || (tgt.uffdAsync === a.uffdAsync && tgt.uffdUnpopulated === a.uffdUnpopulated);
}

/**
 * is_mergeable_anon_vma(vmg, tgt) (7.2.13 mm/vma.c): `src` is the VMA being
 * modified (null for a new range), `srcAnon` the anon_vma of the proposed
 * range, `copiedFrom` mremap's source VMA.
 */
function isMergeableAnonVma(tgt: Vma, srcAnon: AnonVma | null, src: Vma | null, copiedFrom: Vma | null): boolean {
  // Case 1: dup_anon_vma() from src into tgt — not from a fork child.
  if (tgt.anonVma === null && srcAnon !== null) return !vmaIsForkChild(src) && !vmaIsForkChild(copiedFrom);
  // Case 2: use tgt's anon_vma — not a fork child's.
  if (tgt.anonVma !== null && srcAnon === null) return !vmaIsForkChild(tgt);
  // Case 3: already shared.
  return srcAnon === tgt.anonVma;
}

/** The proposed range of a merge (struct vma_merge_struct, the fields the model needs). */
interface MergeRange {
  start: number;
  end: number;
  pgoff: number;
  attrs: VmaAttrs;
  anonVma: AnonVma | null;
  middle: Vma | null;
  copiedFrom: Vma | null;
}

/** can_vma_merge_left(): prev ends at start, mergeable, pgoff continuous. */
function canMergeLeft(prev: Vma | null, m: MergeRange): prev is Vma {
  return (
    prev !== null &&
    prev.vmEnd === m.start &&
    isMergeableVma(prev, m.attrs) &&
    isMergeableAnonVma(prev, m.anonVma, m.middle, m.copiedFrom) &&
    prev.vmPgoff + prev.pages === m.pgoff
  );
}

/** can_vma_merge_right(): next starts at end, mergeable, pgoff continuous; with a left merge, prev and next compatible too. */
function canMergeRight(next: Vma | null, m: MergeRange, prev: Vma | null, left: boolean): next is Vma {
  if (next === null || m.end !== next.vmStart) return false;
  if (!isMergeableVma(next, m.attrs) || !isMergeableAnonVma(next, m.anonVma, m.middle, m.copiedFrom)) return false;
  if (next.vmPgoff !== m.pgoff + (m.end - m.start) / PAGE_SIZE) return false;
  return !left || prev!.anonVma === null || next.anonVma === null || prev!.anonVma === next.anonVma;
}

/** dup_anon_vma(dst, src): an unfaulted dst takes src's anon_vma and chains (anon_vma_clone). */
function dupAnonVma(dst: Vma, src: Vma): void {
  if (src.anonVma !== null && dst.anonVma === null) {
    dst.anonVma = src.anonVma;
    anonVmaClone(dst, src);
  }
}

function nextOf(p: Proc, v: Vma): Vma | null {
  return p.vmas[p.vmas.indexOf(v) + 1] ?? null;
}

function prevOf(p: Proc, v: Vma): Vma | null {
  const i = p.vmas.indexOf(v);
  return i > 0 ? p.vmas[i - 1]! : null;
}

/**
 * vma_merge_existing_range() (7.2.13 mm/vma.c): [start, end) of `middle`
 * gets `attrs`; when the range touches middle's start and prev can take it,
 * and/or touches middle's end and next can, prev and/or next grow over it
 * and middle shrinks or disappears. Returns the VMA that now covers the
 * range, or null (no merge: the caller splits).
 */
function vmaMergeExistingRange(p: Proc, prev: Vma | null, middle: Vma, start: number, end: number, attrs: VmaAttrs): Vma | null {
  const leftSide = start === middle.vmStart;
  const rightSide = end === middle.vmEnd;
  if (!leftSide && !rightSide) return null;
  const m: MergeRange = { start, end, pgoff: middle.vmPgoff + (start - middle.vmStart) / PAGE_SIZE, attrs, anonVma: middle.anonVma, middle, copiedFrom: null };
  const left = leftSide && canMergeLeft(prev, m);
  const next = rightSide ? nextOf(p, middle) : null;
  const right = rightSide && canMergeRight(next, m, prev, left);
  if (left && right) {
    // prev extends over middle and next; both go.
    dupAnonVma(prev, next.anonVma !== null ? next : middle);
    const e = next.vmEnd;
    vmaRemove(p, middle);
    vmaRemove(p, next);
    vmaAdjust(prev, prev.vmStart, e, prev.vmPgoff);
    return prev;
  }
  if (left) {
    dupAnonVma(prev, middle);
    if (rightSide) vmaRemove(p, middle);
    else vmaAdjust(middle, end, middle.vmEnd, middle.vmPgoff + (end - middle.vmStart) / PAGE_SIZE);
    vmaAdjust(prev, prev.vmStart, end, prev.vmPgoff);
    return prev;
  }
  if (right) {
    dupAnonVma(next, middle);
    if (leftSide) vmaRemove(p, middle);
    else vmaAdjust(middle, middle.vmStart, start, middle.vmPgoff);
    vmaAdjust(next, start, next.vmEnd, next.vmPgoff - (end - start) / PAGE_SIZE);
    return next;
  }
  return null;
}

/**
 * vma_merge_new_range() + vma_expand() (7.2.13 mm/vma.c): a new range
 * [start, end) between prev and next (mmap; mremap's copy with `copiedFrom`
 * and its anon_vma) joins prev and/or next when they can take it. Returns the
 * grown VMA, or null when the caller must insert a VMA of its own.
 */
export function vmaMergeNewRange(p: Proc, start: number, end: number, pgoff: number, attrs: VmaAttrs, anonVma: AnonVma | null, copiedFrom: Vma | null): Vma | null {
  const i = lowerIndex(p.vmas, start);
  const next = p.vmas[i] ?? null;
  const prev = i > 0 ? p.vmas[i - 1]! : null;
  if (prev === null && next === null) return null;
  const m: MergeRange = { start, end, pgoff, attrs, anonVma, middle: null, copiedFrom };
  const left = canMergeLeft(prev, m);
  const right = canMergeRight(next, m, prev, left);
  if (left) {
    const e = right ? next.vmEnd : end;
    if (right) dupAnonVma(prev, next);
    if (copiedFrom !== null) dupAnonVma(prev, copiedFrom);
    if (right) vmaRemove(p, next);
    vmaAdjust(prev, prev.vmStart, e, prev.vmPgoff);
    return prev;
  }
  if (right) {
    if (copiedFrom !== null) dupAnonVma(next, copiedFrom);
    vmaAdjust(next, start, next.vmEnd, pgoff);
    return next;
  }
  return null;
}

/**
 * find_mergeable_anon_vma() (7.2.13 mm/vma.c) for anon_vma_prepare: the
 * anon_vma of the next, else the previous VMA when it is adjacent, has the
 * same flags apart from access bits, continuous pgoff
 * (anon_vma_compatible), and a single anon_vma_chain (reusable_anon_vma).
 */
function findMergeableAnonVma(p: Proc, v: Vma): AnonVma | null {
  const compatible = (a: Vma, b: Vma): boolean =>
    a.vmEnd === b.vmStart &&
    ((a.flags ^ b.flags) & VM_MERGE_MASK & ~(VM_READ | VM_WRITE | VM_EXEC)) === 0 &&
    b.vmPgoff === a.vmPgoff + (b.vmStart - a.vmStart) / PAGE_SIZE;
  const reusable = (old: Vma, a: Vma, b: Vma): AnonVma | null =>
    compatible(a, b) && old.anonVma !== null && vmaAnonVmas(old).length === 1 ? old.anonVma : null;
  const next = nextOf(p, v);
  if (next !== null) {
    const av = reusable(next, v, next);
    if (av !== null) return av;
  }
  const prev = prevOf(p, v);
  return prev === null ? null : reusable(prev, prev, v);
}

/**
 * anon_vma_prepare(vma) (7.2.13 mm/rmap.c __anon_vma_prepare): on the first
 * fault that needs one, reuse a neighbour's anon_vma (find_mergeable_anon_vma,
 * so that mprotect can merge the VMAs again later) or allocate one.
 */
export function vmaAnonVmaPrepare(k: Kernel, v: Vma): AnonVma {
  if (v.anonVma !== null) return v.anonVma;
  const av = findMergeableAnonVma(v.mm, v);
  if (av === null) return anonVmaPrepare(k.rmap, v);
  anonVmaChainLink(v, av);
  v.anonVma = av;
  return av;
}

const want: VmaAttrs = { flags: 0, uffdAsync: false, uffdUnpopulated: false };

/**
 * The fixup loop of mprotect / madvise_update_vma / mlock_fixup /
 * userfaultfd_register / userfaultfd_clear_vma over [start, end) (7.2.13):
 * per VMA, the new attributes (`update` applied to a copy); a VMA whose
 * attributes do not change is left alone (not split, not merged); otherwise
 * vma_modify: vma_merge_existing_range with prev/next, or split_vma at the
 * range boundaries; then the attributes are set (vm_flags_reset) and
 * `fixup` runs on the modified range (mprotect_fixup's change_protection …)
 * with the flags it had before. `prev` is the VMA before the range (the first
 * VMA itself when the range starts inside it), then the result of each step.
 * The range must be covered (the caller validated). Returns the VMAs that
 * cover [start, end), in order.
 */
export function vmaModify(
  p: Proc,
  start: number,
  end: number,
  update: (a: VmaAttrs, v: Vma) => void,
  fixup?: (r: Vma, start: number, end: number, oldFlags: number) => void,
): Vma[] {
  const first = vmaLookup(p, start)!;
  let prev: Vma | null = start > first.vmStart ? first : prevOf(p, first);
  for (let addr = start; addr < end; ) {
    const v = vmaLookup(p, addr)!;
    const e = Math.min(end, v.vmEnd);
    want.flags = v.flags;
    want.uffdAsync = v.uffdAsync;
    want.uffdUnpopulated = v.uffdUnpopulated;
    update(want, v);
    if (want.flags === v.flags && want.uffdAsync === v.uffdAsync && want.uffdUnpopulated === v.uffdUnpopulated) {
      prev = v;
      addr = e;
      continue;
    }
    const oldFlags = v.flags;
    let r = vmaMergeExistingRange(p, prev, v, addr, e, want);
    if (r === null) {
      r = v.vmStart < addr ? splitVma(p, v, addr) : v;
      if (r.vmEnd > e) splitVma(p, r, e);
    }
    r.flags = want.flags;
    r.uffdAsync = want.uffdAsync;
    r.uffdUnpopulated = want.uffdUnpopulated;
    fixup?.(r, addr, e, oldFlags);
    prev = r;
    addr = e;
  }
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
