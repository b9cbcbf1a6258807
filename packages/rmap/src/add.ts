import {
  ENTIRELY_MAPPED,
  F_ENTIRE_MAPCOUNT,
  F_INDEX,
  F_LARGE_MAPCOUNT,
  F_MAPPING,
  F_NR_PAGES_MAPPED,
  FLAG,
  FOLIO_PAGES_MAPPED,
  __folioSetSwapbacked,
  anonMapping,
  folioSetPagesAnonExclusive,
  folioTestSwapbacked,
  pagesAtomicSet,
  setPageAnonExclusive,
  type Folio,
  type FolioSubrange,
} from '@foliolab/folio-flags';
import { EV } from '@foliolab/ledger';
import { addReturnLargeMapcount, setLargeMapcount } from './mapcount.js';
import { folioModStat, modMthpStat } from './mod-stat.js';
import type { RmapState } from './state.js';
import { HPAGE_PMD_ORDER, PAGE_SIZE, RMAP_EXCLUSIVE, linearPageIndex, type RmapFlags, type RmapVma } from './types.js';
import {
  AE_MASK,
  checkAnon,
  checkExclusiveAfterAdd,
  checkPageMapcountRoom,
  checkFile,
  checkFlags,
  checkPmdSized,
  checkVma,
  fail,
  stateOfFolio,
  stateOfSub,
} from './validate.js';

/*
 * Cost policy shared by the rmap entry points (spec §2 "Cost events (rmap)",
 * unmap-engine §6), decided once for add / remove / dup:
 * - RMAP_CALL: one per add / remove / dup call (the functions that reach
 *   __folio_add_rmap, __folio_remove_rmap, __folio_try_dup_anon_rmap);
 *   try_share is not counted as one (unmap-engine §7 #3 counts "1 try-share,
 *   1 rmap call" separately).
 * - LOOP_ITER: the iterations of each per-page loop the modelled kernel code
 *   runs, charged with one charge(LOOP_ITER, n) per loop, n = 1 included.
 * - atomic_set() of a counter (new folios) is a plain store: not charged.
 * - reads of counters (atomic_read, folio_test_large…) are not charged; the
 *   pincount read is (ATOMIC_READ).
 */

/** nr_pmdmapped out-parameter of addRmapCore (module scratch: no allocation per call). */
let outPmdmapped = 0;

/**
 * __folio_add_rmap(folio, page, nr_pages, vma, level, &nr_pmdmapped)
 * (mm/rmap.c, v6.15; legacy = the PAGE_MAPCOUNT branch without MM_ID).
 * Returns the number of pages that became mapped (for NR_*_MAPPED);
 * nr_pmdmapped is left in `outPmdmapped`.
 */
