import { EV } from '@foliolab/ledger';
import { FLAG, folioSubrange, folioTrylock, folioUnlock, type Folio } from '@foliolab/folio-flags';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anonFolio, inCache, isLocked, makeRig, release, swapinFolio, type Rig } from './test-fixtures.js';
import {
  checkSwapInvariants,
  folioAllocSwap,
  folioDupSwap,
  folioFreeSwap,
  folioPutSwap,
  folioSwapEntry,
  swapCacheAddFolio,
  swapCacheDelFolio,
  swapCount,
  swapDupEntryDirect,
  swapPutEntriesDirect,
  swapReadFolio,
  swapSlotInfo,
  swapWriteout,
  swpEntry,
  swpOffset,
  type SwapCountModel,
  type SwpEntry,
} from './index.js';

/*
 * Random operation sequences over one device, with the swap invariants
 * (folio-rmap-swap.md §3 "Invariants (swap)") checked after every step. The
 * test plays the page tables: `refs` counts the swap PTEs that reference
 * each slot, and every count must equal it.
 */

type Op =
  | { k: 'alloc'; order: number }
  | { k: 'dup' | 'put'; i: number; first: number; nr: number }
  | { k: 'del' | 'writeout' | 'lock' | 'freeSwap'; i: number; shadow: number }
  | { k: 'directDup'; j: number }
  | { k: 'directPut'; j: number; nr: number }
  | { k: 'swapin'; j: number; order: number }
  | { k: 'inject'; fail: boolean; next: number };

