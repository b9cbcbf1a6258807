import { FoliolabError, measure, nonZero } from '@foliolab/ledger';
import { F_LARGE_MAPCOUNT, __folioClearLocked, folioSubrange, folioTestSetWriteback, type Folio } from '@foliolab/folio-flags';
import { describe, expect, it } from 'vitest';
import { all, anonFolio, inCache, isDirty, makeRig, type Rig } from './test-fixtures.js';
import {
  checkSwapInvariants,
  folioAllocSwap,
  folioDupSwap,
  folioPutSwap,
  folioSwapEntry,
  swapCacheDelFolio,
  swapCount,
  swapDupEntryDirect,
  swapPutEntriesDirect,
  swapSlotInfo,
  swapSnapshot,
  swpEntry,
  swpOffset,
  type SwpEntry,
} from './index.js';

function cachedFolio(rig: Rig, order: number): { f: Folio; e: SwpEntry } {
  const f = anonFolio(rig.mm, order);
  expect(folioAllocSwap(rig.si, f)).toBe(0);
  return { f, e: folioSwapEntry(f) };
}

const counts = (rig: Rig, e: SwpEntry, nr: number): number[] =>
  Array.from({ length: nr }, (_, i) => swapCount(rig.si, (e + i) as SwpEntry));

describe('folio_dup_swap / folio_put_swap, batched (folio-rmap-swap.md §3.3 [proposal])', () => {
  it('a whole-folio dup is one cluster-lock round trip and nr slot updates', () => {
    const rig = makeRig();
    const { f, e } = cachedFolio(rig, 4);
    const m = measure(rig.mm.ledger, () => folioDupSwap(rig.si, all(f)));
    expect(m.result).toBe(0);
    expect(nonZero(m.counts)).toEqual({ LOCK: 1, UNLOCK: 1, SWAP_CLUSTER_OP: 1, SWAP_SLOT_UPDATE: 16 });
    expect(counts(rig, e, 16)).toEqual(new Array<number>(16).fill(1));
    const p = measure(rig.mm.ledger, () => folioPutSwap(rig.si, folioSubrange(f, 4, 8)));
    expect(nonZero(p.counts)).toEqual({ LOCK: 1, UNLOCK: 1, SWAP_CLUSTER_OP: 1, SWAP_SLOT_UPDATE: 8 });
    expect(counts(rig, e, 16)).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
    expect(checkSwapInvariants(rig.si)).toEqual([]);
  });

  it('put never frees a cached slot: at count 0 it stays bound to the folio (§3.2(b) lazy free)', () => {
    const rig = makeRig();
    const { f, e } = cachedFolio(rig, 2);
    folioDupSwap(rig.si, all(f));
    const inuse = swapSnapshot(rig.si).inusePages;
    folioPutSwap(rig.si, all(f));
    for (let i = 0; i < 4; i++) {
      const s = swapSlotInfo(rig.si, (e + i) as SwpEntry);
      expect([s.count, s.cached]).toEqual([0, f.head]);
    }
    expect(swapSnapshot(rig.si).inusePages).toBe(inuse);
    expect(checkSwapInvariants(rig.si)).toEqual([]);
  });

  it('both need the folio locked and in the swap cache; put needs count ≥ 1; a rejected call changes nothing', () => {
    const rig = makeRig();
    const { f, e } = cachedFolio(rig, 2);
    expect(() => folioPutSwap(rig.si, all(f))).toThrow(/count 0/);
    expect(counts(rig, e, 4)).toEqual([0, 0, 0, 0]);
    __folioClearLocked(f);
    expect(() => folioDupSwap(rig.si, all(f))).toThrow(/not locked/);
    const g = anonFolio(rig.mm, 2);
    expect(() => folioDupSwap(rig.si, all(g))).toThrow(/not in the swap cache/);
    expect(checkSwapInvariants(rig.si)).toEqual([]);
  });
});

