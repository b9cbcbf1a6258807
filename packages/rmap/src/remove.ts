import {
  ENTIRELY_MAPPED,
  F_ENTIRE_MAPCOUNT,
  F_LARGE_MAPCOUNT,
  F_NR_PAGES_MAPPED,
  FLAG,
  folioTestAnon,
  folioTestFlagUnchecked,
  type Folio,
  type FolioSubrange,
} from '@foliolab/folio-flags';
import { EV } from '@foliolab/ledger';
import { deferredSplitFolioCore } from './deferred-split.js';
import { subReturnLargeMapcount } from './mapcount.js';
import { folioModStat } from './mod-stat.js';
import { rmapOf, type RmapState } from './state.js';
import type { RmapVma } from './types.js';
import { checkAnon, checkPmdSized, checkVma, fail, ptesMapped, stateOfFolio, stateOfSub } from './validate.js';

/*
 * __folio_remove_rmap(folio, page, nr_pages, vma, level) (mm/rmap.c; legacy =
 * v6.12 PAGE_MAPCOUNT, mm_id = the NO_PAGE_MAPCOUNT branch of v6.15 / the
 * Apr 2026 RFC, page_mapcount_mm_id = the PAGE_MAPCOUNT branch of 7.2.13,
 * whose large-mapcount updates take the MM_ID bit lock), spec
 * folio-rmap-swap §2.2:
 *
 * PTE, small:  add-negative(−1) on _mapcount.
 * PTE, legacy: sub_large_mapcount(nr); add-negative(−1) per page, `last` =
 *              pages that went negative; sub-and-return `last` on
 *              _nr_pages_mapped, nr = last if below ENTIRELY_MAPPED;
 *              partially_mapped = nr ∧ _nr_pages_mapped ≠ 0.
 * PTE, mm_id:  m = sub_return(nr); m = 0 → the whole folio counts; else
 *              partially_mapped = m < nr_pages ∧ no PMD mapping.
 * PMD:         decrement the large mapcount; on the last PMD unmap subtract
 *              ENTIRELY_MAPPED (legacy), nr_pmdmapped = folio size.
 * Then:        partially mapped ∧ anon ∧ !PG_partially_mapped ∧ !device-private
 *              → deferred_split_folio(folio, true); __folio_mod_stat(−nr,
 *              −nr_pmdmapped). munlock is not modelled; `mapping` is kept.
 */

/**
 * The common tail of the removals. `folio` was checked live at the entry
 * point, and `partiallyMapped` is only ever true for a large folio, so the
 * PG_partially_mapped test needs no liveness or placement check (same
 * FLAG_LOAD).
 */
function finishRemove(st: RmapState, folio: Folio, nr: number, nrPmdmapped: number, partiallyMapped: boolean): void {
  if (partiallyMapped && folioTestAnon(folio) && !folioTestFlagUnchecked(folio, FLAG.partially_mapped) && !st.isDevicePrivate(folio)) {
    deferredSplitFolioCore(st, folio, true);
  }
  folioModStat(st, folio, -nr, -nrPmdmapped);
}

function checkRemovable(fn: string, st: RmapState, folio: Folio, vma: RmapVma): void {
  checkVma(fn, vma);
  if (folioTestAnon(folio)) checkAnon(fn, st, folio);
}

/**
 * folio_remove_rmap_ptes(folio, page, nr_pages, vma) (mm/rmap.c, v6.15): drop
 * `sub.nr` PTE mappings. Removing a mapping that does not exist (a page
 * with `_mapcount` −1 in legacy mode, more PTE mappings than the folio has in
 * mm_id mode) is rejected before anything changes.
 */
export function folioRemoveRmapPtes(sub: FolioSubrange, vma: RmapVma): void {
  const fn = 'folioRemoveRmapPtes';
  const st = stateOfSub(fn, sub);
  const { folio, firstPfn, nr: nrPages } = sub;
  checkRemovable(fn, st, folio, vma);
  const mc = folio.mm.mapcount!;
  if (folio.order === 0 || st.pageMapcount) {
    for (let p = firstPfn; p < firstPfn + nrPages; p++) {
      if (mc[p]! < 0) fail(fn, 'ERANGE', `page ${p - folio.head} of folio ${folio.head} is not PTE-mapped`, { head: folio.head, pfn: p });
    }
  } else if (ptesMapped(folio) < nrPages) {
    fail(fn, 'ERANGE', `cannot remove ${nrPages} PTE mappings: folio ${folio.head} has ${ptesMapped(folio)}`, {
      head: folio.head,
      nr: nrPages,
      ptes: ptesMapped(folio),
    });
  }
  doRemoveRmapPtes(st, folio, firstPfn, nrPages, vma);
}

