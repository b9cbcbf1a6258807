import { FLAG, folioSubrange, type Folio } from '@foliolab/folio-flags';
import { eventName, type TraceSink } from '@foliolab/ledger';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RMAP_NONE, folioAddAnonRmapPtes, folioRemoveRmapPtes, folioRemoveRmapPtesUnchecked, type MapcountMode, type RmapVma } from './index.js';
import { faultIn, folioCounters, makeMm, makeVma, makeWorld, type World } from './test-fixtures.js';

/*
 * folio_remove_rmap_ptes without a trace sink takes a fast path for large
 * folios in legacy mode (same counts in fewer charge() calls). With a sink
 * attached every operation takes the general path, whose event order the
 * trace shows. Two identical worlds, one traced and one not, get the same
 * random removals: every end state, stat, event count and error must match.
 */

/** A sink that records the event stream (what a trace could see). */
class RecordingSink implements TraceSink {
  readonly log: string[] = [];
  attach(): void {}
  onCharge(ev: number, n: number): void {
    this.log.push(`c${ev}x${n}`);
  }
  onLock(id: number, acquire: boolean): void {
    this.log.push(`${acquire ? 'L' : 'U'}${id}`);
  }
  onBegin(name: string): void {
    this.log.push(`B${name}`);
  }
  onEnd(): void {
    this.log.push('E');
  }
}

interface Scenario {
  readonly mode: MapcountMode;
  readonly order: number;
  /** Head flags: 0 none, 1 swapbacked, 2 swapbacked + swapcache, 3 swapcache only. */
  readonly headFlags: number;
  readonly presetPartiallyMapped: boolean;
  readonly devicePrivate: boolean;
  readonly splitUnderusedThp: boolean;
  /** Hold the split-queue lock during the removals (deferred_split_folio then throws). */
  readonly holdQueueLock: boolean;
  /** Extra PTE mappings by a second mm: [first, nr] (clipped). */
  readonly adds: readonly (readonly [number, number])[];
  /** Removals: [mm index, first, nr, checked entry point?] (clipped; skipped where not mapped). */
  readonly removes: readonly (readonly [number, number, number, boolean])[];
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  mode: fc.constantFrom<MapcountMode>('legacy', 'legacy', 'mm_id'),
  order: fc.integer({ min: 0, max: 9 }),
  headFlags: fc.integer({ min: 0, max: 3 }),
  presetPartiallyMapped: fc.boolean(),
  devicePrivate: fc.boolean(),
  splitUnderusedThp: fc.boolean(),
  holdQueueLock: fc.boolean(),
  adds: fc.array(fc.tuple(fc.nat(511), fc.integer({ min: 1, max: 512 })), { maxLength: 3 }),
  removes: fc.array(fc.tuple(fc.nat(1), fc.nat(511), fc.integer({ min: 1, max: 16 }), fc.boolean()), { minLength: 1, maxLength: 40 }),
});

interface Built {
  readonly w: World;
  readonly folio: Folio;
  readonly vmas: RmapVma[];
  /** PTE mappings per mm per page, to keep the removals legal. */
  readonly ptes: Int32Array[];
}

function build(s: Scenario): Built {
  const dp = s.devicePrivate ? { start: 0, end: 1024 } : null;
  const w = makeWorld(s.mode, { devicePrivatePfns: dp, splitUnderusedThp: s.splitUnderusedThp });
  const base = makeVma(w, makeMm(1), 0x200000, 512);
  const vmas = [base, { ...base, mm: makeMm(2) }];
  const folio = faultIn(w, s.order, base, 0x200000, RMAP_NONE);
  const nr = folio.nr;
  const ptes = [new Int32Array(nr), new Int32Array(nr)];
  if (s.order === 9) {
    // PMD-mapped: PTE-map it as well (a split in progress) so PTE removals apply.
    folioAddAnonRmapPtes(folioSubrange(folio, 0, nr), base, RMAP_NONE);
  }
  ptes[0]!.fill(1);
  for (const [f, n] of s.adds) {
    const first = f % nr;
    const len = Math.min(n, nr - first);
    folioAddAnonRmapPtes(folioSubrange(folio, first, len), vmas[1]!, RMAP_NONE);
    for (let i = first; i < first + len; i++) ptes[1]![i]!++;
  }
  const flags = w.memmap.flags;
  if (s.headFlags === 1 || s.headFlags === 2) flags[folio.head] = flags[folio.head]! | FLAG.swapbacked.mask;
  if (s.headFlags >= 2) flags[folio.head] = flags[folio.head]! | FLAG.swapcache.mask;
  if (s.presetPartiallyMapped && s.order > 0) flags[folio.head + 1] = flags[folio.head + 1]! | FLAG.partially_mapped.mask;
  if (s.holdQueueLock) w.ledger.lock(w.rmap.splitQueue.lockId);
  return { w, folio, vmas, ptes };
}