describe('swap_dup_entry_direct / swap_put_entries_direct (fork, zap: §3.2(b), unmap-engine.md §4)', () => {
  /** A folio swapped out: counts 1 (one swap PTE each), removed from the cache with a shadow. */
  function swappedOut(rig: Rig, order: number, shadow = 7): SwpEntry {
    const { f, e } = cachedFolio(rig, order);
    folioDupSwap(rig.si, all(f));
    swapCacheDelFolio(rig.si, f, shadow);
    return e;
  }

  it('fork: +1 on a slot with count ≥ 1; a free slot is misuse', () => {
    const rig = makeRig();
    const e = swappedOut(rig, 0);
    expect(swapDupEntryDirect(rig.si, e)).toBe(0);
    expect(swapCount(rig.si, e)).toBe(2);
    expect(() => swapDupEntryDirect(rig.si, swpEntry(0, 1000))).toThrow(/count 0/);
    expect(checkSwapInvariants(rig.si, { swapPteRefs: new Map([[e, 2]]) })).toEqual([]);
  });

  it('zap of an uncached range frees slots reaching 0 with their shadows; the emptied cluster returns to the free list', () => {
    const rig = makeRig();
    const e = swappedOut(rig, 4, 99);
    expect(swapSlotInfo(rig.si, e).shadow).toBe(99);
    swapDupEntryDirect(rig.si, e); // page 0 shared with a child
    const free0 = swapSnapshot(rig.si).clusters.free;
    const m = measure(rig.mm.ledger, () => swapPutEntriesDirect(rig.si, e, 16));
    expect(m.counts.SWAP_CLUSTER_OP).toBe(1);
    expect(counts(rig, e, 16)).toEqual([1, ...new Array<number>(15).fill(0)]);
    expect(swapSlotInfo(rig.si, (e + 1) as SwpEntry)).toMatchObject({ count: 0, shadow: 0, cached: -1 });
    expect(swapSnapshot(rig.si).inusePages).toBe(1);
    swapPutEntriesDirect(rig.si, e, 1);
    expect(swapSnapshot(rig.si).clusters.free).toBe(free0 + 1);
    expect(checkSwapInvariants(rig.si)).toEqual([]);
  });

  it('a range crossing clusters is put one cluster at a time', () => {
    const rig = makeRig();
    const a = cachedFolio(rig, 9);
    const b = cachedFolio(rig, 9);
    expect(swpOffset(b.e)).toBe(swpOffset(a.e) + 512);
    for (const x of [a, b]) {
      folioDupSwap(rig.si, all(x.f));
      swapCacheDelFolio(rig.si, x.f);
    }
    const m = measure(rig.mm.ledger, () => swapPutEntriesDirect(rig.si, (a.e + 500) as SwpEntry, 24));
    expect(m.counts.SWAP_CLUSTER_OP).toBe(2);
    expect(checkSwapInvariants(rig.si)).toEqual([]);
  });

  it('zap of the last references of an unmapped, unlocked cached folio not under writeback reclaims its swap cache (__try_to_reclaim_swap)', () => {
    const rig = makeRig();
    const { f, e } = cachedFolio(rig, 4);
    folioDupSwap(rig.si, all(f));
    rig.mm.aux[f.head]! += 1; // a reference of our own, beside isolation's and the cache's
    __folioClearLocked(f);
    swapPutEntriesDirect(rig.si, e, 16);
    expect(inCache(rig.mm, f)).toBe(false);
    expect(isDirty(rig.mm, f)).toBe(true); // folio_free_swap marks it dirty: memory holds the only copy
    expect(rig.mm.aux[f.head]).toBe(2);
    expect(folioSwapEntry(f)).toBe(0);
    expect(swapSnapshot(rig.si).inusePages).toBe(0);
    expect(checkSwapInvariants(rig.si)).toEqual([]);
  });

  it('the swap cache stays when the folio is locked, mapped (swap not full) or under writeback', () => {
    for (const variant of ['locked', 'mapped', 'writeback'] as const) {
      const rig = makeRig();
      const { f, e } = cachedFolio(rig, 2);
      folioDupSwap(rig.si, all(f));
      if (variant !== 'locked') __folioClearLocked(f);
      if (variant === 'mapped') f.fa[f.fb + F_LARGE_MAPCOUNT] = 0;
      if (variant === 'writeback') folioTestSetWriteback(f);
      swapPutEntriesDirect(rig.si, e, 4);
      expect(inCache(rig.mm, f)).toBe(true);
      expect(counts(rig, e, 4)).toEqual([0, 0, 0, 0]);
      expect(checkSwapInvariants(rig.si)).toEqual([]);
    }
  });

  it('when swap is more than half full a mapped folio is reclaimed too (TTRS_FULL)', () => {
    const rig = makeRig({ nrSlots: 1024 });
    const { f, e } = cachedFolio(rig, 9); // 512 of 1023 good slots: vm_swap_full()
    folioDupSwap(rig.si, folioSubrange(f, 0, 1));
    __folioClearLocked(f);
    f.fa[f.fb + F_LARGE_MAPCOUNT] = 510;
    rig.mm.aux[f.head]! += 1;
    swapPutEntriesDirect(rig.si, e, 1);
    expect(inCache(rig.mm, f)).toBe(false);
    expect(checkSwapInvariants(rig.si)).toEqual([]);
  });

  it('rejects puts of slots at count 0 or outside the device before changing anything', () => {
    const rig = makeRig();
    const e = swappedOut(rig, 1);
    expect(() => swapPutEntriesDirect(rig.si, e, 3)).toThrow(/count 0/);
    expect(counts(rig, e, 2)).toEqual([1, 1]);
    expect(() => swapPutEntriesDirect(rig.si, swpEntry(0, 2047), 2)).toThrow(FoliolabError);
    expect(() => swapPutEntriesDirect(rig.si, swpEntry(1, 5), 1)).toThrow(/type 1/);
  });
});
