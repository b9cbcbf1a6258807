import { EV } from '@foliolab/ledger';
import {
  __folioClearFlag,
  __folioSetFlag,
  __pageClearFlag,
  folioClearFlag,
  folioSetFlag,
  folioTestClearFlag,
  folioTestFlag,
  folioTestSetFlag,
  pageClearFlag,
  pageSetFlag,
  pageTestClearFlag,
  pageTestFlag,
  pageTestSetFlag,
  pagesAtomicClear,
  pagesAtomicSet,
} from './flags.js';
import type { Folio } from './folio.js';
import type { Memmap } from './memmap.js';
import { FLAG } from './pageflags.js';
import type { FolioSubrange } from './subrange.js';

/*
 * Kernel-named wrappers (include/linux/page-flags.h, v6.15) for the flags the
 * later packages use. Each is one generic call; costs are the generic ones
 * (ATOMIC_RMW / FLAG_LOAD / PLAIN_RMW). Memory barriers implied by some of
 * them in the kernel (folio_mark_uptodate's smp_wmb, the _lock/_unlock
 * orderings) are not charged: the spec's cost lists do not count them.
 */

const {
  locked,
  writeback,
  referenced,
  uptodate,
  dirty,
  lru,
  active,
  unevictable,
  reclaim,
  swapbacked,
  swapcache,
  mlocked,
  anon_exclusive,
  hwpoison,
  has_hwpoisoned,
  partially_mapped,
  large_rmappable,
} = FLAG;

// --- PG_locked (PF_NO_TAIL) -------------------------------------------------
/** folio_test_locked() */
export const folioTestLocked = (f: Folio): boolean => folioTestFlag(f, locked);
/** folio_trylock(): test_and_set_bit_lock; true when this call took the lock. */
export const folioTrylock = (f: Folio): boolean => !folioTestSetFlag(f, locked);
/** folio_unlock(): clear_bit_unlock (waiter wake-up not modelled). */
export const folioUnlock = (f: Folio): void => folioClearFlag(f, locked);
/** __folio_set_locked(): non-atomic, legal only on a folio nobody else can see. */
export const __folioSetLocked = (f: Folio): void => __folioSetFlag(f, locked);
/** __folio_clear_locked(): non-atomic. */
export const __folioClearLocked = (f: Folio): void => __folioClearFlag(f, locked);

// --- PG_writeback (PF_NO_TAIL) ----------------------------------------------
/** folio_test_writeback() */
export const folioTestWriteback = (f: Folio): boolean => folioTestFlag(f, writeback);
/** folio_test_set_writeback() (__folio_start_writeback) */
export const folioTestSetWriteback = (f: Folio): boolean => folioTestSetFlag(f, writeback);
/** folio_test_clear_writeback() (__folio_end_writeback) */
export const folioTestClearWriteback = (f: Folio): boolean => folioTestClearFlag(f, writeback);

// --- PG_referenced (PF_HEAD) ------------------------------------------------
/** folio_test_referenced() */
export const folioTestReferenced = (f: Folio): boolean => folioTestFlag(f, referenced);
/** folio_set_referenced() */
export const folioSetReferenced = (f: Folio): void => folioSetFlag(f, referenced);
/** folio_clear_referenced() */
export const folioClearReferenced = (f: Folio): void => folioClearFlag(f, referenced);
/** folio_test_clear_referenced() */
export const folioTestClearReferenced = (f: Folio): boolean => folioTestClearFlag(f, referenced);
/** __folio_set_referenced(): non-atomic. */
export const __folioSetReferenced = (f: Folio): void => __folioSetFlag(f, referenced);

// --- PG_uptodate (PF_NO_TAIL) -----------------------------------------------
/** folio_test_uptodate() */
export const folioTestUptodate = (f: Folio): boolean => folioTestFlag(f, uptodate);
/** folio_mark_uptodate(): smp_wmb() + set_bit (barrier not charged). */
export const folioMarkUptodate = (f: Folio): void => folioSetFlag(f, uptodate);
/** __folio_mark_uptodate(): smp_wmb() + __set_bit, for a folio nobody else sees. */
export const __folioMarkUptodate = (f: Folio): void => __folioSetFlag(f, uptodate);
/** folio_clear_uptodate() */
export const folioClearUptodate = (f: Folio): void => folioClearFlag(f, uptodate);

