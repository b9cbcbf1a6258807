import { VM, MTHP } from './stats.js';
import {
  F_SWAP,
  FLAG,
  __folioSetLocked,
  __folioSetSwapbacked,
  folioSubrange,
  folioSetReclaim,
  folioSubrangeAll,
  folioTestAnon,
  folioTestClearReclaim,
  folioTrylock,
  folioUnlock,
  type Folio,
} from '@foliolab/folio-flags';
import { EV, FoliolabError } from '@foliolab/ledger';
import {
  mkSwapPte,
  pokePte,
  pteBits,
  pteMkdirty,
  pteMkuffdWp,
  ptepGet,
  pteSwpExclusive,
  pteSwpUffdWp,
  setPtes,
  softleafIsSwap,
  softleafOffset,
  softleafType,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import { RMAP_EXCLUSIVE, folioAddAnonRmapPtes, folioAddNewAnonRmap } from '@foliolab/rmap';
import {
  folioFreeSwap,
  folioPutSwap,
  swapCacheAddFolio,
  swapCacheFolioAt,
  swapCacheGetFolio,
  swapReadFolio,
  swpEntry,
  swpOffset,
  swapZeroAt,
  type SwapDevice,
} from '@foliolab/swap';
import { MM_ANONPAGES, MM_SWAPENTS, PAGE_SIZE, PMD_SIZE, VM_LOCKED, VM_WRITE } from './consts.js';
import { uffdArmed, reserveAllows } from './fault.js';
import { allocAnonFolio, putFolioRefs } from './folio-ops.js';
import type { Kernel } from './kernel.js';
import { lruAdd } from './lru.js';
import { mkPte, pmdAddrEnd, pteIdx, mkwrite, swapPteInto } from './pte-util.js';
import type { Proc } from './proc.js';
import type { Vma } from './vma.js';
import { swapShadowAt, workingsetRefault } from './workingset.js';

/*
 * do_swap_page() (mm/memory.c lines ≈4755–5115, 2026; unmap-engine §5
 * "Swap-in", folio-rmap-swap §3.6): swap cache first; else on a
 * SWP_SYNCHRONOUS_IO device alloc_swap_folio() may allocate an mTHP when the
 * aligned range is all contiguous, identical swap PTEs with one zeromap state
 * and no cached slot; the folio joins the swap cache and is read
 * (swapin_folio). A large swap-cache folio maps all nr PTEs only if its range
 * fits the VMA and PMD and swap_pte_batch == nr.
 */

const orig = pteBits();
const pte = pteBits();
const want = pteBits();
const cur = pteBits();

/**
 * swap_pte_batch(): consecutive swap PTEs with offset + 1 and identical swp
 * bits; ≤ max. Charged reads.
 * Departure, in a corner: a none first PTE (reached through can_swapin_thp
 * when the range starts at slot 0) stops the batch at the next PTE here. In
 * 7.2.13 (mm/internal.h:swap_pte_batch, mm/memory.c:can_swapin_thp) a none
 * PTE is pte_same() to pte_move_swp_offset(orig, −idx) when that is (type 0,
 * offset 0) on arm64, and pte_next_swp_offset() of it is (0, 1), so a run of
 * offsets 1, 2, … passes and the order is tried: __swap_cache_alloc's
 * __swap_cache_add_check then meets the header slot (SWP_TB_BAD: count bits
 * set, zero flag set, no memcg id) and returns −EBUSY, and
 * swap_cache_alloc_folio counts swpin_fallback and tries the next order. The
 * model counts no fallback there. Only the offsets of swap cluster 0 can
 * reach it.
 */
export function swapPteBatch(t: PteTable, i: number, max: number): number {
  ptepGet(t, i, cur);
  const lo0 = cur.lo & 0xfff;
  const type = softleafType(cur.lo, cur.hi);
  const off0 = softleafOffset(cur.lo, cur.hi);
  let n = 1;
  while (n < max) {
    ptepGet(t, i + n, cur);
    if ((cur.lo & 0xfff) !== lo0 || softleafType(cur.lo, cur.hi) !== type || softleafOffset(cur.lo, cur.hi) !== off0 + n) break;
    n++;
  }
  return n;
}

/** can_swapin_thp(): the aligned range is the expected swap PTEs, same zeromap state, nothing cached. */
function canSwapinThp(si: SwapDevice, t: PteTable, hIdx: number, idx: number, nr: number): boolean {
  const type = softleafType(orig.lo, orig.hi);
  const off = softleafOffset(orig.lo, orig.hi) - idx;
  if (off < 0) return false;
  // pte_move_swp_offset(orig_pte, -idx), unchecked. Offset 0 (the header
  // slot) is a legal result here. On arm64, (type 0, offset 0) with no soft
  // bits encodes as pte_none, so a none head PTE is pte_same() to it, as in
  // the kernel.
  swapPteInto(want, type, off, pteSwpExclusive(orig.lo, orig.hi), pteSwpUffdWp(orig.lo, orig.hi));
  ptepGet(t, hIdx, cur);
  if (cur.lo !== want.lo || cur.hi !== want.hi) return false;
  if (swapPteBatch(t, hIdx, nr) !== nr) return false;
  const z = swapZeroAt(si, off);
  for (let s = off + 1; s < off + nr; s++) if (swapZeroAt(si, s) !== z) return false;
  for (let s = off; s < off + nr; s++) if (swapCacheFolioAt(si, s) >= 0) return false;
  return true;
}

/**
 * alloc_swap_folio(): the highest enabled mTHP order whose aligned range is
 * inside the VMA, offset-aligned like the address (thp_swap_suitable_orders)
 * and passes can_swapin_thp; allocation failure falls back one order at a
 * time (swpin_fallback); uffd-armed VMAs get order 0. Returns the folio and
 * its order-aligned first offset.
 */
function allocSwapFolio(k: Kernel, si: SwapDevice, vma: Vma, t: PteTable, addr: number, off: number): { folio: Folio; first: number } {
  if (!uffdArmed(vma)) {
    const orders = k.anonOrders;
    let start = -1;
    for (let n = 0; n < orders.length; n++) {
      const o = orders[n]!;
      const nr = 1 << o;
      const size = PAGE_SIZE * nr;
      const h = addr - (addr % size);
      if (h < vma.vmStart || h + size > vma.vmEnd) continue;
      if (off % nr !== Math.floor(addr / PAGE_SIZE) % nr) continue;
      if (canSwapinThp(si, t, pteIdx(h), (addr - h) / PAGE_SIZE, nr)) {
        start = n;
        break;
      }
    }
    if (start >= 0) {
      for (let n = start; n < orders.length; n++) {
        const o = orders[n]!;
        const nr = 1 << o;
        const size = PAGE_SIZE * nr;
        const h = addr - (addr % size);
        if (h < vma.vmStart || h + size > vma.vmEnd || off % nr !== Math.floor(addr / PAGE_SIZE) % nr) continue;
        if (reserveAllows(k, nr, h)) {
          const f = allocAnonFolio(k, o, false);
          if (f !== null) return { folio: f, first: off - (off % nr) };
        }
        k.stats.mthpCount(o, MTHP.swpin_fallback);
      }
    }
  }
  const f = allocAnonFolio(k, 0, false);
  if (f === null) throw new FoliolabError('ENOMEM', `do_swap_page at 0x${addr.toString(16)}: out of simulated memory`);
  return { folio: f, first: off };
}

/**
 * swapin_folio() / swap_cache_read_folio(): a fresh locked swap-backed
 * folio joins the swap cache at `first`, goes on the LRU and is read
 * (swap_read_folio unlocks it). In between, __swap_cache_alloc (7.2.13
 * mm/swap_state.c) hands workingset_refault the shadow that
 * __swap_cache_add_check read from the faulting slot `targ` (not the others
 * of a large folio's range), which may activate the folio.
 */
function swapinFolio(k: Kernel, si: SwapDevice, folio: Folio, first: number, targ: number): void {
  __folioSetLocked(folio);
  __folioSetSwapbacked(folio);
  const shadow = swapShadowAt(k, targ);
  const r = swapCacheAddFolio(si, folio, swpEntry(si.type, first));
  if (r.err !== 0) throw new FoliolabError('EINVARIANT', `swapin_folio: swap_cache_add_folio failed (${r.err}) at offset ${first}`);
  workingsetRefault(k, folio, shadow);
  lruAdd(k, folio);
  if (swapReadFolio(si, folio) !== 0) throw new FoliolabError('EIO', `swap_read_folio: mixed zeromap in folio at offset ${first} (SIGBUS)`);
}

/*
 * Swap readahead on a device without SWP_SYNCHRONOUS_IO (7.2.13
 * mm/swap_state.c swapin_readahead). A non-rotational device (the oracle's
 * loop device over ramfs has no rotational backing device,
 * drivers/block/loop.c loop_update_limits) leaves nr_rotate_swap 0, so
 * swap_use_vma_readahead() holds and swap_vma_readahead reads, besides the
 * faulting slot, the swap PTEs of a window around the fault address. The
 * window (swap_vma_ra_win → __swapin_nr_pages) grows with the readahead hits
 * the VMA has seen since its last swap fault, starting from 4 hits (so the
 * first fault of a VMA reads a window of 8); page_cluster is 3 (swap_setup:
 * more than 16M of RAM). Readahead folios get PG_readahead (= PG_reclaim)
 * and count swap_ra; a fault that finds one in the swap cache
 * (swap_update_readahead) clears it, counts swap_ra_hit and one hit. Swap-in
 * of a large folio (zram) bypasses readahead (swapin_sync).
 */

const SWAP_RA_WIN_SHIFT = 6; // PAGE_SHIFT / 2
const SWAP_RA_HITS_MASK = (1 << SWAP_RA_WIN_SHIFT) - 1;
const SWAP_RA_HITS_MAX = SWAP_RA_HITS_MASK;
const PAGE_CLUSTER = 3;
const SWAP_RA_ORDER_CEILING = 5;

/** GET_SWAP_RA_VAL(vma): the saved value, or 4 (hits) before the first swap fault. */
function getSwapRaVal(vma: Vma): number {
  return vma.swapRaInfo !== 0 ? vma.swapRaInfo : 4;
}

/** SWAP_RA_VAL(addr, win, hits); addresses stay below 2^53, so arithmetic instead of bit operations. */
function swapRaVal(addr: number, win: number, hits: number): number {
  return addr - (addr % PAGE_SIZE) + ((win << SWAP_RA_WIN_SHIFT) & (PAGE_SIZE - 1 - SWAP_RA_HITS_MASK)) + (hits & SWAP_RA_HITS_MASK);
}

/** __swapin_nr_pages(prev_offset, offset, hits, max_pages, prev_win). */
function swapinNrPages(prevOffset: number, offset: number, hits: number, maxPages: number, prevWin: number): number {
  let pages = hits + 2;
  if (pages === 2) {
    if (offset !== prevOffset + 1 && offset !== prevOffset - 1) pages = 1;
  } else {
    let roundup = 4;
    while (roundup < pages) roundup <<= 1;
    pages = roundup;
  }
  if (pages > maxPages) pages = maxPages;
  const lastRa = Math.floor(prevWin / 2);
  if (pages < lastRa) pages = lastRa;
  return pages;
}

/** The window swap_vma_ra_win last chose: [raStart, raEnd). */
let raStart = 0;
let raEnd = 0;

/** swap_vma_ra_win(vmf, &start, &end): the window size, saved in the VMA with the fault address and 0 hits. */
function swapVmaRaWin(vma: Vma, faddr: number): number {
  const maxWin = 1 << Math.min(PAGE_CLUSTER, SWAP_RA_ORDER_CEILING);
  const raVal = getSwapRaVal(vma);
  const prevFaddr = raVal - (raVal % PAGE_SIZE);
  const prevWin = Math.floor((raVal % PAGE_SIZE) / (1 << SWAP_RA_WIN_SHIFT));
  const hits = raVal % (1 << SWAP_RA_WIN_SHIFT);
  const win = swapinNrPages(prevFaddr / PAGE_SIZE, faddr / PAGE_SIZE, hits, maxWin, prevWin);
  vma.swapRaInfo = swapRaVal(faddr, win, 0);
  if (win === 1) return 1;
  let left: number;
  if (faddr === prevFaddr + PAGE_SIZE) left = faddr;
  else if (prevFaddr === faddr + PAGE_SIZE) left = faddr - win * PAGE_SIZE + PAGE_SIZE;
  else left = faddr - Math.floor((win - 1) / 2) * PAGE_SIZE;
  const right = left + win * PAGE_SIZE;
  if (left < 0) left = 0;
  const pmdStart = faddr - (faddr % PMD_SIZE);
  raStart = Math.max(left, vma.vmStart, pmdStart);
  raEnd = Math.min(right, vma.vmEnd, pmdStart + PMD_SIZE);
  return win;
}

/**
 * swap_vma_readahead(entry, …, vmf): every swap PTE of the window that is not
 * in the swap cache yet is read into it (swap_cache_read_folio), the others
 * with PG_readahead and swap_ra; then the faulting slot's folio, which is
 * returned with the reference the caller drops later (as swapinFolio's).
 */
function swapVmaReadahead(k: Kernel, si: SwapDevice, vma: Vma, t: PteTable, addr: number, off: number): Folio {
  let target: Folio | null = null;
  if (swapVmaRaWin(vma, addr) > 1) {
    for (let a = raStart; a < raEnd; a += PAGE_SIZE) {
      ptepGet(t, pteIdx(a), cur);
      if (!softleafIsSwap(cur.lo, cur.hi) || softleafType(cur.lo, cur.hi) !== si.type) continue;
      const o = softleafOffset(cur.lo, cur.hi);
      const cached = swapCacheGetFolio(si, swpEntry(si.type, o));
      if (cached !== null) {
        putFolioRefs(k, cached, 1);
        continue;
      }
      const f = allocAnonFolio(k, 0, false);
      if (f === null) continue;
      swapinFolio(k, si, f, o, o);
      if (a === addr) {
        target = f;
        continue;
      }
      folioSetReclaim(f); // PG_readahead
      k.stats.count(VM.swap_ra);
      putFolioRefs(k, f, 1);
    }
  }
  if (target !== null) return target;
  const f = allocOrder0(k, addr);
  swapinFolio(k, si, f, off, off);
  return f;
}

/** swap_update_readahead(folio, vma, addr): a swap-cache hit; a readahead folio counts a hit for the VMA's next window. */
function swapUpdateReadahead(k: Kernel, folio: Folio, vma: Vma, addr: number): void {
  if (folio.order > 0) return;
  const readahead = folioTestClearReclaim(folio); // folio_test_clear_readahead
  const raVal = getSwapRaVal(vma);
  const win = Math.floor((raVal % PAGE_SIZE) / (1 << SWAP_RA_WIN_SHIFT));
  let hits = raVal % (1 << SWAP_RA_WIN_SHIFT);
  if (readahead) hits = Math.min(hits + 1, SWAP_RA_HITS_MAX);
  vma.swapRaInfo = swapRaVal(addr, win, hits);
  if (readahead) k.stats.count(VM.swap_ra_hit);
}

/**
 * do_swap_page(): see the file comment. After mapping: MM_ANONPAGES += nr,
 * MM_SWAPENTS −= nr, uffd-wp restored from the swap PTE, writable iff
 * (exclusive ∨ refcount 1) ∧ VM_WRITE ∧ ¬uffd-wp (dirty only on a write
 * fault), RMAP_EXCLUSIVE when exclusive, folio_ref_add(nr − 1), rmap add,
 * set_ptes(nr), folio_put_swap, then folio_free_swap when
 * should_try_to_free_swap() says so: always on a SWP_SYNCHRONOUS_IO device
 * (zram), so there even a read fault leaves the folio out of the swap cache
 * and PG_dirty (its only copy is now in memory) unless another swap PTE
 * still holds one of its slots; on other devices only if swap is full,
 * VM_LOCKED/mlocked, or a write fault with no other references.
 */
export function doSwapPage(k: Kernel, p: Proc, vma: Vma, t: PteTable, i: number, addr: number, write: boolean): void {
  const si = k.si;
  const l = k.ledger;
  ptepGet(t, i, orig);
  if (si === null || softleafType(orig.lo, orig.hi) !== si.type) throw new FoliolabError('EINVARIANT', `do_swap_page: swap PTE at 0x${addr.toString(16)} names no swap device`);
  const off = softleafOffset(orig.lo, orig.hi);
  let folio = swapCacheGetFolio(si, swpEntry(si.type, off));
  if (folio !== null) swapUpdateReadahead(k, folio, vma, addr);
  else {
    k.stats.count(VM.pgmajfault);
    if (k.config.swapSynchronousIo) {
      const { folio: f, first } = allocSwapFolio(k, si, vma, t, addr, off);
      swapinFolio(k, si, f, first, off);
      folio = f;
    } else folio = swapVmaReadahead(k, si, vma, t, addr, off);
  }
  folioTrylock(folio);
  l.lock(t.ptl);
  ptepGet(t, i, pte);
  if (pte.lo !== orig.lo || pte.hi !== orig.hi) throw new FoliolabError('EINVARIANT', 'do_swap_page: the swap PTE changed under the fault');
  const fOff = swpOffset(folio.fa[folio.fb + F_SWAP]! as ReturnType<typeof swpEntry>);
  const idx = off - fOff;
  let nrPages = 1;
  let pageIdx = idx;
  let address = addr;
  let i0 = i;
  if (folio.order > 0) {
    const nr = folio.nr;
    const fStart = addr - idx * PAGE_SIZE;
    const fEnd = fStart + nr * PAGE_SIZE;
    const lowBound = Math.max(addr - (addr % PMD_SIZE), vma.vmStart);
    if (fStart >= lowBound && fEnd <= pmdAddrEnd(addr, vma.vmEnd) && i - idx >= 0) {
      mkSwapPte(want, si.type, off - idx, pteSwpExclusive(orig.lo, orig.hi), pteSwpUffdWp(orig.lo, orig.hi));
      ptepGet(t, i - idx, cur);
      if (cur.lo === want.lo && cur.hi === want.hi && swapPteBatch(t, i - idx, nr) === nr) {
        nrPages = nr;
        pageIdx = 0;
        address = fStart;
        i0 = i - idx;
      }
    }
  }
  const exclusive = pteSwpExclusive(orig.lo, orig.hi);
  k.addMmCounter(p, MM_ANONPAGES, nrPages);
  k.addMmCounter(p, MM_SWAPENTS, -nrPages);
  mkPte(pte, folio.head + pageIdx, vma, false, false);
  const uffd = pteSwpUffdWp(orig.lo, orig.hi);
  if (uffd) pteMkuffdWp(pte);
  let rmapFlags = 0;
  if (exclusive || k.memmap.aux[folio.head] === 1) {
    if ((vma.flags & VM_WRITE) !== 0 && !uffd) {
      mkwrite(pte);
      if (write) pteMkdirty(pte);
    }
    rmapFlags = RMAP_EXCLUSIVE;
  }
  if (nrPages > 1) {
    l.charge(EV.ATOMIC_REF);
    k.memmap.aux[folio.head] = k.memmap.aux[folio.head]! + nrPages - 1;
  }
  if (!folioTestAnon(folio)) folioAddNewAnonRmap(folio, vma, address, rmapFlags);
  else folioAddAnonRmapPtes(folioSubrange(folio, pageIdx, nrPages), vma, rmapFlags);
  if (nrPages > 1) {
    // The page-table package's set_ptes(nr > 1) insists on none targets (spec
    // pagetable §9.5); the kernel's do_swap_page overwrites the nr swap PTEs
    // directly. Zero them uncharged (pokePte) so the costs stay the kernel's.
    for (let j = i0; j < i0 + nrPages; j++) pokePte(t, j, 0, 0);
  }
  setPtes(t, i0, pte.lo, pte.hi, nrPages);
  folioPutSwap(si, nrPages === folio.nr ? folioSubrangeAll(folio) : folioSubrange(folio, idx, 1));
  if (shouldTryToFreeSwap(k, folio, vma, nrPages, write)) folioFreeSwap(si, folio);
  folioUnlock(folio);
  l.unlock(t.ptl);
}

function allocOrder0(k: Kernel, addr: number): Folio {
  const f = allocAnonFolio(k, 0, false);
  if (f === null) throw new FoliolabError('ENOMEM', `do_swap_page at 0x${addr.toString(16)}: out of simulated memory`);
  return f;
}

/**
 * should_try_to_free_swap(si, folio, vma, extra_refs = nr_pages, fault_flags)
 * (mm/memory.c, 7.2.13): not in the swap cache → false; a SWP_SYNCHRONOUS_IO
 * device → true ("always try to free swap cache for SWP_SYNCHRONOUS_IO
 * devices"); mem_cgroup_swap_full (here vm_swap_full: no memcg limits are
 * modelled), VM_LOCKED or mlocked → true; else only a write fault (no KSM)
 * whose folio holds no reference beyond the nr_pages just mapped and the
 * swap cache's nr. folio_free_swap (mm/swapfile.c) then still refuses a
 * folio under writeback or with a slot whose swap count is not 0.
 */
function shouldTryToFreeSwap(k: Kernel, f: Folio, vma: Vma, extraRefs: number, write: boolean): boolean {
  const si = k.si!;
  const sc = FLAG.swapcache.mask | FLAG.swapbacked.mask;
  if ((k.memmap.flags[f.head]! & sc) !== sc) return false;
  if (k.config.swapSynchronousIo) return true; // data_race(si->flags & SWP_SYNCHRONOUS_IO)
  if (si.nrSwapPages * 2 < si.totalSwapPages) return true; // mem_cgroup_swap_full → vm_swap_full
  if ((vma.flags & VM_LOCKED) !== 0 || (k.memmap.flags[f.head]! & FLAG.mlocked.mask) !== 0) return true;
  return write && k.memmap.aux[f.head] === extraRefs + f.nr;
}
