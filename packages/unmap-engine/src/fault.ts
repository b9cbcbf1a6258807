import { VM, MTHP } from './stats.js';
import {
  F_LARGE_MAPCOUNT,
  F_MAPPING,
  F_MM_ID1,
  FLAG,
  MM_IDS_SHARED_MASK,
  anonMapping,
  folioSubrange,
  folioTrylock,
  folioUnlock,
  setPageAnonExclusive,
  type Folio,
} from '@foliolab/folio-flags';
import { EV, FoliolabError } from '@foliolab/ledger';
import {
  hwAccess,
  pteBits,
  pteClearUffdWp,
  pteMkdirty,
  pteMkold,
  pteMkuffdWp,
  pteMkyoung,
  pteNone,
  ptePfn,
  ptePresent,
  pteUffdWp,
  pteWrite,
  ptepClearFlush,
  ptepGet,
  ptepSetAccessFlags,
  setPteAt,
  setPtes,
  softleafIsDeviceExclusive,
  softleafIsHwpoison,
  softleafIsMarker,
  softleafIsSwap,
  softleafPfn,
  pteMarkerBits,
  pteSwpUffdWp,
  PTE_MARKER_UFFD_WP,
  type PteBits,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import { RMAP_EXCLUSIVE, folioAddNewAnonRmap, folioRemoveRmapPtes } from '@foliolab/rmap';
import { folioFreeSwap } from '@foliolab/swap';
import { MM_ANONPAGES, PAGE_SIZE, VM_LOCKED, VM_UFFD_WP, VM_WRITE } from './consts.js';
import { allocAnonFolio, fixupDroppable, folioAddLruVma, munlockFolio, putFolioRefs } from './folio-ops.js';
import type { Kernel } from './kernel.js';
import { isSpecial, mkPte, mkZeroPte, pteIdx, mkwrite } from './pte-util.js';
import type { Proc } from './proc.js';
import { doSwapPage } from './swapin.js';
import { vmaAnonVmaPrepare, type Vma } from './vma.js';

/*
 * Page faults on private anonymous memory (mm/memory.c, 2026):
 * handle_pte_fault → do_anonymous_page / alloc_anon_folio, do_wp_page
 * (reuse incl. the MM_ID large-folio reuse, or wp_page_copy), do_swap_page
 * (swapin.ts), uffd-wp markers and device-exclusive restore. The caller
 * validated permissions, userfaultfd write-protection and hwpoison first.
 */

/** FAULT_FLAG_WRITE. */
export const FAULT_WRITE = 1;
/** FAULT_FLAG_UNSHARE (GUP R/O pin of a possibly shared anon page). */
export const FAULT_UNSHARE = 2;

const orig = pteBits();
const entry = pteBits();
const scratch = pteBits();

/** userfaultfd_armed(vma). */
export function uffdArmed(vma: Vma): boolean {
  return (vma.flags & VM_UFFD_WP) !== 0;
}

/**
 * The CPU touching `addr` (read or write): the MMU handles a valid entry
 * with the right permissions (setting AF / clearing RDONLY, no kernel work);
 * anything else takes handle_mm_fault, then the access retries.
 */
export function cpuAccess(k: Kernel, p: Proc, vma: Vma, addr: number, write: boolean): void {
  const i = pteIdx(addr);
  for (let tries = 0; ; tries++) {
    const t = p.pt.pteTableOf(addr);
    if (t !== null && hwAccess(t, i, write)) return;
    // The access retries after each fault (e.g. a write to a uffd-wp marker: missing fault, then wp fault).
    if (tries === 3) throw new FoliolabError('EINVARIANT', `cpuAccess: pid ${p.pid} 0x${addr.toString(16)} still faults after ${tries} faults`);
    handleMmFault(k, p, vma, addr, write ? FAULT_WRITE : 0);
  }
}

/** handle_mm_fault() for a PTE-mapped anonymous VMA. */
export function handleMmFault(k: Kernel, p: Proc, vma: Vma, addr: number, flags: number): void {
  k.stats.count(VM.pgfault);
  const t = p.pt.pteAlloc(addr);
  const i = pteIdx(addr);
  ptepGet(t, i, orig);
  const lo = orig.lo;
  const hi = orig.hi;
  const write = (flags & FAULT_WRITE) !== 0;
  if (pteNone(lo, hi)) {
    doAnonymousPage(k, p, vma, t, i, addr, write, false);
    return;
  }
  if (ptePresent(lo, hi)) {
    if (write && !pteWrite(lo, hi)) doWpPage(k, p, vma, t, i, addr, false);
    else if ((flags & FAULT_UNSHARE) !== 0) doWpPage(k, p, vma, t, i, addr, true);
    else accessFlagsFault(k, t, i, write);
    return;
  }
  if (softleafIsSwap(lo, hi)) {
    doSwapPage(k, p, vma, t, i, addr, write);
    if ((write || (flags & FAULT_UNSHARE) !== 0) && needsWp(k, t, i, write)) doWpPage(k, p, vma, t, i, addr, !write);
    return;
  }
  if (softleafIsMarker(lo, hi)) {
    // handle_pte_marker → do_pte_missing, keeping uffd-wp for the new PTE.
    doAnonymousPage(k, p, vma, t, i, addr, write, (pteMarkerBits(lo, hi) & PTE_MARKER_UFFD_WP) !== 0 && uffdArmed(vma));
    return;
  }
  if (softleafIsDeviceExclusive(lo, hi)) {
    restoreExclusivePte(k, vma, t, i, orig);
    handleMmFault(k, p, vma, addr, flags);
    return;
  }
  if (softleafIsHwpoison(lo, hi)) throw new FoliolabError('EINVARIANT', `handleMmFault: hwpoison entry at 0x${addr.toString(16)} reached the fault path`);
  throw new FoliolabError('EINVARIANT', `handleMmFault: unexpected entry at 0x${addr.toString(16)}`);
}

function needsWp(k: Kernel, t: PteTable, i: number, write: boolean): boolean {
  const lo = t.lo[i]!;
  const hi = t.hi[i]!;
  if (write) return !pteWrite(lo, hi);
  const f = k.folioOf(ptePfn(lo, hi));
  return (f.mm.flags[ptePfn(lo, hi)]! & FLAG.anon_exclusive.mask) === 0;
}

/** A fault on a present, permitted entry (no hardware AF/DBM): ptep_set_access_flags with young (+dirty). */
function accessFlagsFault(k: Kernel, t: PteTable, i: number, write: boolean): void {
  k.ledger.lock(t.ptl);
  ptepGet(t, i, entry);
  pteMkyoung(entry);
  if (write) pteMkdirty(entry);
  entry.hi &= ~(1 << 20); // CONT stripped: ptep_set_access_flags handles contpte itself
  ptepSetAccessFlags(t, i, entry.lo >>> 0, entry.hi >>> 0, write);
  k.ledger.unlock(t.ptl);
}

/** thp_vma_suitable_order(): the aligned range around `addr` lies in the VMA (anon: no pgoff check). */
function suitable(vma: Vma, addr: number, order: number): boolean {
  const size = PAGE_SIZE << order;
  const h = addr - (addr % size);
  return h >= vma.vmStart && h + size <= vma.vmEnd;
}

function rangeNone(t: PteTable, i: number, nr: number): boolean {
  for (let j = i; j < i + nr; j++) if ((t.lo[j]! | t.hi[j]!) !== 0) return false;
  return true;
}

/**
 * Whether a large allocation of `nr` pages at `haddr` leaves enough for the
 * rest of the access in progress: the pages after the current one still need
 * `needAfter` pages worst case, minus those this folio covers. Model guard,
 * not kernel behaviour: the kernel's mTHP allocation (7.2.13
 * mm/memory.c:alloc_anon_folio, vma_thp_gfp_mask) fails or reclaims against
 * the machine's real memory, which the simulated `memory` stands in for; it
 * only changes an answer when simulated memory is nearly exhausted, and the
 * oracle does not reproduce `memory` (docs/ORACLE.md).
 */
export function reserveAllows(k: Kernel, nr: number, haddr: number): boolean {
  const free = k.memmap.nrFreePages;
  if (k.accessEnd === 0) return free >= nr;
  const lo = Math.max(haddr, k.accessCur);
  const hi = Math.min(haddr + nr * PAGE_SIZE, k.accessEnd);
  const covered = hi > lo ? (hi - lo) / PAGE_SIZE : 0;
  return free - nr >= k.needAfter - Math.max(0, covered - 1);
}

/**
 * alloc_anon_folio() (v6.10+): the highest mTHP order enabled for the VMA
 * whose aligned range lies in the VMA and is all pte_none, falling back one
 * order at a time on allocation failure (anon_fault_fallback), then order 0.
 * uffd-armed VMAs always get order 0. The order scan reads the PTEs too
 * (7.2.13 mm/memory.c:alloc_anon_folio → pte_range_none, one ptep_get per
 * PTE until one is not none); the ledger does not charge those reads (a cost
 * choice: spec §6 counts the nr reads of the locked re-check only).
 * Throws ENOMEM (EINVARIANT-guarded by the callers' up-front capacity check)
 * when even order 0 fails.
 */
function allocAnonFolioForFault(k: Kernel, vma: Vma, t: PteTable, addr: number): Folio {
  if (!uffdArmed(vma)) {
    const orders = k.anonOrders;
    let start = -1;
    for (let n = 0; n < orders.length; n++) {
      const o = orders[n]!;
      if (!suitable(vma, addr, o)) continue;
      const size = PAGE_SIZE << o;
      if (rangeNone(t, pteIdx(addr - (addr % size)), 1 << o)) {
        start = n;
        break;
      }
    }
    if (start >= 0) {
      for (let n = start; n < orders.length; n++) {
        const o = orders[n]!;
        if (!suitable(vma, addr, o)) continue;
        if (reserveAllows(k, 1 << o, addr - (addr % (PAGE_SIZE << o)))) {
          const f = allocAnonFolio(k, o);
          if (f !== null) return f;
        }
        k.stats.mthpCount(o, MTHP.anon_fault_fallback);
      }
    }
  }
  const f = allocAnonFolio(k, 0);
  if (f === null) throw new FoliolabError('ENOMEM', `page fault at 0x${addr.toString(16)}: out of simulated memory`);
  return f;
}

/**
 * do_anonymous_page(): a read maps the shared zero page; a write allocates
 * (alloc_anon_folio), then under the PTL: re-check none over nr (nr
 * PTE_READ), folio_ref_add(nr − 1), MM_ANONPAGES += nr, mTHP
 * anon_fault_alloc, folio_add_new_anon_rmap(EXCLUSIVE), LRU add, set_ptes(nr)
 * with young, and dirty + writable when VM_WRITE.
 */
export function doAnonymousPage(k: Kernel, p: Proc, vma: Vma, t: PteTable, i: number, addr: number, write: boolean, uffdWp: boolean): void {
  const l = k.ledger;
  if (!write) {
    mkZeroPte(entry, k.zeroPfn, vma);
    if (uffdWp) pteMkuffdWp(entry);
    l.lock(t.ptl);
    ptepGet(t, i, scratch);
    setPteAt(t, i, entry.lo, entry.hi);
    l.unlock(t.ptl);
    return;
  }
  vmaAnonVmaPrepare(k, vma);
  const folio = allocAnonFolioForFault(k, vma, t, addr);
  const nr = folio.nr;
  const start = addr - (addr % (nr * PAGE_SIZE));
  const i0 = pteIdx(start);
  mkPte(entry, folio.head, vma, (vma.flags & VM_WRITE) !== 0, false);
  l.lock(t.ptl);
  for (let j = i0; j < i0 + nr; j++) {
    ptepGet(t, j, scratch);
    if (!pteNone(scratch.lo, scratch.hi) && !(nr === 1 && softleafIsMarker(scratch.lo, scratch.hi))) {
      l.unlock(t.ptl);
      throw new FoliolabError('EINVARIANT', `do_anonymous_page: slot ${j} changed under the fault`);
    }
  }
  if (nr > 1) {
    l.charge(EV.ATOMIC_REF);
    k.memmap.aux[folio.head] = k.memmap.aux[folio.head]! + nr - 1;
  }
  k.addMmCounter(p, MM_ANONPAGES, nr);
  k.stats.mthpCount(folio.order, MTHP.anon_fault_alloc);
  folioAddNewAnonRmap(folio, vma, start, RMAP_EXCLUSIVE);
  fixupDroppable(folio, vma);
  folioAddLruVma(k, folio, vma);
  if (uffdWp) pteMkuffdWp(entry);
  setPtes(t, i0, entry.lo, entry.hi, nr);
  l.unlock(t.ptl);
}

/** folio_move_anon_rmap(folio, vma): point an exclusive folio at the VMA's own anon_vma. */
function folioMoveAnonRmap(folio: Folio, vma: Vma): void {
  const m = anonMapping(vma.anonVma!.id);
  if (folio.fa[folio.fb + F_MAPPING] !== m) folio.fa[folio.fb + F_MAPPING] = m;
}

/**
 * wp_can_reuse_anon_folio(): small folio — refcount ≤ 3, then ≤ 1 + in swap
 * cache, trylock, free the swap cache, refcount == 1. Large folio — only with
 * MM_ID (mapcountMode 'mm_id', 6.15+): __wp_can_reuse_large_anon_folio
 * (mapped more than once, not maybe-shared, refcount == large mapcount under
 * the MM_ID lock). Legacy mode (pre-6.15) never reuses a large folio.
 */
function wpCanReuseAnonFolio(k: Kernel, folio: Folio, vma: Vma): boolean {
  const mm = k.memmap;
  const ref = mm.aux[folio.head]!;
  const swapcache = (mm.flags[folio.head]! & (FLAG.swapcache.mask | FLAG.swapbacked.mask)) === (FLAG.swapcache.mask | FLAG.swapbacked.mask);
  if (folio.order > 0) {
    if (k.rmap.legacy) return false;
    const large = folio.fa[folio.fb + F_LARGE_MAPCOUNT]! + 1;
    if (large <= 1) return false;
    if ((folio.fa[folio.fb + F_MM_ID1]! & MM_IDS_SHARED_MASK) !== 0) return false;
    if (ref > large + (swapcache ? folio.nr : 0)) return false;
    const lock = k.rmap.mmIdsLock(folio.head);
    k.ledger.lock(lock);
    const ok = (folio.fa[folio.fb + F_MM_ID1]! & MM_IDS_SHARED_MASK) === 0 && large === mm.aux[folio.head];
    k.ledger.unlock(lock);
    if (ok) folioMoveAnonRmap(folio, vma);
    return ok;
  }
  if (ref > 3) return false;
  if (ref > 1 + (swapcache ? 1 : 0)) return false;
  if (!folioTrylock(folio)) return false;
  if (swapcache && k.si !== null) folioFreeSwap(k.si, folio);
  if (mm.aux[folio.head] !== 1) {
    folioUnlock(folio);
    return false;
  }
  folioMoveAnonRmap(folio, vma);
  folioUnlock(folio);
  return true;
}

/**
 * do_wp_page(): uffd-wp (async) clears the bit first; an anon page that is
 * PageAnonExclusive or reusable is reused (wp_page_reuse: young, dirty,
 * writable via ptep_set_access_flags — one PTE) or, for an unshare fault,
 * only made exclusive; otherwise wp_page_copy.
 */
export function doWpPage(k: Kernel, p: Proc, vma: Vma, t: PteTable, i: number, addr: number, unshare: boolean): void {
  const l = k.ledger;
  l.lock(t.ptl);
  ptepGet(t, i, orig);
  if (!unshare && pteUffdWp(orig.lo, orig.hi)) {
    if (!vma.uffdAsync) {
      l.unlock(t.ptl);
      throw new FoliolabError('EINVARIANT', 'do_wp_page: synchronous uffd-wp fault reached the engine');
    }
    pteClearUffdWp(orig);
    orig.hi &= ~(1 << 20);
    orig.hi >>>= 0;
    setPteAt(t, i, orig.lo, orig.hi);
  }
  const pfn = ptePfn(orig.lo, orig.hi);
  const folio = isSpecial(orig.hi) ? null : k.folioOf(pfn);
  if (folio !== null && (k.memmap.flags[pfn]! & FLAG.anon_exclusive.mask) !== 0 ? true : folio !== null && wpCanReuseAnonFolio(k, folio, vma)) {
    l.charge(EV.FLAG_LOAD);
    if ((k.memmap.flags[pfn]! & FLAG.anon_exclusive.mask) === 0) setPageAnonExclusive(k.memmap, pfn);
    if (unshare) {
      l.unlock(t.ptl);
      return;
    }
    entry.lo = orig.lo;
    entry.hi = (orig.hi & ~(1 << 20)) >>> 0;
    pteMkyoung(entry);
    pteMkdirty(entry);
    if ((vma.flags & VM_WRITE) !== 0) mkwrite(entry);
    ptepSetAccessFlags(t, i, entry.lo, entry.hi, true);
    k.stats.count(VM.wp_reuse);
    l.unlock(t.ptl);
    return;
  }
  if (folio !== null) {
    l.charge(EV.ATOMIC_REF);
    k.memmap.aux[folio.head] = k.memmap.aux[folio.head]! + 1; // folio_get
  }
  l.unlock(t.ptl);
  wpPageCopy(k, p, vma, t, i, addr, folio, unshare);
}

/**
 * wp_page_copy(): allocate an order-0 copy (zeroed for the zero page, else
 * carrying the data token), then under the PTL: MM_ANONPAGES +1 when the old
 * page was the zero page, ptep_clear_flush, folio_add_new_anon_rmap
 * (EXCLUSIVE), LRU add, set_pte_at (dirty + writable unless unshare, where
 * uffd-wp is kept), folio_remove_rmap_pte(old); then free_swap_cache(old) and
 * two folio_puts (the mapping's and do_wp_page's folio_get).
 */
function wpPageCopy(k: Kernel, p: Proc, vma: Vma, t: PteTable, i: number, addr: number, old: Folio | null, unshare: boolean): void {
  const l = k.ledger;
  vmaAnonVmaPrepare(k, vma);
  const oldPfn = ptePfn(orig.lo, orig.hi);
  const nw = allocAnonFolio(k, 0);
  if (nw === null) throw new FoliolabError('ENOMEM', `wp_page_copy at 0x${addr.toString(16)}: out of simulated memory`);
  const tok = k.memmap.token!;
  tok[nw.head] = old === null ? 0 : tok[oldPfn]!;
  l.lock(t.ptl);
  ptepGet(t, i, scratch);
  if (old === null) k.addMmCounter(p, MM_ANONPAGES, 1);
  mkPte(entry, nw.head, vma, !unshare && (vma.flags & VM_WRITE) !== 0, !unshare);
  if (unshare && pteUffdWp(orig.lo, orig.hi)) pteMkuffdWp(entry);
  ptepClearFlush(t, i, scratch);
  folioAddNewAnonRmap(nw, vma, addr, RMAP_EXCLUSIVE);
  fixupDroppable(nw, vma);
  folioAddLruVma(k, nw, vma);
  setPteAt(t, i, entry.lo, entry.hi);
  if (old !== null) {
    folioRemoveRmapPtes(folioSubrange(old, oldPfn - old.head, 1), vma);
    // __folio_remove_rmap → munlock_vma_folio (7.2.13 mm/rmap.c, mm/internal.h): leaving a VM_LOCKED VMA munlocks
    // the old folio: munlock_folio drops one mlock_count, and the folio stays mlocked while another locked VMA
    // counted it (folio-ops.ts munlockFolio).
    if ((vma.flags & VM_LOCKED) !== 0 && (k.memmap.flags[old.head]! & FLAG.mlocked.mask) !== 0) munlockFolio(k, old);
  }
  l.unlock(t.ptl);
  k.stats.count(VM.cow_fault);
  if (old !== null) {
    freeSwapCache(k, old);
    if (!putFolioRefs(k, old, 1)) putFolioRefs(k, old, 1);
  }
}

/** free_swap_cache(folio): in the swap cache, unmapped, trylockable → folio_free_swap. */
export function freeSwapCache(k: Kernel, f: Folio): void {
  const w = k.memmap.flags[f.head]!;
  const sc = FLAG.swapcache.mask | FLAG.swapbacked.mask;
  if ((w & sc) !== sc || k.si === null) return;
  const mapped = f.order === 0 ? k.memmap.mapcount![f.head]! >= 0 : f.fa[f.fb + F_LARGE_MAPCOUNT]! >= 0;
  if (mapped || !folioTrylock(f)) return;
  folioFreeSwap(k.si, f);
  folioUnlock(f);
}

/**
 * restore_exclusive_pte() (mm/memory.c, 2025 device-exclusive rework): the
 * page comes back old, uffd-wp from the entry, dirty (if the folio is) and
 * writable when VM_WRITE and the page is PageAnonExclusive.
 */
export function restoreExclusivePte(k: Kernel, vma: Vma, t: PteTable, i: number, e: PteBits): void {
  const l = k.ledger;
  const pfn = softleafPfn(e.lo, e.hi);
  const folio = k.folioOf(pfn);
  l.lock(t.ptl);
  mkPte(entry, pfn, vma, false, false);
  pteMkold(entry);
  const uffd = pteSwpUffdWp(e.lo, e.hi);
  if (uffd) pteMkuffdWp(entry);
  if ((vma.flags & VM_WRITE) !== 0 && !uffd && (k.memmap.flags[pfn]! & FLAG.anon_exclusive.mask) !== 0) {
    if ((k.memmap.flags[folio.head]! & FLAG.dirty.mask) !== 0) pteMkdirty(entry);
    mkwrite(entry);
  }
  setPteAt(t, i, entry.lo, entry.hi);
  l.unlock(t.ptl);
}
