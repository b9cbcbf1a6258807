import { EV } from '@foliolab/ledger';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CONT_PTES,
  CYDP_CLEAR_DIRTY,
  CYDP_CLEAR_YOUNG,
  PTE_AF,
  PTE_HI_CONT,
  PTE_HI_DIRTY,
  PTE_HI_WRITE,
  PTE_RDONLY,
  PTE_VALID,
  TlbUnmapBatch,
  clearYoungDirtyPtes,
  contpteConvert,
  decTlbFlushPending,
  hwAccess,
  incTlbFlushPending,
  internalClearYoungDirtyPtesEach,
  internalGetAndClearPtes,
  internalSetPteAt,
  internalSetTlbUbcFlushPending,
  makeUserPte,
  mkSwapPte,
  pokePte,
  pteAccessible,
  pteBits,
  pteDirty,
  ptePfn,
  ptepGetAndClear,
  setPteAt,
  setPtes,
  tlbStaleVas,
  type PteTable,
} from './index.js';

/*
 * The hot-path rewrites (per-PTE reclaim: get_and_clear of one entry,
 * set_pte_at, set_tlb_ubc_flush_pending, contpte_convert, and the per-PTE
 * clear_young_dirty_ptes loop) must keep every store, count, TLB-visibility
 * state and, with a trace sink, the trace of the calls they replace
 * (spec §5–§7). Each property runs the reference on one world and the hot
 * path on an identical one.
 */

import { PFN0, PROFILES, VA0, expectSame, world } from './test-world.js';

const kindsArb = fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 32, maxLength: 32 });
const setupArb = fc.record({
  profile: fc.constantFrom(...PROFILES),
  kinds: kindsArb,
  trackTlb: fc.boolean(),
  trace: fc.boolean(),
});
const FLAGS = [CYDP_CLEAR_YOUNG, CYDP_CLEAR_DIRTY, CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY] as const;

describe('internalClearYoungDirtyPtesEach ≡ nr × clear_young_dirty_ptes(…, 1) (spec §6, the per-PTE madvise loop)', () => {
  it('same stores, counts, TLB state and trace, on folded, single, broken and hardware-touched blocks', () => {
    fc.assert(
      fc.property(setupArb, fc.integer({ min: 0, max: 511 }), fc.integer({ min: 1, max: 512 }), fc.constantFrom(...FLAGS), fc.option(fc.constantFrom(...FLAGS)), (s, i, n, flags, before) => {
        // clear_young_dirty_ptes wants present targets: every block mapped
        const kinds = s.kinds.map((k) => (k === 0 || k === 3 ? 1 : k));
        const nr = Math.min(n, 512 - i);
        const a = world(s.profile, kinds, s.trackTlb, s.trace);
        const b = world(s.profile, kinds, s.trackTlb, s.trace);
        // optionally an earlier pass over part of the table, so some blocks start already clean
        if (before !== null) {
          clearYoungDirtyPtes(a.table, 0, 256, before);
          clearYoungDirtyPtes(b.table, 0, 256, before);
        }
        for (let k = i; k < i + nr; k++) clearYoungDirtyPtes(a.table, k, 1, flags);
        internalClearYoungDirtyPtesEach(b.table, i, nr, flags);
        expectSame(a, b);
      }),
      { numRuns: 200 },
    );
  });

  it('a whole 64K block under per-pte madvise(COLD): 16 × (1 + 2 + 16 reads, 16 CMPXCHG), AF cleared once', () => {
    const w = world('arm64-contpte', [1], false, false);
    internalClearYoungDirtyPtesEach(w.table, 0, 16, CYDP_CLEAR_YOUNG);
    expect(w.ledger.get(EV.PTE_READ)).toBe(16 * 19);
    expect(w.ledger.get(EV.PTE_CMPXCHG)).toBe(16 * 16);
    for (let k = 0; k < 16; k++) expect(w.table.lo[k]! & PTE_AF).toBe(0);
  });
});

