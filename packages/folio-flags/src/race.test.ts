import { FoliolabError } from '@foliolab/ledger';
import { describe, expect, it } from 'vitest';
import {
  FLAG,
  Memmap,
  PG,
  RACE_PRESETS,
  exploreFlagRace,
  racePreset,
  runRacePreset,
  setPageAnonExclusive,
  type RaceOp,
  type RaceReport,
} from './index.js';

const AE = 1 << PG.owner_2; // PG_anon_exclusive
const HWP = 1 << PG.hwpoison;
const PM = FLAG.partially_mapped.mask;
const HAS_HWP = FLAG.has_hwpoisoned.mask;
const RMAPPABLE = FLAG.large_rmappable.mask;
/** page[1] of the presets' 64K anon folio before the race: order 4, large_rmappable, anon_exclusive. */
const PAGE1 = 4 | RMAPPABLE | AE;

/** outcome word of page[1] → number of interleavings reaching it. */
function page1Outcomes(r: RaceReport): Map<number, number> {
  const i = r.pages.indexOf(1);
  return new Map(r.outcomes.map((o) => [o.final[i]!, o.count]));
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FoliolabError);
    return (e as FoliolabError).code;
  }
  return undefined;
}

describe('race presets (spec §1.2, seed 004)', () => {
  // CPU0: __folio_set_partially_mapped = load L, store S (2 steps); CPU1: ClearPageAnonExclusive(page[1]) = C (1 step).
  // Interleavings: 3!/(2!·1!) = 3 — C L S, L C S, L S C. Only L C S loses the clear.
  it('partially-mapped (pre-fix): 3 interleavings, exactly 1 loses PG_anon_exclusive’s clear', () => {
    const r = runRacePreset('partially-mapped');
    expect(r.pages).toEqual([1]);
    expect(r.initial).toEqual([PAGE1]);
    expect(r.interleavings).toBe(3);
    expect(r.losing).toBe(1);
    expect(r.lostFlags).toEqual(['anon_exclusive']);
    expect(page1Outcomes(r)).toEqual(
      new Map([
        [(PAGE1 & ~AE) | PM, 2], // the intended result
        [PAGE1 | PM, 1], // the clear was lost: page[1] still claims to be exclusive
      ]),
    );
    const losing = r.runs.filter((run) => run.lost.length > 0);
    expect(losing.map((run) => run.schedule)).toEqual([[0, 1, 0]]);
    expect(losing[0]!.lost).toEqual([
      expect.objectContaining({ page: 1, flag: 'anon_exclusive', change: 'clear', cpu: 1, byCpu: 0, bit: PG.owner_2 }),
    ]);
  });

  it('partially-mapped-fixed: 2 interleavings, one final word, nothing lost', () => {
    const r = runRacePreset('partially-mapped-fixed');
    expect(r.interleavings).toBe(2);
    expect(r.losing).toBe(0);
    expect(r.outcomes).toHaveLength(1);
    expect(r.outcomes[0]!.final).toEqual([(PAGE1 & ~AE) | PM]);
    expect(r.outcomes[0]!.flags).toEqual([['large_rmappable', 'partially_mapped', 'order=4']]);
  });

  // CPU0: L S; CPU1: C; CPU2: H1 (TestSetPageHWPoison(page[1])), H2 (folio_set_has_hwpoisoned), H1 before H2.
  // 5!/(2!·1!·2!) = 30 interleavings. Not losing ⇔ L and S adjacent: 4!/2! = 12. Losing 18.
  // Which of C, H1, H2 fall between L and S: for each of the 3 orders of {C, H1<H2} the set is a contiguous run:
  // {} 12, {C} 3, {H1} 3, {H2} 3, {C,H1} 2, {H1,H2} 2, {C,H2} 2, {C,H1,H2} 3 → 8 reachable final words.
  it('partially-mapped-hwpoison (three CPUs, pre-fix): 30 interleavings, 18 lose, 8 reachable words', () => {
    const r = runRacePreset('partially-mapped-hwpoison');
    expect(r.interleavings).toBe(30);
    expect(r.losing).toBe(18);
    expect(r.lostFlags).toEqual(['anon_exclusive', 'has_hwpoisoned', 'hwpoison']);
    const changes = new Set(r.runs.flatMap((run) => run.lost.map((l) => `${l.flag}:${l.change}`)));
    expect([...changes].sort()).toEqual(['anon_exclusive:clear', 'has_hwpoisoned:set', 'hwpoison:set']);
    const good = (PAGE1 & ~AE) | PM | HWP | HAS_HWP;
    expect(page1Outcomes(r)).toEqual(
      new Map([
        [good, 12],
        [good | AE, 3], // C lost
        [good & ~HWP, 3], // H1 lost: the poison mark on page[1] is gone
        [good & ~HAS_HWP, 3], // H2 lost: has_hwpoisoned false although page[1] is poisoned
        [(good | AE) & ~HWP, 2],
        [good & ~HWP & ~HAS_HWP, 2],
        [(good | AE) & ~HAS_HWP, 2],
        [(good | AE) & ~HWP & ~HAS_HWP, 3],
      ]),
    );
  });

  it('partially-mapped-hwpoison-fixed: 4!/(1!·1!·2!) = 12 interleavings, one final word', () => {
    const r = runRacePreset('partially-mapped-hwpoison-fixed');
    expect(r.interleavings).toBe(12);
    expect(r.losing).toBe(0);
    expect(r.outcomes.map((o) => o.final)).toEqual([[(PAGE1 & ~AE) | PM | HWP | HAS_HWP]]);
  });

  // CPU0: L S; CPU1: H1 H2. 4!/(2!·2!) = 6; adjacent L S: 3; losing 3 ({H1}, {H2}, {H1,H2} each once).
  it('hwpoison (pre-fix): 6 interleavings, 3 lose PG_hwpoison and/or PG_has_hwpoisoned', () => {
    const r = runRacePreset('hwpoison');
    expect(r.interleavings).toBe(6);
    expect(r.losing).toBe(3);
    const good = PAGE1 | PM | HWP | HAS_HWP;
    expect(page1Outcomes(r)).toEqual(
      new Map([
        [good, 3],
        [good & ~HWP, 1],
        [good & ~HAS_HWP, 1],
        [good & ~HWP & ~HAS_HWP, 1],
      ]),
    );
    // memory_failure's TestSetPageHWPoison always sees the bit clear: the race is invisible to it.
    expect(r.runs.every((run) => run.returns[1]![0] === false)).toBe(true);
  });

  it('hwpoison-fixed: one final word, nothing lost', () => {
    const r = runRacePreset('hwpoison-fixed');
    expect(r.interleavings).toBe(3);
    expect(r.losing).toBe(0);
    expect(r.outcomes).toHaveLength(1);
  });

  it('every pre-fix preset loses an update and every fixed one does not', () => {
    for (const p of RACE_PRESETS) {
      const r = runRacePreset(p.name);
      expect(r.losing > 0).toBe(!p.name.endsWith('-fixed'));
      expect(r.outcomes.length === 1).toBe(p.name.endsWith('-fixed'));
      expect(r.outcomes.reduce((s, o) => s + o.count, 0)).toBe(r.interleavings);
    }
    expect(() => racePreset('nope')).toThrow('known: partially-mapped');
  });
});

