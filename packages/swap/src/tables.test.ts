import { describe, expect, it } from 'vitest';
import { measure } from '@foliolab/ledger';
import { folioSubrange } from '@foliolab/folio-flags';
import { all, anonFolio, makeRig } from './test-fixtures.js';
import {
  __swapCacheDelFolio,
  checkSwapInvariants,
  folioAllocSwap,
  folioDupSwap,
  folioDupSwapUnchecked,
  folioPutSwap,
  folioSwapEntry,
  swapCacheFolioAt,
  swapCountAt,
  swapDataAt,
  swapMemoryBytes,
  swapPutEntriesDirect,
  swapWriteout,
  swapZeroAt,
  swpOffset,
} from './index.js';

// Dynamic swap tables (mm/swap_table.h, v6.18+): a cluster's table exists
// while the cluster is in use (swap_cluster_alloc_table / swap_cluster_free_table).
describe('per-cluster swap tables: allocated with the first slot, freed with the last', () => {
  it('an empty device holds only the header cluster table, the zeromap bitmap and cluster info', () => {
    const { si } = makeRig({ nrSlots: 512 * 64 });
    const m = swapMemoryBytes(si);
    expect(m.tables + m.counts + m.data).toBe(512 * 9); // one pooled table: 4 + 1 + 4 B per slot
    expect(m.zeromap).toBe((512 * 64) / 8);
    expect(m.total).toBeLessThan(0.5 * 512 * 64); // under half a byte per slot
    expect(si.ciBase[0]).toBeGreaterThanOrEqual(0);
    for (let c = 1; c < si.nrClusters; c++) expect(si.ciBase[c]).toBe(-1);
  });

  it('swap-out, accessors, and release: the table goes back when the cluster is empty again', () => {
    const { mm, si } = makeRig();
    const f = anonFolio(mm, 4, 100);
    expect(folioAllocSwap(si, f)).toBe(0);
    const off = swpOffset(folioSwapEntry(f));
    const c = off >>> si.clusterShift;
    expect(c).toBe(1);
    expect(si.ciBase[c]).toBeGreaterThanOrEqual(0);
    expect(si.tbInUse).toBe(2);
    folioDupSwap(si, all(f));
    swapWriteout(si, f); // unlocks
    mm.flags[f.head]! |= 1; // PG_locked (bit 0) again, as reclaim's trylock
    __swapCacheDelFolio(si, f);
    for (let i = 0; i < 16; i++) {
      expect(swapCountAt(si, off + i)).toBe(1);
      expect(swapCacheFolioAt(si, off + i)).toBe(-1);
      expect(swapZeroAt(si, off + i)).toBe(false);
      expect(swapDataAt(si, off + i)).toBe(100 + i);
    }
    expect(checkSwapInvariants(si)).toEqual([]);
    swapPutEntriesDirect(si, folioSwapEntryOf(si.type, off), 16);
    expect(si.ciBase[c]).toBe(-1);
    expect(si.tbInUse).toBe(1);
    expect(swapDataAt(si, off)).toBe(0);
    expect(checkSwapInvariants(si)).toEqual([]);
  });

  it('the pool holds at most twice the tables in use while growing, less than four times (or 8) while shrinking', () => {
    const { mm, si } = makeRig({ nrPages: 16384, nrSlots: 512 * 40 });
    const folios = [];
    for (let k = 0; k < 20; k++) {
      const f = anonFolio(mm, 9, 0);
      expect(folioAllocSwap(si, f)).toBe(0);
      folios.push(f);
      expect(si.tbCapacity).toBeLessThanOrEqual(2 * si.tbInUse);
    }
    expect(checkSwapInvariants(si)).toEqual([]);
    for (const f of folios) {
      __swapCacheDelFolio(si, f); // counts 0: the slots are freed, the cluster empties
      expect(si.tbCapacity).toBeLessThanOrEqual(Math.max(8, 4 * si.tbInUse - 1));
    }
    expect(si.tbInUse).toBe(1);
    expect(checkSwapInvariants(si)).toEqual([]);
  });
});

function folioSwapEntryOf(type: number, off: number): ReturnType<typeof folioSwapEntry> {
  return ((type << 26) | off) as ReturnType<typeof folioSwapEntry>;
}

// The pool grows by chunks (no copy: a table in use keeps its storage) and
// shrinks by dropping its last chunk after moving the tables in use below it.
describe('swap-table pool chunks', () => {
  it('growth leaves tables in use where they are; shrinking moves them with their contents', () => {
    const { mm, si } = makeRig({ nrPages: 16384, nrSlots: 512 * 40 });
    const folios = [];
    const views: unknown[] = [];
    for (let k = 0; k < 20; k++) {
      const f = anonFolio(mm, 9, 1000 * (k + 1));
      expect(folioAllocSwap(si, f)).toBe(0);
      // One reference per slot, as the unmap leaves them: with all counts 0, 7.2.13 swap_writeout would
      // folio_free_swap() the folio instead of writing it.
      expect(folioDupSwap(si, all(f))).toBe(0);
      swapWriteout(si, f); // data tokens in the table's data half; unlocks
      mm.flags[f.head]! |= 1;
      folios.push(f);
      const c = swpOffset(folioSwapEntry(f)) >>> si.clusterShift;
      views.push(si.ciMap[c]);
      for (let j = 0; j <= k; j++) {
        const cj = swpOffset(folioSwapEntry(folios[j]!)) >>> si.clusterShift;
        expect(si.ciMap[cj]).toBe(views[j]); // never moved by a growth
      }
    }
    expect(checkSwapInvariants(si)).toEqual([]);
    for (let k = 0; k < 18; k++) {
      folioPutSwap(si, all(folios[k]!));
      __swapCacheDelFolio(si, folios[k]!); // counts 0: freed
    }
    expect(si.tbCapacity).toBeLessThan(32);
    for (let k = 18; k < 20; k++) {
      const f = folios[k]!;
      const off = swpOffset(folioSwapEntry(f));
      for (let i = 0; i < 512; i += 97) {
        expect(swapCacheFolioAt(si, off + i)).toBe(f.head);
        expect(swapDataAt(si, off + i)).toBe(1000 * (k + 1) + i);
      }
    }
    expect(checkSwapInvariants(si)).toEqual([]);
  });
});

// folio_dup_swap of one slot (the per-PTE unmap's call): the inline path
// charges exactly what the general path does.
describe('folioDupSwapUnchecked, one slot', () => {
  it('charges one cluster-lock round trip and one slot update, as folioDupSwap', () => {
    const a = makeRig();
    const b = makeRig();
    const fa = anonFolio(a.mm, 4, 100);
    const fb = anonFolio(b.mm, 4, 100);
    expect(folioAllocSwap(a.si, fa)).toBe(0);
    expect(folioAllocSwap(b.si, fb)).toBe(0);
    for (let round = 0; round < 16; round++) {
      // past the inline limit (countMax − 1 = 14) both take the extend_table path
      const ra = measure(a.mm.ledger, () => folioDupSwapUnchecked(a.si, fa, 3, 1));
      const rb = measure(b.mm.ledger, () => folioDupSwap(b.si, folioSubrange(fb, 3, 1)));
      expect(ra.result).toBe(rb.result);
      expect(ra.counts).toEqual(rb.counts);
      const off = swpOffset(folioSwapEntry(fa)) + 3;
      expect(swapCountAt(a.si, off)).toBe(round + 1);
    }
    expect(checkSwapInvariants(a.si)).toEqual([]);
  });
});
