import { measure } from '@foliolab/ledger';
import { FLAG, folioTrylock, type Folio } from '@foliolab/folio-flags';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { all, anonFolio, isLocked, makeRig, release, swapinFolio, type Rig } from './test-fixtures.js';
import {
  EIO,
  checkSwapInvariants,
  folioAllocSwap,
  folioDupSwap,
  folioSwapEntry,
  swapCacheAddFolio,
  swapCacheDelFolio,
  swapPutEntriesDirect,
  swapReadFolio,
  swapSlotInfo,
  swapSnapshot,
  swapWriteout,
  swapZeromapBatch,
  swapZeromapState,
  type SwpEntry,
} from './index.js';

const tokens = (r: Rig, f: Folio): number[] => Array.from(r.mm.token!.subarray(f.head, f.head + f.nr));

/** Reclaim of one folio: allocate, unmap (dup every slot), write out, drop from the cache. Returns the entry. */
function pageout(r: Rig, f: Folio, shadow = 1): SwpEntry {
  expect(folioAllocSwap(r.si, f)).toBe(0);
  folioDupSwap(r.si, all(f));
  expect(swapWriteout(r.si, f)).toBe(0);
  expect(isLocked(r.mm, f)).toBe(false); // swap_writeout returns with the folio unlocked
  expect(folioTrylock(f)).toBe(true);
  const e = folioSwapEntry(f);
  swapCacheDelFolio(r.si, f, shadow);
  release(r.mm, f);
  return e;
}

/** Swap-in of `order` pages at `e` into a fresh folio. */
function swapin(r: Rig, e: SwpEntry, order: number): { f: Folio; err: number } {
  const f = swapinFolio(r.mm, order);
  expect(swapCacheAddFolio(r.si, f, e).err).toBe(0);
  return { f, err: swapReadFolio(r.si, f) };
}

describe('swap_writeout of a folio nobody references (7.2.13 mm/page_io.c:swap_writeout)', () => {
  it('folio_free_swap first: all counts 0 → out of the swap cache, dirty, unlocked, slots free, nothing written', () => {
    // `if (folio_free_swap(folio)) goto out_unlock;`: folio_maybe_swapped() finds no count, so
    // swap_cache_del_folio() frees the slots and folio_set_dirty() keeps the only copy in memory.
    const r = makeRig();
    const f = anonFolio(r.mm, 4);
    expect(folioAllocSwap(r.si, f)).toBe(0);
    const e = folioSwapEntry(f);
    expect(swapWriteout(r.si, f)).toBe(0);
    expect(isLocked(r.mm, f)).toBe(false);
    expect((r.mm.flags[f.head]! & FLAG.swapcache.mask) !== 0).toBe(false);
    expect((r.mm.flags[f.head]! & FLAG.dirty.mask) !== 0).toBe(true);
    expect(r.mm.aux[f.head]).toBe(1); // the nr cache references were dropped
    expect(swapSlotInfo(r.si, e)).toMatchObject({ count: 0, cached: -1 });
    const s = swapSnapshot(r.si);
    expect([s.inusePages, s.pswpout, s.swpoutZero, s.nrSwapcache]).toEqual([0, 0, 0, 0]);
    expect(checkSwapInvariants(r.si)).toEqual([]);
  });
});

