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
  softleafIsMigration,
  softleafIsMigrationWrite,
  softleafMigrationDirty,
  softleafMigrationYoung,
  softleafPfn,
  softleafType,
  tryToUnmapFlush,
  SWP_MIGRATION_READ,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import { PVMW_SYNC, pageVmaMappedWalk, pageVmaMappedWalkDone } from '@foliolab/pvmw';
import { RMAP_EXCLUSIVE, folioAddAnonRmapPtes, folioRemoveRmapPtes, folioSplitUnqueueDeferred, folioTryShareAnonRmapPte, rmapWalkAnon, type RmapVma } from '@foliolab/rmap';
import { EAGAIN, EBUSY, PAGE_SIZE } from './consts.js';
import { freeSwapCache } from './fault.js';
import { putFolioRefs } from './folio-ops.js';
import type { Kernel } from './kernel.js';
import { lruAddAfter, lruNeighbours, lruRelink, onLru, lruAdd } from './lru.js';
import { mkPte, mkwrite } from './pte-util.js';
import type { Proc } from './proc.js';
import { folioMappedRaw, walkFor } from './ttu.js';
import type { Vma } from './vma.js';

/*
 * split_folio() to order 0 for anonymous PTE-mapped folios (mm/huge_memory.c
 * __folio_split, 6.15+): can_split_folio (refcount = mapcount + swap-cache
 * refs + the caller's pin), unmap_folio (try_to_migrate: every PTE becomes a
 * migration entry — write / read-exclusive / read, with young/dirty and
 * uffd-wp — and its rmap and reference are dropped, one PTE at a time, as
 * try_to_migrate_one does: a fully mapped folio outside the swap cache is
 * therefore queued for deferred split on the way, then unqueued),
 * folio_split_unqueue_deferred, the memmap split, swap-cache redistribution
 * (each page keeps its slot), the refcount unfreeze, the LRU placement
 * (lru_add_split_folio: after the head, or onto the reclaim list), then
 * remap_page (remove_migration_ptes: the PTEs come back on the order-0
 * folios with RMAP_EXCLUSIVE unless the entry was a read one) and
 * free_folio_and_swap_cache of the tails.
 *
 * The memmap has no split primitive (folio-flags provides alloc/free only):
 * memmapSplitToOrder0 below rewrites the memmap's arrays locally — flags
 * (PG_head off, folio-wide flags copied to the new folios, page[1]'s order
 * and second-page flags dropped, PF_ANY flags kept), a spill row per new
 * order-0 folio, the allocated-folio count. [I] The kernel's restore walks
 * the rmap of every new folio; the model restores the migration entries it
 * recorded (same end state, the rmap-walk costs of remap are not charged).
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

interface MigRec {
  p: Proc;
  vma: Vma;
  t: PteTable;
  i: number;
  page: number;
}

const pteval = pteBits();
const ent = pteBits();

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

/** try_to_migrate_one() for the split: migration entries, rmap and references dropped, entries recorded. */
function unmapToMigration(k: Kernel, folio: Folio, vma: Vma, address: number, recs: MigRec[]): boolean {
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
    if (ex && folioTryShareAnonRmapPte(folio, page) !== 0) {
      setPteAt(t, i, pteval.lo, pteval.hi);
      pageVmaMappedWalkDone(w);
      throw new FoliolabError('EINVARIANT', `split: folio ${folio.head} became pinned under can_split_folio`);
    }
    const write = present && pteWrite(pteval.lo, pteval.hi);
    mkMigrationPte(ent, write ? 'write' : ex ? 'readExclusive' : 'read', pfn, present && pteYoung(pteval.lo, pteval.hi), present && pteDirty(pteval.lo, pteval.hi));
    if (present ? pteUffdWp(pteval.lo, pteval.hi) : pteSwpUffdWp(pteval.lo, pteval.hi)) pteSwpMkuffdWp(ent);
    setPteAt(t, i, ent.lo, ent.hi);
    folioRemoveRmapPtes(folioSubrange(folio, page, 1), vma);
    putFolioRefs(k, folio, 1);
    recs.push({ p, vma, t, i, page });
  }
  k.ledger.charge(EV.MMU_NOTIFIER);
  return true;
}

/** remove_migration_pte() for one recorded entry, onto the order-0 folio `nf`. */
function restoreMigration(k: Kernel, r: MigRec, nf: Folio): void {
  const t = r.t;
  const lo = t.lo[r.i]!;
  const hi = t.hi[r.i]!;
  if (!softleafIsMigration(lo, hi)) throw new FoliolabError('EINVARIANT', `split: slot ${r.i} lost its migration entry`);
  k.ledger.lock(t.ptl);
  k.ledger.charge(EV.ATOMIC_REF);
  k.memmap.aux[nf.head] = k.memmap.aux[nf.head]! + 1; // folio_get
  mkPte(pteval, nf.head, r.vma, false, false);
  if (!softleafMigrationYoung(lo, hi)) pteMkold(pteval);
  if ((k.memmap.flags[nf.head]! & FLAG.dirty.mask) !== 0 && softleafMigrationDirty(lo, hi)) pteMkdirty(pteval);
  if (softleafIsMigrationWrite(lo, hi)) mkwrite(pteval);
  else if (pteSwpUffdWp(lo, hi)) pteMkuffdWp(pteval);
  const read = softleafType(lo, hi) === SWP_MIGRATION_READ;
  folioAddAnonRmapPtes(folioSubrange(nf, 0, 1), r.vma, read ? 0 : RMAP_EXCLUSIVE);
  setPteAt(t, r.i, pteval.lo, pteval.hi);
  k.ledger.unlock(t.ptl);
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
    k.stats.count(VM.thp_split_page_failed);
    return -EAGAIN;
  }
  const recs: MigRec[] = [];
  rmapWalkAnon(folio, {
    rmapOne: (f: Folio, v: RmapVma, a: number): boolean => unmapToMigration(k, f, v as Vma, a, recs),
    done: (f: Folio): boolean => !folioMappedRaw(k, f),
  });
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
  let anchor = head;
  for (let i = 1; i < news.length; i++) {
    const nf = news[i]!;
    mm.aux[nf.head] = perRef + 1;
    if (list !== null) {
      mm.aux[nf.head] = mm.aux[nf.head]! + 1;
      list.push(nf);
    } else if (wasLru) {
      lruAddAfter(k, anchor, nf);
      anchor = nf;
    } else {
      lruAdd(k, nf);
    }
  }
  for (const r of recs) restoreMigration(k, r, news[r.page]!);
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
