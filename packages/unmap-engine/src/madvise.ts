import { VM } from './stats.js';
import {
  F_LARGE_MAPCOUNT,
  FLAG,
  folioClearDirty,
  folioClearReferenced,
  folioSetFlag,
  folioClearSwapbacked,
  folioTrylock,
  folioUnlock,
  folioClearActive,
  type Folio,
} from '@foliolab/folio-flags';
import { EV } from '@foliolab/ledger';
import {
  CYDP_CLEAR_DIRTY,
  CYDP_CLEAR_YOUNG,
  internalClearYoungDirtyPtes,
  internalClearYoungDirtyPtesEach,
  internalPtepGet,
  flushTlbBatchedPending,
  pteBits,
  pteClear,
  pteDirty,
  ptePfn,
  ptePresent,
  pteYoung,
  ptepGet,
  softleafIsSwap,
  softleafOffset,
  softleafIsHwpoison,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import { FPB_MERGE_YOUNG_DIRTY, folioPteBatchFlagsUnchecked } from '@foliolab/pvmw';
import { folioMaybeMappedShared } from '@foliolab/rmap';
import { folioFreeSwap, swapPutEntriesDirect, swpEntry } from '@foliolab/swap';
import { MM_SWAPENTS, PAGE_SIZE, VM_DONTCOPY } from './consts.js';
import { putFolioRefs } from './folio-ops.js';
import type { Kernel } from './kernel.js';
import { lruIsolate, lruPutback, lruvecAddFolio, lruvecDelFolio, onLru } from './lru.js';
import { isSpecial, pmdAddrEnd, pteIdx } from './pte-util.js';
import type { Proc } from './proc.js';
import { reclaimPages, type ReclaimResult } from './reclaim.js';
import { splitFolio } from './split.js';
import { swapPteBatch } from './swapin.js';
import { vmaModify, vmasInRange } from './vma.js';
import { tlbEndVma, tlbFinishMmu, tlbGatherMmu, tlbRemoveTlbEntries, zapRange, type MmuGather } from './zap.js';

/*
 * madvise (mm/madvise.c, 2026): DONTNEED (zap_page_range_single per VMA),
 * DONTFORK/DOFORK (VM_DONTCOPY with split/merge), FREE
 * (madvise_free_pte_range + folio_mark_lazyfree), COLD/PAGEOUT
 * (madvise_cold_or_pageout_pte_range + reclaim_pages). The batch scans
 * (folio_pte_batch_flags with FPB_MERGE_YOUNG_DIRTY) decide whether a folio
 * is fully covered (7.2.13 madvise_folio_pte_batch); they run under every
 * policy, since they decide rather than modify — a choice about what
 * `per-pte`, foliolab's one-PTE-at-a-time counterfactual, means, not about
 * the kernel; under `per-pte` the young/dirty clearing itself goes one PTE
 * at a time.
 */

export type Advice = 'dontneed' | 'free' | 'pageout' | 'cold' | 'dontfork' | 'dofork';

const pte = pteBits();

/** madvise() dispatch; the caller validated the range and advice. Returns the reclaim result for pageout. */
export function doMadvise(k: Kernel, p: Proc, start: number, end: number, advice: Advice): ReclaimResult | null {
  switch (advice) {
    case 'dontneed':
      for (const v of vmasInRange(p, start, end)) zapRange(k, p, [v], Math.max(start, v.vmStart), Math.min(end, v.vmEnd), false);
      return null;
    case 'dontfork':
      vmaModify(p, start, end, (v) => (v.flags |= VM_DONTCOPY));
      return null;
    case 'dofork':
      vmaModify(p, start, end, (v) => (v.flags &= ~VM_DONTCOPY));
      return null;
    case 'free':
      madviseFree(k, p, start, end);
      return null;
    case 'cold':
    case 'pageout': {
      let total: ReclaimResult | null = null;
      for (const v of vmasInRange(p, start, end)) {
        const r = madviseColdOrPageout(k, p, Math.max(start, v.vmStart), Math.min(end, v.vmEnd), advice === 'pageout');
        if (r !== null) total = total === null ? r : addResults(total, r);
      }
      return total;
    }
  }
}

function addResults(a: ReclaimResult, b: ReclaimResult): ReclaimResult {
  return {
    scanned: a.scanned + b.scanned,
    reclaimed: a.reclaimed + b.reclaimed,
    unmapFail: a.unmapFail + b.unmapFail,
    activated: a.activated + b.activated,
    pageout: a.pageout + b.pageout,
    lazyfreed: a.lazyfreed + b.lazyfreed,
  };
}

/** clear_young_dirty_ptes(nr), or one PTE at a time under `per-pte` (the pre-batching madvise loops). */
function clearYdPtes(k: Kernel, t: PteTable, i: number, nr: number, flags: number): void {
  if (k.batchPtes) {
    internalClearYoungDirtyPtes(t, i, nr, flags);
    return;
  }
  internalClearYoungDirtyPtesEach(t, i, nr, flags);
}

/** madvise_folio_pte_batch(): folio_pte_batch_flags(FPB_MERGE_YOUNG_DIRTY) up to `end`. */
function folioBatch(f: Folio, t: PteTable, i: number, maxNr: number): number {
  if (f.order === 0 || maxNr <= 1) return 1;
  return folioPteBatchFlagsUnchecked(f.head, f.nr, t, i, pte, maxNr, FPB_MERGE_YOUNG_DIRTY);
}

/**
 * Split a large folio that the range covers only partly (unless maybe
 * shared): trylock, folio_get, drop the PTL, split_folio, unlock, put.
 * Returns true when the split succeeded (the caller re-reads the same PTE).
 */
function splitPartial(k: Kernel, p: Proc, t: PteTable, f: Folio): boolean {
  if (folioMaybeMappedShared(f)) return false;
  if (!folioTrylock(f)) return false;
  k.ledger.charge(EV.ATOMIC_REF);
  k.memmap.aux[f.head] = k.memmap.aux[f.head]! + 1;
  k.ledger.unlock(t.ptl);
  const err = splitFolio(k, f, null);
  const head = k.memmap.folioOf(f.head)!;
  folioUnlock(head);
  putFolioRefs(k, head, 1);
  k.ledger.lock(t.ptl);
  flushTlbBatchedPending(p.pt);
  return err === 0;
}

/**
 * madvise_cold() / madvise_pageout() over one VMA (mm/madvise.c, 7.2.13):
 * the walk calls madvise_cold_or_pageout_pte_range() per PMD extent;
 * pageout reclaims the folios isolated in each extent before the next.
 * COLD gathers the PTEs whose young bit it cleared in an mmu_gather of its
 * own (tlb_gather_mmu … tlb_end_vma … tlb_finish_mmu per VMA), so one
 * flush_tlb_range covers them at the end. PAGEOUT gathers nothing: it never
 * touches a PTE (no young clearing, so tlb_finish_mmu flushes nothing) and
 * the model builds no gather for it. The PMD-mapped branch is not modelled
 * (no PMD THP in the engine).
 */
function madviseColdOrPageout(k: Kernel, p: Proc, start: number, end: number, pageout: boolean): ReclaimResult | null {
  const isolated: Folio[] = [];
  const g = pageout ? null : tlbGatherMmu(p, false);
  let res: ReclaimResult | null = null;
  for (let a = start; a < end; ) {
    const next = pmdAddrEnd(a, end);
    const t = p.pt.pteTableOf(a);
    if (t !== null) {
      coldPteRange(k, p, t, a, next, g, isolated);
      if (pageout && isolated.length > 0) {
        const r = reclaimPages(k, isolated.splice(0));
        res = res === null ? r : addResults(res, r);
      }
    }
    a = next;
  }
  if (g !== null) {
    tlbEndVma(g);
    tlbFinishMmu(k, g);
  }
  return pageout ? (res ?? { scanned: 0, reclaimed: 0, unmapFail: 0, activated: 0, pageout: 0, lazyfreed: 0 }) : null;
}

/**
 * madvise_cold_or_pageout_pte_range() over one PTE table (mm/madvise.c,
 * 7.2.13), `g` null for PAGEOUT: partially covered large folios are split
 * (unless maybe shared); folios not on the LRU or with mapcount ≠ nr are
 * skipped (so after fork nothing happens). Only COLD clears young PTEs
 * (`if (!pageout && pte_young(ptent))`: clear_young_dirty_ptes(CYDP_CLEAR_YOUNG)
 * + tlb_remove_tlb_entries); PAGEOUT leaves them, since reclaim_pages
 * ignores references. Then folio_clear_referenced, folio_test_clear_young
 * (PG_young is page-idle tracking, not modelled), PG_workingset if active,
 * and folio_isolate_lru (pageout; an unevictable folio is put back) or
 * folio_deactivate (cold).
 */
function coldPteRange(k: Kernel, p: Proc, t: PteTable, start: number, end: number, g: MmuGather | null, isolated: Folio[]): void {
  const l = k.ledger;
  const pageout = g === null;
  l.lock(t.ptl);
  flushTlbBatchedPending(p.pt);
  let i = pteIdx(start);
  const iEnd = i + (end - start) / PAGE_SIZE;
  while (i < iEnd) {
    internalPtepGet(t, i, pte);
    let nr = 1;
    if (!ptePresent(pte.lo, pte.hi) || isSpecial(pte.hi)) {
      i++;
      continue;
    }
    const f = k.folioOf(ptePfn(pte.lo, pte.hi));
    if (f.order > 0) {
      nr = folioBatch(f, t, i, iEnd - i);
      if (nr < f.nr) {
        if (splitPartial(k, p, t, f)) continue; // nr = 0: look at this PTE again
        i += nr;
        continue;
      }
    }
    const mapcount = f.order === 0 ? k.memmap.mapcount![f.head]! + 1 : f.fa[f.fb + F_LARGE_MAPCOUNT]! + 1;
    if (!onLru(f) || mapcount !== f.nr) {
      i += nr;
      continue;
    }
    if (g !== null && pteYoung(pte.lo, pte.hi)) {
      // !pageout: COLD only (mm/madvise.c:madvise_cold_or_pageout_pte_range, 7.2.13)
      clearYdPtes(k, t, i, nr, CYDP_CLEAR_YOUNG);
      tlbRemoveTlbEntries(g, t.vaOf(i), nr);
    }
    folioClearReferenced(f);
    if ((k.memmap.flags[f.head]! & FLAG.active.mask) !== 0) folioSetFlag(f, FLAG.workingset);
    if (pageout) {
      if (lruIsolate(k, f)) {
        if ((k.memmap.flags[f.head]! & FLAG.unevictable.mask) !== 0) lruPutback(k, f);
        else isolated.push(f);
      }
    } else {
      folioDeactivate(k, f);
    }
    i += nr;
  }
  l.unlock(t.ptl);
}

/**
 * folio_deactivate() + the drained lru_deactivate() (mm/swap.c, 7.2.13,
 * classic LRU): only an evictable, active folio on the LRU moves — it
 * loses PG_active and PG_referenced, goes to the head of the inactive list
 * and PGDEACTIVATE += nr. An inactive folio stays where it is. With MGLRU
 * enabled (lru_gen_enabled()) the kernel would instead clear the folio's
 * generation refs; the model has the classic LRU only.
 */
function folioDeactivate(k: Kernel, f: Folio): void {
  const w = k.memmap.flags[f.head]!;
  if ((w & FLAG.unevictable.mask) !== 0 || (w & FLAG.lru.mask) === 0 || (w & FLAG.active.mask) === 0) return;
  lruvecDelFolio(k, f);
  folioClearActive(f);
  folioClearReferenced(f);
  lruvecAddFolio(k, f);
  k.stats.count(VM.pgdeactivate, f.nr);
}

/**
 * MADV_FREE (mm/madvise.c madvise_free_single_vma, 7.2.13): one mmu_gather
 * for the whole call (madvise_init_tlb), madvise_free_pte_range per PMD
 * extent of each VMA, tlb_end_vma after each VMA (the flush of the PTEs
 * whose young/dirty bits were cleared), tlb_finish_mmu at the end.
 */
function madviseFree(k: Kernel, p: Proc, start: number, end: number): void {
  const g = tlbGatherMmu(p, false);
  for (const v of vmasInRange(p, start, end)) {
    const s = Math.max(start, v.vmStart);
    const e = Math.min(end, v.vmEnd);
    for (let a = s; a < e; ) {
      const next = pmdAddrEnd(a, e);
      const t = p.pt.pteTableOf(a);
      if (t !== null) freePteRange(k, p, t, a, next, g);
      a = next;
    }
    tlbEndVma(g);
  }
  tlbFinishMmu(k, g);
}

/**
 * madvise_free_pte_range() over one PTE table: swap runs are freed
 * (swap_put_entries_direct, MM_SWAPENTS), partially covered large folios
 * split (unless maybe shared), dirty or swap-cache folios need mapcount == nr
 * and a successful folio_free_swap before folio_clear_dirty, young/dirty
 * PTEs get clear_young_dirty_ptes + tlb_remove_tlb_entries, then
 * folio_mark_lazyfree.
 */
function freePteRange(k: Kernel, p: Proc, t: PteTable, start: number, end: number, g: MmuGather): void {
  const l = k.ledger;
  const mm = k.memmap;
  l.lock(t.ptl);
  flushTlbBatchedPending(p.pt);
  let nrSwap = 0;
  let i = pteIdx(start);
  const iEnd = i + (end - start) / PAGE_SIZE;
  while (i < iEnd) {
    ptepGet(t, i, pte);
    let nr = 1;
    if ((pte.lo | pte.hi) === 0) {
      i++;
      continue;
    }
    if (!ptePresent(pte.lo, pte.hi)) {
      if (softleafIsSwap(pte.lo, pte.hi)) {
        nr = k.batchPtes ? swapPteBatch(t, i, iEnd - i) : 1;
        nrSwap -= nr;
        swapPutEntriesDirect(k.si!, swpEntry(k.si!.type, softleafOffset(pte.lo, pte.hi)), nr);
        for (let j = i; j < i + nr; j++) pteClear(t, j);
      } else if (softleafIsHwpoison(pte.lo, pte.hi)) {
        pteClear(t, i);
      }
      i += nr;
      continue;
    }
    if (isSpecial(pte.hi)) {
      i++;
      continue;
    }
    const f = k.folioOf(ptePfn(pte.lo, pte.hi));
    if (f.order > 0) {
      nr = folioBatch(f, t, i, iEnd - i);
      if (nr < f.nr) {
        if (splitPartial(k, p, t, f)) continue;
        i += nr;
        continue;
      }
    }
    const w = mm.flags[f.head]!;
    const sc = FLAG.swapcache.mask | FLAG.swapbacked.mask;
    if ((w & sc) === sc || (w & FLAG.dirty.mask) !== 0) {
      if (!folioTrylock(f)) {
        i += nr;
        continue;
      }
      const mapcount = f.order === 0 ? mm.mapcount![f.head]! + 1 : f.fa[f.fb + F_LARGE_MAPCOUNT]! + 1;
      if (mapcount !== f.nr || ((w & sc) === sc && !folioFreeSwap(k.si!, f))) {
        folioUnlock(f);
        i += nr;
        continue;
      }
      folioClearDirty(f);
      folioUnlock(f);
    }
    if (pteYoung(pte.lo, pte.hi) || pteDirty(pte.lo, pte.hi)) {
      clearYdPtes(k, t, i, nr, CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY);
      tlbRemoveTlbEntries(g, t.vaOf(i), nr);
    }
    folioMarkLazyfree(k, f);
    i += nr;
  }
  if (nrSwap !== 0) k.addMmCounter(p, MM_SWAPENTS, nrSwap);
  l.unlock(t.ptl);
}

/**
 * folio_mark_lazyfree() + the drained lru_lazyfree() (mm/swap.c, 7.2.13): an
 * anon swap-backed folio not in the swap cache and evictable loses
 * active/referenced and swap-backed, moves to the head of the inactive file
 * list; PGLAZYFREE += nr.
 */
function folioMarkLazyfree(k: Kernel, f: Folio): void {
  const w = k.memmap.flags[f.head]!;
  if ((w & FLAG.swapbacked.mask) === 0 || (w & FLAG.swapcache.mask) !== 0 || (w & FLAG.unevictable.mask) !== 0) return;
  if ((w & FLAG.lru.mask) === 0) return;
  lruvecDelFolio(k, f);
  if ((w & FLAG.active.mask) !== 0) folioClearActive(f);
  folioClearReferenced(f);
  folioClearSwapbacked(f);
  lruvecAddFolio(k, f);
  k.stats.count(VM.pglazyfree, f.nr);
}