describe('data tokens through swap (DESIGN.md "Data tokens"; unmap-engine.md §5)', () => {
  it('write out → read in gives back the same tokens, for any order and contents', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }).chain((order) => fc.tuple(fc.constant(order), fc.array(fc.nat({ max: 5 }), { minLength: 1 << order, maxLength: 1 << order }))),
        ([order, toks]) => {
          const r = makeRig();
          const f = anonFolio(r.mm, order);
          r.mm.token!.set(toks, f.head);
          const e = pageout(r, f);
          const { f: g, err } = swapin(r, e, order);
          expect(err).toBe(0);
          expect(tokens(r, g)).toEqual(toks);
          expect(checkSwapInvariants(r.si)).toEqual([]);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('swap_writeout counts swpout[order], thp_swpout for a PMD folio, PSWPOUT per page; swap_read_folio PSWPIN and swpin[order]', () => {
    const r = makeRig({ nrPages: 8192 });
    pageout(r, anonFolio(r.mm, 4));
    const e = pageout(r, anonFolio(r.mm, 9));
    const s = swapSnapshot(r.si);
    expect([s.swpout[4], s.swpout[9], s.thpSwpout, s.pswpout, s.swpoutZero]).toEqual([1, 1, 1, 528, 0]);
    swapin(r, e, 9);
    const t = swapSnapshot(r.si);
    expect([t.pswpin, t.swpin[9]]).toEqual([512, 1]);
  });

  it('a zero-filled folio only sets zeromap bits: no I/O, swpout_zero += nr; it reads back as zeros (swpin_zero)', () => {
    const r = makeRig();
    const f = anonFolio(r.mm, 4, 0);
    expect(folioAllocSwap(r.si, f)).toBe(0);
    folioDupSwap(r.si, all(f));
    const m = measure(r.mm.ledger, () => swapWriteout(r.si, f));
    expect(m.counts.LOOP_ITER).toBe(16); // is_folio_zero_filled reads every page
    const e = folioSwapEntry(f);
    folioTrylock(f);
    swapCacheDelFolio(r.si, f);
    release(r.mm, f);
    const s = swapSnapshot(r.si);
    expect([s.swpoutZero, s.pswpout, s.swpout[4]]).toEqual([16, 0, 0]);
    expect(swapZeromapState(r.si, e, 16)).toBe('allZero');
    const { f: g, err } = swapin(r, e, 4);
    expect(err).toBe(0);
    expect(tokens(r, g)).toEqual(new Array<number>(16).fill(0));
    expect([swapSnapshot(r.si).swpinZero, swapSnapshot(r.si).pswpin]).toEqual([16, 0]);
  });

  it('the zero test is per folio: a folio with one non-zero page is written whole, with no zeromap bit', () => {
    const r = makeRig();
    const f = anonFolio(r.mm, 2, 0);
    r.mm.token![f.head + 2] = 9;
    const m = measure(r.mm.ledger, () => pageout(r, f));
    expect(m.counts.LOOP_ITER).toBe(3); // the scan stops at the first non-zero page
    const e = m.result;
    expect(swapZeromapState(r.si, e, 4)).toBe('noneZero');
    expect(swapSnapshot(r.si).pswpout).toBe(4);
    expect(swapin(r, e, 2).f.head).toBeGreaterThanOrEqual(0);
  });

  it('swap_zeromap_batch: consistent run length and the first bit; a mixed large swap-in fails with −EIO', () => {
    const r = makeRig();
    const zero = anonFolio(r.mm, 2, 0);
    const data = anonFolio(r.mm, 2, 50);
    const ez = pageout(r, zero);
    const ed = pageout(r, data);
    expect(ed).toBe(ez + 4); // the order-2 cluster hands out neighbours
    expect(ez % 8).toBe(0);
    expect(swapZeromapBatch(r.si, ez, 8)).toEqual({ nr: 4, isZeromap: true });
    expect(swapZeromapBatch(r.si, ed, 4)).toEqual({ nr: 4, isZeromap: false });
    expect(swapZeromapBatch(r.si, ez, 1)).toEqual({ nr: 1, isZeromap: true });
    expect(swapZeromapState(r.si, ez, 8)).toBe('mixed');
    // can_swapin_thp would refuse; swap_read_folio of a mixed order-3 folio sigbuses
    const { f, err } = swapin(r, ez, 3);
    expect(err).toBe(-EIO);
    expect(isLocked(r.mm, f)).toBe(false);
    expect((r.mm.flags[f.head]! & FLAG.uptodate.mask) !== 0).toBe(false); // PG_uptodate not set
    // the fallback: order-2 folios read fine
    folioTrylock(f);
    swapCacheDelFolio(r.si, f);
    release(r.mm, f);
    expect(swapin(r, ez, 2).err).toBe(0);
    expect(checkSwapInvariants(r.si)).toEqual([]);
  });

  it('freeing a slot clears its zeromap bit and data', () => {
    const r = makeRig();
    const ez = pageout(r, anonFolio(r.mm, 1, 0));
    const ed = pageout(r, anonFolio(r.mm, 1, 7));
    expect([swapSlotInfo(r.si, ez).zeromap, swapSlotInfo(r.si, ed).data]).toEqual([true, 7]);
    swapPutEntriesDirect(r.si, ez, 2);
    swapPutEntriesDirect(r.si, ed, 2);
    expect(swapSlotInfo(r.si, ez)).toMatchObject({ zeromap: false, count: 0 });
    expect(swapSlotInfo(r.si, ed)).toMatchObject({ data: 0, count: 0 });
    expect(checkSwapInvariants(r.si)).toEqual([]);
  });
});

describe('a device without SWP_SYNCHRONOUS_IO (7.2.13 mm/page_io.c:swap_writepage_bdev_async)', () => {
  it('the write leaves the folio unlocked and under writeback, listed in writebackInFlight; the data is on the device', () => {
    // __swap_writepage: !SWP_SYNCHRONOUS_IO → swap_writepage_bdev_async: folio_start_writeback, folio_unlock,
    // submit_bio; end_swap_bio_write (folio_end_writeback) runs later. The model stores the tokens at submission.
    const r = makeRig({ synchronousIo: false });
    const f = anonFolio(r.mm, 4);
    expect(folioAllocSwap(r.si, f)).toBe(0);
    folioDupSwap(r.si, all(f));
    const c = measure(r.mm.ledger, () => swapWriteout(r.si, f)).counts;
    expect(isLocked(r.mm, f)).toBe(false);
    expect((r.mm.flags[f.head]! & FLAG.writeback.mask) !== 0).toBe(true);
    expect(r.si.writebackInFlight).toEqual([f.head]);
    expect(swapSnapshot(r.si).pswpout).toBe(16);
    // start_writeback and unlock; no end of writeback yet (the synchronous device charges a third RMW)
    expect(c.ATOMIC_RMW).toBe(2);
  });
});
