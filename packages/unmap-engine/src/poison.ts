import {
  F_INDEX,
  FLAG,
  type Folio,
  folioSetHasHwpoisoned,
  folioClearDirty,
  folioClearUptodate,
  folioSetReferenced,
  folioTrylock,
  folioUnlock,
  testSetPageHWPoison,
} from '@foliolab/folio-flags';
import { EV } from '@foliolab/ledger';
import { ptePfn, softleafIsSwap } from '@foliolab/pagetable-arm64-contpte';
import { PVMW_SYNC, pageVmaMappedWalk, pageVmaMappedWalkDone } from '@foliolab/pvmw';
import { rmapWalkAnon, type RmapVma, type RmapWalkControl } from '@foliolab/rmap';
import { swapCacheDelFolio } from '@foliolab/swap';
import { PAGE_SIZE, TTU_HWPOISON, TTU_IGNORE_MLOCK, TTU_SYNC } from './consts.js';
import { handleMmFault } from './fault.js';
import { gupTouch } from './gup.js';
import { putFolioRefs } from './folio-ops.js';
import type { Kernel } from './kernel.js';
import { lruRemoveOnFree } from './lru.js';
import { pteIdx } from './pte-util.js';
import type { Proc } from './proc.js';
import { splitFolio } from './split.js';
import { folioMappedRaw, tryToUnmap, walkFor } from './ttu.js';
import { vmaLookup, type Vma } from './vma.js';

/*
 * MADV_HWPOISON (7.2.13 mm/madvise.c madvise_inject_error): get_user_pages_fast
 * of the page — a swapped-out page is faulted in (a read fault) — then
 * memory_failure() on it (mm/memory-failure.c), the parts the unmap model
 * needs: TestSetPageHWPoison (a second hit
 * is a no-op, -EHWPOISON), folio_set_has_hwpoisoned for a large folio,
 * try_to_split_thp_page (a large folio is split to order 0 first; a failed
 * split leaves the folio alone, MF_IGNORED), then hwpoison_user_mappings:
 * try_to_unmap(TTU_IGNORE_MLOCK | TTU_SYNC | TTU_HWPOISON), where a
 * swap-cache folio keeps its swap entries ("keeping poisoned page in swap
 * cache": TTU_HWPOISON dropped), then identify_page_state's action for the
 * unmapped page (pageAction: me_swapcache_clean / _dirty, me_pagecache_clean).
 *
 * Options beyond the kernel: `ttuHwpoison: true` keeps TTU_HWPOISON even for
 * a swap-cache folio and `split: false` skips the split — together they give
 * spec §7 scenario 25 (page 7 → hwpoison entry, the other pages → swap
 * PTEs, nr 1 everywhere). Before the unmap, collect_procs_anon looks for the
 * caller's mappings of the page (MF_ACTION_REQUIRED: only the current mm):
 * one page_mapped_in_vma walk per VMA of the caller in the anon_vma's tree.
 * The signal is an answer, not a kill: the engine returns it (PoisonResult.sigbus)
 * and the caller lives on, as a process with a SIGBUS handler does.
 */

/**
 * collect_procs_anon (7.2.13 mm/memory-failure.c) for the current mm: per VMA
 * of the anon_vma's tree that covers the page's pgoff and belongs to `mm`,
 * page_mapped_in_vma — a PVMW_SYNC walk of that one page. No rmap_one.
 */
class CollectProcs implements RmapWalkControl {
  readonly chargeRmapOne = false;
  /** The caller maps the page (page_mapped_in_vma found it): it is on the to-kill list. */
  found = false;
  constructor(
    readonly mm: Proc,
    readonly pfn: number,
    readonly pgoff: number,
  ) {}
  rmapOne(folio: Folio, vma: RmapVma): boolean {
    const v = vma as Vma;
    const address = v.vmStart + (this.pgoff - v.vmPgoff) * PAGE_SIZE;
    if (v.mm !== this.mm || address < v.vmStart || address >= v.vmEnd) return true;
    const w = walkFor(v.mm, folio, v, address, PVMW_SYNC);
    w.initUnchecked(this.pfn, 1, this.pgoff, v, address, PVMW_SYNC); // the page, not the folio
    if (pageVmaMappedWalk(w)) {
      this.found = true;
      pageVmaMappedWalkDone(w);
    }
    return true;
  }
}

export interface PoisonOptions {
  ttuHwpoison?: boolean;
  split?: boolean;
}

/**
 * What memory_failure() tells the caller. `sigbus`: the kernel sends it SIGBUS (BUS_MCEERR_AR,
 * force_sig_mceerr) — kill_procs with forcekill for a to-kill list that holds the caller (only the
 * current mm is collected under MF_ACTION_REQUIRED; early kill is off): after a failed split
 * (kill_procs_now), when the unmapped folio is dirty or the unmap failed (hwpoison_user_mappings),
 * and on a second hit (kill_accessing_process finds the pfn mapped). `errno`: memory_failure's
 * error, which madvise_inject_error returns.
 */
export interface PoisonResult {
  result: 'recovered' | 'ignored' | 'already';
  sigbus: boolean;
  errno: 'EHWPOISON' | 'EBUSY' | null;
}

