import { NR_EVENTS, type EventCounts } from '@foliolab/ledger';
import {
  PAGE_SIZE,
  PTE_MARKER_UFFD_WP,
  PTRS_PER_PTE,
  __setPte,
  getAndClearPtes,
  mkMarkerPte,
  mkSwapPte,
  ptePfn,
  ptePresent,
  pteBits,
  pteIndex,
} from '@foliolab/pagetable-arm64-contpte';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SKIP_POLICIES, walkAndUnmap, type SkipPolicy } from './index.js';
import { PFN0, accumulate, build, layoutArb, entryAt, minusIds, tablesSnapshot, walkEnd, type Built, type Kind, type Layout } from './test-fixtures.js';

/*
 * Seed 003 answered by running it (spec "Package pvmw" §5 recommendation,
 * unmap-engine §3.3 step 7): for random layouts — a 64K or 2M folio at an
 * aligned or unaligned VA (straddling a PMD), holes, entries already swap /
 * marker / foreign, VMA cuts — and random caller batch sizes, the three skip
 * policies make the same matches (address, pfn, batch) and leave identical
 * page tables; only the ledger differs. §7.8: the batches sum to the folio
 * PTEs mapped in the VMA and never cross a PMD, vm_end or the folio end.
 */

type Conversion = 'swap' | 'none' | 'marker';

interface Run {
  seq: string[];
  tables: number[][];
  handled: number;
  walkDone: boolean;
  /** Some batch of ≥ 2 entries was followed by more walking (the skip had something to skip). */
  skipped: boolean;
  walk: EventCounts;
}

const reg = pteBits();

/** The caller's batch at a hit: the run of present PTEs mapping consecutive folio pages, capped (peeked, uncharged). */
function runAt(b: Built, a: number, end: number): number {
  const first = entryAt(b.pt, a);
  const pfn0 = ptePfn(first.lo, first.hi);
  let run = 1;
  while (pteIndex(a) + run < PTRS_PER_PTE && a + run * PAGE_SIZE < end && pfn0 + run < PFN0 + b.target.nrPages) {
    const e = entryAt(b.pt, a + run * PAGE_SIZE);
    if (!ptePresent(e.lo, e.hi) || ptePfn(e.lo, e.hi) !== pfn0 + run) break;
    run++;
  }
  return run;
}

function runPolicy(l: Layout, policy: SkipPolicy, sync: boolean, batches: number[], conv: Conversion): Run {
  const b = build(l);
  const end = walkEnd(b);
  const seq: string[] = [];
  const handlerCounts = new Float64Array(NR_EVENTS);
  let hit = 0;
  let last = 0;
  let skipped = false;
  const res = walkAndUnmap(b.pt, b.target, b.vma, { policy, sync }, (w, maxNr) =>
    accumulate(b.ledger, handlerCounts, () => {
      expect(b.ledger.locks.heldCount).toBe(1);
      const t = w.pte!;
      const i = w.pteIndex;
      const run = runAt(b, w.address, end);
      if (policy === 'batchPresent') expect(w.nr).toBe(run); // the walker's run = the caller's own scan
      expect(run).toBeLessThanOrEqual(maxNr);
      if (last >= 2) skipped = true;
      const k = Math.min(batches[hit++ % batches.length]!, run);
      last = k;
      const pfn = ptePfn(t.lo[i]!, t.hi[i]!);
      seq.push(`${w.address.toString(16)}:${pfn - PFN0}+${k}`);
      getAndClearPtes(t, i, k, reg);
      for (let j = 0; j < k; j++) {
        if (conv === 'swap') __setPte(t, i + j, mkSwapPte(reg, 0, 0x100 + pfn - PFN0 + j, true).lo, reg.hi);
        else if (conv === 'marker') __setPte(t, i + j, mkMarkerPte(reg, PTE_MARKER_UFFD_WP).lo, reg.hi);
      }
      return k;
    }),
  );
  if (last >= 2 && !res.walkDone) skipped = true;
  expect(b.ledger.locks.heldCount).toBe(0);
  return { seq, tables: tablesSnapshot(b.pt), handled: res.handled, walkDone: res.walkDone, skipped, walk: minusIds(b.ledger.snapshot(), handlerCounts) };
}