// --- PG_dirty (PF_HEAD) -----------------------------------------------------
/** folio_test_dirty() */
export const folioTestDirty = (f: Folio): boolean => folioTestFlag(f, dirty);
/** folio_set_dirty() (the bit only; folio_mark_dirty's accounting is not here) */
export const folioSetDirty = (f: Folio): void => folioSetFlag(f, dirty);
/** folio_clear_dirty() */
export const folioClearDirty = (f: Folio): void => folioClearFlag(f, dirty);
/** folio_test_set_dirty() */
export const folioTestSetDirty = (f: Folio): boolean => folioTestSetFlag(f, dirty);
/** folio_test_clear_dirty() */
export const folioTestClearDirty = (f: Folio): boolean => folioTestClearFlag(f, dirty);

// --- PG_lru (PF_HEAD) -------------------------------------------------------
/** folio_test_lru() */
export const folioTestLru = (f: Folio): boolean => folioTestFlag(f, lru);
/** folio_set_lru() */
export const folioSetLru = (f: Folio): void => folioSetFlag(f, lru);
/** folio_clear_lru() */
export const folioClearLru = (f: Folio): void => folioClearFlag(f, lru);
/** folio_test_clear_lru() (LRU isolation) */
export const folioTestClearLru = (f: Folio): boolean => folioTestClearFlag(f, lru);

// --- PG_active (PF_HEAD) ----------------------------------------------------
/** folio_test_active() */
export const folioTestActive = (f: Folio): boolean => folioTestFlag(f, active);
/** folio_set_active() */
export const folioSetActive = (f: Folio): void => folioSetFlag(f, active);
/** folio_clear_active() */
export const folioClearActive = (f: Folio): void => folioClearFlag(f, active);
/** folio_test_clear_active() */
export const folioTestClearActive = (f: Folio): boolean => folioTestClearFlag(f, active);

// --- PG_unevictable (PF_HEAD) -----------------------------------------------
/** folio_test_unevictable() */
export const folioTestUnevictable = (f: Folio): boolean => folioTestFlag(f, unevictable);
/** folio_set_unevictable() */
export const folioSetUnevictable = (f: Folio): void => folioSetFlag(f, unevictable);
/** folio_clear_unevictable() */
export const folioClearUnevictable = (f: Folio): void => folioClearFlag(f, unevictable);
/** folio_test_clear_unevictable() */
export const folioTestClearUnevictable = (f: Folio): boolean => folioTestClearFlag(f, unevictable);

// --- PG_reclaim (PF_NO_TAIL) ------------------------------------------------
/** folio_test_reclaim() */
export const folioTestReclaim = (f: Folio): boolean => folioTestFlag(f, reclaim);
/** folio_set_reclaim() */
export const folioSetReclaim = (f: Folio): void => folioSetFlag(f, reclaim);
/** folio_clear_reclaim() */
export const folioClearReclaim = (f: Folio): void => folioClearFlag(f, reclaim);
/** folio_test_clear_reclaim() */
export const folioTestClearReclaim = (f: Folio): boolean => folioTestClearFlag(f, reclaim);

// --- PG_swapbacked (PF_NO_TAIL) ---------------------------------------------
/** folio_test_swapbacked() */
export const folioTestSwapbacked = (f: Folio): boolean => folioTestFlag(f, swapbacked);
/** folio_set_swapbacked() */
export const folioSetSwapbacked = (f: Folio): void => folioSetFlag(f, swapbacked);
/** folio_clear_swapbacked() (lazyfree) */
export const folioClearSwapbacked = (f: Folio): void => folioClearFlag(f, swapbacked);
/** __folio_set_swapbacked(): non-atomic, as folio_add_new_anon_rmap() does on a new folio. */
export const __folioSetSwapbacked = (f: Folio): void => __folioSetFlag(f, swapbacked);
/** __folio_clear_swapbacked(): non-atomic. */
export const __folioClearSwapbacked = (f: Folio): void => __folioClearFlag(f, swapbacked);

// --- PG_swapcache = PG_owner_priv_1 (PF_NO_TAIL) ----------------------------
/**
 * folio_test_swapcache(): swapbacked && PG_swapcache. Two bit tests of the
 * same word, short-circuited: one FLAG_LOAD when not swapbacked, else two.
 */
