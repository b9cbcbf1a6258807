import { FoliolabError, measure, type EventCounts } from '@foliolab/ledger';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CYDP_CLEAR_DIRTY,
  CYDP_CLEAR_YOUNG,
  Machine,
  PMD_SIZE,
  PageTables,
  TlbUnmapBatch,
  archProfile,
  checkContpteInvariants,
  clearFullPtes,
  clearYoungDirtyPtes,
  contpteBlockState,
  flushTlbMm,
  getAndClearFullPtes,
  hwAccess,
  makeUserPte,
  pteClear,
  pteBits,
  pteDirty,
  ptePfn,
  pteYoung,
  ptepClearFlushYoung,
  ptepGet,
  ptepGetAndClear,
  ptepSetAccessFlags,
  ptepTestAndClearYoung,
  setPtes,
  setTlbUbcFlushPending,
  tlbMayHoldStale,
  tlbStaleVas,
  tryToUnmapFlush,
  wrprotectPtes,
  type ArchProfileOptions,
  type FolioBounds,
  type PteTable,
} from './index.js';
import { VA0 } from './test-fixtures.js';

/*
 * Spec §9 invariants 1–8 as properties over random operation sequences on
 * two adjacent PTE tables. After every operation:
 *  1/3  every aligned block is CONT or NONCONT (checkContpteInvariants);
 *  2    CONT ↔ NONCONT with live entries only through contpte_convert;
 *  4    gathered reads give the own PFN and A/D OR-ed over the block;
 *  5    batched set_ptes: targets none, zero TLBIs;
 *  6    aligned whole-block clears never unfold and return the OR of A/D;
 *  7    a changed valid entry stays TLB-visible unless the op completed a DSB;
 *       without TLBI or DSB the stale set only grows;
 *  8    a rejected call (e.g. crossing the table) changes nothing.
 */

/** PFN regions with different folio sizes: 64K folios, 32K folios (never foldable), 512K folios. */
const REGIONS = [0x1000, 0x2000, 0x3000];
const folios: FolioBounds = {
  folioHead: (p) => p - (p % size(p)),
  folioNrPages: (p) => size(p),
};
function size(p: number): number {
  return p < 0x2000 ? 16 : p < 0x3000 ? 8 : 128;
}

const idx = fc.oneof(fc.integer({ min: 0, max: 79 }), fc.integer({ min: 480, max: 511 }));
const tbl = fc.integer({ min: 0, max: 1 });
const attrs = { write: fc.boolean(), young: fc.boolean(), dirty: fc.boolean() };
const pfnOf = { region: fc.integer({ min: 0, max: 2 }), shift: fc.constantFrom(0, 0, 0, 3) };

const blk = fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constantFrom(30, 31));
const opArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('mapBlock' as const), t: tbl, b: blk, region: fc.constantFrom(0, 2), ...attrs }) },
  fc.record({ k: fc.constant('setBatch' as const), t: tbl, i: idx, nr: fc.integer({ min: 2, max: 48 }), ...pfnOf, ...attrs }),
  fc.record({ k: fc.constant('setOne' as const), t: tbl, i: idx, ...pfnOf, ...attrs }),
  { weight: 2, arbitrary: fc.record({ k: fc.constant('fill' as const), t: tbl, b: blk, ...pfnOf, ...attrs, odd: fc.integer({ min: -24, max: 15 }) }) },
  fc.record({ k: fc.constant('clear' as const), t: tbl, i: idx, nr: fc.integer({ min: 1, max: 40 }), how: fc.constantFrom('getAndClear', 'clear', 'single', 'pteClear') }),
  { weight: 2, arbitrary: fc.record({ k: fc.constant('aligned' as const), t: tbl, b: fc.integer({ min: 0, max: 4 }), nb: fc.integer({ min: 1, max: 2 }) }) },
  fc.record({ k: fc.constant('wrprotect' as const), t: tbl, i: idx, nr: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ k: fc.constant('cyd' as const), t: tbl, i: idx, nr: fc.integer({ min: 1, max: 20 }), flags: fc.constantFrom(1, 2, 3) }),
  fc.record({ k: fc.constant('young' as const), t: tbl, i: idx, flush: fc.boolean() }),
  fc.record({ k: fc.constant('access' as const), t: tbl, i: idx, dirty: fc.boolean(), write: fc.boolean() }),
  fc.record({ k: fc.constant('hw' as const), t: tbl, i: idx, write: fc.boolean() }),
  fc.record({ k: fc.constant('pending' as const), t: tbl, i: idx, nr: fc.integer({ min: 1, max: 32 }) }),
  fc.record({ k: fc.constant('flush' as const), mm: fc.boolean() }),
);
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

interface World {
  mm: PageTables;
  tables: PteTable[];
  batch: TlbUnmapBatch;
}

function world(p: ArchProfileOptions): World {
  const machine = new Machine({ profile: archProfile('arm64-contpte', p) });
  const mm = new PageTables(machine, { folios });
  return { mm, tables: [mm.pteAlloc(VA0), mm.pteAlloc(VA0 + PMD_SIZE)], batch: new TlbUnmapBatch(machine) };
}

