import {
  F_INDEX,
  F_LARGE_MAPCOUNT,
  F_SWAP,
  FLAG,
  folioSetSwapbacked,
  folioSetDirty,
  type Folio,
} from '@foliolab/folio-flags';
import { EV, FoliolabError } from '@foliolab/ledger';
import {
  archTlbbatchShouldDefer,
  internalGetAndClearPtes,
  internalPtepGet,
  internalSetPteAt,
  internalSetSwapPtes,
  internalSetTlbUbcFlushPending,
  internalFlushTlbRange,
  mkHwpoisonPte,
  pteBits,
  pteClear,
  pteDirty,
  ptePfn,
  ptePresent,
  pteSwpUffdWp,
  pteUffdWp,
  setPteAt,
  setPtes,
  softleafPfn,
  pteSetPfn,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import {
  FPB_RESPECT_SOFT_DIRTY,
  FPB_RESPECT_WRITE,
  PVMW_PGTABLE_CROSSED,
  PVMW_SYNC,
  PageVmaMappedWalk,
  folioPteBatchFlagsUnchecked,
  pageVmaMappedWalk,
  pageVmaMappedWalkDone,
  pageVmaMappedWalkJump,
} from '@foliolab/pvmw';
import {
  folioRemoveRmapPtesUnchecked,
  folioTryShareAnonRmapPteUnchecked,
  folioTryShareAnonRmapPtesUnchecked,
  rmapWalkAnon,
  type RmapVma,
  type RmapWalkControl,
} from '@foliolab/rmap';
import { folioDupSwapUnchecked, folioPutSwapUnchecked, swpOffset, type SwpEntry } from '@foliolab/swap';
import {
  MM_ANONPAGES,
  MM_SWAPENTS,
  PAGE_SIZE,
  TTU_BATCH_FLUSH,
  TTU_HWPOISON,
  TTU_IGNORE_MLOCK,
  TTU_SYNC,
  VM_DROPPABLE,
  VM_LOCKED,
  VM_UFFD_WP,
} from './consts.js';
import { mlockFolio, putFolioRefs } from './folio-ops.js';
import type { Kernel } from './kernel.js';
import { noCont, pmdAddrEnd, swapPteInto } from './pte-util.js';
import type { Proc } from './proc.js';
import type { Vma } from './vma.js';

/*
 * try_to_unmap() / try_to_unmap_one() (mm/rmap.c lines 1980–2376, akpm
 * mm-everything 2026-06-25; unmap-engine §2.3) under the three policies:
 *
 *  per-pte   folio_unmap_pte_batch always returns 1.
 *  mainline  lazyfree (and file) folios batched by folio_unmap_pte_batch
 *            (FPB_RESPECT_WRITE | FPB_RESPECT_SOFT_DIRTY, capped at the PMD,
 *            VMA and folio end; 1 for TTU_HWPOISON, small folios, anon
 *            swap-backed folios and uffd-wp VMAs); anon swap-backed one PTE
 *            per walk step; no pvmw skip after a partial batch.
 *  batched   Dev Jain's v4 "Optimize anonymous large folio unmapping" as
 *            reconstructed in unmap-engine §3.3: anon swap-backed batches
 *            too (not with a sparc64-style arch_unmap_one), processed in
 *            sub-batches of equal PageAnonExclusive with batched
 *            folio_dup_swap / folio_try_share_anon_rmap_ptes; after a partial
 *            batch the walk jumps over it (page_vma_mapped_walk_jump, v1 5/9;
 *            config pvmwSkip 'none' keeps v3's natural skip).
 */

const pteval = pteBits();
const swp = pteBits();
const restore = pteBits();

/** folio_mapped() without a charge. */
export function folioMappedRaw(k: Kernel, f: Folio): boolean {
  if (f.order === 0) return k.memmap.mapcount![f.head]! >= 0;
  return f.fa[f.fb + F_LARGE_MAPCOUNT]! >= 0;
}

/** The rmap_walk_control of try_to_unmap: rmap_one, done = folio_not_mapped. One per kernel, reused. */
export class TtuControl implements RmapWalkControl {
  flags = 0;
  constructor(private readonly k: Kernel) {}
  rmapOne(folio: Folio, vma: RmapVma, address: number): boolean {
    return tryToUnmapOne(this.k, folio, vma as Vma, address, this.flags);
  }
  done(folio: Folio): boolean {
    return !folioMappedRaw(this.k, folio);
  }
}

/** try_to_unmap(folio, flags): rmap_walk_anon with try_to_unmap_one; callers test folio_mapped() after. */
export function tryToUnmap(k: Kernel, folio: Folio, flags: number): void {
  let c = k.ttuControl;
  if (c === null) {
    c = new TtuControl(k);
    k.ttuControl = c;
  }
  // try_to_unmap is not re-entered (rmap_one never calls it), so the flags need no save/restore
  c.flags = flags;
  rmapWalkAnon(folio, c);
}

/** The reusable page_vma_mapped_walk of `p`, re-armed for (folio, vma, address). */
export function walkFor(p: Proc, folio: Folio, vma: Vma, address: number, flags: number): PageVmaMappedWalk {
  const pgoff = folio.fa[folio.fb + F_INDEX]!;
  if (p.walk === null) p.walk = new PageVmaMappedWalk(p.pt, { pfn: folio.head, nrPages: folio.nr, pgoff }, vma, address, flags);
  else p.walk.initUnchecked(folio.head, folio.nr, pgoff, vma, address, flags); // engine-validated vma, address, folio
  return p.walk;
}

/**
 * folio_unmap_pte_batch() (7.2.13 mm/rmap.c, + the policies): 1 for
 * TTU_HWPOISON, small folios, anon swap-backed folios unless the policy
 * batches them, userfaultfd_wp VMAs under `mainline` ([I] `batched` follows
 * Dev Jain's v1 5/9, which dropped that exclusion; it rests on that patch's
 * commit message and on folio_pte_batch comparing uffd-wp, so a batch never
 * mixes uffd-wp states), and `per-pte`; else folio_pte_batch_flags(
 * RESPECT_WRITE | RESPECT_SOFT_DIRTY) capped at pmd_addr_end(addr, vm_end).
 * pte_unused() is always false on arm64 and x86.
 */
function folioUnmapPteBatch(k: Kernel, folio: Folio, w: PageVmaMappedWalk, vma: Vma, flags: number): number {
  if ((flags & TTU_HWPOISON) !== 0 || folio.order === 0) return 1;
  const swapbacked = (k.memmap.flags[folio.head]! & FLAG.swapbacked.mask) !== 0;
  if (swapbacked ? !k.batchAnon : !k.batchLazy) return 1;
  if ((vma.flags & VM_UFFD_WP) !== 0 && k.config.policy !== 'batched') return 1;
  const a = w.address;
  const maxNr = (pmdAddrEnd(a, vma.vmEnd) - a) / PAGE_SIZE;
  if (maxNr <= 1) return 1;
  return folioPteBatchFlagsUnchecked(folio.head, folio.nr, w.pte!, w.pteIndex, pteval, maxNr, FPB_RESPECT_WRITE | FPB_RESPECT_SOFT_DIRTY);
}

/** The mm's first swap-out puts it on swapoff's mmlist under mmlist_lock. */
function mmlistAdd(k: Kernel, p: Proc): void {
  if (p.onMmlist) return;
  const id = k.ledger.lockId('mmlist_lock', 'mmlist');
  k.ledger.lock(id);
  p.onMmlist = true;
  k.ledger.unlock(id);
}

/** Restore `nr` cleared PTEs from the saved pteval starting at page `pfn` (set_ptes / set_pte_at). */
function restorePtes(t: PteTable, i: number, present: boolean, pfn: number, nr: number): void {
  restore.lo = pteval.lo;
  restore.hi = pteval.hi;
  if (present) {
    noCont(restore);
    pteSetPfn(restore, pfn);
  }
  if (nr === 1) setPteAt(t, i, restore.lo, restore.hi);
  else setPtes(t, i, restore.lo, restore.hi, nr);
}

/** try_to_unmap_one(folio, vma, address, flags): false stops the rmap walk. */
export function tryToUnmapOne(k: Kernel, folio: Folio, vma: Vma, address: number, flags: number): boolean {
  const p = vma.mm;
  const l = k.ledger;
  const mm = k.memmap;
  const anon = true;
  let ret = true;
  const w = walkFor(p, folio, vma, address, (flags & TTU_SYNC) !== 0 ? PVMW_SYNC : 0);
  l.charge(EV.MMU_NOTIFIER);
  let ptes = 0;
  while (pageVmaMappedWalk(w)) {
    let nr = 1;
    if ((flags & TTU_IGNORE_MLOCK) === 0 && (vma.flags & VM_LOCKED) !== 0) {
      ptes++;
      ret = false;
      if (w.pte !== null && ptes !== w.nrPages) continue;
      if ((w.flags & PVMW_PGTABLE_CROSSED) === 0) mlockFolio(k, folio);
      pageVmaMappedWalkDone(w);
      break;
    }
    if (w.pte === null) {
      pageVmaMappedWalkDone(w);
      throw new FoliolabError('EINVARIANT', 'try_to_unmap_one: PMD-mapped folio (PMD THP is not modelled)');
    }
    const t = w.pte;
    const i = w.pteIndex;
    internalPtepGet(t, i, pteval);
    const present = ptePresent(pteval.lo, pteval.hi);
    const pfn = present ? ptePfn(pteval.lo, pteval.hi) : softleafPfn(pteval.lo, pteval.hi);
    const page = pfn - folio.head;
    l.charge(EV.FLAG_LOAD);
    const anonExclusive = anon && (mm.flags[pfn]! & FLAG.anon_exclusive.mask) !== 0;
    const addr = w.address;
    if (present) {
      nr = folioUnmapPteBatch(k, folio, w, vma, flags);
      const end = addr + nr * PAGE_SIZE;
      // B1 / B6: a batch never crosses the PTE table or vm_end, nor runs past the folio's last page.
      if (i + nr > 512 || end > vma.vmEnd || page + nr > folio.nr) {
        pageVmaMappedWalkDone(w);
        throw new FoliolabError('EINVARIANT', `try_to_unmap_one: batch of ${nr} at slot ${i} (page ${page}) leaves the table, VMA or folio`);
      }
      internalGetAndClearPtes(t, i, nr, pteval);
      if ((flags & TTU_BATCH_FLUSH) !== 0 && archTlbbatchShouldDefer(p.pt)) internalSetTlbUbcFlushPending(k.tlb, p.pt, pteval.lo, pteval.hi, addr, end);
      else {
        l.charge(EV.TLB_FLUSH_RANGE);
        internalFlushTlbRange(p.pt, addr, end);
      }
      if (pteDirty(pteval.lo, pteval.hi)) folioMarkDirty(k, folio);
    } else {
      pteClear(t, i);
    }
    // pte_install_uffd_wp_if_needed(): anonymous VMAs never get a marker here.
    k.updateHiwaterRss(p);
    let ok = true;
    l.charge(EV.FLAG_LOAD);
    if ((mm.flags[pfn]! & FLAG.hwpoison.mask) !== 0 && (flags & TTU_HWPOISON) !== 0) {
      mkHwpoisonPte(swp, pfn);
      k.addMmCounter(p, MM_ANONPAGES, -1);
      setPteAt(t, i, swp.lo, swp.hi);
    } else {
      const w0 = mm.flags[folio.head]!;
      const swapbacked = (w0 & FLAG.swapbacked.mask) !== 0;
      const swapcache = (w0 & FLAG.swapcache.mask) !== 0;
      if (swapbacked !== swapcache) {
        pageVmaMappedWalkDone(w);
        throw new FoliolabError('EINVARIANT', `try_to_unmap_one: folio ${folio.head} swapbacked ${swapbacked} ≠ swapcache ${swapcache} (kernel WARN)`);
      }
      if (!swapbacked) ok = ttuLazyfree(k, folio, vma, t, i, present, pfn, nr);
      else if (k.batchAnon) ok = ttuAnonBatched(k, folio, p, t, i, present, page, nr, anonExclusive);
      else ok = ttuAnonOne(k, folio, p, t, i, present, page, anonExclusive);
    }
    if (!ok) {
      ret = false;
      pageVmaMappedWalkDone(w);
      break;
    }
    finishUnmap(k, folio, vma, page, nr);
    if (nr === folio.nr) {
      pageVmaMappedWalkDone(w);
      break;
    }
    if (nr > 1 && k.jumpSkip) pageVmaMappedWalkJump(w, nr - 1);
  }
  l.charge(EV.MMU_NOTIFIER);
  return ret;
}

/** folio_mark_dirty() of an anon folio: test, then set. */
function folioMarkDirty(k: Kernel, f: Folio): void {
  k.ledger.charge(EV.FLAG_LOAD);
  if ((k.memmap.flags[f.head]! & FLAG.dirty.mask) === 0) folioSetDirty(f);
}

/** finish_folio_unmap(): folio_remove_rmap_ptes(nr) then folio_put_refs(nr). */
function finishUnmap(k: Kernel, folio: Folio, vma: Vma, page: number, nr: number): void {
  folioRemoveRmapPtesUnchecked(folio, folio.head + page, nr, vma);
  putFolioRefs(k, folio, nr);
}

/**
 * The MADV_FREE check (ttu_lazyfree_folio, v4 03/12): smp_mb, read refcount
 * and mapcount, smp_rmb; dirty and not VM_DROPPABLE → restore the nr PTEs
 * with set_ptes(pteval, nr), folio_set_swapbacked, abort; refcount ≠ 1 +
 * mapcount → restore, abort (stays lazyfree); else MM_ANONPAGES −= nr.
 */
function ttuLazyfree(k: Kernel, folio: Folio, vma: Vma, t: PteTable, i: number, present: boolean, pfn: number, nr: number): boolean {
  const l = k.ledger;
  const mm = k.memmap;
  l.charge(EV.MB_FULL);
  const ref = mm.aux[folio.head]!;
  const map = folio.order === 0 ? mm.mapcount![folio.head]! + 1 : folio.fa[folio.fb + F_LARGE_MAPCOUNT]! + 1;
  l.charge(EV.MB_RMB);
  l.charge(EV.FLAG_LOAD);
  const dirty = (mm.flags[folio.head]! & FLAG.dirty.mask) !== 0;
  if (dirty && (vma.flags & VM_DROPPABLE) === 0) {
    restorePtes(t, i, present, pfn, nr);
    folioSetSwapbacked(folio);
    return false;
  }
  if (ref !== 1 + map) {
    restorePtes(t, i, present, pfn, nr);
    return false;
  }
  k.addMmCounter(vma.mm, MM_ANONPAGES, -nr);
  return true;
}

/** The swap entry offset of page `page` of a swap-cache folio. */
function swapOffsetOf(folio: Folio, page: number): number {
  return swpOffset(folio.fa[folio.fb + F_SWAP]! as SwpEntry) + page;
}

/**
 * The anon swap-backed path of today's try_to_unmap_one (nr = 1):
 * folio_dup_swap(page) (failure → restore, abort); arch_unmap_one (sparc64
 * profile; failure → put_swap, restore, abort); if exclusive
 * folio_try_share_anon_rmap_pte (−EBUSY → put_swap, restore, abort); mmlist;
 * MM_ANONPAGES −1, MM_SWAPENTS +1; swap PTE with swp-exclusive and uffd-wp.
 */
function ttuAnonOne(k: Kernel, folio: Folio, p: Proc, t: PteTable, i: number, present: boolean, page: number, anonExclusive: boolean): boolean {
  const si = k.si!;
  const pfn = folio.head + page;
  if (folioDupSwapUnchecked(si, folio, page, 1) < 0) {
    restorePtes(t, i, present, pfn, 1);
    return false;
  }
  if (k.config.archOptions.archUnmapOne && k.archUnmapOneFires()) {
    folioPutSwapUnchecked(si, folio, page, 1);
    restorePtes(t, i, present, pfn, 1);
    return false;
  }
  if (anonExclusive && folioTryShareAnonRmapPteUnchecked(folio, pfn) !== 0) {
    folioPutSwapUnchecked(si, folio, page, 1);
    restorePtes(t, i, present, pfn, 1);
    return false;
  }
  mmlistAdd(k, p);
  k.addMmCounter(p, MM_ANONPAGES, -1);
  k.addMmCounter(p, MM_SWAPENTS, 1);
  const uffd = present ? pteUffdWp(pteval.lo, pteval.hi) : pteSwpUffdWp(pteval.lo, pteval.hi);
  swapPteInto(swp, si.type, swapOffsetOf(folio, page), anonExclusive, uffd);
  internalSetPteAt(t, i, swp.lo, swp.hi);
  return true;
}

/**
 * Dev Jain v4 __ttu_anon_folio (§3.3, [I] reconstruction: only the v4 cover
 * letter and the 03/12 and 12/12 commit messages were readable, and the
 * per-step order follows 7.2.13's one-PTE path in try_to_unmap_one): the nr cleared
 * PTEs from page `first` are processed in sub-batches of equal
 * PageAnonExclusive: folio_dup_swap(sub) → if exclusive
 * folio_try_share_anon_rmap_ptes(sub) (−EBUSY → folio_put_swap(sub)) →
 * len swap PTEs (set_pte_at loop) → MM_ANONPAGES −len, MM_SWAPENTS +len.
 * On a failure in the sub-batch starting at s: [I] the PTEs [s, end) are
 * restored with set_ptes from the saved pteval (pfn advanced; write and
 * uffd-wp as before, young/dirty the MERGED values of the whole batch — the
 * spec's reading of the unreadable v4 code, resting on 7.2.13's own restore
 * of a lazyfree batch, set_ptes(pteval, nr) with get_and_clear_ptes's OR),
 * and the pages [first, s)
 * already converted are accounted (folio_remove_rmap_ptes + folio_put_refs)
 * before the abort.
 */
function ttuAnonBatched(k: Kernel, folio: Folio, p: Proc, t: PteTable, i: number, present: boolean, first: number, nr: number, _ex0: boolean): boolean {
  const si = k.si!;
  const l = k.ledger;
  const flags = k.memmap.flags;
  const AE = FLAG.anon_exclusive.mask;
  const uffd = present ? pteUffdWp(pteval.lo, pteval.hi) : pteSwpUffdWp(pteval.lo, pteval.hi);
  const end = first + nr;
  const head = folio.head;
  let s = first;
  while (s < end) {
    const ex = (flags[head + s]! & AE) !== 0;
    let len = 1;
    while (s + len < end && ((flags[head + s + len]! & AE) !== 0) === ex) len++;
    l.charge(EV.FLAG_LOAD, len);
    // unchecked entry points: the folio is locked, in the swap cache, and [s, s + len) lies inside it
    let failed = folioDupSwapUnchecked(si, folio, s, len) < 0;
    if (!failed && ex && folioTryShareAnonRmapPtesUnchecked(folio, head + s, len) !== 0) {
      folioPutSwapUnchecked(si, folio, s, len);
      failed = true;
    }
    if (failed) {
      restorePtes(t, i + (s - first), present, head + s, end - s);
      if (s > first) finishUnmap(k, folio, vmaOfWalk(p), first, s - first);
      return false;
    }
    internalSetSwapPtes(t, i + (s - first), len, si.type, swapOffsetOf(folio, s), ex, uffd);
    k.addMmCounter(p, MM_ANONPAGES, -len);
    k.addMmCounter(p, MM_SWAPENTS, len);
    mmlistAdd(k, p);
    s += len;
  }
  return true;
}

/** The VMA of the walk in progress on `p` (the one try_to_unmap_one was called with). */
function vmaOfWalk(p: Proc): Vma {
  return p.walk!.vma as Vma;
}
