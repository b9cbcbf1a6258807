import { EV } from '@foliolab/ledger';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CYDP_CLEAR_DIRTY,
  CYDP_CLEAR_YOUNG,
  Machine,
  PGDIR_SIZE,
  PMD_SIZE,
  PUD_SIZE,
  PageTables,
  TlbUnmapBatch,
  clearYoungDirtyPtes,
  flushTlbRange,
  getAndClearFullPtes,
  internalFlushTlbRange,
  internalPmdpGet,
  internalSetSwapPtes,
  internalSetTlbUbcFlushPending,
  mkSwapPte,
  pmdpGet,
  pokePte,
  pteBits,
  ptepGet,
  setPteAt,
  setTlbUbcFlushPending,
  tlbStaleVas,
} from './index.js';

/*
 * The unchecked entry points the engine's hot paths use must do exactly what
 * the checked public API does on valid input: the same stores, the same
 * ledger counts, the same TLB-visibility state and, with a trace sink, the
 * same trace (spec §6: the costs are those of the modelled kernel calls).
 * Each property builds two identical mms and runs one path on each.
 */

import { PROFILES, VA0, expectSame, world } from './test-world.js';

const kindsArb = fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 32, maxLength: 32 });
const setupArb = fc.record({
  profile: fc.constantFrom(...PROFILES),
  kinds: kindsArb,
  trackTlb: fc.boolean(),
  trace: fc.boolean(),
});