/**
 * @internal folio_remove_rmap_ptes, unchecked: the caller guarantees a live
 * anon folio with `nr` PTE mappings at [firstPfn, firstPfn + nr) in `vma`
 * (same events as `folioRemoveRmapPtes`, no FolioSubrange).
 */
export function folioRemoveRmapPtesUnchecked(folio: Folio, firstPfn: number, nr: number, vma: RmapVma): void {
  doRemoveRmapPtes(rmapOf(folio.mm), folio, firstPfn, nr, vma);
}

function doRemoveRmapPtes(st: RmapState, folio: Folio, firstPfn: number, nrPages: number, vma: RmapVma): void {
  const ledger = st.ledger;
  if (st.legacy && folio.order !== 0 && !ledger.tracing) {
    removeRmapPtesLegacyUntraced(st, folio, firstPfn, nrPages);
    return;
  }
  const mc = folio.mm.mapcount!;
  const { fa, fb } = folio;
  ledger.begin('folio_remove_rmap_ptes');
  ledger.charge(EV.RMAP_CALL);
  let nr = 0;
  let partiallyMapped = false;
  if (folio.order === 0) {
    ledger.charge(EV.ATOMIC_MAPCOUNT);
    const v = mc[firstPfn]! - 1;
    mc[firstPfn] = v;
    nr = v < 0 ? 1 : 0;
  } else if (!st.pageMapcount) {
    const m = subReturnLargeMapcount(st, folio, nrPages, vma.mm.mmId);
    if (m === 0) {
      nr = folio.nr; // now completely unmapped
    } else {
      partiallyMapped = m < folio.nr && fa[fb + F_ENTIRE_MAPCOUNT]! + 1 === 0;
    }
  } else {
    subReturnLargeMapcount(st, folio, nrPages, vma.mm.mmId);
    ledger.charge(EV.ATOMIC_MAPCOUNT, nrPages);
    ledger.charge(EV.LOOP_ITER, nrPages);
    let last = 0;
    for (let p = firstPfn; p < firstPfn + nrPages; p++) {
      const v = mc[p]! - 1;
      mc[p] = v;
      if (v < 0) last++;
    }
    if (last > 0) {
      ledger.charge(EV.ATOMIC_MAPCOUNT);
      const r = fa[fb + F_NR_PAGES_MAPPED]! - last;
      fa[fb + F_NR_PAGES_MAPPED] = r;
      if (r < ENTIRELY_MAPPED) nr = last;
    }
    partiallyMapped = nr !== 0 && fa[fb + F_NR_PAGES_MAPPED] !== 0;
  }
  finishRemove(st, folio, nr, 0, partiallyMapped);
  ledger.end();
}

const PARTIALLY_MAPPED_MASK = FLAG.partially_mapped.mask;
const SWAPBACKED_MASK = FLAG.swapbacked.mask;
const SWAPCACHE_MASK = FLAG.swapcache.mask;

/**
 * doRemoveRmapPtes for a large folio in legacy mode on a ledger without a
 * trace sink (the per-PTE reclaim path). With no sink nobody can see the
 * order of the charges, so the same counts go in fewer charge() calls, and
 * each flags word is read once: RMAP_CALL; ATOMIC_MAPCOUNT for
 * `_large_mapcount`, each page's `_mapcount` and (when a page went
 * unmapped) `_nr_pages_mapped`; LOOP_ITER per page; then finishRemove's
 * FLAG_LOAD of PG_partially_mapped and deferred_split_folio's DEFERRED_SPLIT_CALL
 * and folio_test_swapcache FLAG_LOADs. Everything is charged before the one
 * step that can throw (the split-queue lock, taken by deferredSplitFolioCore
 * when the folio is not in the swap cache), so counts match the traced
 * path even then. begin/end are no-ops without a sink.
 */
