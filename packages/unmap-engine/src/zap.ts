import { FLAG, folioSubrange, type Folio } from '@foliolab/folio-flags';
import { EV, FoliolabError } from '@foliolab/ledger';
import {
  clearFullPtes,
  flushTlbBatchedPending,
  flushTlbMm,
  flushTlbRange,
  ptePfn,
  pteBits,
  pteClear,
  ptePresent,
  ptepGet,
  ptepGetAndClearFull,
  softleafIsDeviceExclusive,
  softleafIsSwap,
  softleafOffset,
  softleafPfn,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import { folioPteBatchFlags } from '@foliolab/pvmw';
import { folioRemoveRmapPtes } from '@foliolab/rmap';
import { swapPutEntriesDirect, swpEntry } from '@foliolab/swap';
import { MM_ANONPAGES, MM_SWAPENTS, PAGE_SIZE, VM_LOCKED } from './consts.js';
import { freeSwapCache } from './fault.js';
import { munlockFolio, putFolioRefs } from './folio-ops.js';
import type { Kernel } from './kernel.js';
import { isSpecial, pmdAddrEnd, pteIdx } from './pte-util.js';
import type { Proc } from './proc.js';
import { swapPteBatch } from './swapin.js';
import type { Vma } from './vma.js';

/*
 * Zap (mm/memory.c ≈v6.13/6.14 + 2026 swap API; unmap-engine §4): unmap_vmas
 * / zap_page_range_single → zap_pte_range per PTE table with an mmu_gather.
 * Present anon runs are batched with folio_pte_batch (flags 0) into one
 * clear_full_ptes + one folio_remove_rmap_ptes(nr) under `mainline` and
 * `batched`; `per-pte` zaps one PTE at a time, which shows the spurious
 * deferred-split enqueue of seed 001. Gathered folios are freed only after
 * the TLB flush (tlb_flush_mmu → free_pages_and_swap_cache).
 */

/** ≈10 000 gather slots (MAX_GATHER_BATCH × MAX_GATHER_BATCH_COUNT); a batch of nr > 1 takes 2. */
const GATHER_SLOTS = 10_000;

/** struct mmu_gather: the flush range and the gathered (folio, nr) entries. */
export class MmuGather {
  fullmm = false;
  start = Number.MAX_SAFE_INTEGER;
  end = 0;
  /** tlb->freed_tables / a range to flush at the next tlb_flush_mmu_tlbonly. */
  readonly folios: Folio[] = [];
  readonly nrs = new Int32Array(GATHER_SLOTS);
  slots = 0;
  p: Proc | null = null;
}

const ptent = pteBits();
const scratch = pteBits();

/** tlb_gather_mmu(tlb, mm) / tlb_gather_mmu_fullmm. */
export function tlbGatherMmu(p: Proc, fullmm: boolean): MmuGather {
  const g = new MmuGather();
  g.p = p;
  g.fullmm = fullmm;
  return g;
}

/** tlb_flush_mmu_tlbonly(): flush the gathered range (flush_tlb_range; a fullmm gather flushes at the end). */
function tlbFlushTlbonly(g: MmuGather): void {
  if (g.end === 0 || g.fullmm) return;
  g.p!.pt.ledger.charge(EV.TLB_FLUSH_RANGE);
  flushTlbRange(g.p!.pt, g.start, g.end);
  g.start = Number.MAX_SAFE_INTEGER;
  g.end = 0;
}

/** tlb_flush_mmu(): flush, then free_pages_and_swap_cache over the gathered entries. */
function tlbFlushMmu(k: Kernel, g: MmuGather): void {
  tlbFlushTlbonly(g);
  freeGathered(k, g);
}

/** free_pages_and_swap_cache(): free_swap_cache per entry, then folios_put_refs (one ATOMIC_REF per entry). */
function freeGathered(k: Kernel, g: MmuGather): void {
  const n = g.folios.length;
  for (let e = 0; e < n; e++) {
    const f = g.folios[e]!;
    if (!k.memmap.folioIsLive(f)) throw new FoliolabError('EINVARIANT', `mmu_gather: folio ${f.head} was freed while gathered`);
    freeSwapCache(k, f);
    putFolioRefs(k, f, g.nrs[e]!);
  }
  g.folios.length = 0;
  g.slots = 0;
}

/** tlb_end_vma(): flush the range at VMA boundaries unless fullmm (arm64 has no MMU_GATHER_MERGE_VMAS). */
export function tlbEndVma(g: MmuGather): void {
  tlbFlushTlbonly(g);
}

/** tlb_finish_mmu(): final flush (flush_tlb_mm for a fullmm gather) and free. */
export function tlbFinishMmu(k: Kernel, g: MmuGather): void {
  if (g.fullmm && (g.end !== 0 || g.folios.length > 0)) flushTlbMm(g.p!.pt);
  g.end = 0;
  tlbFlushMmu(k, g);
}

function widen(g: MmuGather, start: number, end: number): void {
  if (start < g.start) g.start = start;
  if (end > g.end) g.end = end;
}

/** tlb_remove_tlb_entries(tlb, ptep, nr, addr): the nr PTEs from `addr` join the range the next flush covers (tlb_flush_pte_range). */
export function tlbRemoveTlbEntries(g: MmuGather, addr: number, nr: number): void {
  widen(g, addr, addr + nr * PAGE_SIZE);
}

/** __tlb_remove_folio_pages(): 1 slot (nr = 1) or 2; true when the gather is full (force flush + break). */
function gatherAdd(g: MmuGather, f: Folio, nr: number): boolean {
  const e = g.folios.length;
  g.folios.push(f);
  g.nrs[e] = nr;
  g.slots += nr === 1 ? 1 : 2;
  return g.slots + 2 > GATHER_SLOTS;
}

/** Local rss deltas of one zap_pte_range (rss[] in the kernel). */
const rss = new Float64Array(4);

/**
 * zap_pte_range() over [addr, end) inside one PTE table: LOCK ptl,
 * flush_tlb_batched_pending, then do_zap_pte_range per entry (present runs,
 * swap runs, device-exclusive, markers, hwpoison), add_mm_rss_vec, force
 * flush before unlocking when the gather filled. Returns where it stopped
 * (end, or earlier on a forced break).
 */
function zapPteRange(k: Kernel, g: MmuGather, vma: Vma, t: PteTable, addr: number, end: number): number {
  const p = g.p!;
  const l = k.ledger;
  l.lock(t.ptl);
  flushTlbBatchedPending(p.pt);
  rss.fill(0);
  let forceFlush = false;
  let i = pteIdx(addr);
  const iEnd = i + (end - addr) / PAGE_SIZE;
  let a = addr;
  while (i < iEnd) {
    ptepGet(t, i, ptent);
    let nr = 1;
    if ((ptent.lo | ptent.hi) === 0) {
      // skip_none_ptes: one read per none entry.
    } else if (ptePresent(ptent.lo, ptent.hi)) {
      const r = zapPresentPtes(k, g, vma, t, i, iEnd - i);
      nr = r & 0xffff;
      if (r >>> 16 !== 0) forceFlush = true;
    } else {
      nr = zapNonpresentPtes(k, vma, t, i, iEnd - i);
    }
    i += nr;
    a += nr * PAGE_SIZE;
    if (forceFlush) break;
  }
  if (rss[MM_ANONPAGES] !== 0) k.addMmCounter(p, MM_ANONPAGES, rss[MM_ANONPAGES]!);
  if (rss[MM_SWAPENTS] !== 0) k.addMmCounter(p, MM_SWAPENTS, rss[MM_SWAPENTS]!);
  if (forceFlush) tlbFlushTlbonly(g);
  l.unlock(t.ptl);
  if (forceFlush) freeGathered(k, g);
  return a;
}

/**
 * zap_present_ptes(): no normal page (zero page) → clear one PTE; a large
 * folio with room → nr = folio_pte_batch (flags 0) unless `per-pte`; then
 * zap_present_folio_ptes: clear_full_ptes(nr), rss[ANON] −= nr, range
 * widened, folio_remove_rmap_ptes(nr), gather (folio, nr). Returns nr, with
 * bit 16 set when the gather is full.
 */
function zapPresentPtes(k: Kernel, g: MmuGather, vma: Vma, t: PteTable, i: number, maxNr: number): number {
  const va = t.vaOf(i);
  if (isSpecial(ptent.hi)) {
    ptepGetAndClearFull(t, i, g.fullmm, scratch);
    widen(g, va, va + PAGE_SIZE);
    return 1;
  }
  const pfn = ptePfn(ptent.lo, ptent.hi);
  const f = k.folioOf(pfn);
  let nr = 1;
  if (f.order > 0 && maxNr !== 1 && k.batchPtes) nr = folioPteBatchFlags({ pfn: f.head, nrPages: f.nr }, t, i, ptent, maxNr, 0);
  clearFullPtes(t, i, nr, g.fullmm);
  rss[MM_ANONPAGES]! -= nr;
  widen(g, va, va + nr * PAGE_SIZE);
  folioRemoveRmapPtes(folioSubrange(f, pfn - f.head, nr), vma);
  if ((vma.flags & VM_LOCKED) !== 0 && (k.memmap.flags[f.head]! & FLAG.mlocked.mask) !== 0) munlockFolio(k, f);
  const full = gatherAdd(g, f, nr);
  return nr | (full ? 1 << 16 : 0);
}

/**
 * zap_nonpresent_ptes(): swap entries → nr = swap_pte_batch (1 under
 * `per-pte`), rss[SWAPENTS] −= nr, swap_put_entries_direct(entry, nr);
 * device-exclusive → rss[ANON]−−, folio_remove_rmap_pte, folio_put;
 * markers (anon: always dropped) and hwpoison entries are cleared. Then
 * clear_not_present_full_ptes(nr).
 */
function zapNonpresentPtes(k: Kernel, vma: Vma, t: PteTable, i: number, maxNr: number): number {
  let nr = 1;
  if (softleafIsSwap(ptent.lo, ptent.hi)) {
    if (k.batchPtes && maxNr > 1) nr = swapPteBatch(t, i, maxNr);
    rss[MM_SWAPENTS]! -= nr;
    const si = k.si;
    if (si === null) throw new FoliolabError('EINVARIANT', 'zap: swap PTE without a swap device');
    swapPutEntriesDirect(si, swpEntry(si.type, softleafOffset(ptent.lo, ptent.hi)), nr);
  } else if (softleafIsDeviceExclusive(ptent.lo, ptent.hi)) {
    const pfn = softleafPfn(ptent.lo, ptent.hi);
    const f = k.folioOf(pfn);
    rss[MM_ANONPAGES]! -= 1;
    folioRemoveRmapPtes(folioSubrange(f, pfn - f.head, 1), vma);
    putFolioRefs(k, f, 1);
  }
  for (let j = i; j < i + nr; j++) pteClear(t, j);
  return nr;
}

/**
 * unmap_single_vma over [start, end) ∩ vma: zap_pte_range per PMD extent
 * (tables that do not exist are skipped), restarting after a forced break.
 */
export function unmapSingleVma(k: Kernel, g: MmuGather, vma: Vma, start: number, end: number): void {
  const s = Math.max(start, vma.vmStart);
  const e = Math.min(end, vma.vmEnd);
  const pt = g.p!.pt;
  for (let a = s; a < e; ) {
    const next = pmdAddrEnd(a, e);
    const t = pt.pteTableOf(a);
    if (t === null) {
      a = next;
      continue;
    }
    a = zapPteRange(k, g, vma, t, a, next);
  }
}

/**
 * unmap_vmas() (munmap, exit: ZAP_FLAG_DROP_MARKER | UNMAP, even_cows) or
 * zap_page_range_single() (MADV_DONTNEED): one MMU_NOTIFY_UNMAP range
 * (start + end), the VMAs in order with tlb_end_vma after each, then
 * tlb_finish_mmu.
 */
export function zapRange(k: Kernel, p: Proc, vmas: readonly Vma[], start: number, end: number, fullmm: boolean): void {
  const g = tlbGatherMmu(p, fullmm);
  k.ledger.charge(EV.MMU_NOTIFIER);
  for (const v of vmas) {
    unmapSingleVma(k, g, v, start, end);
    tlbEndVma(g);
  }
  k.ledger.charge(EV.MMU_NOTIFIER);
  tlbFinishMmu(k, g);
}
