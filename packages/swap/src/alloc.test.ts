import { FoliolabError, measure, nonZero } from '@foliolab/ledger';
import { __folioClearLocked, MAX_FOLIO_ORDER, type Folio } from '@foliolab/folio-flags';
import { describe, expect, it } from 'vitest';
import { anonFolio, inCache, makeRig } from './test-fixtures.js';
import {
  EAGAIN,
  ENOMEM,
  SwapDevice,
  checkSwapInvariants,
  countSwpoutFallback,
  folioAllocSwap,
  folioSwapEntry,
  swapCacheDelFolio,
  swapSnapshot,
  swpOffset,
  swpType,
} from './index.js';

const offsetOf = (f: Folio): number => swpOffset(folioSwapEntry(f));

describe('folio_alloc_swap: contiguous, aligned, one cluster (folio-rmap-swap.md §3.1, §3.2(b))', () => {
  it('orders 0..9: every allocation is nr-aligned, inside one 512-slot cluster, never the header slot', () => {
    const { mm, si } = makeRig({ nrPages: 8192, nrSlots: 8192 });
    for (let order = 0; order <= MAX_FOLIO_ORDER; order++) {
      const nr = 1 << order;
      for (let k = 0; k < 3; k++) {
        const f = anonFolio(mm, order);
        expect(folioAllocSwap(si, f)).toBe(0);
        const off = offsetOf(f);
        expect(swpType(folioSwapEntry(f))).toBe(0);
        expect(off).toBeGreaterThan(0);
        expect(off % nr).toBe(0);
        expect(Math.floor(off / 512)).toBe(Math.floor((off + nr - 1) / 512));
        // the swap cache binds the folio: PG_swapcache, folio->swap, nr references (§3.4)
        expect(inCache(mm, f)).toBe(true);
        expect(mm.aux[f.head]).toBe(1 + nr);
        for (let s = off; s < off + nr; s++) expect(si.cached[s]).toBe(f.head);
      }
      expect(checkSwapInvariants(si)).toEqual([]);
    }
    expect(swapSnapshot(si).nrSwapcache).toBe(3 * 1023);
  });

  it('order 0 starts in cluster 0 after the header; a large order takes a free cluster; the per-CPU hint continues it', () => {
    const { mm, si } = makeRig();
    const a = anonFolio(mm, 0);
    expect(folioAllocSwap(si, a)).toBe(0);
    expect(offsetOf(a)).toBe(1); // nonfull_clusters[0] holds cluster 0 (its bad header slot) at swapon
    const offs = [0, 1, 2].map(() => {
      const f = anonFolio(mm, 4);
      expect(folioAllocSwap(si, f)).toBe(0);
      return offsetOf(f);
    });
    expect(offs).toEqual([512, 528, 544]);
    const b = anonFolio(mm, 2);
    expect(folioAllocSwap(si, b)).toBe(0);
    expect(offsetOf(b)).toBe(1024); // another order gets its own cluster (cluster_is_usable)
    expect(swapSnapshot(si).pcpOffset.slice(0, 5)).toEqual([2, 0, 1028, 0, 560]);
  });

  it('charges one free-cluster allocation and one per-CPU-hint allocation as the v7.0 code paths do', () => {
    const { mm, si } = makeRig();
    const f = anonFolio(mm, 4);
    // slow path: nonfull[4] empty (si->lock), isolate a free cluster (si->lock + ci->lock),
    // bind 16 table words, ref_add, set swapcache, 2 stat + 2 usage atomics, relocate to frag[4] (si->lock)
    expect(nonZero(measure(mm.ledger, () => folioAllocSwap(si, f)).counts)).toEqual({
      LOCK: 4,
      UNLOCK: 4,
      SWAP_CLUSTER_OP: 1,
      SWAP_SLOT_UPDATE: 16,
      ATOMIC_REF: 1,
      ATOMIC_RMW: 3,
      PCPU_COUNTER: 2,
    });
    const g = anonFolio(mm, 4);
    expect(nonZero(measure(mm.ledger, () => folioAllocSwap(si, g)).counts)).toEqual({
      LOCK: 1,
      UNLOCK: 1,
      SWAP_CLUSTER_OP: 1,
      SWAP_SLOT_UPDATE: 16,
      ATOMIC_REF: 1,
      ATOMIC_RMW: 3,
      PCPU_COUNTER: 2,
    });
  });

  it('reuses a per-order nonfull cluster before taking a free one', () => {
    const { mm, si } = makeRig();
    const fs: Folio[] = [];
    for (let k = 0; k < 32; k++) {
      const f = anonFolio(mm, 4);
      expect(folioAllocSwap(si, f)).toBe(0);
      fs.push(f);
    }
    expect(offsetOf(fs[31]!)).toBe(512 + 31 * 16);
    let snap = swapSnapshot(si);
    expect([snap.clusters.full, snap.pcpOffset[4]]).toEqual([1, 0]); // full: hint invalidated
    const hole = offsetOf(fs[5]!);
    swapCacheDelFolio(si, fs[5]!); // counts are 0: the slots are freed
    snap = swapSnapshot(si);
    expect([snap.clusters.full, snap.clusters.nonfull[4]]).toEqual([0, 1]); // partial_free_cluster
    const g = anonFolio(mm, 4);
    expect(folioAllocSwap(si, g)).toBe(0);
    expect(offsetOf(g)).toBe(hole);
    expect(swapSnapshot(si).clusters.free).toBe(2); // no new cluster taken
    expect(checkSwapInvariants(si)).toEqual([]);
  });

  it('a cluster emptied by a free is not reused through the per-CPU hint: the next allocation takes the head of the free list', () => {
    // 7.2.13 mm/swapfile.c:__free_cluster frees the cluster's swap table and
    // appends it to free_clusters; swap_alloc_fast then finds the hint's
    // cluster !cluster_is_usable (no table, cluster_table_is_alloced) and
    // swap_alloc_slow → cluster_alloc_swap_entry takes nonfull[4] (empty),
    // then the head of free_clusters: cluster 2 (1024), not cluster 1 again.
    const { mm, si } = makeRig();
    const f = anonFolio(mm, 4);
    expect(folioAllocSwap(si, f)).toBe(0);
    expect(offsetOf(f)).toBe(512); // cluster 0 (header) is order 0's: the first 64K folio gets cluster 1
    expect(swapSnapshot(si).pcpOffset[4]).toBe(528);
    swapCacheDelFolio(si, f); // counts 0: the 16 slots are freed, cluster 1 is empty
    expect(swapSnapshot(si).clusters.free).toBe(3);
    const g = anonFolio(mm, 4);
    expect(folioAllocSwap(si, g)).toBe(0);
    expect(offsetOf(g)).toBe(1024);
    expect(swapSnapshot(si).pcpOffset[4]).toBe(1040);
    expect(checkSwapInvariants(si)).toEqual([]);
  });

  it('a cluster emptied by the reclaim of its last cache-only folio is given up; the allocation moves on to the free list', () => {
    // 7.2.13 mm/swapfile.c:cluster_reclaim_range: the reclaim frees the last
    // slots, __free_cluster frees the table and puts the cluster on the free
    // list (tail), so cluster_is_usable() fails (no table): usable = false,
    // alloc_swap_scan_cluster gives up; cluster_alloc_swap_entry then takes
    // the head of free_clusters, cluster 3 (1536).
    const { mm, si } = makeRig({ nrSlots: 2048 });
    const fs: Folio[] = [];
    for (let k = 0; k < 32; k++) {
      const f = anonFolio(mm, 4);
      expect(folioAllocSwap(si, f)).toBe(0);
      fs.push(f);
    }
    expect(swapSnapshot(si).pcpOffset[4]).toBe(0); // cluster 1 is full
    for (const f of fs.slice(1)) swapCacheDelFolio(si, f); // cluster 1 keeps the folio at 512 → nonfull[4]
    __folioClearLocked(fs[0]!); // cache-only (count 0) and unlocked: reclaimable
    for (let k = 0; k < 511; k++) expect(folioAllocSwap(si, anonFolio(mm, 0))).toBe(0); // cluster 0 full
    const pmd = anonFolio(mm, 9);
    expect(folioAllocSwap(si, pmd)).toBe(0);
    expect(offsetOf(pmd)).toBe(1024); // cluster 2
    expect(si.nrSwapPages * 2 < si.totalSwapPages).toBe(true); // vm_swap_full()
    const g = anonFolio(mm, 4);
    expect(folioAllocSwap(si, g)).toBe(0);
    expect(inCache(mm, fs[0]!)).toBe(false); // TTRS_ANYWAY reclaimed it
    expect(offsetOf(g)).toBe(1536);
    expect(checkSwapInvariants(si)).toEqual([]);
  });

  it('fails with −ENOMEM, changing nothing, when no aligned run is free; the caller counts the fallback', () => {
    // 1024 slots = cluster 0 (header, order 0) + cluster 1. A PMD folio fills cluster 1.
    const { mm, si } = makeRig({ nrSlots: 1024 });
    const big = anonFolio(mm, 9);
    expect(folioAllocSwap(si, big)).toBe(0);
    expect(offsetOf(big)).toBe(512);
    // cluster 0 has 511 free slots, but they belong to order 0: no order-4 run is usable.
    const f = anonFolio(mm, 4);
    const before = swapSnapshot(si);
    expect(folioAllocSwap(si, f)).toBe(-ENOMEM);
    expect(inCache(mm, f)).toBe(false);
    expect(folioSwapEntry(f)).toBe(0);
    expect(mm.aux[f.head]).toBe(1);
    const after = swapSnapshot(si);
    expect([after.nrSwapcache, after.inusePages, after.nrSwapPages]).toEqual([
      before.nrSwapcache,
      before.inusePages,
      before.nrSwapPages,
    ]);
    countSwpoutFallback(si, 4);
    countSwpoutFallback(si, 9);
    const s = swapSnapshot(si);
    expect(s.swpoutFallback[4]).toBe(1);
    expect(s.swpoutFallback[9]).toBe(1);
    expect(s.thpSwpoutFallback).toBe(1); // only the PMD-sized one
    // the split pages (order 0) still fit
    const small = anonFolio(mm, 0);
    expect(folioAllocSwap(si, small)).toBe(0);
    expect(offsetOf(small)).toBeLessThan(512);
    expect(checkSwapInvariants(si)).toEqual([]);
  });

  it('a fragmented device: every other order-0 slot freed leaves no order-1 run', () => {
    const { mm, si } = makeRig({ nrSlots: 1024, nrPages: 2048 });
    const fs: Folio[] = [];
    for (let k = 0; k < 1023; k++) {
      const f = anonFolio(mm, 0);
      expect(folioAllocSwap(si, f)).toBe(0);
      fs.push(f);
    }
    expect(swapSnapshot(si).nrSwapPages).toBe(0);
    for (const f of fs) if (offsetOf(f) % 2 === 0) swapCacheDelFolio(si, f);
    expect(swapSnapshot(si).nrSwapPages).toBe(511);
    const pair = anonFolio(mm, 1);
    expect(folioAllocSwap(si, pair)).toBe(-ENOMEM);
    expect(checkSwapInvariants(si)).toEqual([]);
    const one = anonFolio(mm, 0);
    expect(folioAllocSwap(si, one)).toBe(0);
    expect(offsetOf(one) % 2).toBe(0);
  });

  it('with swap more than half full, the scan reclaims cache-only slots in its way (cluster_scan_range / cluster_reclaim_range)', () => {
    for (const full of [false, true]) {
      const { mm, si } = makeRig({ nrSlots: 1024 });
      const fs: Folio[] = [];
      for (let k = 0; k < 32; k++) {
        const f = anonFolio(mm, 4);
        expect(folioAllocSwap(si, f)).toBe(0);
        fs.push(f);
      }
      swapCacheDelFolio(si, fs[3]!); // a hole at 560; cluster 1 goes to nonfull[4]
      for (const f of fs) __folioClearLocked(f); // the rest: cache-only (counts 0), unlocked
      const fillers = full ? 20 : 0; // order-0 folios in cluster 0 push usage past half
      for (let k = 0; k < fillers; k++) expect(folioAllocSwap(si, anonFolio(mm, 0))).toBe(0);
      expect(si.nrSwapPages * 2 < si.totalSwapPages).toBe(full);
      const g = anonFolio(mm, 4);
      expect(folioAllocSwap(si, g)).toBe(0);
      expect(offsetOf(g)).toBe(full ? 512 : 560);
      expect(inCache(mm, fs[0]!)).toBe(!full); // TTRS_ANYWAY reclaimed the folio at 512
      expect(checkSwapInvariants(si)).toEqual([]);
    }
  });

  it('without CONFIG_THP_SWAP a large folio gets −EAGAIN and clusters are 256 slots', () => {
    const { mm, si } = makeRig({ thpSwap: false });
    expect(si.clusterSize).toBe(256);
    const f = anonFolio(mm, 2);
    expect(folioAllocSwap(si, f)).toBe(-EAGAIN);
    expect(inCache(mm, f)).toBe(false);
    const g = anonFolio(mm, 0);
    expect(folioAllocSwap(si, g)).toBe(0);
    expect(checkSwapInvariants(si)).toEqual([]);
  });

  it('a swapfile that is not a block device takes no large allocation', () => {
    const { mm, si } = makeRig({ blockDevice: false });
    expect(folioAllocSwap(si, anonFolio(mm, 4))).toBe(-ENOMEM);
    expect(folioAllocSwap(si, anonFolio(mm, 0))).toBe(0);
  });

  it('rejects misuse before changing anything', () => {
    const { mm, si } = makeRig();
    const f = anonFolio(mm, 2);
    __folioClearLocked(f);
    expect(() => folioAllocSwap(si, f)).toThrow(/not locked/);
    const g = anonFolio(mm, 2);
    expect(folioAllocSwap(si, g)).toBe(0);
    expect(() => folioAllocSwap(si, g)).toThrow(/not in the swap cache/);
    const other = makeRig();
    expect(() => folioAllocSwap(other.si, anonFolio(mm, 0))).toThrow(FoliolabError);
    expect(() => new SwapDevice({ memmap: mm, nrSlots: 1000 })).toThrow(/multiple of 512/);
    expect(() => new SwapDevice({ memmap: mm, nrSlots: 512, type: 24 })).toThrow(/type 24/);
    expect(checkSwapInvariants(si)).toEqual([]);
  });
});