function addRmapCore(st: RmapState, folio: Folio, firstPfn: number, nrPages: number, mmId: number, pmd: boolean): number {
  const ledger = st.ledger;
  const { fa, fb } = folio;
  outPmdmapped = 0;
  if (!pmd) {
    if (folio.order === 0) {
      // atomic_inc_and_test(&folio->_mapcount)
      ledger.charge(EV.ATOMIC_MAPCOUNT);
      const mc = folio.mm.mapcount!;
      mc[firstPfn] = mc[firstPfn]! + 1;
      return mc[firstPfn] === 0 ? 1 : 0;
    }
    if (!st.pageMapcount) {
      // NO_PAGE_MAPCOUNT: the first mapping of the folio maps all of it.
      const m = addReturnLargeMapcount(st, folio, nrPages, mmId);
      return m === nrPages ? folio.nr : 0;
    }
    const mc = folio.mm.mapcount!;
    ledger.charge(EV.ATOMIC_MAPCOUNT, nrPages);
    ledger.charge(EV.LOOP_ITER, nrPages);
    let first = 0;
    for (let p = firstPfn; p < firstPfn + nrPages; p++) {
      const v = mc[p]! + 1;
      mc[p] = v;
      if (v === 0) first++;
    }
    let nr = 0;
    if (first > 0) {
      ledger.charge(EV.ATOMIC_MAPCOUNT);
      const r = fa[fb + F_NR_PAGES_MAPPED]! + first;
      fa[fb + F_NR_PAGES_MAPPED] = r;
      if (r < ENTIRELY_MAPPED) nr = first;
    }
    addReturnLargeMapcount(st, folio, nrPages, mmId);
    return nr;
  }
  // PMD level: atomic_inc_and_test(&folio->_entire_mapcount)
  ledger.charge(EV.ATOMIC_MAPCOUNT);
  const entire = fa[fb + F_ENTIRE_MAPCOUNT]! + 1;
  fa[fb + F_ENTIRE_MAPCOUNT] = entire;
  const firstPmd = entire === 0;
  if (!st.pageMapcount) {
    if (firstPmd) outPmdmapped = folio.nr;
    const m = addReturnLargeMapcount(st, folio, 1, mmId);
    return m === 1 ? folio.nr : 0;
  }
  let nr = 0;
  if (firstPmd) {
    ledger.charge(EV.ATOMIC_MAPCOUNT);
    const r = fa[fb + F_NR_PAGES_MAPPED]! + ENTIRELY_MAPPED;
    fa[fb + F_NR_PAGES_MAPPED] = r;
    if (r < ENTIRELY_MAPPED + ENTIRELY_MAPPED) {
      outPmdmapped = folio.nr;
      nr = Math.max(0, folio.nr - (r & FOLIO_PAGES_MAPPED));
    }
  }
  addReturnLargeMapcount(st, folio, 1, mmId);
  return nr;
}

/** __page_check_anon_rmap's anon_vma check: the VMA's anon_vma shares the folio's root. */
function checkAnonVmaRoot(fn: string, st: RmapState, folio: Folio, vma: RmapVma): void {
  const av = checkAnon(fn, st, folio);
  if (av === null) return; // KSM
  if (vma.anonVma === null || vma.anonVma.root !== av.root) {
    fail(fn, 'EINVAL', `folio ${folio.head}'s anon_vma root ${av.root.id} is not the VMA's (${vma.anonVma?.root.id ?? 'none'})`, {
      head: folio.head,
    });
  }
}

/**
 * folio_add_new_anon_rmap(folio, vma, address, flags) (mm/rmap.c, v6.15): map
 * a new (or not yet anon) folio, entirely, into `vma` at `address`.
 * Non-atomic __folio_set_swapbacked, mapping (the VMA's anon_vma if
 * exclusive, else its root) and index, then per kind: small `_mapcount` 0;
 * mTHP every page mapped once (+ RMAP_EXCLUSIVE per page); PMD-sized one
 * entire mapping (+ the head bit). Stats NR_ANON_MAPPED, NR_ANON_THPS,
 * mTHP nr_anon[order]. The counter stores are atomic_set()s: not charged.
 * Large folios must be large_rmappable (vma_alloc_folio prepares every large
 * anon folio so; see folioPrepLargeRmappable), else the deferred list could
 * never unqueue them.
 */