/** Folio pages mapped (present, in the VMA) by this layout. */
function mappedPages(l: Layout): number {
  let n = 0;
  for (let j = l.startCut; j < l.folioPages - l.endCut; j++) if (l.kinds[j] === 'present') n++;
  return n;
}

const KINDS: Kind[] = ['present', 'present', 'present', 'present', 'none', 'swap', 'marker', 'foreign'];

describe('seed 003: none / jump / batchPresent are equivalent except in cost (fast-check)', () => {
  it('same matches, same page tables, handled = folio PTEs mapped; none pays for handled entries, jump/batchPresent do not', () => {
    fc.assert(
      fc.property(
        layoutArb(KINDS),
        fc.boolean(),
        fc.array(fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 512 })), { minLength: 1, maxLength: 6 }),
        fc.constantFrom<Conversion>('swap', 'none', 'marker'),
        (l, sync, batches, conv) => {
          const r = {} as Record<SkipPolicy, Run>;
          for (const p of SKIP_POLICIES) r[p] = runPolicy(l, p, sync, batches, conv);
          const { none, jump, batchPresent: bp } = r;
          expect(jump.seq).toEqual(none.seq);
          expect(bp.seq).toEqual(none.seq);
          expect(jump.tables).toEqual(none.tables);
          expect(bp.tables).toEqual(none.tables);
          // §7.8: every mapped folio PTE handled exactly once
          expect(none.handled).toBe(mappedPages(l));
          // costs: same calls; jump and batchPresent visit the same addresses; none also re-reads handled entries
          expect(jump.walk.PVMW_CALL).toBe(none.walk.PVMW_CALL);
          expect(bp.walk.PVMW_CALL).toBe(none.walk.PVMW_CALL);
          expect(bp.walk.PVMW_STEP).toBe(jump.walk.PVMW_STEP);
          expect(jump.walk.LOCK).toBe(none.walk.LOCK);
          expect(bp.walk.LOCK).toBeLessThanOrEqual(jump.walk.LOCK);
          if (none.skipped) {
            expect(none.walk.PVMW_STEP).toBeGreaterThan(jump.walk.PVMW_STEP);
            expect(none.walk.PTE_READ).toBeGreaterThan(jump.walk.PTE_READ);
          } else {
            expect(none.walk.PVMW_STEP).toBe(jump.walk.PVMW_STEP);
            expect(none.walk.PTE_READ).toBe(jump.walk.PTE_READ);
          }
          // none pays at least one read and one step per handled entry it walks over again
          expect(none.walk.PTE_READ - jump.walk.PTE_READ).toBeGreaterThanOrEqual(none.walk.PVMW_STEP - jump.walk.PVMW_STEP);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a worked case: 2M folio straddling a PMD at +300 pages, batches of 8, SYNC', () => {
    //  table A: pages 0..211 (slots 300..511) | table B: pages 212..511 (slots 0..299)
    const l: Layout = { profile: 'arm64-contpte', folioPages: 512, offset: 300, startCut: 0, endCut: 0, lead: 0, trail: 0, decoys: false, kinds: Array<Kind>(512).fill('present') };
    const runs = SKIP_POLICIES.map((p) => runPolicy(l, p, true, [8], 'swap'));
    for (const r of runs) {
      expect(r.seq.length).toBe(Math.ceil(212 / 8) + Math.ceil(300 / 8)); // batches capped at the PMD boundary
      expect(r.seq[26]).toBe(`${(0x4000_0000 + (300 + 208) * PAGE_SIZE).toString(16)}:208+4`);
      expect(r.walk.PGTABLE_CROSSED).toBe(1);
      expect([r.walk.LOCK, r.walk.UNLOCK]).toEqual([2, 2]);
    }
    const [none, jump, bp] = runs as [Run, Run, Run];
    expect(none.walk.PVMW_STEP).toBe(512);
    expect(jump.walk.PVMW_STEP).toBe(none.seq.length);
    expect(bp.walk.PVMW_STEP).toBe(none.seq.length);
  });
});
