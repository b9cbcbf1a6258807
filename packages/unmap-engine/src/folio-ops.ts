import { VM } from './stats.js';
import {
  FLAG,
  __folioClearFlag,
  __folioClearMlocked,
  __folioClearSwapbacked,
  __folioMarkUptodate,
  folioPutRefs,
  folioSetUnevictable,
  folioTestSetMlocked,
  folioClearUnevictable,
  folioTestClearMlocked,
  folioClearActive,
  type Folio,
} from '@foliolab/folio-flags';
import { FoliolabError } from '@foliolab/ledger';
import { folioPrepLargeRmappable, rmapFreeFolio, rmapFreeFolioUnchecked } from '@foliolab/rmap';
import { VM_DROPPABLE, VM_LOCKED } from './consts.js';
import type { Kernel } from './kernel.js';
import { lruAdd, lruRemoveOnFree, lruvecAddFolio, lruvecDelFolio } from './lru.js';
import type { Vma } from './vma.js';

/*
 * Folio life cycle helpers the engine's paths share: allocation of a new
 * anon folio (vma_alloc_folio + folio_prep_large_rmappable + zeroing), the
 * LRU add of a new anon folio (folio_add_lru_vma incl. mlock_new_folio), the
 * final free (__folio_put: LRU removal, mlock clear, deferred unqueue via the
 * rmap package), and folio_put_refs with that free path.
 */

const M_LRU_FLAGS = FLAG.lru.mask | FLAG.active.mask | FLAG.unevictable.mask;

/**
 * vma_alloc_folio(order) for an anon fault or COW: a zeroed folio (data tokens
 * 0), large_rmappable for order > 0, PG_uptodate (__folio_mark_uptodate).
 * Returns null when the buddy allocator has no block (an expected outcome).
 */
export function allocAnonFolio(k: Kernel, order: number, uptodate = true): Folio | null {
  const f = k.memmap.allocFolio(order);
  if (f === null) return null;
  if (order > 0) folioPrepLargeRmappable(f);
  k.memmap.token!.fill(0, f.head, f.head + f.nr);
  if (uptodate) __folioMarkUptodate(f);
  return f;
}

/**
 * Called after folio_add_new_anon_rmap: the rmap package sets PG_swapbacked
 * unconditionally; the kernel does not for VM_DROPPABLE VMAs ("they're just
 * dropped when under memory pressure", v6.11). Local fix-up.
 */
export function fixupDroppable(f: Folio, vma: Vma): void {
  if ((vma.flags & VM_DROPPABLE) !== 0) __folioClearSwapbacked(f);
}

/**
 * folio_add_lru_vma(folio, vma): in a VM_LOCKED VMA mlock_new_folio (PG_mlocked;
 * the drained __mlock_new_folio puts it on the unevictable list with
 * mlock_count 1), else folio_add_lru. Both drained at once: lru_add does the
 * evictable check.
 */
export function folioAddLruVma(k: Kernel, f: Folio, vma: Vma): void {
  const locked = (vma.flags & VM_LOCKED) !== 0;
  if (locked && !folioTestSetMlocked(f)) k.stats.count(VM.unevictable_pgmlocked, f.nr);
  lruAdd(k, f);
  if (locked) k.mlockCount.set(f.head, 1);
}

/*
 * mlock_count (7.2.13 mm/mlock.c): how many mlocks of VM_LOCKED mappings a
 * folio on the unevictable list has seen, so that it stays locked until the
 * last of them is undone. It can undercount — lru_add (a putback after
 * reclaim isolated the folio) and a split's new folios start from 0, and an
 * mlock of an isolated folio is not counted — and then the first munlock
 * unlocks the folio ("reclaim will fix it if not").
 *
 * The mlock batch is drained at once. For a small folio the kernel drains it
 * last in lru_add_drain (7.2.13 mm/swap.c: lru_add_drain_cpu, then
 * mlock_drain_local; mlock_folio drains at once only a large folio,
 * folio_may_be_lru_cached), which the oracle's drain before each observation
 * also does; the model applies each (un)mlock when it happens.
 */

/**
 * mlock_folio() + the drained __mlock_folio() (7.2.13 mm/mlock.c): PG_mlocked
 * (count UNEVICTABLE_PGMLOCKED on the first); a folio on the LRU moves to the
 * unevictable list, losing PG_active, with mlock_count 1, or, already there,
 * counts one more mlock. A folio off the LRU (isolated) keeps its list flags
 * and count until it is put back (lru_add makes it unevictable then).
 */
