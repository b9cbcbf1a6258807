import { measure, nonZero } from '@foliolab/ledger';
import { folioPutRefs, folioSubrange } from '@foliolab/folio-flags';
import { describe, expect, it } from 'vitest';
import { all, anonFolio, inCache, isDirty, makeRig, swapinFolio } from './test-fixtures.js';
import {
  EEXIST,
  ENOENT,
  __swapCacheDelFolio,
  checkSwapInvariants,
  folioAllocSwap,
  folioDupSwap,
  folioFreeSwap,
  folioPutSwap,
  folioSwapEntry,
  swapCacheAddFolio,
  swapCacheDelFolio,
  swapCacheGetFolio,
  swapCount,
  swapSlotInfo,
  swapSnapshot,
  swpEntry,
  type SwpEntry,
} from './index.js';

describe('the swap cache: references, PG_swapcache, shadows (folio-rmap-swap.md §3.4)', () => {
  it('adding at folio_alloc_swap takes nr references and NR_SWAPCACHE += nr; deleting gives them back', () => {
    const { mm, si } = makeRig();
    const f = anonFolio(mm, 4);
    folioAllocSwap(si, f);
    expect([mm.aux[f.head], swapSnapshot(si).nrSwapcache]).toEqual([17, 16]);
    const e = folioSwapEntry(f);
    folioDupSwap(si, all(f)); // 16 swap PTEs now reference the slots
    const m = measure(mm.ledger, () => swapCacheDelFolio(si, f, 0xabc));
    expect(m.result).toBe(false); // refcount 1 left: reclaim's isolation reference
    expect(nonZero(m.counts)).toEqual({
      LOCK: 1,
      UNLOCK: 1,
      SWAP_CLUSTER_OP: 1,
      SWAP_SLOT_UPDATE: 16,
      ATOMIC_RMW: 1, // folio_clear_swapcache
      ATOMIC_REF: 1, // folio_ref_sub(nr)
      PCPU_COUNTER: 2, // NR_FILE_PAGES, NR_SWAPCACHE
    });
    expect([mm.aux[f.head], swapSnapshot(si).nrSwapcache, folioSwapEntry(f), inCache(mm, f)]).toEqual([1, 0, 0, false]);
    // the slots stay in use, not cached, with the workingset shadow in their table words
    for (let i = 0; i < 16; i++) expect(swapSlotInfo(si, (e + i) as SwpEntry)).toMatchObject({ count: 1, cached: -1, shadow: 0xabc });
    expect(checkSwapInvariants(si)).toEqual([]);
  });

  it('deleting frees exactly the slots at count 0 (__swap_cache_del_folio)', () => {
    const { mm, si } = makeRig();
    const f = anonFolio(mm, 2);
    folioAllocSwap(si, f);
    const e = folioSwapEntry(f);
    folioDupSwap(si, all(f));
    folioPutSwap(si, all(f));
    folioDupSwap(si, folioSubrange(f, 0, 1));
    swapCacheDelFolio(si, f, 3);
    expect([0, 1, 2, 3].map((i) => swapSlotInfo(si, (e + i) as SwpEntry).shadow)).toEqual([3, 0, 0, 0]);
    expect(swapSnapshot(si).inusePages).toBe(1);
    expect(checkSwapInvariants(si)).toEqual([]);
  });

  it('__remove_mapping style removal leaves the refcount to the caller', () => {
    const { mm, si } = makeRig();
    const f = anonFolio(mm, 0);
    folioAllocSwap(si, f);
    __swapCacheDelFolio(si, f, 1);
    expect(mm.aux[f.head]).toBe(2);
    expect(inCache(mm, f)).toBe(false);
  });

  it('swap-in: bind a new folio to used, uncached slots and get the shadow back; −EEXIST / −ENOENT change nothing', () => {
    const { mm, si } = makeRig();
    const f = anonFolio(mm, 2);
    folioAllocSwap(si, f);
    const e = folioSwapEntry(f);
    expect(swapCacheAddFolio(si, swapinFolio(mm, 2), e)).toEqual({ err: -EEXIST, shadow: 0 });
    folioDupSwap(si, all(f));
    swapCacheDelFolio(si, f, 42);
    expect(swapCacheAddFolio(si, swapinFolio(mm, 2), swpEntry(0, 1500))).toEqual({ err: -ENOENT, shadow: 0 });
    const g = swapinFolio(mm, 2);
    expect(() => swapCacheAddFolio(si, g, (e + 1) as SwpEntry)).toThrow(/aligned/);
    expect(swapCacheAddFolio(si, g, e)).toEqual({ err: 0, shadow: 42 });
    expect([mm.aux[g.head], inCache(mm, g), folioSwapEntry(g)]).toEqual([5, true, e]);
    expect(swapSlotInfo(si, e)).toMatchObject({ cached: g.head, shadow: 0, count: 1 });
    expect(checkSwapInvariants(si)).toEqual([]);
  });

  it('swap_cache_get_folio takes a reference; a free slot has no folio', () => {
    const { mm, si } = makeRig();
    const f = anonFolio(mm, 0);
    folioAllocSwap(si, f);
    const got = swapCacheGetFolio(si, folioSwapEntry(f));
    expect(got?.head).toBe(f.head);
    expect(mm.aux[f.head]).toBe(3);
    folioPutRefs(got!, 1);
    expect(swapCacheGetFolio(si, swpEntry(0, 9))).toBeNull();
  });

  it('folio_free_swap refuses while a slot is referenced; with all counts 0 it removes the folio and marks it dirty', () => {
    const { mm, si } = makeRig();
    const f = anonFolio(mm, 4);
    folioAllocSwap(si, f);
    const e = folioSwapEntry(f);
    folioDupSwap(si, all(f));
    expect(folioFreeSwap(si, f)).toBe(false);
    expect(inCache(mm, f)).toBe(true);
    folioPutSwap(si, all(f)); // a read-fault swap-in leaves the folio cached (unmap-engine.md §5)
    // 7.2.13 mm/swapfile.c:folio_free_swap: folio_maybe_swapped reads the counts under rcu_read_lock
    // (no cluster lock); swap_cache_del_folio takes the cluster lock once, and the freed slots empty the
    // cluster: __swap_cluster_free_entries → free_cluster → move_cluster takes si->lock.
    const { result, counts } = measure(mm.ledger, () => folioFreeSwap(si, f));
    expect(result).toBe(true);
    expect([counts.LOCK, counts.UNLOCK, counts.SWAP_CLUSTER_OP]).toEqual([2, 2, 1]);
    expect([inCache(mm, f), isDirty(mm, f), mm.aux[f.head], swapCount(si, e)]).toEqual([false, true, 1, 0]);
    expect(swapSnapshot(si).inusePages).toBe(0);
    expect(folioFreeSwap(si, f)).toBe(false); // not in the swap cache any more
    expect(checkSwapInvariants(si)).toEqual([]);
  });
});
