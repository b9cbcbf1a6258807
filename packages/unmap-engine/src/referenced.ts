import { F_LARGE_MAPCOUNT, folioTrylock, folioUnlock, type Folio } from '@foliolab/folio-flags';
import { FoliolabError } from '@foliolab/ledger';
import { clearFlushYoungPtes, pteBits, ptePresent, ptepGet } from '@foliolab/pagetable-arm64-contpte';
import { PVMW_PGTABLE_CROSSED, folioPteBatchFlagsUnchecked, pageVmaMappedWalk, pageVmaMappedWalkDone } from '@foliolab/pvmw';
import { rmapWalkAnon, type RmapVma, type RmapWalkControl } from '@foliolab/rmap';
import { PAGE_SIZE, VM_LOCKED } from './consts.js';
import { mlockFolio } from './folio-ops.js';
import type { Kernel } from './kernel.js';
import { pmdAddrEnd } from './pte-util.js';
import { walkFor } from './ttu.js';
import type { Vma } from './vma.js';

/*
 * folio_referenced() (7.2.13 mm/rmap.c): how many mappings of a folio were
 * accessed since the last look, clearing the young bits it finds — reclaim's
 * folio_check_references and shrink_active_list ask it. One
 * folio_referenced_one per VMA of the folio's anon_vma (RMAP_ONE), each a
 * page_vma_mapped_walk (PVMW_CALL per call) that takes the PTEs in batches
 * (folio_pte_batch, capped at the PMD and the VMA end) and clears them with
 * clear_flush_young_ptes; a VM_LOCKED VMA is only counted, and mlocks the
 * folio when it maps all of it under one page-table lock. With the classic
 * LRU (the oracle turns MGLRU off) there is no look-around. Page-idle
 * tracking is not modelled: folio_referenced_one's folio_test_clear_young
 * reads PG_young, which only page_idle's bitmap walk sets (7.2.13
 * mm/page_idle.c; a split or a migration copies it), so without it the test
 * never counts; no VMA has
 * VM_SEQ_READ/VM_RAND_READ and every process is in the one memcg, so
 * invalid_folio_referenced_vma never skips a VMA.
 */

const pteval = pteBits();

/** struct folio_referenced_arg + the rmap_walk_control of folio_referenced. One per kernel, reused. */
export class ReferencedControl implements RmapWalkControl {
  mapcount = 0;
  referenced = 0;
  vmFlags = 0;
  constructor(private readonly k: Kernel) {}
  rmapOne(folio: Folio, vma: RmapVma, address: number): boolean {
    return folioReferencedOne(this.k, folio, vma as Vma, address, this);
  }
}

/** folio_mapcount(): the sum of the pages' mapcounts (large: _large_mapcount + 1). */
function folioMapcount(k: Kernel, f: Folio): number {
  return f.order === 0 ? k.memmap.mapcount![f.head]! + 1 : f.fa[f.fb + F_LARGE_MAPCOUNT]! + 1;
}

/** folio_referenced_one(folio, vma, address, arg): false stops the rmap walk. */
function folioReferencedOne(k: Kernel, folio: Folio, vma: Vma, address: number, pra: ReferencedControl): boolean {
  const w = walkFor(vma.mm, folio, vma, address, 0);
  let ptes = 0;
  let referenced = 0;
  while (pageVmaMappedWalk(w)) {
    const addr = w.address;
    let nr = 1;
    if ((vma.flags & VM_LOCKED) !== 0) {
      ptes++;
      pra.mapcount--;
      // Only mlock fully mapped folios, and only under one page-table lock.
      if (w.pte !== null && ptes !== w.nrPages) continue;
      if ((w.flags & PVMW_PGTABLE_CROSSED) !== 0) continue;
      mlockFolio(k, folio); // mlock_vma_folio: the mlock that got missed
      pageVmaMappedWalkDone(w);
      pra.vmFlags |= VM_LOCKED;
      return false;
    }
    if (w.pte === null) {
      pageVmaMappedWalkDone(w);
      throw new FoliolabError('EINVARIANT', 'folio_referenced_one: PMD-mapped folio (PMD THP is not modelled)');
    }
    const t = w.pte;
    const i = w.pteIndex;
    if (ptePresent(t.lo[i]!, t.hi[i]!)) {
      if (folio.order > 0) {
        ptepGet(t, i, pteval);
        nr = folioPteBatchFlagsUnchecked(folio.head, folio.nr, t, i, pteval, (pmdAddrEnd(addr, vma.vmEnd) - addr) / PAGE_SIZE, 0);
      }
      if (clearFlushYoungPtes(t, i, nr)) referenced++;
    }
    // Departure: a device-exclusive entry (the walk matches it too) counts as old here, as make_device_exclusive's
    // comment says core-mm treats it (7.2.13 mm/rmap.c); folio_referenced_one itself does not special-case it and runs
    // folio_pte_batch and clear_flush_young_ptes_notify on the entry. Not reachable from the oracle.
    ptes += nr;
    pra.mapcount -= nr;
    // The whole folio batched: stop right here.
    if (ptes === w.nrPages) {
      pageVmaMappedWalkDone(w);
      break;
    }
    // Skip the batched PTEs: pvmw.pte += nr - 1, pvmw.address += (nr - 1) * PAGE_SIZE (the cursor only).
    w.pteIndex += nr - 1;
    w.address += (nr - 1) * PAGE_SIZE;
  }
  if (referenced !== 0) {
    pra.referenced++;
    pra.vmFlags |= vma.flags & ~VM_LOCKED;
  }
  return pra.mapcount !== 0;
}

/**
 * folio_referenced(folio, is_locked, memcg, &vm_flags): the number of
 * mappings that referenced the folio (−1, rmap lock contention, cannot
 * happen here), with the VMA flags they had in `k.referencedControl.vmFlags`.
 * An unmapped folio is not walked; an unlocked one is locked around the walk.
 */
export function folioReferenced(k: Kernel, folio: Folio, isLocked: boolean): number {
  let c = k.referencedControl;
  if (c === null) {
    c = new ReferencedControl(k);
    k.referencedControl = c;
  }
  c.mapcount = folioMapcount(k, folio);
  c.referenced = 0;
  c.vmFlags = 0;
  if (c.mapcount === 0) return 0;
  let weLocked = false;
  if (!isLocked) {
    weLocked = folioTrylock(folio);
    if (!weLocked) return 1;
  }
  rmapWalkAnon(folio, c);
  if (weLocked) folioUnlock(folio);
  return c.referenced;
}