describe('exploreFlagRace', () => {
  function folio(order = 2) {
    const mm = new Memmap({ nrPages: 512 });
    return { mm, f: mm.allocFolio(order)! };
  }

  it('two non-atomic sets of different bits: 4!/(2!·2!) = 6 interleavings, only the 2 serial ones keep both', () => {
    const { f } = folio(2);
    const r = exploreFlagRace(f, [[{ kind: '__set', flag: 'dirty' }], [{ kind: '__set', flag: 'referenced' }]]);
    expect(r.interleavings).toBe(6);
    expect(r.losing).toBe(4);
    const both = FLAG.dirty.mask | FLAG.referenced.mask | (1 << PG.head);
    const byFinal = new Map(r.outcomes.map((o) => [o.final[0]! & 0xffffff, o.count]));
    expect(byFinal).toEqual(
      new Map([
        [both, 2],
        [both & ~FLAG.referenced.mask, 2], // CPU0 stored last
        [both & ~FLAG.dirty.mask, 2], // CPU1 stored last
      ]),
    );
  });

  it('enumerates deterministically in lexicographic CPU order, with readable steps', () => {
    const { f } = folio(1);
    const progs: RaceOp[][] = [[{ kind: '__set', flag: 'partially_mapped' }], [{ kind: 'set', flag: 'has_hwpoisoned' }]];
    const a = exploreFlagRace(f, progs);
    expect(a.runs.map((r) => r.schedule)).toEqual([
      [0, 0, 1],
      [0, 1, 0],
      [1, 0, 0],
    ]);
    expect(a.runs[1]!.steps).toEqual([
      'cpu0 load  page[1] __folio_set_partially_mapped',
      'cpu1 rmw   page[1] folio_set_has_hwpoisoned',
      'cpu0 store page[1] __folio_set_partially_mapped',
    ]);
    expect(exploreFlagRace(f, progs)).toEqual(a);
  });

  it('atomic-only programs on one word never lose anything (3 CPUs × 2 ops: 6!/(2!)^3 = 90)', () => {
    const { mm, f } = folio(3);
    setPageAnonExclusive(mm, f.head + 1);
    const r = exploreFlagRace(f, [
      [{ kind: 'set', flag: 'partially_mapped' }, { kind: 'clear', flag: 'anon_exclusive', page: 1 }],
      [{ kind: 'test_set', flag: 'hwpoison', page: 1 }, { kind: 'set', flag: 'has_hwpoisoned' }],
      [{ kind: 'test', flag: 'partially_mapped' }, { kind: 'set', flag: 'large_rmappable' }],
    ]);
    expect(r.interleavings).toBe(90);
    expect(r.losing).toBe(0);
    expect(r.outcomes).toHaveLength(1);
    // The plain test sees the bit set in exactly the interleavings where CPU0's set came first.
    const seen = r.runs.filter((run) => run.returns[2]![0] === true).length;
    expect(seen).toBe(45); // by symmetry of the first steps of CPU0 and CPU2
  });

  it('head flags redirect to page 0 and PF_ANY flags use their page; the page list is what was touched', () => {
    const { f } = folio(3);
    const r = exploreFlagRace(f, [[{ kind: 'set', flag: 'dirty', page: 5 }], [{ kind: '__clear', flag: 'hwpoison', page: 6 }]]);
    expect(r.pages).toEqual([0, 6]);
    expect(r.cpus[0]!.ops[0]).toEqual({ label: 'folio_set_dirty', kind: 'set', page: 0, steps: 1 });
    expect(r.cpus[1]!.ops[0]!.label).toBe('__ClearPageHWPoison(page[6])');
    expect(r.losing).toBe(0); // different words cannot interfere
  });

  it('validates its input and caps the interleavings (E2BIG) before enumerating', () => {
    const { f } = folio(2);
    const { f: small } = folio(0);
    expect(codeOf(() => exploreFlagRace(f, []))).toBe('EINVAL');
    expect(codeOf(() => exploreFlagRace(f, [[{ kind: 'set', flag: 'bogus' as never }]]))).toBe('EINVAL');
    expect(codeOf(() => exploreFlagRace(f, [[{ kind: 'xor' as never, flag: 'dirty' }]]))).toBe('EINVAL');
    expect(codeOf(() => exploreFlagRace(f, [[{ kind: 'set', flag: 'hwpoison', page: 4 }]]))).toBe('ERANGE');
    expect(codeOf(() => exploreFlagRace(small, [[{ kind: 'set', flag: 'partially_mapped' }]]))).toBe('EINVAL');
    const long: RaceOp[] = Array.from({ length: 8 }, () => ({ kind: '__set', flag: 'dirty' }));
    // 16 + 16 steps: C(32, 16) = 601 080 390 interleavings
    expect(codeOf(() => exploreFlagRace(f, [long, long]))).toBe('E2BIG');
    expect(() => exploreFlagRace(f, [long, long])).toThrow('more than 100000 interleavings');
    expect(codeOf(() => exploreFlagRace(f, [[{ kind: 'set', flag: 'dirty' }], long.slice(0, 2)], { maxInterleavings: 4 }))).toBe('E2BIG');
    expect(exploreFlagRace(f, [[{ kind: 'set', flag: 'dirty' }], long.slice(0, 2)], { maxInterleavings: 5 }).interleavings).toBe(5);
  });
});