export function folioAddNewAnonRmap(folio: Folio, vma: RmapVma, address: number, flags: RmapFlags): void {
  const fn = 'folioAddNewAnonRmap';
  const st = stateOfFolio(fn, folio);
  checkVma(fn, vma);
  checkFlags(fn, flags);
  checkNewAnon(fn, st, folio, vma, address);
  const exclusive = (flags & RMAP_EXCLUSIVE) !== 0;
  const ledger = st.ledger;
  const mm = folio.mm;
  const { fa, fb, head } = folio;
  ledger.begin('folio_add_new_anon_rmap');
  ledger.charge(EV.RMAP_CALL);
  // VM_DROPPABLE mappings don't swap: they are dropped under pressure.
  if (!folioTestSwapbacked(folio) && vma.droppable !== true) __folioSetSwapbacked(folio);
  // __folio_set_anon(): a non-exclusive folio must use the oldest anon_vma.
  const av = vma.anonVma!;
  fa[fb + F_MAPPING] = anonMapping(exclusive ? av.id : av.root.id);
  fa[fb + F_INDEX] = linearPageIndex(vma, address);
  let nr = 1;
  let nrPmdmapped = 0;
  if (folio.order === 0) {
    mm.mapcount![head] = 0;
    if (exclusive) setPageAnonExclusive(mm, head);
  } else if (folio.order < HPAGE_PMD_ORDER) {
    nr = folio.nr;
    ledger.charge(EV.LOOP_ITER, nr);
    if (st.pageMapcount) {
      const mc = mm.mapcount!;
      for (let p = head; p < head + nr; p++) mc[p] = 0; // atomic_set: not charged; a loop beats fill()'s call here
    }
    // folio_set_pages_anon_exclusive on the whole (validated, live) folio: nr × ATOMIC_RMW, no FolioSubrange
    if (exclusive) pagesAtomicSet(mm, head, nr, AE_MASK);
    setLargeMapcount(st, folio, nr, vma.mm.mmId);
    if (st.pageMapcount) fa[fb + F_NR_PAGES_MAPPED] = nr;
  } else {
    nr = folio.nr;
    fa[fb + F_ENTIRE_MAPCOUNT] = 0;
    setLargeMapcount(st, folio, 1, vma.mm.mmId);
    if (st.pageMapcount) fa[fb + F_NR_PAGES_MAPPED] = ENTIRELY_MAPPED;
    if (exclusive) setPageAnonExclusive(mm, head);
    nrPmdmapped = nr;
  }
  folioModStat(st, folio, nr, nrPmdmapped);
  modMthpStat(st, st.stats.nr_anon, folio.order, 1);
  ledger.end();
}

function checkNewAnon(fn: string, st: RmapState, folio: Folio, vma: RmapVma, address: number): void {
  const { fa, fb, head } = folio;
  const av = vma.anonVma;
  if (av === null || st.anonVmaById[av.id] !== av) {
    fail(fn, 'EINVAL', 'vma.anonVma must be an anon_vma of this rmap (anon_vma_prepare first)', { head });
  }
  if (fa[fb + F_MAPPING] !== 0) {
    fail(fn, 'EINVAL', `folio ${head} is not new: mapping is ${fa[fb + F_MAPPING]}`, { head, mapping: fa[fb + F_MAPPING] });
  }
  const mc = folio.mm.mapcount!;
  let mapped = fa[fb + F_LARGE_MAPCOUNT] !== -1 || fa[fb + F_ENTIRE_MAPCOUNT] !== -1;
  for (let p = head; p < head + folio.nr && !mapped; p++) mapped = mc[p] !== -1;
  if (mapped) fail(fn, 'EINVAL', `folio ${head} is already mapped`, { head });
  if (folio.order > 0 && (folio.mm.flags[head + 1]! & FLAG.large_rmappable.mask) === 0) {
    fail(fn, 'EINVAL', `large folio ${head} is not large_rmappable (allocate anon folios with folioPrepLargeRmappable)`, { head });
  }
  const end = address + folio.nr * PAGE_SIZE;
  if (!Number.isInteger(address) || address % PAGE_SIZE !== 0 || address < vma.vmStart || end > vma.vmEnd) {
    fail(fn, 'ERANGE', `folio ${head} of ${folio.nr} pages at address ${address} does not fit VMA [${vma.vmStart}, ${vma.vmEnd})`, {
      head,
      address,
    });
  }
}

/**
 * folio_add_anon_rmap_ptes(folio, page, nr_pages, vma, address, flags)
 * (mm/rmap.c, v6.15): add `sub.nr` PTE mappings of an anon folio;
 * with RMAP_EXCLUSIVE, SetPageAnonExclusive on each page.
 */