/** memory_failure() on the page mapped at `addr` (see the file comment). */
export function doPoison(k: Kernel, p: Proc, addr: number, o: PoisonOptions): PoisonResult {
  const t = p.pt.pteTableOf(addr)!;
  const i = pteIdx(addr);
  // get_user_pages_fast: GUP-fast takes a present page and sets PG_referenced (gup_fast_pte_range); the slow
  // path faults a swapped-out page in (FOLL_GET, no FOLL_WRITE: a read fault), then follow_page_pte's
  // FOLL_TOUCH (7.2.13 mm/gup.c:gup_fast_fallback adds it for the slow path) marks the folio accessed. A large
  // folio keeps that PG_referenced on every page through the split below (recorded:
  // oracle-poison-swapped-large).
  const gupFast = !softleafIsSwap(t.lo[i]!, t.hi[i]!);
  if (!gupFast) handleMmFault(k, p, vmaLookup(p, addr)!, addr, 0);
  const pfn = ptePfn(t.lo[i]!, t.hi[i]!);
  const mm = k.memmap;
  let folio = k.folioOf(pfn);
  if (gupFast) folioSetReferenced(folio);
  else gupTouch(k, t, i, folio, false);
  // a second hit: kill_accessing_process walks the caller's page tables, finds the pfn mapped at `addr`
  if (testSetPageHWPoison(mm, pfn)) return { result: 'already', sigbus: true, errno: 'EHWPOISON' };
  // get_hwpoison_page(): memory_failure holds a reference throughout.
  k.ledger.charge(EV.ATOMIC_REF);
  mm.aux[folio.head] = mm.aux[folio.head]! + 1;
  if (folio.order > 0) {
    folioSetHasHwpoisoned(folio);
    if (o.split !== false) {
      folioTrylock(folio);
      const err = splitFolio(k, folio, null, pfn - folio.head);
      folio = k.folioOf(pfn);
      folioUnlock(folio);
      if (err !== 0) {
        putFolioRefs(k, folio, 1);
        // kill_procs_now: collect_procs finds the caller's mapping, forcekill
        return { result: 'ignored', sigbus: true, errno: 'EHWPOISON' };
      }
    }
  }
  folio = k.folioOf(pfn);
  const sc = FLAG.swapcache.mask | FLAG.swapbacked.mask;
  const swapcache = (mm.flags[folio.head]! & sc) === sc;
  let ttu = TTU_IGNORE_MLOCK | TTU_SYNC | TTU_HWPOISON;
  if (swapcache && o.ttuHwpoison !== true) ttu &= ~TTU_HWPOISON;
  let sigbus = false;
  let unmapped = true;
  if (folioMappedRaw(k, folio)) {
    const collect = new CollectProcs(p, pfn, folio.fa[folio.fb + F_INDEX]! + (pfn - folio.head));
    rmapWalkAnon(folio, collect);
    folioTrylock(folio);
    tryToUnmap(k, folio, ttu);
    folioUnlock(folio);
    unmapped = !folioMappedRaw(k, folio);
    // hwpoison_user_mappings: forcekill = folio_test_dirty (the unmap propagated PTE dirty) || !unmap_success
    sigbus = collect.found && ((mm.flags[folio.head]! & FLAG.dirty.mask) !== 0 || !unmapped);
  }
  if (!folioMappedRaw(k, folio)) {
    if (folio.order === 0) pageAction(k, folio);
    else if (!swapcache) deleteFromLruCache(k, folio); // `split: false` only: a large folio, beyond the kernel
  }
  putFolioRefs(k, folio, 1);
  // an unmap failure is MF_MSG_UNMAP_FAILED, MF_FAILED: -EBUSY
  return { result: 'recovered', sigbus, errno: unmapped ? null : 'EBUSY' };
}

/**
 * identify_page_state → page_action (7.2.13 mm/memory-failure.c) for an
 * unmapped order-0 anon folio: the first error_states row its flags match.
 * In the swap cache (sc): me_swapcache_dirty clears PG_dirty and PG_uptodate
 * and takes it off the LRU, keeping it in the swap cache (a later fault there
 * gets VM_FAULT_HWPOISON, not modelled); me_swapcache_clean deletes it from
 * the swap cache (swap_cache_del_folio: the slots keep their counts, a later
 * fault reads them again) and takes it off the LRU. Otherwise
 * me_pagecache_clean / _dirty: only delete_from_lru_cache for an anon folio.
 * The engine then frees a folio whose last reference memory_failure's was,
 * where the kernel keeps that reference on the poisoned page.
 */
function pageAction(k: Kernel, folio: Folio): void {
  const mm = k.memmap;
  const sc = FLAG.swapcache.mask | FLAG.swapbacked.mask;
  const w = mm.flags[folio.head]!;
  if ((w & sc) === sc && k.si !== null) {
    if ((w & FLAG.dirty.mask) !== 0) {
      folioClearDirty(folio);
      folioClearUptodate(folio);
    } else {
      folioTrylock(folio);
      swapCacheDelFolio(k.si, folio);
      folioUnlock(folio);
    }
  }
  deleteFromLruCache(k, folio);
}

/** delete_from_lru_cache(): off the LRU with PG_active and PG_unevictable cleared (the isolation reference dropped again). */
function deleteFromLruCache(k: Kernel, folio: Folio): void {
  const mm = k.memmap;
  if (lruRemoveOnFree(k, folio)) {
    mm.flags[folio.head] = (mm.flags[folio.head]! & ~(FLAG.lru.mask | FLAG.active.mask | FLAG.unevictable.mask)) >>> 0;
    k.ledger.charge(EV.ATOMIC_RMW);
  }
}