function snapshot(b: Built): unknown {
  return {
    folio: folioCounters(b.folio),
    stats: b.w.rmap.stats.snapshot(),
    queueLen: b.w.rmap.splitQueue.len,
    first: b.w.rmap.splitQueue.first,
    counts: b.w.ledger.snapshot(),
  };
}

/** Apply the scenario's removals; returns the per-step outcomes (error messages or 'ok'). */
function run(b: Built, s: Scenario): string[] {
  const out: string[] = [];
  const nr = b.folio.nr;
  for (const [m, f, n, checked] of s.removes) {
    const first = f % nr;
    let len = Math.min(n, nr - first);
    const counts = b.ptes[m]!;
    // Shrink to the pages this mm still maps from `first` on.
    let ok = 0;
    while (ok < len && counts[first + ok]! > 0) ok++;
    len = ok;
    if (len === 0) continue;
    try {
      if (checked) folioRemoveRmapPtes(folioSubrange(b.folio, first, len), b.vmas[m]!);
      else folioRemoveRmapPtesUnchecked(b.folio, b.folio.head + first, len, b.vmas[m]!);
      out.push('ok');
    } catch (e) {
      out.push(String((e as Error).message));
      break; // the same half-applied state in both worlds; stop there
    }
    for (let i = first; i < first + len; i++) counts[i]!--;
  }
  return out;
}

describe('folio_remove_rmap_ptes: untraced fast path ≡ traced general path (spec §2.2)', () => {
  it('same end states, stats, event counts and errors on random removal histories', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const plain = build(s);
        const traced = build(s);
        const sink = new RecordingSink();
        traced.w.ledger.setTrace(sink);
        const a = run(plain, s);
        const b = run(traced, s);
        expect(a).toEqual(b);
        expect(snapshot(plain)).toEqual(snapshot(traced));
      }),
      { numRuns: 300 },
    );
  });

  it('with a sink, a per-PTE removal of a swap-cache folio charges in the general order', () => {
    const s: Scenario = {
      mode: 'legacy',
      order: 4,
      headFlags: 2,
      presetPartiallyMapped: false,
      devicePrivate: false,
      splitUnderusedThp: true,
      holdQueueLock: false,
      adds: [],
      removes: [[0, 3, 1, false]],
    };
    const b = build(s);
    const sink = new RecordingSink();
    b.w.ledger.setTrace(sink);
    run(b, s);
    // RMAP_CALL; ATOMIC_MAPCOUNT (_large_mapcount), ATOMIC_MAPCOUNT ×1 (page), LOOP_ITER ×1,
    // ATOMIC_MAPCOUNT (_nr_pages_mapped); FLAG_LOAD (PG_partially_mapped); DEFERRED_SPLIT_CALL;
    // FLAG_LOAD ×2 (folio_test_swapcache); PCPU_COUNTER.
    const names = sink.log.map((e) => e.replace(/^c(\d+)x(\d+)$/, (_m, ev: string, n: string) => `${eventName(Number(ev))}x${n}`));
    expect(names).toEqual([
      'Bfolio_remove_rmap_ptes',
      'RMAP_CALLx1',
      'ATOMIC_MAPCOUNTx1',
      'ATOMIC_MAPCOUNTx1',
      'LOOP_ITERx1',
      'ATOMIC_MAPCOUNTx1',
      'FLAG_LOADx1',
      'DEFERRED_SPLIT_CALLx1',
      'FLAG_LOADx1',
      'FLAG_LOADx1',
      'PCPU_COUNTERx1',
      'E',
    ]);
  });
});