describe('internalSetSwapPtes ≡ nr × set_pte_at(swp_entry_to_pte) (spec §6 set_ptes, §8 swap-PTE install)', () => {
  it('same stores, counts, TLB state and trace, on any targets (none, contpte, single, swap)', () => {
    fc.assert(
      fc.property(
        setupArb,
        fc.integer({ min: 0, max: 511 }),
        fc.integer({ min: 1, max: 512 }),
        fc.integer({ min: 0, max: 23 }),
        // offsets up to 2^50 exercise the carry into the high word and the CONT bit (offset bit 40)
        fc.oneof(fc.integer({ min: 1, max: 2 ** 21 }), fc.integer({ min: 1, max: 2 ** 50 - 513 })),
        fc.boolean(),
        fc.boolean(),
        (s, i, n, type, offset, ex, uffd) => {
          const nr = Math.min(n, 512 - i);
          const a = world(s.profile, s.kinds, s.trackTlb, s.trace);
          const b = world(s.profile, s.kinds, s.trackTlb, s.trace);
          const swp = pteBits();
          for (let k = 0; k < nr; k++) {
            mkSwapPte(swp, type, offset + k, ex, uffd);
            setPteAt(a.table, i + k, swp.lo, swp.hi);
          }
          internalSetSwapPtes(b.table, i, nr, type, offset, ex, uffd);
          expectSame(a, b);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('after get_and_clear_full_ptes of a contpte block: 16 reads and 16 writes, no unfold (spec §8)', () => {
    const w = world('arm64-contpte', [1], false, false);
    getAndClearFullPtes(w.table, 0, 16, false, pteBits());
    w.ledger.reset();
    internalSetSwapPtes(w.table, 0, 16, 0, 64, true, false);
    expect(w.ledger.get(EV.PTE_READ)).toBe(16);
    expect(w.ledger.get(EV.PTE_WRITE)).toBe(16);
    expect(w.ledger.get(EV.CONTPTE_UNFOLD)).toBe(0);
  });
});

describe('clear_young_dirty_ptes charges in bulk only without a trace sink (spec §6)', () => {
  it('with or without a sink: same stores, counts and TLB state; the sink sees one event per charge', () => {
    fc.assert(
      fc.property(
        setupArb,
        fc.integer({ min: 0, max: 511 }),
        fc.integer({ min: 1, max: 512 }),
        fc.constantFrom(CYDP_CLEAR_YOUNG, CYDP_CLEAR_DIRTY, CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY),
        (s, i, n, flags) => {
          // clear_young_dirty_ptes wants present targets: map every block
          const kinds = s.kinds.map((k) => (k === 2 ? 2 : 1));
          const nr = Math.min(n, 512 - i);
          const plain = world(s.profile, kinds, s.trackTlb, false);
          const traced = world(s.profile, kinds, s.trackTlb, true);
          clearYoungDirtyPtes(plain.table, i, nr, flags);
          clearYoungDirtyPtes(traced.table, i, nr, flags);
          expect(Array.from(traced.table.lo)).toEqual(Array.from(plain.table.lo));
          expect(Array.from(traced.table.hi)).toEqual(Array.from(plain.table.hi));
          expect(Array.from(traced.ledger.counts)).toEqual(Array.from(plain.ledger.counts));
          expect(tlbStaleVas(traced.mm)).toEqual(tlbStaleVas(plain.mm));
          // the sink's events add up to the counts (the traced path is the per-entry one)
          const charged = traced.sink!.events.filter((e) => e.cat === 'event').reduce((t, e) => t + Number(e.args?.n), 0);
          expect(charged).toBe(traced.ledger.counts.reduce((t, c) => t + c, 0) - traced.ledger.get(EV.LOCK) - traced.ledger.get(EV.UNLOCK));
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('unchecked TLB entry points ≡ the checked ones (spec §7)', () => {
  it('internalSetTlbUbcFlushPending ≡ setTlbUbcFlushPending, internalFlushTlbRange ≡ flushTlbRange', () => {
    fc.assert(
      fc.property(setupArb, fc.integer({ min: 0, max: 511 }), fc.integer({ min: 1, max: 512 }), (s, i, n) => {
        const nr = Math.min(n, 512 - i);
        const start = VA0 + i * 4096;
        const end = start + nr * 4096;
        const a = world(s.profile, s.kinds, s.trackTlb, s.trace);
        const b = world(s.profile, s.kinds, s.trackTlb, s.trace);
        const pa = getAndClearFullPtes(a.table, i, nr, false, pteBits());
        const pb = getAndClearFullPtes(b.table, i, nr, false, pteBits());
        const ba = new TlbUnmapBatch(a.machine);
        const bb = new TlbUnmapBatch(b.machine);
        setTlbUbcFlushPending(ba, a.mm, pa.lo, pa.hi, start, end);
        internalSetTlbUbcFlushPending(bb, b.mm, pb.lo, pb.hi, start, end);
        expect([bb.flushRequired, bb.writable, bb.mms.length, b.mm.tlbFlushBatchedPending]).toEqual([ba.flushRequired, ba.writable, ba.mms.length, a.mm.tlbFlushBatchedPending]);
        flushTlbRange(a.mm, start, end);
        internalFlushTlbRange(b.mm, start, end);
        expectSame(a, b);
      }),
      { numRuns: 150 },
    );
  });
});

describe('unchecked table lookups ≡ the checked ones', () => {
  it('pteTableOfUnchecked / pudOfUnchecked / pmdTableOfUnchecked agree with pteTableOf / lookupPud / lookupPmdTable', () => {
    const machine = new Machine();
    const mm = new PageTables(machine);
    const vas = [0, VA0, VA0 + PMD_SIZE, VA0 + PUD_SIZE + 5 * PMD_SIZE, 3 * PGDIR_SIZE + 7 * PUD_SIZE, 2 ** 48 - PMD_SIZE];
    for (const va of vas.slice(1, 4)) mm.pteAlloc(va);
    mm.pmdAlloc(vas[4]!);
    fc.assert(
      fc.property(fc.constantFrom(...vas), fc.integer({ min: 0, max: PMD_SIZE / 4096 - 1 }), (base, page) => {
        const va = base + page * 4096;
        expect(mm.pteTableOfUnchecked(va)).toBe(mm.pteTableOf(va));
        const pud = mm.pudOfUnchecked(va);
        expect(pud).toBe(mm.lookupPud(va));
        expect(pud === null ? null : mm.pmdTableOfUnchecked(pud, va)).toBe(mm.lookupPmdTable(va));
      }),
      { numRuns: 100 },
    );
    // the checked lookups still reject bad VAs, with the same error
    for (const bad of [-4096, 2 ** 48, 0.5, Number.NaN]) {
      expect(() => mm.pteTableOf(bad)).toThrow(expect.objectContaining({ code: 'ERANGE' }));
      expect(() => mm.pteTableOf(bad)).toThrow(/^lookupPud: /);
      expect(() => mm.lookupPmdTable(bad)).toThrow(expect.objectContaining({ code: 'ERANGE' }));
    }
  });

  it('internalPmdpGet ≡ pmdpGet (one PMD_READ)', () => {
    const machine = new Machine();
    const mm = new PageTables(machine);
    mm.pteAlloc(VA0);
    const pmd = mm.lookupPmdTable(VA0)!;
    const a = pteBits();
    const b = pteBits();
    machine.ledger.reset();
    pmdpGet(pmd, 0, a);
    internalPmdpGet(pmd, 0, b);
    expect(b).toEqual(a);
    expect(machine.ledger.get(EV.PMD_READ)).toBe(2);
  });
});

describe('cheaper boundary checks reject the same inputs with the same errors (spec §9 invariant 8)', () => {
  const w = world('arm64-contpte', [1], false, false);
  const v = pteBits();
  const cases: [string, () => unknown, string][] = [
    ['fractional index', () => ptepGet(w.table, 1.5, v), 'ERANGE'],
    ['string index', () => ptepGet(w.table, '3' as unknown as number, v), 'ERANGE'],
    ['bigint index', () => ptepGet(w.table, 3n as unknown as number, v), 'ERANGE'],
    ['index 512', () => ptepGet(w.table, 512, v), 'ERANGE'],
    ['index 2^32', () => ptepGet(w.table, 2 ** 32, v), 'ERANGE'],
    ['index -1', () => ptepGet(w.table, -1, v), 'ERANGE'],
    ['nr 1.5', () => getAndClearFullPtes(w.table, 0, 1.5, false, v), 'EINVAL'],
    ['nr 0', () => getAndClearFullPtes(w.table, 0, 0, false, v), 'EINVAL'],
    ['nr 2^40 (an integer: crosses the table)', () => getAndClearFullPtes(w.table, 0, 2 ** 40, false, v), 'ERANGE'],
    ['nr NaN', () => getAndClearFullPtes(w.table, 0, Number.NaN, false, v), 'EINVAL'],
    ['lo -1', () => pokePte(w.table, 0, -1, 0), 'EINVAL'],
    ['hi 2^32', () => pokePte(w.table, 0, 0, 2 ** 32), 'EINVAL'],
    ['lo 0.5', () => pokePte(w.table, 0, 0.5, 0), 'EINVAL'],
    ['bigint lo', () => pokePte(w.table, 0, 1n as unknown as number, 0), 'EINVAL'],
    ['pmd index 1.5', () => pmdpGet(w.table.pmdTable, 1.5, v), 'ERANGE'],
  ];
  for (const [what, fn, code] of cases) it(`${what} → ${code}`, () => expect(fn).toThrow(expect.objectContaining({ code })));
  it('nothing changed', () => expect(w.ledger.get(EV.PTE_XCHG)).toBe(0));
});