describe('get_and_clear_full_ptes of one entry ≡ ptep_get_and_clear (spec §6)', () => {
  it('same result, stores, counts, TLB state and trace', () => {
    fc.assert(
      fc.property(setupArb, fc.integer({ min: 0, max: 511 }), (s, i) => {
        const a = world(s.profile, s.kinds, s.trackTlb, s.trace);
        const b = world(s.profile, s.kinds, s.trackTlb, s.trace);
        const ra = ptepGetAndClear(a.table, i, pteBits());
        const rb = internalGetAndClearPtes(b.table, i, 1, pteBits());
        expect(rb).toEqual(ra);
        expectSame(a, b);
      }),
      { numRuns: 200 },
    );
  });
});

describe('internalSetPteAt ≡ set_pte_at (spec §6 set_ptes nr = 1: try-unfold, write, try-fold)', () => {
  it('same stores, counts, TLB state and trace for present (folding or not) and swap values on any target', () => {
    fc.assert(
      fc.property(setupArb, fc.integer({ min: 0, max: 511 }), fc.integer({ min: 0, max: 3 }), fc.boolean(), (s, i, what, young) => {
        const a = world(s.profile, s.kinds, s.trackTlb, s.trace);
        const b = world(s.profile, s.kinds, s.trackTlb, s.trace);
        // 0: the slot's own page of its block's folio (refills a cleared block and may fold), 1: another pfn,
        // 2: a swap entry, 3: none
        const v = what === 0 ? makeUserPte(PFN0 + i, { write: true, young }) : what === 1 ? makeUserPte(0x9_0000 + i) : what === 2 ? mkSwapPte(pteBits(), 2, 7 + i) : pteBits();
        // empty the target's block first, the set_pte_at that completes it folds (when the rest matches)
        for (const w of [a, b]) ptepGetAndClear(w.table, i, pteBits());
        setPteAt(a.table, i, v.lo, v.hi);
        internalSetPteAt(b.table, i, v.lo, v.hi);
        expectSame(a, b);
      }),
      { numRuns: 200 },
    );
  });
});

describe('internalSetTlbUbcFlushPending: pte_accessible and pte_dirty decide (spec §7)', () => {
  it('no-op unless accessible; writable iff dirty; present-invalid counts only with a flush pending', () => {
    fc.assert(
      fc.property(fc.constantFrom(...PROFILES), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.boolean(), (profile, lo, hi, pending) => {
        const w = world(profile, [], false, false);
        if (pending) incTlbFlushPending(w.mm);
        const batch = new TlbUnmapBatch(w.machine);
        internalSetTlbUbcFlushPending(batch, w.mm, lo, hi, VA0, VA0 + 4096);
        const acc = pteAccessible(w.mm, lo, hi);
        expect(batch.flushRequired).toBe(acc);
        expect(batch.writable).toBe(acc && pteDirty(lo, hi));
        expect(w.ledger.get(EV.TLB_PENDING_ADD)).toBe(acc ? 1 : 0);
        expect(w.mm.tlbFlushBatchedPending).toBe(acc ? 1 : 0);
        if (pending) decTlbFlushPending(w.mm);
      }),
      { numRuns: 300 },
    );
  });
});

/** The spec §5 contpte_convert, written out entry by entry as a reference. */
function referenceConvert(table: PteTable, i: number, lo: number, hi: number): { lo: number[]; hi: number[] } {
  const base = i - (i % CONT_PTES);
  const pfn = ptePfn(lo, hi);
  const basePfn = pfn - (pfn % CONT_PTES);
  let dirty = false;
  let young = false;
  for (let k = base; k < base + CONT_PTES; k++) {
    if (pteDirty(table.lo[k]!, table.hi[k]!)) dirty = true;
    if ((table.lo[k]! & PTE_AF) !== 0) young = true;
  }
  const outLo: number[] = [];
  const outHi: number[] = [];
  for (let k = 0; k < CONT_PTES; k++) {
    const p = basePfn + k;
    let l = (lo & 0xfff) | ((p % 2 ** 20) << 12);
    let h = (hi & ~0xffff) | Math.floor(p / 2 ** 20);
    if (dirty) {
      h |= PTE_HI_DIRTY;
      if ((h & PTE_HI_WRITE) !== 0) l &= ~PTE_RDONLY;
    }
    if (young) l |= PTE_AF;
    outLo.push(l >>> 0);
    outHi.push(h >>> 0);
  }
  return { lo: outLo, hi: outHi };
}