export const folioTestSwapcache = (f: Folio): boolean =>
  folioTestFlag(f, swapbacked) && folioTestFlag(f, swapcache);
/**
 * @internal folio_test_swapcache() on a folio the caller has already checked
 * live: the same one or two FLAG_LOADs in the same order, but the head's word
 * is read once (nothing can change it between the kernel's two bit tests in
 * this single-threaded model).
 */
export function folioTestSwapcacheUnchecked(f: Folio): boolean {
  const mm = f.mm;
  const ledger = mm.ledger;
  ledger.charge(EV.FLAG_LOAD);
  const w = mm.flags[f.head]!;
  if ((w & swapbacked.mask) === 0) return false;
  ledger.charge(EV.FLAG_LOAD);
  return (w & swapcache.mask) !== 0;
}
/** folio_set_swapcache() */
export const folioSetSwapcache = (f: Folio): void => folioSetFlag(f, swapcache);
/** folio_clear_swapcache() */
export const folioClearSwapcache = (f: Folio): void => folioClearFlag(f, swapcache);

// --- PG_mlocked (PF_NO_TAIL) ------------------------------------------------
/** folio_test_mlocked() */
export const folioTestMlocked = (f: Folio): boolean => folioTestFlag(f, mlocked);
/** folio_set_mlocked() */
export const folioSetMlocked = (f: Folio): void => folioSetFlag(f, mlocked);
/** folio_clear_mlocked() */
export const folioClearMlocked = (f: Folio): void => folioClearFlag(f, mlocked);
/** folio_test_set_mlocked() */
export const folioTestSetMlocked = (f: Folio): boolean => folioTestSetFlag(f, mlocked);
/** folio_test_clear_mlocked() */
export const folioTestClearMlocked = (f: Folio): boolean => folioTestClearFlag(f, mlocked);
/** __folio_clear_mlocked(): non-atomic (freeing path). */
export const __folioClearMlocked = (f: Folio): void => __folioClearFlag(f, mlocked);

// --- PG_anon_exclusive = PG_owner_2 (PF_ANY: per page) -----------------------
// The kernel's VM_BUG_ON_PGFLAGS(!PageAnon(page)) is not modelled.
/** PageAnonExclusive(page) */
export const pageAnonExclusive = (mm: Memmap, pfn: number): boolean => pageTestFlag(mm, pfn, anon_exclusive);
/** SetPageAnonExclusive(page) */
export const setPageAnonExclusive = (mm: Memmap, pfn: number): void => pageSetFlag(mm, pfn, anon_exclusive);
/** ClearPageAnonExclusive(page) (folio_try_share_anon_rmap_pte, fork) */
export const clearPageAnonExclusive = (mm: Memmap, pfn: number): void => pageClearFlag(mm, pfn, anon_exclusive);
/** __ClearPageAnonExclusive(page): non-atomic, only on the freeing paths. */
export const __clearPageAnonExclusive = (mm: Memmap, pfn: number): void => __pageClearFlag(mm, pfn, anon_exclusive);

/**
 * folio_clear_pages_anon_exclusive(range): `nr` atomic clears of consecutive
 * pages ([PATCH 8/9] "mm/rmap: introduce folio_try_share_anon_rmap_ptes",
 * Mar 2026, as renamed in review) — nr × ATOMIC_RMW. Takes a FolioSubrange,
 * so nr = 0 cannot reach the loop. LOOP_ITER is left to the batched caller.
 */
export function folioClearPagesAnonExclusive(range: FolioSubrange): void {
  const { folio, firstPfn, nr } = range;
  const mm = folio.mm;
  mm.assertLive('folioClearPagesAnonExclusive', folio);
  pagesAtomicClear(mm, firstPfn, nr, anon_exclusive.mask);
}

/**
 * SetPageAnonExclusive on each page of `range` (the per-page loop of
 * folio_add_new_anon_rmap / folio_add_anon_rmap_ptes with RMAP_EXCLUSIVE) —
 * nr × ATOMIC_RMW; LOOP_ITER is left to the caller.
 */
export function folioSetPagesAnonExclusive(range: FolioSubrange): void {
  const { folio, firstPfn, nr } = range;
  const mm = folio.mm;
  mm.assertLive('folioSetPagesAnonExclusive', folio);
  pagesAtomicSet(mm, firstPfn, nr, anon_exclusive.mask);
}