const out = pteBits();

/** Apply one op; returns the merged value of a whole-block clear (for §9.6), else null. */
function apply(w: World, op: Op): { lo: number; hi: number } | null {
  if (op.k === 'flush') {
    if (op.mm) flushTlbMm(w.mm);
    else tryToUnmapFlush(w.batch);
    return null;
  }
  const t = w.tables[op.t]!;
  switch (op.k) {
    case 'mapBlock': {
      const p = makeUserPte(REGIONS[op.region]! + op.b * 16, op);
      setPtes(t, op.b * 16, p.lo, p.hi, 16);
      return null;
    }
    case 'setBatch': {
      const p = makeUserPte(REGIONS[op.region]! + op.i + op.shift, op);
      setPtes(t, op.i, p.lo, p.hi, op.nr);
      return null;
    }
    case 'setOne': {
      const p = makeUserPte(REGIONS[op.region]! + op.i + op.shift, op);
      setPtes(t, op.i, p.lo, p.hi, 1);
      return null;
    }
    case 'fill': {
      // 16 single sets in order: the fold happens on the 16th unless `odd` breaks the pattern
      for (let k = 0; k < 16; k++) {
        const i = op.b * 16 + k;
        const p = makeUserPte(REGIONS[op.region]! + i + op.shift, { ...op, write: k === op.odd ? !op.write : op.write, young: op.young && k % 3 === 0 });
        setPtes(t, i, p.lo, p.hi, 1);
      }
      return null;
    }
    case 'clear':
      if (op.how === 'getAndClear') getAndClearFullPtes(t, op.i, op.nr, false, out);
      else if (op.how === 'clear') clearFullPtes(t, op.i, op.nr, true);
      else if (op.how === 'single') ptepGetAndClear(t, op.i, out);
      else pteClear(t, op.i);
      return null;
    case 'aligned':
      getAndClearFullPtes(t, op.b * 16, op.nb * 16, true, out);
      return { lo: out.lo, hi: out.hi };
    case 'wrprotect':
      wrprotectPtes(t, op.i, op.nr);
      return null;
    case 'cyd':
      clearYoungDirtyPtes(t, op.i, op.nr, op.flags === 1 ? CYDP_CLEAR_YOUNG : op.flags === 2 ? CYDP_CLEAR_DIRTY : CYDP_CLEAR_YOUNG | CYDP_CLEAR_DIRTY);
      return null;
    case 'young':
      if (op.flush) ptepClearFlushYoung(t, op.i);
      else ptepTestAndClearYoung(t, op.i);
      return null;
    case 'access': {
      const e = makeUserPte(ptePfn(t.lo[op.i]!, t.hi[op.i]!), { write: op.write, young: true, dirty: op.dirty && op.write });
      ptepSetAccessFlags(t, op.i, e.lo, e.hi, op.dirty);
      return null;
    }
    case 'hw':
      hwAccess(t, op.i, op.write);
      return null;
    case 'pending': {
      const va = t.vaOf(op.i);
      setTlbUbcFlushPending(w.batch, w.mm, t.lo[op.i]!, t.hi[op.i]!, va, Math.min(va + op.nr * 4096, t.vaOf(0) + PMD_SIZE));
      return null;
    }
  }
}

type Snap = { lo: number[]; hi: number[]; states: string[] }[];

function snap(w: World): Snap {
  return w.tables.map((t) => ({
    lo: Array.from(t.lo),
    hi: Array.from(t.hi),
    states: Array.from({ length: 32 }, (_, b) => contpteBlockState(t, b)),
  }));
}

