import {
  F_ENTIRE_MAPCOUNT,
  F_PINCOUNT,
  PAGE_MAPCOUNT_MAX,
  clearPageAnonExclusive,
  folioClearPagesAnonExclusive,
  pagesAtomicClear,
  type Folio,
  type FolioSubrange,
} from '@foliolab/folio-flags';
import { EV } from '@foliolab/ledger';
import { addReturnLargeMapcount } from './mapcount.js';
import { rmapOf, type RmapState } from './state.js';
import { GUP_PIN_COUNTING_BIAS, NEG_EBUSY, type RmapTryResult, type RmapVma } from './types.js';
import { AE_MASK, checkAnon, checkPmdSized, checkVma, fail, pageMapcountOverflow, ptesMapped, stateOfFolio, stateOfSub } from './validate.js';

/*
 * fork's folio_try_dup_anon_rmap_* and swapout/migration's
 * folio_try_share_anon_rmap_* (include/linux/rmap.h), spec §2.2–§2.3. Both
 * are all-or-nothing on −EBUSY: the check happens before any state changes.
 */

/** folio_maybe_dma_pinned() as the rmap helpers use it: one ATOMIC_READ of `_pincount` (or `_refcount` when small). */
export function maybeDmaPinned(st: RmapState, folio: Folio): boolean {
  st.ledger.charge(EV.ATOMIC_READ);
  if (folio.order > 0) return folio.fa[folio.fb + F_PINCOUNT]! > 0;
  return folio.mm.aux[folio.head]! >= GUP_PIN_COUNTING_BIAS;
}

/** folio_needs_cow_for_dma(vma, folio): MMF_HAS_PINNED (a field test, free) ∧ folio_maybe_dma_pinned(). */
export function needsCowForDma(st: RmapState, vma: RmapVma, folio: Folio): boolean {
  if (!vma.mm.hasPinned) return false;
  return maybeDmaPinned(st, folio);
}

/**
 * folio_try_dup_anon_rmap_ptes(folio, page, nr_pages, dst_vma, src_vma)
 * (include/linux/rmap.h, v6.15): fork duplicates `sub.nr` PTE mappings into
 * `dstVma`. maybe_pinned = !device-private ∧ folio_needs_cow_for_dma(src);
 * if maybe_pinned and any page is PageAnonExclusive → −EBUSY, nothing
 * changed (the caller copies for the child). Otherwise per page: clear the
 * exclusive bit if set, `_mapcount`++ (legacy); then add_large_mapcount(nr,
 * dst). The caller does folio_ref_add(nr).
 */
export function folioTryDupAnonRmapPtes(sub: FolioSubrange, dstVma: RmapVma, srcVma: RmapVma): RmapTryResult {
  const fn = 'folioTryDupAnonRmapPtes';
  const st = stateOfSub(fn, sub);
  const { folio, firstPfn, nr } = sub;
  checkVma(fn, dstVma, 'dstVma');
  checkVma(fn, srcVma, 'srcVma');
  checkAnon(fn, st, folio);
  const mm = folio.mm;
  const mc = mm.mapcount!;
  if (folio.order === 0 || st.pageMapcount) {
    for (let p = firstPfn; p < firstPfn + nr; p++) {
      if (mc[p]! < 0) fail(fn, 'EINVAL', `page ${p - folio.head} of folio ${folio.head} is not PTE-mapped: nothing to duplicate`, { head: folio.head, pfn: p });
      if (mc[p]! >= PAGE_MAPCOUNT_MAX) pageMapcountOverflow(fn, folio, p);
    }
  } else if (ptesMapped(folio) < nr) {
    fail(fn, 'EINVAL', `folio ${folio.head} has ${ptesMapped(folio)} PTE mappings, fewer than the ${nr} to duplicate`, { head: folio.head });
  }
  const ledger = st.ledger;
  const flags = mm.flags;
  ledger.begin('folio_try_dup_anon_rmap_ptes');
  ledger.charge(EV.RMAP_CALL);
  const maybePinned = !st.isDevicePrivate(folio) && needsCowForDma(st, srcVma, folio);
  if (maybePinned) {
    // for (i…) if (PageAnonExclusive(page + i)) return NEG_EBUSY;
    let tested = 0;
    let busy = false;
    for (let p = firstPfn; p < firstPfn + nr && !busy; p++) {
      tested++;
      busy = (flags[p]! & AE_MASK) !== 0;
    }
    ledger.charge(EV.LOOP_ITER, tested);
    ledger.charge(EV.FLAG_LOAD, tested);
    if (busy) {
      ledger.end();
      return NEG_EBUSY;
    }
  }
  if (folio.order === 0) {
    ledger.charge(EV.FLAG_LOAD);
    if ((flags[firstPfn]! & AE_MASK) !== 0) clearPageAnonExclusive(mm, firstPfn);
    ledger.charge(EV.ATOMIC_MAPCOUNT);
    mc[firstPfn] = mc[firstPfn]! + 1;
    ledger.end();
    return 0;
  }
  ledger.charge(EV.LOOP_ITER, nr);
  ledger.charge(EV.FLAG_LOAD, nr);
  let cleared = 0;
  for (let p = firstPfn; p < firstPfn + nr; p++) {
    if ((flags[p]! & AE_MASK) !== 0) {
      flags[p] = flags[p]! & ~AE_MASK; // ClearPageAnonExclusive: charged below, one ATOMIC_RMW each
      cleared++;
    }
    if (st.pageMapcount) mc[p] = mc[p]! + 1;
  }
  ledger.charge(EV.ATOMIC_RMW, cleared);
  if (st.pageMapcount) ledger.charge(EV.ATOMIC_MAPCOUNT, nr);
  addReturnLargeMapcount(st, folio, nr, dstVma.mm.mmId);
  ledger.end();
  return 0;
}