describe('contpte_convert repaints the block from the prototype (spec §5)', () => {
  it('16 entries with PFN base+k and the OR of the old young/dirty; 16 XCHG, 16 WRITE, fold/unfold once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 31 }),
        fc.integer({ min: 0, max: 15 }),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 16, maxLength: 16 }),
        fc.boolean(),
        // PFNs near a 2^20 boundary exercise the high word
        fc.constantFrom(PFN0, 2 ** 20 - 16, 2 ** 20, 0x3_ffff_fff0),
        fc.boolean(),
        (b, j, touch, fold, pfnBase, trackTlb) => {
          const w = world('arm64-contpte', [], trackTlb, false);
          const p = makeUserPte(pfnBase, { write: true, young: false, dirty: false });
          setPtes(w.table, 16 * b, p.lo, p.hi, 16);
          touch.forEach((t, k) => {
            if (t > 0) hwAccess(w.table, 16 * b + k, t === 2);
          });
          const i = 16 * b + j;
          const lo = w.table.lo[i]!;
          const hi = fold ? (w.table.hi[i]! | PTE_HI_CONT) >>> 0 : (w.table.hi[i]! & ~PTE_HI_CONT) >>> 0;
          const want = referenceConvert(w.table, i, lo, hi);
          w.ledger.reset();
          contpteConvert(w.table, i, lo, hi);
          expect(Array.from(w.table.lo.subarray(16 * b, 16 * b + 16))).toEqual(want.lo);
          expect(Array.from(w.table.hi.subarray(16 * b, 16 * b + 16))).toEqual(want.hi);
          expect([w.ledger.get(EV.PTE_XCHG), w.ledger.get(EV.PTE_WRITE), w.ledger.get(fold ? EV.CONTPTE_FOLD : EV.CONTPTE_UNFOLD)]).toEqual([16, 16, 1]);
          // every old entry was valid: all 16 were changed, and the 64K TLBI was issued (not yet completed: no DSB after it… but
          // __flush_tlb_range ends with DSB_ISH, so nothing stays stale)
          expect(tlbStaleVas(w.mm)).toEqual([]);
          expect((w.table.lo[16 * b]! & PTE_VALID) !== 0).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('get_and_clear_full_ptes merges young/dirty of the rest into the first (spec §6)', () => {
  it('result = first entry, AF if any later one is young, pte_mkdirty if any later one is pte_dirty; all cleared', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ lo: fc.integer({ min: 0, max: 0xffffffff }), hi: fc.integer({ min: 0, max: 0xffffffff }) }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 400 }),
        fc.boolean(),
        (entries, i, trackTlb) => {
          // arm64-nocont: raw words with any bits (CONT included) are just cleared, no contpte handling
          const w = world('arm64-nocont', [], trackTlb, false);
          entries.forEach((e, k) => pokePte(w.table, i + k, e.lo, e.hi));
          const first = entries[0]!;
          let lo = first.lo;
          let hi = first.hi;
          if (entries.slice(1).some((e) => (e.lo & PTE_AF) !== 0)) lo |= PTE_AF;
          if (entries.slice(1).some((e) => pteDirty(e.lo, e.hi))) {
            hi |= PTE_HI_DIRTY;
            if ((hi & PTE_HI_WRITE) !== 0) lo &= ~PTE_RDONLY;
          }
          const r = internalGetAndClearPtes(w.table, i, entries.length, pteBits());
          expect([r.lo, r.hi]).toEqual([lo >>> 0, hi >>> 0]);
          for (let k = 0; k < entries.length; k++) expect([w.table.lo[i + k], w.table.hi[i + k]]).toEqual([0, 0]);
          const stale = entries.flatMap((e, k) => ((e.lo & PTE_VALID) !== 0 ? [VA0 + (i + k) * 4096] : []));
          expect(tlbStaleVas(w.mm)).toEqual(trackTlb ? stale : []);
        },
      ),
      { numRuns: 200 },
    );
  });
});
