import { measure, nonZero } from '@foliolab/ledger';
import { folioSubrange, type Folio } from '@foliolab/folio-flags';
import { describe, expect, it } from 'vitest';
import { all, anonFolio, makeRig, type Rig } from './test-fixtures.js';
import {
  COUNT_CONTINUED,
  ENOMEM,
  SWAP_HAS_CACHE,
  __swapCount,
  checkSwapInvariants,
  folioAllocSwap,
  folioDupSwap,
  folioPutSwap,
  folioSwapEntry,
  swapCacheDelFolio,
  swapCount,
  swapDupEntryDirect,
  swapSlotInfo,
  swapSnapshot,
  type SwapDeviceOptions,
  type SwpEntry,
} from './index.js';

function rigWith(opts: Partial<Omit<SwapDeviceOptions, 'memmap'>>): Rig & { f: Folio; e: SwpEntry } {
  const rig = makeRig(opts);
  const f = anonFolio(rig.mm, 4);
  expect(folioAllocSwap(rig.si, f)).toBe(0);
  return { ...rig, f, e: folioSwapEntry(f) };
}

const counts = (r: Rig, e: SwpEntry, nr: number): number[] => Array.from({ length: nr }, (_, i) => swapCount(r.si, (e + i) as SwpEntry));

describe('phase III extend_table (folio-rmap-swap.md §3.2(c) [mm-tree])', () => {
  it('a count reaching SWP_TB_COUNT_MAX moves to an extend_table allocated on demand, freed when all zero', () => {
    const r = rigWith({ countMax: 3 }); // inline 0..2, 3 = "see extend_table"
    const one = folioSubrange(r.f, 0, 1);
    folioDupSwap(r.si, one);
    folioDupSwap(r.si, one);
    expect(swapSnapshot(r.si).extendTables).toBe(0);
    const m = measure(r.mm.ledger, () => folioDupSwap(r.si, one));
    expect(m.result).toBe(0);
    // the lock is dropped for the GFP_ATOMIC allocation and retaken: two round trips
    expect(nonZero(m.counts)).toEqual({ LOCK: 2, UNLOCK: 2, SWAP_CLUSTER_OP: 2, SWAP_ALLOC_ATOMIC: 1, SWAP_SLOT_UPDATE: 1 });
    expect(swapSlotInfo(r.si, r.e)).toMatchObject({ count: 3, extended: true });
    expect(__swapCount(r.si, r.e)).toBe(3); // the saturated table value
    for (let k = 0; k < 40; k++) folioDupSwap(r.si, one);
    expect(swapCount(r.si, r.e)).toBe(43);
    expect(swapSnapshot(r.si).extendAllocs).toBe(1);
    expect(checkSwapInvariants(r.si)).toEqual([]);
    for (let k = 0; k < 41; k++) folioPutSwap(r.si, one);
    expect(swapSlotInfo(r.si, r.e)).toMatchObject({ count: 2, extended: false });
    expect(swapSnapshot(r.si).extendTables).toBe(0);
    expect(checkSwapInvariants(r.si)).toEqual([]);
  });

  it('a failed extend allocation undoes the increments already made: all-or-nothing (§3.3)', () => {
    const r = rigWith({ countMax: 3 });
    folioDupSwap(r.si, all(r.f));
    folioDupSwap(r.si, folioSubrange(r.f, 8, 8)); // pages 8..15 at the inline limit
    const before = counts(r, r.e, 16);
    r.si.faults.failExtendAlloc = true;
    const m = measure(r.mm.ledger, () => folioDupSwap(r.si, all(r.f)));
    expect(m.result).toBe(-ENOMEM);
    expect(counts(r, r.e, 16)).toEqual(before);
    // 8 increments, the failed GFP_ATOMIC attempt, 8 undos
    expect(nonZero(m.counts)).toEqual({ LOCK: 2, UNLOCK: 2, SWAP_CLUSTER_OP: 2, SWAP_ALLOC_ATOMIC: 1, SWAP_SLOT_UPDATE: 16 });
    expect(swapSnapshot(r.si)).toMatchObject({ extendTables: 0, extendAllocFailures: 1 });
    expect(checkSwapInvariants(r.si)).toEqual([]);
  });

  it('the countdown switch fails only the next n attempts', () => {
    const r = rigWith({ countMax: 2 });
    folioDupSwap(r.si, all(r.f));
    r.si.faults.failNextExtendAllocs = 1;
    expect(folioDupSwap(r.si, all(r.f))).toBe(-ENOMEM);
    expect(folioDupSwap(r.si, all(r.f))).toBe(0);
    expect(counts(r, r.e, 16)).toEqual(new Array<number>(16).fill(2));
    expect(checkSwapInvariants(r.si)).toEqual([]);
  });

  it("fork's retry allocates with GFP_KERNEL, which the atomic switch does not fail", () => {
    const r = rigWith({ countMax: 2 });
    folioDupSwap(r.si, all(r.f));
    swapCacheDelFolio(r.si, r.f);
    r.si.faults.failExtendAlloc = true;
    expect(swapDupEntryDirect(r.si, r.e)).toBe(-ENOMEM);
    expect(swapCount(r.si, r.e)).toBe(1);
    expect(swapDupEntryDirect(r.si, r.e, 'kernel')).toBe(0);
    expect(swapCount(r.si, r.e)).toBe(2);
    expect(checkSwapInvariants(r.si)).toEqual([]);
  });
});