function checkAfter(w: World, op: Op, before: Snap, staleBefore: number[], c: EventCounts, merged: { lo: number; hi: number } | null): void {
  // §9.1 / §9.3
  expect(checkContpteInvariants(w.mm)).toEqual([]);
  const tlbis = c.TLBI_VA + c.TLBI_RANGE + c.TLBI_ASID;
  w.tables.forEach((t, ti) => {
    const b0 = before[ti]!;
    for (let b = 0; b < 32; b++) {
      const now = contpteBlockState(t, b);
      const live = (lo: number[] | Uint32Array, hi: number[] | Uint32Array): boolean => {
        for (let k = b * 16; k < b * 16 + 16; k++) if ((lo[k]! | hi[k]!) !== 0) return true;
        return false;
      };
      // §9.2: live CONT ↔ NONCONT transitions only through contpte_convert
      if (b0.states[b] === 'cont' && now === 'noncont' && live(t.lo, t.hi)) expect(c.CONTPTE_UNFOLD).toBeGreaterThan(0);
      if (b0.states[b] === 'noncont' && now === 'cont' && live(b0.lo, b0.hi)) expect(c.CONTPTE_FOLD).toBeGreaterThan(0);
      // §9.4: gathered reads
      if (now === 'cont') {
        let young = false;
        let dirty = false;
        for (let k = b * 16; k < b * 16 + 16; k++) {
          young ||= pteYoung(t.lo[k]!, t.hi[k]!);
          dirty ||= pteDirty(t.lo[k]!, t.hi[k]!);
        }
        for (let k = b * 16; k < b * 16 + 16; k++) {
          const g = ptepGet(t, k, pteBits());
          expect(ptePfn(g.lo, g.hi)).toBe(ptePfn(t.lo[k]!, t.hi[k]!));
          expect([pteYoung(g.lo, g.hi), pteDirty(g.lo, g.hi)]).toEqual([young, dirty]);
        }
      }
    }
    // §9.7 (a): a changed valid entry is stale unless the op completed a DSB_ISH
    if (op.k !== 'hw' && c.DSB_ISH === 0) {
      for (let k = 0; k < 512; k++) {
        if ((b0.lo[k]! & 1) !== 0 && (b0.lo[k] !== t.lo[k] || b0.hi[k] !== t.hi[k])) expect(tlbMayHoldStale(w.mm, t.vaOf(k))).toBe(true);
      }
    }
  });
  // §9.7 (c): without TLBI or DSB the stale set only grows
  if (tlbis === 0 && c.DSB_ISH === 0) {
    const now = new Set(tlbStaleVas(w.mm));
    for (const va of staleBefore) expect(now.has(va)).toBe(true);
  }
  // §9.5: batched set_ptes issues no TLBI
  if (op.k === 'setBatch' || op.k === 'mapBlock') expect(tlbis + c.DSB_ISH + c.PTE_READ).toBe(0);
  // §9.6: aligned whole-block clear: no unfold, A/D = OR over the cleared entries
  if (op.k === 'aligned' && merged !== null) {
    expect(c.CONTPTE_UNFOLD).toBe(0);
    const b0 = before[op.t]!;
    let young = false;
    let dirty = false;
    for (let k = op.b * 16; k < (op.b + op.nb) * 16; k++) {
      young ||= pteYoung(b0.lo[k]!, b0.hi[k]!);
      dirty ||= pteDirty(b0.lo[k]!, b0.hi[k]!);
    }
    expect([pteYoung(merged.lo, merged.hi), pteDirty(merged.lo, merged.hi)]).toEqual([young, dirty]);
  }
}

function runSequence(p: ArchProfileOptions, ops: Op[]): void {
  const w = world(p);
  for (const op of ops) {
    const before = snap(w);
    const staleBefore = tlbStaleVas(w.mm);
    const countsBefore = w.mm.ledger.counts.slice();
    let merged: { lo: number; hi: number } | null = null;
    let error: unknown = null;
    const { counts } = measure(w.mm.ledger, () => {
      try {
        merged = apply(w, op);
      } catch (e) {
        error = e;
      }
    });
    if (error !== null) {
      // §9.8 and the boundary rule: a rejected call changes nothing
      expect(error).toBeInstanceOf(FoliolabError);
      const s = snap(w);
      expect(s.map((x) => [x.lo, x.hi])).toEqual(before.map((x) => [x.lo, x.hi]));
      expect(Array.from(w.mm.ledger.counts)).toEqual(Array.from(countsBefore));
      continue;
    }
    checkAfter(w, op, before, staleBefore, counts, merged);
  }
}

const variants: [string, ArchProfileOptions][] = [
  ['earlyExit', {}],
  ['old17', { gatherVariant: 'old17' }],
  ['earlyExit + bbml2NoAbort + range TLBI', { bbml2NoAbort: true, hasTlbiRange: true }],
];

describe('§9 invariants over random operation sequences (fast-check)', () => {
  for (const [name, p] of variants) {
    it(`holds after every operation (${name})`, () => {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => runSequence(p, ops)),
        { numRuns: 120 },
      );
    });
  }

  it('the sequences reach the interesting states (sanity: folds, unfolds, whole-block clears)', () => {
    const seen = { fold: 0, unfold: 0, cont: 0 };
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 10, maxLength: 40 }), (ops) => {
        const w = world({});
        for (const op of ops) {
          try {
            apply(w, op);
          } catch {
            /* rejected ops are covered above */
          }
        }
        seen.fold += w.mm.ledger.snapshot().CONTPTE_FOLD;
        seen.unfold += w.mm.ledger.snapshot().CONTPTE_UNFOLD;
        for (const t of w.tables) for (let b = 0; b < 32; b++) if (contpteBlockState(t, b) === 'cont') seen.cont++;
      }),
      // A fixed seed: the counts are a coverage sanity check, not a kernel answer, and with a fresh seed per run
      // the fold count (mean ≈ 36 over 60 runs) fell to the threshold about once in 150 runs.
      { numRuns: 60, seed: 20260311 },
    );
    expect(seen.fold).toBeGreaterThan(20);
    expect(seen.unfold).toBeGreaterThan(20);
    expect(seen.cont).toBeGreaterThan(20);
  });
});