/**
 * folio_try_dup_anon_rmap_pmd(folio, page, dst_vma, src_vma)
 * (include/linux/rmap.h, v6.15): the PMD flavour — only the head's exclusive
 * bit is looked at; −EBUSY if it is set and the folio may be pinned.
 * Otherwise clear it, `_entire_mapcount`++, inc the large mapcount.
 */
export function folioTryDupAnonRmapPmd(folio: Folio, dstVma: RmapVma, srcVma: RmapVma): RmapTryResult {
  const fn = 'folioTryDupAnonRmapPmd';
  const st = stateOfFolio(fn, folio);
  checkVma(fn, dstVma, 'dstVma');
  checkVma(fn, srcVma, 'srcVma');
  checkPmdSized(fn, folio);
  checkAnon(fn, st, folio);
  const { fa, fb, head } = folio;
  if (fa[fb + F_ENTIRE_MAPCOUNT]! < 0) fail(fn, 'EINVAL', `folio ${head} is not PMD-mapped: nothing to duplicate`, { head });
  const ledger = st.ledger;
  const mm = folio.mm;
  ledger.begin('folio_try_dup_anon_rmap_pmd');
  ledger.charge(EV.RMAP_CALL);
  const maybePinned = !st.isDevicePrivate(folio) && needsCowForDma(st, srcVma, folio);
  ledger.charge(EV.FLAG_LOAD);
  if ((mm.flags[head]! & AE_MASK) !== 0) {
    if (maybePinned) {
      ledger.end();
      return NEG_EBUSY;
    }
    clearPageAnonExclusive(mm, head);
  }
  ledger.charge(EV.ATOMIC_MAPCOUNT);
  fa[fb + F_ENTIRE_MAPCOUNT] = fa[fb + F_ENTIRE_MAPCOUNT]! + 1;
  addReturnLargeMapcount(st, folio, 1, dstVma.mm.mmId);
  ledger.end();
  return 0;
}

/**
 * __folio_try_share_anon_rmap (include/linux/rmap.h, v6.15 + Dev Jain's
 * batched form): device-private → clear and return 0; smp_mb; pinned →
 * −EBUSY (nothing cleared); clear the bits; smp_mb__after_atomic. Barriers
 * only with CONFIG_HAVE_GUP_FAST.
 */
function tryShare(st: RmapState, sub: FolioSubrange | null, folio: Folio, pfn: number): RmapTryResult {
  const ledger = st.ledger;
  if (st.isDevicePrivate(folio)) {
    if (sub !== null) folioClearPagesAnonExclusive(sub);
    else clearPageAnonExclusive(folio.mm, pfn);
    return 0;
  }
  if (st.haveGupFast) ledger.charge(EV.MB_FULL);
  if (maybeDmaPinned(st, folio)) return NEG_EBUSY;
  if (sub !== null) folioClearPagesAnonExclusive(sub);
  else clearPageAnonExclusive(folio.mm, pfn);
  if (st.haveGupFast) ledger.charge(EV.MB_AFTER_ATOMIC);
  return 0;
}

function checkShareable(fn: string, st: RmapState, folio: Folio, firstPfn: number, nr: number): void {
  checkAnon(fn, st, folio);
  const flags = folio.mm.flags;
  for (let p = firstPfn; p < firstPfn + nr; p++) {
    if ((flags[p]! & AE_MASK) === 0) {
      fail(fn, 'EINVAL', `page ${p - folio.head} of folio ${folio.head} is not PageAnonExclusive`, { head: folio.head, pfn: p });
    }
  }
}