const small = fc.nat({ max: 1 << 12 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ k: fc.constant('alloc' as const), order: fc.constantFrom(0, 0, 1, 2, 4, 9) }) },
  { weight: 7, arbitrary: fc.record({ k: fc.constantFrom('dup' as const, 'dup' as const, 'put' as const), i: small, first: small, nr: fc.integer({ min: 1, max: 16 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constantFrom('del' as const, 'del' as const, 'writeout' as const, 'lock' as const, 'freeSwap' as const),
      i: small,
      shadow: fc.nat({ max: 9 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('directDup' as const), j: small }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('directPut' as const), j: small, nr: fc.integer({ min: 1, max: 24 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('swapin' as const), j: small, order: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('inject' as const), fail: fc.boolean(), next: fc.nat({ max: 2 }) }) },
);

const configArb = fc.oneof(
  fc.record({ countModel: fc.constant<SwapCountModel>('extend'), countMax: fc.constantFrom(2, 3, 15) }),
  fc.record({ countModel: fc.constantFrom<SwapCountModel>('continuation', 'legacy'), countMax: fc.constantFrom(1, 2, 0x3e) }),
);

class World {
  readonly cache: Folio[] = [];
  readonly refs = new Map<number, number>();
  constructor(readonly r: Rig) {}

  ref(e: number): number {
    return this.refs.get(e) ?? 0;
  }
  bump(e: number, d: number): void {
    this.refs.set(e, this.ref(e) + d);
  }
  referenced(): number[] {
    return [...this.refs.entries()].filter(([, n]) => n > 0).map(([e]) => e);
  }
  pick(i: number): Folio | undefined {
    return this.cache.length === 0 ? undefined : this.cache[i % this.cache.length];
  }
  locked(f: Folio): boolean {
    return isLocked(this.r.mm, f) || folioTrylock(f);
  }
  /** Folios the swap layer took out of the cache (reclaim) are released by their owner, the test. */
  sweep(): void {
    for (let i = this.cache.length - 1; i >= 0; i--) {
      const f = this.cache[i]!;
      if (!inCache(this.r.mm, f)) {
        release(this.r.mm, f);
        this.cache.splice(i, 1);
      }
    }
  }
}

function apply(w: World, op: Op): void {
  const { mm, si } = w.r;
  const batchDup = si.countModel === 'extend'; // the continuation models only dup one slot at a time (§3.2(a))
  switch (op.k) {
    case 'alloc': {
      if (mm.nrFreePages < 1 << op.order) return;
      const f = anonFolio(mm, op.order, op.order % 2 === 0 ? 0 : 300);
      if (folioAllocSwap(si, f) === 0) w.cache.push(f);
      else release(mm, f);
      return;
    }
    case 'dup':
    case 'put': {
      const f = w.pick(op.i);
      if (f === undefined || !w.locked(f)) return;
      const first = op.first % f.nr;
      let nr = Math.min(op.nr, f.nr - first);
      if (op.k === 'dup' && !batchDup) nr = 1;
      const base = folioSwapEntry(f) + first;
      if (op.k === 'put') {
        let n = 0;
        while (n < nr && w.ref(base + n) > 0) n++;
        if (n === 0) return;
        nr = n;
      }
      const sub = folioSubrange(f, first, nr);
      if (op.k === 'put') folioPutSwap(si, sub);
      else if (folioDupSwap(si, sub) !== 0) return;
      for (let s = 0; s < nr; s++) w.bump(base + s, op.k === 'put' ? -1 : 1);
      return;
    }
    case 'del': {
      const f = w.pick(op.i);
      if (f === undefined || !w.locked(f)) return;
      swapCacheDelFolio(si, f, op.shadow);
      return;
    }
    case 'writeout': {
      const f = w.pick(op.i);
      if (f === undefined || !w.locked(f)) return;
      swapWriteout(si, f);
      expect(isLocked(mm, f)).toBe(false);
      return;
    }
    case 'lock': {
      const f = w.pick(op.i);
      if (f === undefined) return;
      if (isLocked(mm, f)) folioUnlock(f);
      else folioTrylock(f);
      return;
    }
    case 'freeSwap': {
      const f = w.pick(op.i);
      if (f === undefined || !w.locked(f)) return;
      const any = Array.from({ length: f.nr }, (_, s) => w.ref(folioSwapEntry(f) + s)).some((n) => n > 0);
      expect(folioFreeSwap(si, f)).toBe(!any);
      return;
    }
    case 'directDup': {
      const live = w.referenced();
      if (live.length === 0) return;
      const e = live[op.j % live.length]!;
      if (swapDupEntryDirect(si, e as SwpEntry) === 0) w.bump(e, 1);
      return;
    }
    case 'directPut': {
      const live = w.referenced();
      if (live.length === 0) return;
      const e = live[op.j % live.length]!;
      let n = 0;
      while (n < op.nr && swpOffset(e as SwpEntry) + n < si.nrSlots && w.ref(e + n) > 0) n++;
      swapPutEntriesDirect(si, e as SwpEntry, n);
      for (let s = 0; s < n; s++) w.bump(e + s, -1);
      return;
    }
    case 'swapin': {
      const live = w.referenced().filter((e) => si.cached[swpOffset(e as SwpEntry)]! < 0);
      if (live.length === 0) return;
      const e0 = live[op.j % live.length]!;
      const nr = 1 << op.order;
      const e = e0 - (swpOffset(e0 as SwpEntry) % nr);
      if (swpOffset(e as SwpEntry) === 0 || mm.nrFreePages < nr) return;
      const f = swapinFolio(mm, op.order);
      if (swapCacheAddFolio(si, f, e as SwpEntry).err !== 0) {
        release(mm, f);
        return;
      }
      const want = Array.from({ length: nr }, (_, s) => swapSlotInfo(si, (e + s) as SwpEntry)).map((x) => (x.zeromap ? 0 : x.data));
      const err = swapReadFolio(si, f);
      folioTrylock(f);
      w.cache.push(f);
      if (err === 0) expect(Array.from(mm.token!.subarray(f.head, f.head + nr))).toEqual(want);
      else expect((mm.flags[f.head]! & FLAG.uptodate.mask) === 0).toBe(true);
      return;
    }
    case 'inject':
      si.faults.failExtendAlloc = op.fail && op.next === 0;
      si.faults.failNextExtendAllocs = op.fail ? op.next : 0;
      return;
  }
}

describe('random operation sequences keep every swap invariant (folio-rmap-swap.md §3 Invariants)', () => {
  it('after every step: counts = swap-PTE references, cache ⇔ table word ⇔ folio, clusters, lists, extension tables', () => {
    fc.assert(
      fc.property(configArb, fc.constantFrom(1024, 2048), fc.array(opArb, { minLength: 1, maxLength: 80, size: 'max' }), (cfg, nrSlots, ops) => {
        const w = new World(makeRig({ ...cfg, nrSlots, nrPages: 4096 }));
        for (const op of ops) {
          apply(w, op);
          w.sweep();
          expect(checkSwapInvariants(w.r.si, { swapPteRefs: w.refs })).toEqual([]);
        }
      }),
      { numRuns: Number(process.env.SWAP_RUNS ?? 100) },
    );
  }, 60_000);
});

describe('batched dup/put of a subrange ≡ per-slot dup/put (folio-rmap-swap.md §3.3)', () => {
  type Step = { dup: boolean; first: number; nr: number };
  const stepArb = fc.record({ dup: fc.boolean(), first: fc.nat({ max: 31 }), nr: fc.integer({ min: 1, max: 32 }) });

  function run(order: number, countMax: number, steps: Step[], batched: boolean): { counts: number[]; ops: number; allocs: number; calls: number } {
    const r = makeRig({ countMax });
    const f = anonFolio(r.mm, order);
    expect(folioAllocSwap(r.si, f)).toBe(0);
    const e = folioSwapEntry(f);
    const led = r.mm.ledger;
    const ops0 = led.get(EV.SWAP_CLUSTER_OP);
    const allocs0 = led.get(EV.SWAP_ALLOC_ATOMIC);
    let calls = 0;
    for (const st of steps) {
      const first = st.first % f.nr;
      const nr = Math.min(st.nr, f.nr - first);
      if (!st.dup) {
        let ok = true;
        for (let s = 0; s < nr; s++) ok &&= swapCount(r.si, (e + first + s) as SwpEntry) > 0;
        if (!ok) continue;
      }
      const subs = batched ? [folioSubrange(f, first, nr)] : Array.from({ length: nr }, (_, s) => folioSubrange(f, first + s, 1));
      for (const sub of subs) {
        calls++;
        if (st.dup) expect(folioDupSwap(r.si, sub)).toBe(0);
        else folioPutSwap(r.si, sub);
      }
    }
    expect(checkSwapInvariants(r.si)).toEqual([]);
    return {
      counts: Array.from({ length: f.nr }, (_, s) => swapCount(r.si, swpEntry(0, swpOffset(e) + s))),
      ops: led.get(EV.SWAP_CLUSTER_OP) - ops0,
      allocs: led.get(EV.SWAP_ALLOC_ATOMIC) - allocs0,
      calls,
    };
  }

  it('same final counts; one cluster round trip per batch instead of one per slot', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.constantFrom(2, 3, 15), fc.array(stepArb, { maxLength: 30 }), (order, countMax, steps) => {
        const b = run(order, countMax, steps, true);
        const p = run(order, countMax, steps, false);
        expect(b.counts).toEqual(p.counts);
        expect(b.allocs).toBe(p.allocs);
        // each overflow allocation drops and retakes the lock: one extra round trip either way
        expect(b.ops).toBe(b.calls + b.allocs);
        expect(p.ops).toBe(p.calls + p.allocs);
        expect(b.ops).toBeLessThanOrEqual(p.ops);
        if (p.calls > b.calls) expect(b.ops).toBeLessThan(p.ops);
      }),
      { numRuns: 200 },
    );
  });
});
