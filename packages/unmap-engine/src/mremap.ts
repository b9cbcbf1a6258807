import {
  PTE_MARKER_UFFD_WP,
  flushTlbBatchedPending,
  flushTlbRange,
  getAndClearPtes,
  pteBits,
  ptePfn,
  ptePresent,
  pteClearUffdWp,
  pteMarkerBits,
  pteSwpClearUffdWp,
  ptepGet,
  setPteAt,
  setPtes,
  softleafIsMarker,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import { EV } from '@foliolab/ledger';
import { FPB_RESPECT_WRITE, folioPteBatchFlags } from '@foliolab/pvmw';
import { anonVmaClone } from '@foliolab/rmap';
import { PAGE_SIZE, PMD_SIZE, VM_LOCKED, VM_UFFD_WP } from './consts.js';
import type { Kernel } from './kernel.js';
import { anonPgoff, doMunmap, getUnmappedArea } from './mmap.js';
import { populate } from './mlock.js';
import { isSpecial, noCont, pteIdx } from './pte-util.js';
import type { Proc } from './proc.js';
import { Vma, vmaInsert, vmaLookup, vmaMergeNewRange, vmasInRange } from './vma.js';

/*
 * mremap (7.2.13 mm/mremap.c, with Dev Jain's B7 fix): shrink in place
 * (do_vmi_munmap of the tail), expand in place when the range ends at the
 * VMA's end and the following range is free (vma_merge_extend: the VMA grows,
 * and merges with the next one when it can), else move_vma
 * (MREMAP_MAYMOVE implied; `fixed` = MREMAP_FIXED, which unmaps the
 * destination first): copy_vma (an unfaulted VMA takes pgoff = new address;
 * vma_merge_copied_range with the destination's neighbours, else a new VMA
 * with the source's anon_vma chains), move_page_tables, the userfaultfd
 * context dropped from the new VMA and uffd-wp from the moved entries (the
 * context has no UFFD_FEATURE_EVENT_REMAP: mremap_userfaultfd_prep,
 * move_ptes' need_clear_uffd_wp), then the source range unmapped. A
 * VM_LOCKED mapping that grew is populated (populate_expand).
 * move_page_tables moves PTEs in extents bounded by both the old and the new
 * PMD; present runs of a large folio move as one batch
 * (mremap_folio_pte_batch: folio_pte_batch_flags(FPB_RESPECT_WRITE), so a
 * batch never widens write — B7), get_and_clear_ptes + set_ptes (young/dirty
 * merged over the batch), one PTE under `per-pte`.
 * Departure: move_normal_pmd is not modelled. In 7.2.13 (mm/mremap.c:
 * move_page_tables, CONFIG_HAVE_MOVE_PMD on arm64 and x86) an extent of a
 * whole PMD — both addresses 2M-aligned (try_realign_addr may align them),
 * the destination PMD empty, no uffd-wp context to drop — moves the PTE
 * table itself: every PTE keeps its own young and dirty bits (and arm64 its
 * CONT bits), where the batch move here ORs young and dirty over each batch.
 * PTE A/D bits are not observable from user space; folio-level results read
 * their OR, which is the same. The ledger counts batch moves there too.
 */

const pte = pteBits();

/** Validated mremap arguments. */
export interface MremapArgs {
  addr: number;
  oldLen: number;
  newLen: number;
  fixed: number | null;
}

/** mremap(); returns the new address. The caller validated everything. */
export function doMremap(k: Kernel, p: Proc, a: MremapArgs): number {
  const { addr, oldLen, newLen, fixed } = a;
  if (fixed !== null && newLen === oldLen) {
    remapMove(k, p, addr, oldLen, fixed);
    return fixed;
  }
  if (fixed !== null) {
    doMunmap(k, p, fixed, fixed + newLen);
    if (newLen < oldLen) doMunmap(k, p, addr + newLen, addr + oldLen);
    moveVma(k, p, addr, Math.min(oldLen, newLen), newLen, fixed);
    return fixed;
  }
  if (newLen <= oldLen) {
    if (newLen < oldLen) doMunmap(k, p, addr + newLen, addr + oldLen);
    return addr;
  }
  const vma = vmaLookup(p, addr)!;
  if (addr + oldLen === vma.vmEnd && vmasInRange(p, vma.vmEnd, addr + newLen).length === 0) {
    // expand_vma_in_place → vma_merge_extend: the extension merges with the VMA itself (and the next one).
    const grown = vmaMergeNewRange(p, vma.vmEnd, addr + newLen, vma.vmPgoff + vma.pages, vma, vma.anonVma, null);
    if (grown === null) throw new Error('unreachable: vma_merge_extend merges with its own VMA');
    if ((grown.flags & VM_LOCKED) !== 0) populate(k, p, addr + oldLen, addr + newLen);
    return addr;
  }
  const dest = getUnmappedArea(p, newLen);
  if (dest < 0) throw new Error('unreachable: validated');
  moveVma(k, p, addr, oldLen, newLen, dest);
  return dest;
}

/**
 * remap_move() (7.2.13 mm/mremap.c): MREMAP_FIXED with old_len == new_len
 * moves every VMA of [addr, addr + len) in turn (split as needed), keeping the
 * gaps between them (each lands at the previous one's new end plus the gap
 * before it); each move is mremap_to: unmap the destination, move_vma.
 */
function remapMove(k: Kernel, p: Proc, addr: number, len: number, fixed: number): void {
  const end = addr + len;
  const pieces = vmasInRange(p, addr, end).map((v) => [Math.max(v.vmStart, addr), Math.min(end, v.vmEnd), v.vmStart, v.vmEnd] as const);
  let target = fixed;
  let lastEnd = 0;
  for (let n = 0; n < pieces.length; n++) {
    const [s, e, vStart, vEnd] = pieces[n]!;
    const dest = target + (n === 0 ? 0 : vStart - lastEnd);
    lastEnd = vEnd;
    doMunmap(k, p, dest, dest + (e - s));
    moveVma(k, p, s, e - s, e - s, dest);
    target = dest + (e - s);
  }
}

/** move_vma(): copy_vma at `to`, move_page_tables, drop the uffd context, unmap the source range, populate a grown VM_LOCKED mapping. */
function moveVma(k: Kernel, p: Proc, from: number, len: number, newLen: number, to: number): void {
  const old = vmaLookup(p, from)!;
  const clearUffdWp = (old.flags & VM_UFFD_WP) !== 0;
  const nv = copyVma(p, old, from, to, newLen);
  movePageTables(k, p, from, to, len, clearUffdWp);
  if (clearUffdWp) {
    // mremap_userfaultfd_prep → userfaultfd_reset_ctx(new_vma)
    nv.flags &= ~VM_UFFD_WP;
    nv.uffdAsync = false;
    nv.uffdUnpopulated = false;
  }
  doMunmap(k, p, from, from + len);
  if ((nv.flags & VM_LOCKED) !== 0 && newLen > len) populate(k, p, to + len, to + newLen);
}

/**
 * copy_vma(vma, addr, len, pgoff) (7.2.13 mm/vma.c): the new range keeps the
 * source's pgoff unless the source was never faulted (no anon_vma: pgoff =
 * addr >> PAGE_SHIFT); it merges with the destination's neighbours when they
 * can take it (vma_merge_copied_range), else it is a new VMA with the
 * source's flags, userfaultfd context and anon_vma chains.
 */
function copyVma(p: Proc, old: Vma, from: number, to: number, newLen: number): Vma {
  const pgoff = old.anonVma === null ? anonPgoff(to) : old.vmPgoff + (from - old.vmStart) / PAGE_SIZE;
  const merged = vmaMergeNewRange(p, to, to + newLen, pgoff, old, old.anonVma, old);
  if (merged !== null) return merged;
  const nv = new Vma(p, to, to + newLen, pgoff, old.flags, old.anonVma, old.uffdAsync, old.uffdUnpopulated);
  nv.swapRaInfo = old.swapRaInfo;
  anonVmaClone(nv, old);
  vmaInsert(p, nv);
  return nv;
}

/** get_extent(): the bytes until the next PMD boundary of either side, at most `left`. */
function extent(from: number, to: number, left: number): number {
  const a = PMD_SIZE - (from % PMD_SIZE);
  const b = PMD_SIZE - (to % PMD_SIZE);
  return Math.min(a, b, left);
}

/** move_page_tables(): per extent, move_ptes between the two PTE tables. */
function movePageTables(k: Kernel, p: Proc, from: number, to: number, len: number, clearUffdWp: boolean): void {
  for (let off = 0; off < len; ) {
    const ext = extent(from + off, to + off, len - off);
    const ot = p.pt.pteTableOf(from + off);
    if (ot !== null) {
      const nt = p.pt.pteAlloc(to + off);
      movePtes(k, p, ot, nt, from + off, to + off, ext, clearUffdWp);
    }
    off += ext;
  }
}

/** move_ptes(); `clearUffdWp`: need_clear_uffd_wp (uffd-wp markers dropped, uffd-wp bits cleared). */
function movePtes(k: Kernel, p: Proc, ot: PteTable, nt: PteTable, from: number, to: number, ext: number, clearUffdWp: boolean): void {
  const l = k.ledger;
  l.lock(ot.ptl);
  if (nt.ptl !== ot.ptl) l.lock(nt.ptl);
  flushTlbBatchedPending(p.pt);
  let forceFlush = false;
  const n = ext / PAGE_SIZE;
  const oi = pteIdx(from);
  const ni = pteIdx(to);
  for (let j = 0; j < n; ) {
    ptepGet(ot, oi + j, pte);
    if ((pte.lo | pte.hi) === 0) {
      j++;
      continue;
    }
    let nr = 1;
    if (ptePresent(pte.lo, pte.hi)) {
      if (!isSpecial(pte.hi) && k.batchPtes && n - j > 1) {
        const f = k.folioOf(ptePfn(pte.lo, pte.hi));
        if (f.order > 0) nr = folioPteBatchFlags({ pfn: f.head, nrPages: f.nr }, ot, oi + j, pte, n - j, FPB_RESPECT_WRITE);
      }
      forceFlush = true;
    }
    getAndClearPtes(ot, oi + j, nr, pte);
    if (clearUffdWp && softleafIsMarker(pte.lo, pte.hi) && (pteMarkerBits(pte.lo, pte.hi) & PTE_MARKER_UFFD_WP) !== 0) {
      j += nr; // pte_clear: the new slot stays none
      continue;
    }
    if (ptePresent(pte.lo, pte.hi)) {
      noCont(pte);
      if (clearUffdWp) pteClearUffdWp(pte);
      setPtes(nt, ni + j, pte.lo, pte.hi, nr);
    } else {
      if (clearUffdWp) pteSwpClearUffdWp(pte);
      setPteAt(nt, ni + j, pte.lo, pte.hi);
    }
    j += nr;
  }
  if (forceFlush) {
    l.charge(EV.TLB_FLUSH_RANGE);
    flushTlbRange(p.pt, from, from + ext);
  }
  if (nt.ptl !== ot.ptl) l.unlock(nt.ptl);
  l.unlock(ot.ptl);
}
