import { F_PINCOUNT, folioSubrange, type Folio } from '@foliolab/folio-flags';
import { EV, FoliolabError } from '@foliolab/ledger';
import {
  flushTlbMm,
  pteBits,
  pteClearUffdWp,
  pteMkold,
  pteMkuffdWp,
  pteMarkerBits,
  ptePfn,
  ptePresent,
  pteSwpClearExclusive,
  pteSwpClearUffdWp,
  pteSwpExclusive,
  pteWrite,
  pteWrprotect,
  ptepGet,
  setPteAt,
  setPtes,
  softleafIsDeviceExclusive,
  softleafIsMarker,
  softleafIsSwap,
  softleafOffset,
  mkMarkerPte,
  wrprotectPtes,
  PTE_MARKER_UFFD_WP,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import { FPB_MERGE_WRITE, FPB_RESPECT_DIRTY, folioPteBatchFlags } from '@foliolab/pvmw';
import {
  RMAP_EXCLUSIVE,
  anonVmaAlloc,
  anonVmaChainLink,
  anonVmaClone,
  folioAddNewAnonRmap,
  folioTryDupAnonRmapPtes,
} from '@foliolab/rmap';
import { swapDupEntryDirect, swpEntry } from '@foliolab/swap';
import { MM_ANONPAGES, MM_SWAPENTS, PAGE_SIZE, VM_DONTCOPY, VM_LOCKED, VM_SHARED, VM_UFFD_WP, VM_WIPEONFORK, VM_WRITE } from './consts.js';
import { restoreExclusivePte } from './fault.js';
import { allocAnonFolio, fixupDroppable, folioAddLruVma } from './folio-ops.js';
import type { Kernel } from './kernel.js';
import { isSpecial, mkPte, pmdAddrEnd, pteIdx } from './pte-util.js';
import { Proc } from './proc.js';
import { Vma, vmaInsert } from './vma.js';

/*
 * fork (kernel/fork.c dup_mmap, mm/memory.c copy_page_range ≈v6.16;
 * unmap-engine §5 "fork"): per VMA, VM_DONTCOPY VMAs are skipped,
 * VM_WIPEONFORK VMAs get an empty copy, VM_LOCKED and the uffd context are
 * not inherited, anon_vma_fork links the child to the parent's anon_vmas and
 * gives it its own. PTEs are copied with copy_present_ptes (batched via
 * folio_pte_batch_flags(FPB_MERGE_WRITE | FPB_RESPECT_DIRTY) unless
 * `per-pte`), the pinned-folio
 * −EBUSY path giving the child order-0 copies, and copy_nonpresent_pte for
 * swap PTEs (clearing swp-exclusive in the parent). One TLB flush at the end.
 */

const pte = pteBits();
const tmp = pteBits();

/** anon_vma_fork(child vma, parent vma). */
function anonVmaFork(k: Kernel, child: Vma, parent: Vma): void {
  if (parent.anonVma === null) return;
  anonVmaClone(child, parent);
  const av = anonVmaAlloc(k.rmap, parent.anonVma);
  anonVmaChainLink(child, av);
  child.anonVma = av;
}

/** The rss deltas of one copy_pte_range (folded with add_mm_rss_vec). */
const rss = new Float64Array(4);

/** Pages fork may have to copy (pinned folios of an MMF_HAS_PINNED mm): an upper bound for the capacity check. */
export function forkCopyNeed(k: Kernel, p: Proc): number {
  if (!p.hasPinned) return 0;
  let need = 0;
  for (const v of p.vmas) {
    if ((v.flags & (VM_DONTCOPY | VM_WIPEONFORK)) !== 0 || v.anonVma === null) continue;
    for (let a = v.vmStart; a < v.vmEnd; a += PAGE_SIZE) {
      const t = p.pt.pteTableOf(a);
      if (t === null) {
        a = pmdAddrEnd(a, v.vmEnd) - PAGE_SIZE;
        continue;
      }
      const i = pteIdx(a);
      const lo = t.lo[i]!;
      const hi = t.hi[i]!;
      if (!ptePresent(lo, hi) || isSpecial(hi)) continue;
      const f = k.folioOf(ptePfn(lo, hi));
      const pinned = f.order > 0 ? f.fa[f.fb + F_PINCOUNT]! > 0 : k.memmap.aux[f.head]! >= 1024;
      if (pinned) need++;
    }
  }
  return need;
}

/** dup_mmap(): the child's mm, VMAs and PTEs; returns the child. */
export function doFork(k: Kernel, parent: Proc, child: Proc): void {
  for (const v of parent.vmas) {
    if ((v.flags & VM_DONTCOPY) !== 0) continue;
    const flags = v.flags & ~(VM_LOCKED | VM_UFFD_WP);
    const c = new Vma(child, v.vmStart, v.vmEnd, v.vmPgoff, flags);
    c.swapRaInfo = v.swapRaInfo;
    vmaInsert(child, c);
    if ((v.flags & VM_WIPEONFORK) !== 0) continue;
    anonVmaFork(k, c, v);
    if (v.anonVma === null) continue; // vma_needs_copy(): faults fill it
    copyPageRange(k, parent, child, c, v);
  }
  flushTlbMm(parent.pt);
}

/** copy_page_range(): one PROTECTION_PAGE notifier per COW VMA, copy_pte_range per PMD extent. */
function copyPageRange(k: Kernel, parent: Proc, child: Proc, dst: Vma, src: Vma): void {
  k.ledger.charge(EV.MMU_NOTIFIER);
  for (let a = src.vmStart; a < src.vmEnd; ) {
    const next = pmdAddrEnd(a, src.vmEnd);
    const st = parent.pt.pteTableOf(a);
    if (st !== null) copyPteRange(k, child, dst, src, st, a, next);
    a = next;
  }
  k.ledger.charge(EV.MMU_NOTIFIER);
}

function copyPteRange(k: Kernel, child: Proc, dst: Vma, src: Vma, st: PteTable, start: number, end: number): void {
  const l = k.ledger;
  const dt = child.pt.pteAlloc(start);
  rss.fill(0);
  l.lock(dt.ptl);
  l.lock(st.ptl);
  let i = pteIdx(start);
  const iEnd = i + (end - start) / PAGE_SIZE;
  while (i < iEnd) {
    ptepGet(st, i, pte);
    if ((pte.lo | pte.hi) === 0) {
      i++;
      continue;
    }
    if (!ptePresent(pte.lo, pte.hi)) {
      if (softleafIsDeviceExclusive(pte.lo, pte.hi)) {
        // try_restore_exclusive_pte under the locks, then copy the now present PTE.
        l.unlock(st.ptl);
        restoreExclusivePte(k, src, st, i, pte);
        l.lock(st.ptl);
        continue;
      }
      copyNonpresentPte(k, child, dst, st, dt, i);
      i++;
      continue;
    }
    i += copyPresentPtes(k, dst, src, st, dt, i, iEnd - i);
  }
  l.unlock(st.ptl);
  l.unlock(dt.ptl);
  if (rss[MM_ANONPAGES] !== 0) k.addMmCounter(child, MM_ANONPAGES, rss[MM_ANONPAGES]!);
  if (rss[MM_SWAPENTS] !== 0) k.addMmCounter(child, MM_SWAPENTS, rss[MM_SWAPENTS]!);
}

/**
 * copy_nonpresent_pte(): swap → swap_dup_entry_direct, child's mm joins the
 * mmlist, the parent's swp-exclusive is cleared (set_pte_at), rss[SWAPENTS]++;
 * markers are copied only when the child keeps their meaning (uffd-wp needs a
 * uffd-wp child VMA); hwpoison entries are copied. The child's swap PTE loses
 * swp-uffd-wp unless the child VMA is uffd-wp.
 */
function copyNonpresentPte(k: Kernel, child: Proc, dst: Vma, st: PteTable, dt: PteTable, i: number): void {
  if (softleafIsSwap(pte.lo, pte.hi)) {
    const si = k.si!;
    if (swapDupEntryDirect(si, swpEntry(si.type, softleafOffset(pte.lo, pte.hi)), 'kernel') !== 0) {
      throw new FoliolabError('EIO', 'fork: swap_dup_entry_direct failed even with GFP_KERNEL');
    }
    if (!child.onMmlist) {
      k.ledger.lock(k.ledger.lockId('mmlist_lock', 'mmlist'));
      child.onMmlist = true;
      k.ledger.unlock(k.ledger.lockId('mmlist_lock', 'mmlist'));
    }
    if (pteSwpExclusive(pte.lo, pte.hi)) {
      pteSwpClearExclusive(pte);
      setPteAt(st, i, pte.lo, pte.hi);
    }
    rss[MM_SWAPENTS]!++;
    if ((dst.flags & VM_UFFD_WP) === 0) pteSwpClearUffdWp(pte);
    setPteAt(dt, i, pte.lo, pte.hi);
    return;
  }
  if (softleafIsMarker(pte.lo, pte.hi)) {
    let bits = pteMarkerBits(pte.lo, pte.hi);
    if ((dst.flags & VM_UFFD_WP) === 0) bits &= ~PTE_MARKER_UFFD_WP;
    if (bits !== 0) {
      mkMarkerPte(tmp, bits);
      setPteAt(dt, i, tmp.lo, tmp.hi);
    }
    return;
  }
  setPteAt(dt, i, pte.lo, pte.hi);
}

/**
 * The FPB flags of copy_present_ptes() (mm/memory.c, 7.2.13): FPB_MERGE_WRITE,
 * plus FPB_RESPECT_DIRTY unless the source VMA is VM_SHARED — a batch never
 * mixes dirty and clean PTEs, because the child gets the batch's first PTE
 * for all nr, and a private child must keep each page's dirty bit — plus
 * FPB_RESPECT_SOFT_DIRTY when vma_soft_dirty_enabled(). Soft-dirty is not
 * modelled: arm64 has none, and on x86 a VMA keeps VM_SOFTDIRTY (tracking
 * off) until clear_refs, which the engine does not offer.
 */
function copyFpbFlags(src: Vma): number {
  return FPB_MERGE_WRITE | ((src.flags & VM_SHARED) === 0 ? FPB_RESPECT_DIRTY : 0);
}

/**
 * copy_present_ptes(): zero page → copy the PTE; a large folio with room →
 * nr = folio_pte_batch_flags(copyFpbFlags), folio_ref_add(nr),
 * folio_try_dup_anon_rmap_ptes(nr); −EBUSY (exclusive pages of a maybe-pinned
 * folio in an MMF_HAS_PINNED mm) → undo the refs and copy page by page
 * (copy_present_page). Otherwise __copy_present_ptes: wrprotect_ptes in the
 * parent if any entry was writable, child read-only and old, uffd-wp cleared
 * unless the child VMA is uffd-wp, set_ptes(nr). `per-pte` runs nr = 1.
 */
function copyPresentPtes(k: Kernel, dst: Vma, src: Vma, st: PteTable, dt: PteTable, i: number, maxNr: number): number {
  if (isSpecial(pte.hi)) {
    copyPtesCommon(st, dt, dst, i, 1);
    return 1;
  }
  const pfn = ptePfn(pte.lo, pte.hi);
  const f = k.folioOf(pfn);
  const l = k.ledger;
  if (f.order > 0 && maxNr !== 1 && k.batchPtes) {
    const nr = folioPteBatchFlags({ pfn: f.head, nrPages: f.nr }, st, i, pte, maxNr, copyFpbFlags(src));
    l.charge(EV.ATOMIC_REF);
    k.memmap.aux[f.head] = k.memmap.aux[f.head]! + nr;
    if (folioTryDupAnonRmapPtes(folioSubrange(f, pfn - f.head, nr), dst, src) === 0) {
      rss[MM_ANONPAGES]! += nr;
      copyPtesCommon(st, dt, dst, i, nr);
      return nr;
    }
    l.charge(EV.ATOMIC_REF);
    k.memmap.aux[f.head] = k.memmap.aux[f.head]! - nr;
    // -EAGAIN: copy_pte_range preallocates and retries this PTE alone.
    return copyOnePresent(k, dst, src, st, dt, i, f, pfn);
  }
  return copyOnePresent(k, dst, src, st, dt, i, f, pfn);
}

function copyOnePresent(k: Kernel, dst: Vma, src: Vma, st: PteTable, dt: PteTable, i: number, f: Folio, pfn: number): number {
  const l = k.ledger;
  l.charge(EV.ATOMIC_REF);
  k.memmap.aux[f.head] = k.memmap.aux[f.head]! + 1;
  if (folioTryDupAnonRmapPtes(folioSubrange(f, pfn - f.head, 1), dst, src) === 0) {
    rss[MM_ANONPAGES]!++;
    copyPtesCommon(st, dt, dst, i, 1);
    return 1;
  }
  l.charge(EV.ATOMIC_REF);
  k.memmap.aux[f.head] = k.memmap.aux[f.head]! - 1;
  copyPresentPage(k, dst, st, dt, i, pfn);
  return 1;
}

/**
 * copy_present_page(): the child gets an exclusive order-0 copy (data token
 * copied), dirty and writable when VM_WRITE, uffd-wp kept when the child VMA
 * is uffd-wp; the parent's PTE is left as it is.
 */
function copyPresentPage(k: Kernel, dst: Vma, st: PteTable, dt: PteTable, i: number, pfn: number): void {
  const nw = allocAnonFolio(k, 0);
  if (nw === null) throw new FoliolabError('ENOMEM', 'fork: copy_present_page: out of simulated memory');
  const tok = k.memmap.token!;
  tok[nw.head] = tok[pfn]!;
  const addr = dt.vaOf(i);
  folioAddNewAnonRmap(nw, dst, addr, RMAP_EXCLUSIVE);
  fixupDroppable(nw, dst);
  folioAddLruVma(k, nw, dst);
  rss[MM_ANONPAGES]!++;
  const uffd = (dst.flags & VM_UFFD_WP) !== 0 && (st.hi[i]! & (1 << 26)) !== 0;
  mkPte(tmp, nw.head, dst, (dst.flags & VM_WRITE) !== 0, true);
  if (uffd) pteMkuffdWp(tmp);
  setPteAt(dt, i, tmp.lo, tmp.hi);
}

/**
 * __copy_present_ptes(): wrprotect the parent (COW, any writable), child RO + old, uffd-wp per child VMA, set_ptes.
 * (The kernel also makes the child's PTE clean for a VM_SHARED source; the engine maps private anon memory only.)
 */
function copyPtesCommon(st: PteTable, dt: PteTable, dst: Vma, i: number, nr: number): void {
  if (pteWrite(pte.lo, pte.hi)) {
    wrprotectPtes(st, i, nr);
    pteWrprotect(pte);
  }
  pteMkold(pte);
  if ((dst.flags & VM_UFFD_WP) === 0) pteClearUffdWp(pte);
  pte.hi = (pte.hi & ~(1 << 20)) >>> 0;
  setPtes(dt, i, pte.lo, pte.hi, nr);
}