describe('engine fault switches (docs/ENGINE-API.md swapDupEnomem / swapAllocFail)', () => {
  it('dupEnomem: the Nth folio_dup_swap fails like a failed extension allocation, changing no count', () => {
    const r = rigWith({});
    r.si.faults.dupEnomem = 2;
    expect(folioDupSwap(r.si, all(r.f))).toBe(0);
    const m = measure(r.mm.ledger, () => folioDupSwap(r.si, all(r.f)));
    expect(m.result).toBe(-ENOMEM);
    expect(nonZero(m.counts)).toEqual({ LOCK: 2, UNLOCK: 2, SWAP_CLUSTER_OP: 2, SWAP_ALLOC_ATOMIC: 1 });
    expect(counts(r, r.e, 16)).toEqual(new Array<number>(16).fill(1));
    expect(folioDupSwap(r.si, all(r.f))).toBe(0); // fired once, now off
    r.si.faults.dupEnomem = true;
    expect([folioDupSwap(r.si, all(r.f)), folioDupSwap(r.si, all(r.f))]).toEqual([-ENOMEM, -ENOMEM]);
    expect(checkSwapInvariants(r.si)).toEqual([]);
  });

  it('allocEnomem: folio_alloc_swap fails without touching the device', () => {
    const r = makeRig();
    r.si.faults.allocEnomem = 1;
    const f = anonFolio(r.mm, 4);
    const m = measure(r.mm.ledger, () => folioAllocSwap(r.si, f));
    expect([m.result, nonZero(m.counts)]).toEqual([-ENOMEM, {}]);
    expect(folioAllocSwap(r.si, f)).toBe(0);
  });
});

describe('≤ v7.0 swap_map with count continuations (§3.2(a), (b))', () => {
  it("v7.0: overflow beyond SWAP_MAP_MAX needs a continuation; a batch's partial progress is not rolled back", () => {
    const r = rigWith({ countModel: 'continuation', countMax: 2 });
    folioDupSwap(r.si, all(r.f));
    folioDupSwap(r.si, folioSubrange(r.f, 8, 8));
    r.si.faults.failExtendAlloc = true;
    expect(folioDupSwap(r.si, all(r.f))).toBe(-ENOMEM);
    // pages 0..7 were raised before page 8 needed the continuation, and stay raised
    expect(counts(r, r.e, 16)).toEqual([...new Array<number>(8).fill(2), ...new Array<number>(8).fill(2)]);
  });

  // [I] No kernel runs this: ≤ v7.0 has continuations but no folio_dup_swap of a partial range with nr > 1
  // (that batching is Dev Jain's unmerged series), and 7.2.13 has no continuations at all
  // (mm/swapfile.c:swap_dup_entries_cluster restarts at the failing slot after swap_extend_table_alloc).
  // The inference rests on v7.0 __swap_duplicate(entry, 1, nr): its second pass keeps the slots it already
  // raised when one needs a continuation ("Don't need to rollback changes, because if usage == 1, there
  // must be nr == 1"), and on the callers' loop `while (!err && __swap_duplicate(...) == -ENOMEM) err =
  // add_swap_count_continuation(...)`, which then re-runs the whole batch.
  it('[I] v7.0 continuations + a batched folio_dup_swap: a successful retry re-runs the whole batch (the kernel assumes usage 1 ⇒ nr 1)', () => {
    const r = rigWith({ countModel: 'continuation', countMax: 2 });
    folioDupSwap(r.si, all(r.f));
    folioDupSwap(r.si, folioSubrange(r.f, 8, 8));
    expect(folioDupSwap(r.si, all(r.f))).toBe(0);
    // 0..7 raised twice, 8..15 once: the batch is not safe for nr > 1
    expect(counts(r, r.e, 16)).toEqual([...new Array<number>(8).fill(3), ...new Array<number>(8).fill(3)]);
    expect(swapCount(r.si, r.e)).toBe(3);
    expect(checkSwapInvariants(r.si, { swapPteRefs: () => 2 })).not.toEqual([]);
  });

  it('v7.0: a single-slot dup retries after add_swap_count_continuation and succeeds; continuations outlive their counts', () => {
    const r = rigWith({ countModel: 'continuation', countMax: 2 });
    const one = folioSubrange(r.f, 3, 1);
    for (let k = 0; k < 5; k++) expect(folioDupSwap(r.si, one)).toBe(0);
    const e3 = (r.e + 3) as SwpEntry;
    expect(swapSlotInfo(r.si, e3)).toMatchObject({ count: 5, extended: true });
    expect(swapSlotInfo(r.si, e3).map & COUNT_CONTINUED).toBe(COUNT_CONTINUED);
    for (let k = 0; k < 5; k++) folioPutSwap(r.si, one);
    expect(swapSnapshot(r.si).extendTables).toBe(1); // freed only at swapoff
    expect(checkSwapInvariants(r.si)).toEqual([]);
  });

  it('legacy (≤ v6.19): SWAP_HAS_CACHE is set exactly while the slot is bound to a swap-cache folio', () => {
    const r = rigWith({ countModel: 'legacy' });
    expect(swapSlotInfo(r.si, r.e).map).toBe(SWAP_HAS_CACHE);
    folioDupSwap(r.si, all(r.f));
    expect(swapSlotInfo(r.si, r.e).map).toBe(SWAP_HAS_CACHE | 1);
    expect(checkSwapInvariants(r.si)).toEqual([]);
    swapCacheDelFolio(r.si, r.f, 5);
    expect(swapSlotInfo(r.si, r.e)).toMatchObject({ map: 1, cached: -1, shadow: 5 });
    expect(checkSwapInvariants(r.si)).toEqual([]);
  });
});
