import {
  FLAG,
  folioClearSwapcache,
  folioPutRefs,
  folioRefAdd,
  folioSetSwapcache,
  folioSubrange,
  folioTestSwapcache,
  type Folio,
} from '@foliolab/folio-flags';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  RMAP_EXCLUSIVE,
  RMAP_NONE,
  checkRmapInvariants,
  deferredSplitScan,
  folioAddAnonRmapPmd,
  folioAddAnonRmapPtes,
  folioPinCount,
  folioRemoveRmapPmd,
  folioRemoveRmapPtes,
  folioTryDupAnonRmapPmd,
  folioTryDupAnonRmapPtes,
  folioTryShareAnonRmapPmd,
  folioTryShareAnonRmapPtes,
  tryGrabFolio,
  unpinFolio,
  type FolioCensus,
  type MapcountMode,
  type RmapVma,
} from './index.js';
import { MODES, faultIn, folioCounters, makeMm, makeVma, makeWorld, type World } from './test-fixtures.js';

/*
 * Spec §2 "Invariants (rmap)": checkRmapInvariants holds after every step of
 * random op sequences (add / remove / dup / share / pin / unpin, PMD ops on
 * PMD-sized folios, swap-cache entry and exit, deferred split scans), with
 * a page-table census kept by the test as the engine will keep one. Ops
 * that would be a caller bug are not generated; −EBUSY outcomes must leave
 * every counter unchanged.
 */

const NR_MMS = 3;

interface Tracked {
  readonly folio: Folio;
  /** ptes[mm][page]: present PTEs of `mm` mapping the page. */
  readonly ptes: Int32Array[];
  readonly pmds: number[];
}

interface Ctx {
  readonly w: World;
  readonly vmas: RmapVma[];
  readonly folios: Tracked[];
}

const AE = FLAG.anon_exclusive.mask;

function anyPteMapping(t: Tracked, page: number): number {
  let n = 0;
  for (const p of t.ptes) n += p[page]!;
  return n;
}

function census(t: Tracked): FolioCensus {
  const perPage = new Array<number>(t.folio.nr).fill(0);
  let ptes = 0;
  for (let i = 0; i < t.folio.nr; i++) {
    perPage[i] = anyPteMapping(t, i);
    ptes += perPage[i]!;
  }
  return { ptes, pmds: t.pmds.reduce((a, b) => a + b, 0), ptesPerPage: perPage, extraRefs: 1 };
}

function setup(mode: MapcountMode, orders: number[], excl: boolean): Ctx {
  const w = makeWorld(mode, {}, 2048);
  const base = makeVma(w, makeMm(1), 0x40000000, 512 * 8);
  const vmas = [base, ...[2, 3].map((id) => ({ ...base, mm: makeMm(id) }))];
  const folios = orders.map((order, i): Tracked => {
    const folio = faultIn(w, order, base, 0x40000000 + i * 0x200000, excl ? RMAP_EXCLUSIVE : RMAP_NONE);
    folioRefAdd(folio, 1); // an LRU reference, so the folio outlives its mappings
    const ptes = Array.from({ length: NR_MMS }, () => new Int32Array(folio.nr));
    const pmds = [0, 0, 0];
    if (order === 9) pmds[0] = 1;
    else ptes[0]!.fill(1);
    return { folio, ptes, pmds };
  });
  return { w, vmas, folios };
}

type Op = { kind: number; f: number; mm: number; mm2: number; a: number; b: number; flag: boolean };

const opArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.integer({ min: 0, max: 10 }),
  f: fc.nat(7),
  mm: fc.nat(NR_MMS - 1),
  mm2: fc.nat(NR_MMS - 1),
  a: fc.nat(511),
  b: fc.integer({ min: 1, max: 64 }),
  flag: fc.boolean(),
});

/** A run [first, len] within the folio where `ok(page)` holds, starting at or after `a`. */
function run(nr: number, a: number, b: number, ok: (i: number) => boolean): [number, number] | null {
  for (let k = 0; k < nr; k++) {
    const first = (a + k) % nr;
    if (!ok(first)) continue;
    let len = 0;
    while (first + len < nr && len < b && ok(first + len)) len++;
    return [first, len];
  }
  return null;
}

function exclusive(f: Folio, page: number): boolean {
  return (f.mm.flags[f.head + page]! & AE) !== 0;
}

/** Per kind: ops that took effect; plus −EBUSY outcomes seen (the generator must reach them). */
const applied = new Array<number>(11).fill(0);
let busy = 0;

function applyOp(c: Ctx, op: Op): void {
  if (applyOpInner(c, op)) applied[op.kind]!++;
}

