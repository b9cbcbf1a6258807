import { measure } from '@foliolab/ledger';
import { folioSubrange, folioTrylock, type Folio } from '@foliolab/folio-flags';
import { describe, expect, it } from 'vitest';
import { all, anonFolio, inCache, isDirty, makeRig, swapinFolio, type Rig } from './test-fixtures.js';
import {
  __swapCacheDelFolio,
  checkSwapInvariants,
  folioAllocSwap,
  folioDupSwap,
  folioPutSwap,
  folioSwapEntry,
  swapCacheAddFolio,
  swapCount,
  swapReadFolio,
  swapDump,
  swapSnapshot,
  swapWriteout,
  swpOffset,
  type SwpEntry,
} from './index.js';

/*
 * The swap side of the unmap-engine.md §7 scenarios on one 64K folio:
 *
 *   0123456789abcdef   one char per 4K page
 *   ssssssssssssssss   s = swap PTE → slot base + i (count = number of mms)
 */

const counts = (r: Rig, e: SwpEntry): number[] => Array.from({ length: 16 }, (_, i) => swapCount(r.si, (e + i) as SwpEntry));

/** shrink_folio_list for one 64K folio mapped by `mms` mms: allocate, unmap (per PTE or batched), write out, __remove_mapping. */
function pageout(r: Rig, f: Folio, mms: number, batched: boolean): { e: SwpEntry; clusterOps: number } {
  expect(folioAllocSwap(r.si, f)).toBe(0);
  const e = folioSwapEntry(f);
  const m = measure(r.mm.ledger, () => {
    for (let mm = 0; mm < mms; mm++) {
      if (batched) expect(folioDupSwap(r.si, all(f))).toBe(0);
      else for (let i = 0; i < 16; i++) expect(folioDupSwap(r.si, folioSubrange(f, i, 1))).toBe(0);
    }
  });
  swapWriteout(r.si, f);
  folioTrylock(f);
  __swapCacheDelFolio(r.si, f, 0x5a);
  return { e, clusterOps: m.counts.SWAP_CLUSTER_OP };
}

describe('unmap-engine.md §7 scenarios, swap side', () => {
  it('#2 / #3 MADV_PAGEOUT of an exclusive 64K folio: 16 aligned slots at count 1; 16 cluster ops today, 1 batched', () => {
    const today = makeRig();
    const batched = makeRig();
    const a = pageout(today, anonFolio(today.mm, 4), 1, false);
    const b = pageout(batched, anonFolio(batched.mm, 4), 1, true);
    expect([a.clusterOps, b.clusterOps]).toEqual([16, 1]);
    expect(swpOffset(a.e) % 16).toBe(0);
    expect(counts(today, a.e)).toEqual(new Array<number>(16).fill(1));
    expect(counts(batched, b.e)).toEqual(counts(today, a.e));
    expect(swapSnapshot(today.si)).toEqual(batched.si.snapshot());
    // the state-dump view: 16 slots at count 1, not cached (the folio left the cache at __remove_mapping)
    expect(swapDump(today.si)).toEqual({
      slots: Array.from({ length: 16 }, (_, i) => ({ offset: swpOffset(a.e) + i, count: 1, cached: null })),
      swapCache: [],
    });
    expect(checkSwapInvariants(today.si)).toEqual([]);
  });

  it('#5 after fork, proactive reclaim: every slot at count 2', () => {
    const r = makeRig();
    const { e } = pageout(r, anonFolio(r.mm, 4), 2, true);
    expect(counts(r, e)).toEqual(new Array<number>(16).fill(2));
  });

  it('#6 read-fault swap-in (zram, mTHP): one 64K folio, counts 0, the folio stays in the swap cache', () => {
    // 0123456789abcdef
    // 0000000000000000   counts after the swap-in; every slot still cached by the new folio
    const r = makeRig();
    const { e } = pageout(r, anonFolio(r.mm, 4), 1, true);
    const g = swapinFolio(r.mm, 4);
    expect(swapCacheAddFolio(r.si, g, e).err).toBe(0);
    expect(swapReadFolio(r.si, g)).toBe(0);
    folioTrylock(g);
    folioPutSwap(r.si, all(g)); // do_swap_page: folio_put_swap(folio, NULL); no folio_free_swap on a read fault
    expect(counts(r, e)).toEqual(new Array<number>(16).fill(0));
    expect([inCache(r.mm, g), isDirty(r.mm, g)]).toEqual([true, false]);
    expect(swapDump(r.si).swapCache).toEqual([{ pfn: g.head, offset: swpOffset(e), nr: 16 }]);
    expect(checkSwapInvariants(r.si)).toEqual([]);
  });

  it('#7 child swap-in after #5: the counts fall to 1 (the parent still has its swap PTEs)', () => {
    const r = makeRig();
    const { e } = pageout(r, anonFolio(r.mm, 4), 2, true);
    const g = swapinFolio(r.mm, 4);
    swapCacheAddFolio(r.si, g, e);
    swapReadFolio(r.si, g);
    folioTrylock(g);
    folioPutSwap(r.si, all(g));
    expect(counts(r, e)).toEqual(new Array<number>(16).fill(1));
    const parentPtes = new Map(Array.from({ length: 16 }, (_, i) => [e + i, 1] as [number, number]));
    expect(checkSwapInvariants(r.si, { swapPteRefs: parentPtes })).toEqual([]);
  });
});