/**
 * folio_try_share_anon_rmap_ptes(folio, page, nr_pages) (Dev Jain, "[PATCH
 * 8/9] mm/rmap: introduce folio_try_share_anon_rmap_ptes", Mar 2026
 * [proposal]): one barrier pair and one pin check for the batch, `sub.nr`
 * atomic clears (LOOP_ITER nr). Every page must be PageAnonExclusive (the
 * caller batches runs of uniform exclusivity); the PTEs must already be
 * cleared (caller contract, not checked).
 */
export function folioTryShareAnonRmapPtes(sub: FolioSubrange): RmapTryResult {
  const fn = 'folioTryShareAnonRmapPtes';
  const st = stateOfSub(fn, sub);
  checkShareable(fn, st, sub.folio, sub.firstPfn, sub.nr);
  st.ledger.begin('folio_try_share_anon_rmap_ptes');
  st.ledger.charge(EV.LOOP_ITER, sub.nr);
  const r = tryShare(st, sub, sub.folio, sub.firstPfn);
  st.ledger.end();
  return r;
}

/**
 * @internal folio_try_share_anon_rmap_ptes, unchecked: the caller guarantees
 * a live anon folio whose pages [firstPfn, firstPfn + nr) are all
 * PageAnonExclusive (same events as `folioTryShareAnonRmapPtes`, no FolioSubrange).
 */
export function folioTryShareAnonRmapPtesUnchecked(folio: Folio, firstPfn: number, nr: number): RmapTryResult {
  const st = rmapOf(folio.mm);
  st.ledger.begin('folio_try_share_anon_rmap_ptes');
  st.ledger.charge(EV.LOOP_ITER, nr);
  return doTryShareUnchecked(st, folio, firstPfn, nr);
}

/**
 * @internal folio_try_share_anon_rmap_pte(folio, page), unchecked: as
 * `folioTryShareAnonRmapPtesUnchecked` for the one page at `pfn` (same events
 * as `folioTryShareAnonRmapPte`).
 */
export function folioTryShareAnonRmapPteUnchecked(folio: Folio, pfn: number): RmapTryResult {
  const st = rmapOf(folio.mm);
  st.ledger.begin('folio_try_share_anon_rmap_pte');
  return doTryShareUnchecked(st, folio, pfn, 1);
}

/** tryShare without the FolioSubrange; closes the span the caller opened. */
function doTryShareUnchecked(st: RmapState, folio: Folio, firstPfn: number, nr: number): RmapTryResult {
  const ledger = st.ledger;
  let r: RmapTryResult = 0;
  if (!st.isDevicePrivate(folio)) {
    if (st.haveGupFast) ledger.charge(EV.MB_FULL);
    if (maybeDmaPinned(st, folio)) r = NEG_EBUSY;
  }
  if (r === 0) {
    // folio_clear_pages_anon_exclusive without the FolioSubrange: one ATOMIC_RMW per page
    pagesAtomicClear(folio.mm, firstPfn, nr, AE_MASK);
    if (st.haveGupFast && !st.isDevicePrivate(folio)) ledger.charge(EV.MB_AFTER_ATOMIC);
  }
  ledger.end();
  return r;
}

/**
 * folio_try_share_anon_rmap_pte(folio, page) (include/linux/rmap.h, v6.15):
 * the single-page form used by try_to_unmap_one today; `page` is the page
 * index within the folio. No per-page loop, so no LOOP_ITER.
 */
export function folioTryShareAnonRmapPte(folio: Folio, page: number): RmapTryResult {
  const fn = 'folioTryShareAnonRmapPte';
  const st = stateOfFolio(fn, folio);
  if (!Number.isInteger(page) || page < 0 || page >= folio.nr) {
    fail(fn, 'ERANGE', `page ${page} is outside folio ${folio.head} of ${folio.nr} pages`, { head: folio.head, page });
  }
  checkShareable(fn, st, folio, folio.head + page, 1);
  st.ledger.begin('folio_try_share_anon_rmap_pte');
  const r = tryShare(st, null, folio, folio.head + page);
  st.ledger.end();
  return r;
}

/**
 * folio_try_share_anon_rmap_pmd(folio, page) (include/linux/rmap.h, v6.15):
 * a PMD-mapped folio tracks exclusivity in the head only, so only the head
 * bit is cleared (nr forced to 1 in the batched form).
 */
export function folioTryShareAnonRmapPmd(folio: Folio): RmapTryResult {
  const fn = 'folioTryShareAnonRmapPmd';
  const st = stateOfFolio(fn, folio);
  checkPmdSized(fn, folio);
  checkShareable(fn, st, folio, folio.head, 1);
  st.ledger.begin('folio_try_share_anon_rmap_pmd');
  const r = tryShare(st, null, folio, folio.head);
  st.ledger.end();
  return r;
}