/** Number of pages of `range` with PageAnonExclusive, one FLAG_LOAD per page. */
export function folioCountPagesAnonExclusive(range: FolioSubrange): number {
  const { folio, firstPfn, nr } = range;
  const mm = folio.mm;
  mm.assertLive('folioCountPagesAnonExclusive', folio);
  mm.ledger.charge(EV.FLAG_LOAD, nr);
  let n = 0;
  for (let p = firstPfn; p < firstPfn + nr; p++) if ((mm.flags[p]! & anon_exclusive.mask) !== 0) n++;
  return n;
}

// --- PG_hwpoison (PF_ANY: per page) -----------------------------------------
/** PageHWPoison(page) */
export const pageHWPoison = (mm: Memmap, pfn: number): boolean => pageTestFlag(mm, pfn, hwpoison);
/** SetPageHWPoison(page) */
export const setPageHWPoison = (mm: Memmap, pfn: number): void => pageSetFlag(mm, pfn, hwpoison);
/** ClearPageHWPoison(page) */
export const clearPageHWPoison = (mm: Memmap, pfn: number): void => pageClearFlag(mm, pfn, hwpoison);
/** TestSetPageHWPoison(page) (memory_failure) */
export const testSetPageHWPoison = (mm: Memmap, pfn: number): boolean => pageTestSetFlag(mm, pfn, hwpoison);
/** TestClearPageHWPoison(page) (unpoison) */
export const testClearPageHWPoison = (mm: Memmap, pfn: number): boolean => pageTestClearFlag(mm, pfn, hwpoison);
/** folio_test_hwpoison(): PG_hwpoison of page[0] only. */
export const folioTestHwpoison = (f: Folio): boolean => folioTestFlag(f, hwpoison);

// --- PG_has_hwpoisoned (FOLIO_SECOND_PAGE) ----------------------------------
/** folio_test_has_hwpoisoned() */
export const folioTestHasHwpoisoned = (f: Folio): boolean => folioTestFlag(f, has_hwpoisoned);
/** folio_set_has_hwpoisoned() */
export const folioSetHasHwpoisoned = (f: Folio): void => folioSetFlag(f, has_hwpoisoned);
/** folio_clear_has_hwpoisoned() */
export const folioClearHasHwpoisoned = (f: Folio): void => folioClearFlag(f, has_hwpoisoned);
/** folio_test_set_has_hwpoisoned() */
export const folioTestSetHasHwpoisoned = (f: Folio): boolean => folioTestSetFlag(f, has_hwpoisoned);
/** folio_test_clear_has_hwpoisoned() */
export const folioTestClearHasHwpoisoned = (f: Folio): boolean => folioTestClearFlag(f, has_hwpoisoned);

// --- PG_partially_mapped (FOLIO_SECOND_PAGE) --------------------------------
/** folio_test_partially_mapped() */
export const folioTestPartiallyMapped = (f: Folio): boolean => folioTestFlag(f, partially_mapped);
/** folio_set_partially_mapped(): atomic since Usama Arif's fix (Dec 2024, Fixes 8422acdc97ed). */
export const folioSetPartiallyMapped = (f: Folio): void => folioSetFlag(f, partially_mapped);
/** folio_clear_partially_mapped(): atomic since the same fix. */
export const folioClearPartiallyMapped = (f: Folio): void => folioClearFlag(f, partially_mapped);
/** __folio_set_partially_mapped(): the pre-fix non-atomic set (v6.12 deferred_split_folio); loses updates. */
export const __folioSetPartiallyMapped = (f: Folio): void => __folioSetFlag(f, partially_mapped);
/** __folio_clear_partially_mapped(): the pre-fix non-atomic clear (v6.12). */
export const __folioClearPartiallyMapped = (f: Folio): void => __folioClearFlag(f, partially_mapped);

// --- PG_large_rmappable (FOLIO_SECOND_PAGE) ---------------------------------
/** folio_test_large_rmappable() */
export const folioTestLargeRmappable = (f: Folio): boolean => folioTestFlag(f, large_rmappable);
/** folio_set_large_rmappable() (folio_prep_large_rmappable) */
export const folioSetLargeRmappable = (f: Folio): void => folioSetFlag(f, large_rmappable);
/** folio_clear_large_rmappable() */
export const folioClearLargeRmappable = (f: Folio): void => folioClearFlag(f, large_rmappable);