function applyOpInner(c: Ctx, op: Op): boolean {
  const t = c.folios[op.f % c.folios.length]!;
  const { folio } = t;
  const nr = folio.nr;
  const vma = c.vmas[op.mm]!;
  const pmdSized = folio.order === 9;
  const entire = t.pmds.reduce((x, y) => x + y, 0);
  switch (op.kind) {
    case 0: {
      // add PTEs: exclusive only on pages nobody PTE-maps and no PMD maps; else only non-exclusive pages.
      const excl = op.flag && entire === 0;
      const r = run(nr, op.a, op.b, (i) => (excl ? anyPteMapping(t, i) === 0 : !exclusive(folio, i)));
      if (r === null) return false;
      folioRefAdd(folio, r[1]);
      folioAddAnonRmapPtes(folioSubrange(folio, r[0], r[1]), vma, excl ? RMAP_EXCLUSIVE : RMAP_NONE);
      for (let i = r[0]; i < r[0] + r[1]; i++) t.ptes[op.mm]![i]!++;
      return true;
    }
    case 1: {
      const r = run(nr, op.a, op.b, (i) => t.ptes[op.mm]![i]! > 0);
      if (r === null) return false;
      folioRemoveRmapPtes(folioSubrange(folio, r[0], r[1]), vma);
      folioPutRefs(folio, r[1]);
      for (let i = r[0]; i < r[0] + r[1]; i++) t.ptes[op.mm]![i]!--;
      return true;
    }
    case 2: {
      // fork-like dup from mm2 into mm
      const src = c.vmas[op.mm2]!;
      const r = run(nr, op.a, op.b, (i) => t.ptes[op.mm2]![i]! > 0);
      if (r === null) return false;
      const before = folioCounters(folio);
      folioRefAdd(folio, r[1]);
      if (folioTryDupAnonRmapPtes(folioSubrange(folio, r[0], r[1]), vma, src) === 0) {
        for (let i = r[0]; i < r[0] + r[1]; i++) t.ptes[op.mm]![i]!++;
      } else {
        busy++;
        folioPutRefs(folio, r[1]);
        expect(folioCounters(folio)).toEqual(before);
      }
      return true;
    }
    case 3: {
      const r = run(nr, op.a, op.b, (i) => exclusive(folio, i));
      if (r === null) return false;
      const before = folioCounters(folio);
      if (folioTryShareAnonRmapPtes(folioSubrange(folio, r[0], r[1])) !== 0) {
        busy++;
        expect(folioCounters(folio)).toEqual(before);
      }
      return true;
    }
    case 4:
      tryGrabFolio(folio, 1, 'pin', c.vmas[op.mm]!.mm);
      return true;
    case 5:
      if (folioPinCount(folio) === 0) return false;
      unpinFolio(folio, 1);
      return true;
    case 6: {
      if (!pmdSized) return false;
      if (op.flag) {
        // add a PMD mapping: never next to an exclusive page (that would map it twice)
        for (let i = 0; i < nr; i++) if (exclusive(folio, i)) return false;
        folioRefAdd(folio, 1);
        folioAddAnonRmapPmd(folio, vma, RMAP_NONE);
        t.pmds[op.mm]!++;
      } else {
        if (t.pmds[op.mm]! === 0) return false;
        folioRemoveRmapPmd(folio, vma);
        folioPutRefs(folio, 1);
        t.pmds[op.mm]!--;
      }
      return true;
    }
    case 7: {
      if (!pmdSized || t.pmds[op.mm2]! === 0) return false;
      if (op.flag && exclusive(folio, 0)) {
        const before = folioCounters(folio);
        if (folioTryShareAnonRmapPmd(folio) !== 0) expect(folioCounters(folio)).toEqual(before);
        return true;
      }
      const before = folioCounters(folio);
      folioRefAdd(folio, 1);
      if (folioTryDupAnonRmapPmd(folio, vma, c.vmas[op.mm2]!) === 0) t.pmds[op.mm]!++;
      else {
        folioPutRefs(folio, 1);
        expect(folioCounters(folio)).toEqual(before);
      }
      return true;
    }
    case 8:
      // The swap package's part: enter / leave the swap cache (nr references).
      if (!folioTestSwapcache(folio)) {
        folioSetSwapcache(folio);
        folioRefAdd(folio, nr);
      } else {
        folioClearSwapcache(folio);
        folioPutRefs(folio, nr);
      }
      return true;
    case 9:
      deferredSplitScan(c.w.rmap.splitQueue, 1 + (op.a % 4), () => false);
      return true;
    default: {
      // remove everything one mm maps in one batch (zap of the whole range)
      const r = run(nr, 0, nr, (i) => t.ptes[op.mm]![i]! > 0);
      if (r === null) return false;
      folioRemoveRmapPtes(folioSubrange(folio, r[0], r[1]), vma);
      folioPutRefs(folio, r[1]);
      for (let i = r[0]; i < r[0] + r[1]; i++) t.ptes[op.mm]![i]!--;
      return true;
    }
  }
}

function check(c: Ctx, step: string): void {
  const byHead = new Map(c.folios.map((t) => [t.folio.head, t]));
  const v = checkRmapInvariants(
    c.w.rmap,
    c.folios.map((t) => t.folio),
    { census: (f) => census(byHead.get(f.head)!), allFolios: true },
  );
  if (v.length > 0) throw new Error(`${step}: ${JSON.stringify(v)}`);
}

describe('checkRmapInvariants holds after every op of random sequences (spec §2 "Invariants (rmap)")', () => {
  for (const mode of MODES) {
    it(`${mode}: add / remove / dup / share / pin / unpin / PMD / swap cache / scan`, () => {
      const orders = fc.array(fc.constantFrom(0, 2, 3, 4, 5, 9), { minLength: 1, maxLength: 3 });
      fc.assert(
        fc.property(orders, fc.boolean(), fc.array(opArb, { minLength: 5, maxLength: 40, size: 'max' }), (os, excl, ops) => {
          const c = setup(mode, os, excl);
          check(c, 'setup');
          ops.forEach((op, i) => {
            applyOp(c, op);
            check(c, `op ${i} ${JSON.stringify(op)}`);
          });
        }),
        { numRuns: 150 },
      );
    });
  }

  it('the generated sequences reach every op kind and the −EBUSY paths (runs after the properties)', () => {
    expect(applied.map((n) => n > 0)).toEqual(applied.map(() => true));
    expect(busy).toBeGreaterThan(0);
  });
});