export function mlockFolio(k: Kernel, f: Folio): void {
  if (!folioTestSetMlocked(f)) k.stats.count(VM.unevictable_pgmlocked, f.nr);
  const w = f.mm.flags[f.head]!;
  if ((w & FLAG.lru.mask) === 0) return;
  if ((w & FLAG.unevictable.mask) !== 0) {
    k.mlockCount.set(f.head, (k.mlockCount.get(f.head) ?? 0) + 1);
    return;
  }
  lruvecDelFolio(k, f);
  if ((w & FLAG.active.mask) !== 0) folioClearActive(f);
  folioSetUnevictable(f);
  k.mlockCount.set(f.head, 1);
  lruvecAddFolio(k, f);
}

/**
 * munlock_folio() + the drained __munlock_folio() (7.2.13 mm/mlock.c): a
 * folio on the unevictable list drops one mlock_count and stays locked while
 * any is left; otherwise PG_mlocked is cleared (UNEVICTABLE_PGMUNLOCKED) and
 * a folio on the unevictable list goes back to the head of its evictable
 * list. Off the LRU, lru_add does that at putback.
 */
export function munlockFolio(k: Kernel, f: Folio): void {
  const w0 = f.mm.flags[f.head]!;
  if ((w0 & FLAG.lru.mask) !== 0 && (w0 & FLAG.unevictable.mask) !== 0) {
    const left = Math.max(0, (k.mlockCount.get(f.head) ?? 0) - 1);
    if (left > 0) {
      k.mlockCount.set(f.head, left);
      return;
    }
    k.mlockCount.delete(f.head);
  }
  if (folioTestClearMlocked(f)) k.stats.count(VM.unevictable_pgmunlocked, f.nr);
  const w = f.mm.flags[f.head]!;
  if ((w & FLAG.lru.mask) === 0 || (w & FLAG.unevictable.mask) === 0) return;
  lruvecDelFolio(k, f);
  folioClearUnevictable(f);
  lruvecAddFolio(k, f);
}

/**
 * The free path of a folio whose refcount reached 0 (__folio_put →
 * __page_cache_release → free_unref_folios): off the LRU with its LRU flags
 * cleared, PG_mlocked cleared, then the rmap package's free
 * (folio_unqueue_deferred_split, nr_anon stat) and the buddy free.
 */
export function freeFolioFinal(k: Kernel, f: Folio, unmappedChecked = false): void {
  if (f.head === k.zeroPfn) throw new FoliolabError('EINVARIANT', 'freeFolioFinal: the zero page lost its last reference');
  if (k.memmap.aux[f.head] !== 0) throw new FoliolabError('EINVARIANT', `freeFolioFinal: folio ${f.head} has refcount ${k.memmap.aux[f.head]}`);
  lruRemoveOnFree(k, f);
  const w = k.memmap.flags[f.head]!;
  if ((w & M_LRU_FLAGS) !== 0) {
    if ((w & FLAG.lru.mask) !== 0) __folioClearFlag(f, FLAG.lru);
    if ((w & FLAG.active.mask) !== 0) __folioClearFlag(f, FLAG.active);
    if ((w & FLAG.unevictable.mask) !== 0) __folioClearFlag(f, FLAG.unevictable);
  }
  if ((w & FLAG.mlocked.mask) !== 0) __folioClearMlocked(f);
  k.mlockCount.delete(f.head);
  if ((w & FLAG.locked.mask) !== 0) __folioClearFlag(f, FLAG.locked);
  // reclaim has already established "unmapped, refcount frozen to 0": skip rmap's re-validation
  if (unmappedChecked) rmapFreeFolioUnchecked(f);
  else rmapFreeFolio(f);
  k.forgetFolio();
}

/** folio_put_refs(folio, nr) with the free path on the last reference. Returns true when freed. */
export function putFolioRefs(k: Kernel, f: Folio, nr: number): boolean {
  if (!folioPutRefs(f, nr)) return false;
  freeFolioFinal(k, f);
  return true;
}

/** Wire the kernel's release hook (used by the swap package on its final folio_put). */
export function wireFreePath(k: Kernel): void {
  k.releaseFolio = (f: Folio): void => freeFolioFinal(k, f);
}