export function folioAddAnonRmapPtes(sub: FolioSubrange, vma: RmapVma, flags: RmapFlags): void {
  const fn = 'folioAddAnonRmapPtes';
  const st = stateOfSub(fn, sub);
  const { folio, firstPage, nr } = sub;
  checkVma(fn, vma);
  checkFlags(fn, flags);
  checkAnonVmaRoot(fn, st, folio, vma);
  checkExclusiveAfterAdd(fn, st, folio, firstPage, nr, false, (flags & RMAP_EXCLUSIVE) !== 0);
  if (folio.order === 0 || st.pageMapcount) checkPageMapcountRoom(fn, folio, sub.firstPfn, nr);
  const ledger = st.ledger;
  ledger.begin('folio_add_anon_rmap_ptes');
  ledger.charge(EV.RMAP_CALL);
  const mapped = addRmapCore(st, folio, sub.firstPfn, nr, vma.mm.mmId, false);
  folioModStat(st, folio, mapped, outPmdmapped);
  if ((flags & RMAP_EXCLUSIVE) !== 0) {
    ledger.charge(EV.LOOP_ITER, nr);
    folioSetPagesAnonExclusive(sub);
  }
  ledger.end();
}

/**
 * folio_add_anon_rmap_pmd(folio, page, vma, address, flags) (mm/rmap.c,
 * v6.15): add one PMD mapping of a PMD-sized anon folio; with
 * RMAP_EXCLUSIVE only the head's PageAnonExclusive is set.
 */
export function folioAddAnonRmapPmd(folio: Folio, vma: RmapVma, flags: RmapFlags): void {
  const fn = 'folioAddAnonRmapPmd';
  const st = stateOfFolio(fn, folio);
  checkVma(fn, vma);
  checkFlags(fn, flags);
  checkPmdSized(fn, folio);
  checkAnonVmaRoot(fn, st, folio, vma);
  checkExclusiveAfterAdd(fn, st, folio, 0, folio.nr, true, (flags & RMAP_EXCLUSIVE) !== 0);
  const ledger = st.ledger;
  ledger.begin('folio_add_anon_rmap_pmd');
  ledger.charge(EV.RMAP_CALL);
  const mapped = addRmapCore(st, folio, folio.head, folio.nr, vma.mm.mmId, true);
  folioModStat(st, folio, mapped, outPmdmapped);
  if ((flags & RMAP_EXCLUSIVE) !== 0) setPageAnonExclusive(folio.mm, folio.head);
  ledger.end();
}

/** folio_add_file_rmap_ptes(folio, page, nr_pages, vma) (mm/rmap.c, v6.15); mlock handling not modelled. */
export function folioAddFileRmapPtes(sub: FolioSubrange, vma: RmapVma): void {
  const fn = 'folioAddFileRmapPtes';
  const st = stateOfSub(fn, sub);
  checkVma(fn, vma);
  checkFile(fn, sub.folio);
  if (sub.folio.order === 0 || st.pageMapcount) checkPageMapcountRoom(fn, sub.folio, sub.firstPfn, sub.nr);
  st.ledger.begin('folio_add_file_rmap_ptes');
  st.ledger.charge(EV.RMAP_CALL);
  const mapped = addRmapCore(st, sub.folio, sub.firstPfn, sub.nr, vma.mm.mmId, false);
  folioModStat(st, sub.folio, mapped, outPmdmapped);
  st.ledger.end();
}

/** folio_add_file_rmap_pmd(folio, page, vma) (mm/rmap.c, v6.15). */
export function folioAddFileRmapPmd(folio: Folio, vma: RmapVma): void {
  const fn = 'folioAddFileRmapPmd';
  const st = stateOfFolio(fn, folio);
  checkVma(fn, vma);
  checkPmdSized(fn, folio);
  checkFile(fn, folio);
  st.ledger.begin('folio_add_file_rmap_pmd');
  st.ledger.charge(EV.RMAP_CALL);
  const mapped = addRmapCore(st, folio, folio.head, folio.nr, vma.mm.mmId, true);
  folioModStat(st, folio, mapped, outPmdmapped);
  st.ledger.end();
}