function removeRmapPtesLegacyUntraced(st: RmapState, folio: Folio, firstPfn: number, nrPages: number): void {
  const ledger = st.ledger;
  const mm = folio.mm;
  const mc = mm.mapcount!;
  const { fa, fb } = folio;
  fa[fb + F_LARGE_MAPCOUNT] = fa[fb + F_LARGE_MAPCOUNT]! - nrPages; // atomic_sub(nr, &_large_mapcount)
  let last = 0;
  for (let p = firstPfn; p < firstPfn + nrPages; p++) {
    const v = mc[p]! - 1;
    mc[p] = v;
    if (v < 0) last++;
  }
  let nr = 0;
  if (last > 0) {
    const r = fa[fb + F_NR_PAGES_MAPPED]! - last;
    fa[fb + F_NR_PAGES_MAPPED] = r;
    if (r < ENTIRELY_MAPPED) nr = last;
  }
  ledger.charge(EV.RMAP_CALL);
  ledger.charge(EV.ATOMIC_MAPCOUNT, last > 0 ? nrPages + 2 : nrPages + 1);
  ledger.charge(EV.LOOP_ITER, nrPages);
  // finishRemove: partially mapped ∧ anon ∧ !PG_partially_mapped ∧ !device-private → deferred_split_folio.
  if (nr !== 0 && fa[fb + F_NR_PAGES_MAPPED] !== 0 && folioTestAnon(folio)) {
    const flags = mm.flags;
    if ((flags[folio.head + 1]! & PARTIALLY_MAPPED_MASK) !== 0) {
      ledger.charge(EV.FLAG_LOAD);
    } else if (st.isDevicePrivate(folio)) {
      ledger.charge(EV.FLAG_LOAD);
    } else if (folio.order > 1 && (flags[folio.head]! & (SWAPBACKED_MASK | SWAPCACHE_MASK)) === (SWAPBACKED_MASK | SWAPCACHE_MASK)) {
      // deferred_split_folio returns early for a swap-cache folio: PG_partially_mapped,
      // then folio_test_swapcache's two bit tests.
      ledger.charge(EV.FLAG_LOAD, 3);
      ledger.charge(EV.DEFERRED_SPLIT_CALL);
    } else {
      ledger.charge(EV.FLAG_LOAD);
      deferredSplitFolioCore(st, folio, true);
    }
  }
  folioModStat(st, folio, -nr, 0);
}

/**
 * folio_remove_rmap_pmd(folio, page, vma) (mm/rmap.c, v6.15): drop one PMD
 * mapping of a PMD-sized folio.
 */
export function folioRemoveRmapPmd(folio: Folio, vma: RmapVma): void {
  const fn = 'folioRemoveRmapPmd';
  const st = stateOfFolio(fn, folio);
  checkPmdSized(fn, folio);
  checkRemovable(fn, st, folio, vma);
  const { fa, fb } = folio;
  if (fa[fb + F_ENTIRE_MAPCOUNT]! < 0) fail(fn, 'ERANGE', `folio ${folio.head} is not PMD-mapped`, { head: folio.head });
  const ledger = st.ledger;
  ledger.begin('folio_remove_rmap_pmd');
  ledger.charge(EV.RMAP_CALL);
  let nr = 0;
  let nrPmdmapped = 0;
  let partiallyMapped = false;
  if (!st.pageMapcount) {
    ledger.charge(EV.ATOMIC_MAPCOUNT); // atomic_add_negative(-1, &_entire_mapcount)
    const entire = fa[fb + F_ENTIRE_MAPCOUNT]! - 1;
    fa[fb + F_ENTIRE_MAPCOUNT] = entire;
    const last = entire < 0;
    if (last) nrPmdmapped = folio.nr;
    const m = subReturnLargeMapcount(st, folio, 1, vma.mm.mmId);
    if (m === 0) nr = folio.nr;
    else partiallyMapped = last && m < folio.nr;
  } else {
    subReturnLargeMapcount(st, folio, 1, vma.mm.mmId);
    ledger.charge(EV.ATOMIC_MAPCOUNT);
    const entire = fa[fb + F_ENTIRE_MAPCOUNT]! - 1;
    fa[fb + F_ENTIRE_MAPCOUNT] = entire;
    if (entire < 0) {
      ledger.charge(EV.ATOMIC_MAPCOUNT);
      const r = fa[fb + F_NR_PAGES_MAPPED]! - ENTIRELY_MAPPED;
      fa[fb + F_NR_PAGES_MAPPED] = r;
      if (r < ENTIRELY_MAPPED) {
        nrPmdmapped = folio.nr;
        nr = Math.max(0, folio.nr - r); // pages not still PTE-mapped
      }
    }
    partiallyMapped = nr !== 0 && nr < nrPmdmapped;
  }
  finishRemove(st, folio, nr, nrPmdmapped, partiallyMapped);
  ledger.end();
}
