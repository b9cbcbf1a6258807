import { VM, RS, MTHP } from './stats.js';
import {
  F_INDEX,
  F_LARGE_MAPCOUNT,
  F_MAPPING,
  F_OWNER,
  F_SWAP,
  FLAG,
  FOLIO_FIELD_INIT,
  MODEL_ALLOCATED,
  NR_FOLIO_FIELD_SLOTS,
  PF_ANY_MASK,
  PG,
  folioSetDirty,
  folioSubrange,
  folioTestAnon,
  type Folio,
  type Memmap,
} from '@foliolab/folio-flags';
import { EV, FoliolabError } from '@foliolab/ledger';
import { swapCacheSetAt } from '@foliolab/swap';
import {
  getAndClearPtes,
  mkMigrationPte,
  pteBits,
  pteClear,
  pteDirty,
  pteMkdirty,
  pteMkold,
  pteMkuffdWp,
  ptePfn,
  ptePresent,
  pteSwpMkuffdWp,
  pteSwpUffdWp,
  pteUffdWp,
  pteWrite,
  pteYoung,
  ptepGet,
  setPteAt,
  setTlbUbcFlushPending,
  archTlbbatchShouldDefer,
  flushTlbRange,
  mkHwpoisonPte,
  softleafIsMigrationWrite,
  softleafMigrationDirty,
  softleafMigrationYoung,
  softleafPfn,
  softleafType,
  tryToUnmapFlush,
  SWP_MIGRATION_READ,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import { PVMW_MIGRATION, PVMW_SYNC, pageVmaMappedWalk, pageVmaMappedWalkDone } from '@foliolab/pvmw';
import {
  RMAP_EXCLUSIVE,
  deferredSplitCount,
  deferredSplitScan,
  folioAddAnonRmapPtes,
  folioAnonVma,
  folioRemoveRmapPtes,
  folioSplitUnqueueDeferred,
  folioTryShareAnonRmapPte,
  rmapWalkAnon,
  type RmapVma,
  type RmapWalkControl,
} from '@foliolab/rmap';
import { EAGAIN, EBUSY, MM_ANONPAGES, PAGE_SIZE, VM_LOCKED } from './consts.js';
import { freeSwapCache } from './fault.js';
import { putFolioRefs } from './folio-ops.js';
import type { Kernel } from './kernel.js';
import { lruAddBefore, lruNeighbours, lruRelink, onLru, lruAdd } from './lru.js';
import { mkPte, mkZeroPte, mkwrite } from './pte-util.js';
import { folioMappedRaw, walkFor } from './ttu.js';
import type { Vma } from './vma.js';

/*
 * split_folio() to order 0 for anonymous PTE-mapped folios (7.2.13
 * mm/huge_memory.c __folio_split): can_split_folio (refcount = mapcount +
 * swap-cache refs + the caller's pin), unmap_folio (try_to_migrate under the
 * anon_vma write lock, rmap_walk_locked: every PTE becomes a migration entry
 * — write / read-exclusive / read, with young/dirty and uffd-wp — or, for a
 * PageHWPoison page, a hwpoison entry; its rmap and reference are dropped one
 * PTE at a time, as try_to_migrate_one does: a fully mapped folio outside the
 * swap cache is therefore queued for deferred split on the way, then
 * unqueued), folio_split_unqueue_deferred, the memmap split, swap-cache
 * redistribution (each page keeps its slot), the refcount unfreeze, the LRU
 * placement (lru_add_split_folio: after the head, or onto the reclaim list),
 * then remap_page(folio, nr, TTU_USE_SHARED_ZEROPAGE): one rmap walk per new
 * folio (remove_migration_ptes → remove_migration_pte, a PVMW_MIGRATION walk
 * per VMA), where try_to_map_unused_to_zeropage maps a zero-filled page that
 * is neither mlocked nor in a VM_LOCKED VMA to the shared zero page (and the
 * mm counter drops) and every other entry comes back on its order-0 folio
 * with RMAP_EXCLUSIVE unless the entry was a read one; finally
 * free_folio_and_swap_cache of every new folio but lock_at's (a page nothing
 * maps any more is freed there).
 *
 * The memmap has no split primitive (folio-flags provides alloc/free only):
 * memmapSplitToOrder0 below rewrites the memmap's arrays locally — flags
 * (PG_head off, folio-wide flags copied to the new folios, page[1]'s order
 * and second-page flags dropped, PF_ANY flags kept), a spill row per new
 * order-0 folio, the allocated-folio count.
 */

/** Folio-wide flags __split_folio_to_order copies to every new folio (PG_lru comes from lru_add_split_folio). */
const COPY_MASK =
  FLAG.referenced.mask |
  FLAG.swapbacked.mask |
  FLAG.swapcache.mask |
  FLAG.mlocked.mask |
  FLAG.uptodate.mask |
  FLAG.active.mask |
  FLAG.workingset.mask |
  FLAG.locked.mask |
  FLAG.unevictable.mask |
  FLAG.dirty.mask;

const pteval = pteBits();
const ent = pteBits();
const zpte = pteBits();

/** The memmap internals the local split touches. */
interface MemmapInternals {
  spill: { alloc(): number; chunkOf(row: number): Int32Array; baseOf(row: number): number; free(row: number): void };
  spillRows: Map<number, number>;
  allocated: number;
  handle(head: number): Folio;
}

/** Turn one allocated folio into order-0 folios in the memmap's arrays; returns their handles, page order. */
function memmapSplitToOrder0(mm: Memmap, folio: Folio): Folio[] {
  const mi = mm as unknown as MemmapInternals;
  const { head, nr, order, fa, fb } = folio;
  const mapping = fa[fb + F_MAPPING]!;
  const index = fa[fb + F_INDEX]!;
  const swap = fa[fb + F_SWAP]!;
  const flags = mm.flags;
  const headWord = flags[head]!;
  flags[head] = (headWord & ~(1 << PG.head)) >>> 0;
  const copied = headWord & COPY_MASK;
  for (let i = 1; i < nr; i++) {
    const p = head + i;
    flags[p] = ((flags[p]! & PF_ANY_MASK) | copied | MODEL_ALLOCATED) >>> 0;
  }
  const initRow = (p: number, row: number, idx: number, sw: number): void => {
    const c = mi.spill.chunkOf(row);
    const b = mi.spill.baseOf(row);
    for (let s = 0; s < NR_FOLIO_FIELD_SLOTS; s++) c[b + s] = FOLIO_FIELD_INIT[s]!;
    c[b + F_OWNER] = p;
    c[b + F_MAPPING] = mapping;
    c[b + F_INDEX] = idx;
    c[b + F_SWAP] = sw;
  };
  let headRow: number;
  if (order >= 4) {
    headRow = mi.spill.alloc();
    mi.spillRows.set(head, headRow);
    for (let s = 1; s < NR_FOLIO_FIELD_SLOTS; s++) mm.aux[head + s] = 0;
  } else {
    headRow = mi.spillRows.get(head)!;
  }
  initRow(head, headRow, index, swap);
  for (let i = 1; i < nr; i++) {
    const row = mi.spill.alloc();
    mi.spillRows.set(head + i, row);
    initRow(head + i, row, index + i, swap === 0 ? 0 : swap + i);
  }
  mi.allocated += nr - 1;
  const out: Folio[] = [];
  for (let i = 0; i < nr; i++) out.push(mi.handle(head + i));
  return out;
}

/** try_to_migrate_one() for the split (7.2.13 mm/rmap.c): migration (or hwpoison) entries, rmap and references dropped. */
function tryToMigrateOne(k: Kernel, folio: Folio, vma: Vma, address: number): boolean {
  const p = vma.mm;
  const mm = k.memmap;
  const w = walkFor(p, folio, vma, address, PVMW_SYNC);
  k.ledger.charge(EV.MMU_NOTIFIER);
  while (pageVmaMappedWalk(w)) {
    const t = w.pte!;
    const i = w.pteIndex;
    ptepGet(t, i, pteval);
    const present = ptePresent(pteval.lo, pteval.hi);
    const pfn = present ? ptePfn(pteval.lo, pteval.hi) : softleafPfn(pteval.lo, pteval.hi);
    const page = pfn - folio.head;
    const ex = (mm.flags[pfn]! & FLAG.anon_exclusive.mask) !== 0;
    const addr = w.address;
    if (present) {
      getAndClearPtes(t, i, 1, pteval);
      if (archTlbbatchShouldDefer(p.pt)) setTlbUbcFlushPending(k.tlb, p.pt, pteval.lo, pteval.hi, addr, addr + PAGE_SIZE);
      else {
        k.ledger.charge(EV.TLB_FLUSH_RANGE);
        flushTlbRange(p.pt, addr, addr + PAGE_SIZE);
      }
      if (pteDirty(pteval.lo, pteval.hi) && (mm.flags[folio.head]! & FLAG.dirty.mask) === 0) folioSetDirty(folio);
    } else {
      pteClear(t, i);
    }
    k.updateHiwaterRss(p);
    if ((mm.flags[pfn]! & FLAG.hwpoison.mask) !== 0) {
      // PageHWPoison(subpage): a hwpoison entry, whatever the TTU flags (memory_failure set it before the split).
      mkHwpoisonPte(ent, pfn);
      k.addMmCounter(p, MM_ANONPAGES, -1);
      setPteAt(t, i, ent.lo, ent.hi);
    } else {
      if (ex && folioTryShareAnonRmapPte(folio, page) !== 0) {
        setPteAt(t, i, pteval.lo, pteval.hi);
        pageVmaMappedWalkDone(w);
        throw new FoliolabError('EINVARIANT', `split: folio ${folio.head} became pinned under can_split_folio`);
      }
      const write = present && pteWrite(pteval.lo, pteval.hi);
      mkMigrationPte(ent, write ? 'write' : ex ? 'readExclusive' : 'read', pfn, present && pteYoung(pteval.lo, pteval.hi), present && pteDirty(pteval.lo, pteval.hi));
      if (present ? pteUffdWp(pteval.lo, pteval.hi) : pteSwpUffdWp(pteval.lo, pteval.hi)) pteSwpMkuffdWp(ent);
      setPteAt(t, i, ent.lo, ent.hi);
    }
    folioRemoveRmapPtes(folioSubrange(folio, page, 1), vma);
    putFolioRefs(k, folio, 1);
  }
  k.ledger.charge(EV.MMU_NOTIFIER);
  return true;
}

/**
 * try_to_map_unused_to_zeropage() (7.2.13 mm/migrate.c) for the order-0
 * folio `nf`: not PageHWPoison, not mlocked, not in a VM_LOCKED VMA, and all
 * zeros (pages_identical with ZERO_PAGE: data token 0) → the shared zero
 * page (pte_mkspecial, uffd-wp from the migration entry; soft-dirty is not
 * modelled), one MM_ANONPAGES less. PageCompound is never true here: the
 * engine splits to order 0 only.
 */
function tryToMapUnusedToZeropage(k: Kernel, nf: Folio, vma: Vma, t: PteTable, i: number, lo: number, hi: number): boolean {
  const mm = k.memmap;
  k.ledger.charge(EV.FLAG_LOAD);
  if ((mm.flags[nf.head]! & (FLAG.hwpoison.mask | FLAG.mlocked.mask)) !== 0 || (vma.flags & VM_LOCKED) !== 0) return false;
  if (mm.token![nf.head] !== 0) return false;
  mkZeroPte(zpte, k.zeroPfn, vma);
  if (pteSwpUffdWp(lo, hi)) pteMkuffdWp(zpte);
  setPteAt(t, i, zpte.lo, zpte.hi);
  k.addMmCounter(vma.mm, MM_ANONPAGES, -1);
  return true;
}

/** remove_migration_pte() (7.2.13 mm/migrate.c) for the order-0 folio `nf`, under the walk's PTL. */
function removeMigrationPte(k: Kernel, nf: Folio, vma: Vma, address: number, zeropage: boolean): boolean {
  const w = walkFor(vma.mm, nf, vma, address, PVMW_SYNC | PVMW_MIGRATION);
  while (pageVmaMappedWalk(w)) {
    const t = w.pte!;
    const i = w.pteIndex;
    const lo = t.lo[i]!;
    const hi = t.hi[i]!;
    if (zeropage && tryToMapUnusedToZeropage(k, nf, vma, t, i, lo, hi)) continue;
    k.ledger.charge(EV.ATOMIC_REF);
    k.memmap.aux[nf.head] = k.memmap.aux[nf.head]! + 1; // folio_get
    mkPte(pteval, nf.head, vma, false, false);
    if (!softleafMigrationYoung(lo, hi)) pteMkold(pteval);
    if ((k.memmap.flags[nf.head]! & FLAG.dirty.mask) !== 0 && softleafMigrationDirty(lo, hi)) pteMkdirty(pteval);
    if (softleafIsMigrationWrite(lo, hi)) mkwrite(pteval);
    else if (pteSwpUffdWp(lo, hi)) pteMkuffdWp(pteval);
    const read = softleafType(lo, hi) === SWP_MIGRATION_READ;
    folioAddAnonRmapPtes(folioSubrange(nf, 0, 1), vma, read ? 0 : RMAP_EXCLUSIVE);
    setPteAt(t, i, pteval.lo, pteval.hi);
  }
  return true;
}

/** The rmap_walk_control of unmap_folio's try_to_migrate (TTU_RMAP_LOCKED): done = folio_not_mapped. */
class MigrateControl implements RmapWalkControl {
  readonly locked = true;
  constructor(private readonly k: Kernel) {}
  rmapOne(folio: Folio, vma: RmapVma, address: number): boolean {
    return tryToMigrateOne(this.k, folio, vma as Vma, address);
  }
  done(folio: Folio): boolean {
    return !folioMappedRaw(this.k, folio);
  }
}

/** The rmap_walk_control of remap_page's remove_migration_ptes (TTU_RMAP_LOCKED): no done, not an RMAP_ONE callback. */
class RemapControl implements RmapWalkControl {
  readonly locked = true;
  readonly chargeRmapOne = false;
  zeropage = false;
  constructor(private readonly k: Kernel) {}
  rmapOne(folio: Folio, vma: RmapVma, address: number): boolean {
    return removeMigrationPte(this.k, folio, vma as Vma, address, this.zeropage);
  }
}

/**
 * split_folio_to_list(folio, list) to order 0. The folio is locked and the
 * caller holds one reference (reclaim: the isolation reference; madvise: a
 * folio_get); after the split the caller's lock and reference are on the
 * folio of page `lockAt` (split_huge_page_to_list_to_order's lock_at). Returns 0, or −EAGAIN when can_split_folio fails (extra
 * references such as GUP pins) / −EBUSY for a non-anon folio. With `list`,
 * the tails are isolated onto it (list_add_tail = push, each with a
 * reference); otherwise they join the LRU right after the head.
 */
export function splitFolio(k: Kernel, folio: Folio, list: Folio[] | null, lockAt = 0): number {
  if (folio.order === 0) return 0;
  if (!folioTestAnon(folio)) return -EBUSY;
  const mm = k.memmap;
  const sc = FLAG.swapcache.mask | FLAG.swapbacked.mask;
  const swapcache = (mm.flags[folio.head]! & sc) === sc;
  const extra = swapcache ? folio.nr : 0;
  const mapcount = folio.fa[folio.fb + F_LARGE_MAPCOUNT]! + 1;
  if (mm.aux[folio.head] !== mapcount + extra + 1) {
    k.stats.mthpCount(folio.order, MTHP.split_failed);
    if (folio.order === 9) k.stats.count(VM.thp_split_page_failed); // 7.2.13 __folio_split: is_pmd_order(old_order) only
    return -EAGAIN;
  }
  // anon_vma_lock_write: held across unmap_folio and remap_page (both walks are rmap_walk_locked).
  const av = folioAnonVma(folio);
  if (av !== null) k.ledger.lock(av.lockId);
  rmapWalkAnon(folio, new MigrateControl(k));
  tryToUnmapFlush(k.tlb);
  if (mm.aux[folio.head] !== extra + 1) throw new FoliolabError('EINVARIANT', `split: folio ${folio.head} refcount ${mm.aux[folio.head]} after unmap, expected ${extra + 1}`);
  const order = folio.order;
  folioSplitUnqueueDeferred(folio);
  k.ledger.charge(EV.PCPU_COUNTER);
  k.rmap.stats.nr_anon[order]! -= 1;
  const wasLru = onLru(folio);
  const nb = wasLru ? lruNeighbours(folio) : null;
  const news = memmapSplitToOrder0(mm, folio);
  k.forgetFolio();
  const head = news[0]!;
  if (nb !== null) lruRelink(k, head, nb.prev, nb.next);
  const si = k.si;
  const perRef = swapcache ? 1 : 0;
  k.ledger.charge(EV.ATOMIC_REF, news.length);
  mm.aux[head.head] = perRef + 1;
  if (swapcache && si !== null) {
    const first = head.fa[head.fb + F_SWAP]! & ((1 << 26) - 1);
    for (let i = 1; i < news.length; i++) swapCacheSetAt(si, first + i, head.head + i);
  }
  for (let i = 1; i < news.length; i++) {
    const nf = news[i]!;
    mm.aux[nf.head] = perRef + 1;
    if (list !== null) {
      mm.aux[nf.head] = mm.aux[nf.head]! + 1;
      list.push(nf);
    } else if (wasLru) {
      // lru_add_split_folio: list_add_tail(&new_folio->lru, &folio->lru) — each just younger than the head,
      // so reclaim, from the old end, meets the head, then the last page, …, then page 1.
      lruAddBefore(k, head, nf);
    } else {
      lruAdd(k, nf);
    }
  }
  // remap_page(folio, nr, TTU_USE_SHARED_ZEROPAGE): one rmap walk per new folio, in pfn order.
  const remap = new RemapControl(k);
  remap.zeropage = true;
  for (let i = 0; i < news.length; i++) rmapWalkAnon(news[i]!, remap);
  if (av !== null) k.ledger.unlock(av.lockId);
  for (let i = 0; i < news.length; i++) {
    if (i === lockAt) continue;
    const nf = news[i]!;
    mm.flags[nf.head] = (mm.flags[nf.head]! & ~FLAG.locked.mask) >>> 0; // folio_unlock (not the lock_at folio)
    k.ledger.charge(EV.ATOMIC_RMW);
    freeSwapCache(k, nf);
    putFolioRefs(k, nf, 1);
  }
  k.stats.mthpCount(order, MTHP.split);
  if (order === 9) k.stats.count(VM.thp_split_page);
  k.stats.addReclaim(RS.nr_split, 1);
  return 0;
}

/** SHRINK_BATCH: the deferred split shrinker sets no batch of its own. */
const SHRINK_BATCH = 128;
/** DEFAULT_SEEKS: shrinker_alloc's default. */
const DEFAULT_SEEKS = 2;

/**
 * shrink_slab(gfp, nid, memcg, priority) for the one memcg-aware shrinker the
 * model has, the deferred split shrinker (7.2.13 mm/shrinker.c
 * do_shrink_slab with mm/huge_memory.c deferred_split_count/_scan): freeable
 * = the folios on the deferred split list; the scan asks (freeable >>
 * priority) * 4 / DEFAULT_SEEKS more, plus the work deferred from earlier
 * calls (nr_deferred >> priority), at most 2 * freeable; it scans in batches
 * of SHRINK_BATCH while the total reaches a batch or the whole list, so a
 * short list is scanned only near priority 0. Each scan isolates folios and
 * splits the partially mapped ones (split_folio: their zero-filled pages go
 * to the zero page, the unmapped ones are freed); one that fails to split
 * goes back on the list (mTHP split_failed). The unscanned part of the work
 * is deferred to the next call.
 */
export function shrinkDeferredSplit(k: Kernel, priority: number): number {
  const queue = k.rmap.splitQueue;
  const freeable = deferredSplitCount(queue);
  if (freeable === 0) return 0;
  const nr = k.deferredSplitNrDeferred;
  k.deferredSplitNrDeferred = 0;
  const delta = Math.floor((Math.floor(freeable / 2 ** priority) * 4) / DEFAULT_SEEKS);
  let totalScan = Math.min(Math.floor(nr / 2 ** priority) + delta, 2 * freeable);
  let scanned = 0;
  let freed = 0;
  const splitFn = (f: Folio): boolean => splitFolio(k, f, null) === 0;
  while (totalScan >= SHRINK_BATCH || totalScan >= freeable) {
    const nrToScan = Math.min(SHRINK_BATCH, totalScan);
    const r = deferredSplitScan(queue, nrToScan, splitFn, { listLru: true });
    for (const f of r.zeroRefs) k.releaseFolio(f);
    if (r.split === 0 && r.scanned === 0) break; // SHRINK_STOP
    freed += r.split;
    totalScan -= nrToScan;
    scanned += nrToScan;
  }
  k.deferredSplitNrDeferred += Math.min(Math.max(nr + delta - scanned, 0), 2 * freeable);
  return freed;
}
