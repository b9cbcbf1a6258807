import {
  PAGE_SIZE,
  PMD_SIZE,
  PTRS_PER_PTE,
  ptePfn,
  ptePresent,
  pteNone,
  pteIndex,
  softleafIsDeviceExclusive,
  softleafIsDevicePrivate,
  softleafIsMigration,
  softleafPfn,
} from '@foliolab/pagetable-arm64-contpte';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PVMW_BATCH_PRESENT,
  PVMW_MIGRATION,
  PVMW_PGTABLE_CROSSED,
  PVMW_SYNC,
  folioVmaWalk,
  pageVmaMappedWalk,
  vmaAddress,
  type PvmwVma,
} from './index.js';
import { PFN0, build, entryAt, layoutArb, pmdBoundaries, walkEnd, type Built, type Kind, type Layout } from './test-fixtures.js';

/*
 * Spec "Package pvmw" §7, invariants 1–7, as properties over random layouts
 * (64K or 2M folio at any offset, so it may straddle a PMD; VMA cut inside
 * or around it; every entry kind) and every flag set, with an independent
 * oracle for which entries match, where the walk takes locks and when it
 * sets PVMW_PGTABLE_CROSSED. The caller changes nothing between calls.
 */

const KINDS: Kind[] = ['present', 'present', 'present', 'none', 'none', 'swap', 'marker', 'foreign', 'hwpoison', 'migration', 'devPrivate', 'devExclusive'];
const FLAG_SETS = [0, PVMW_SYNC, PVMW_MIGRATION, PVMW_SYNC | PVMW_MIGRATION, PVMW_BATCH_PRESENT, PVMW_SYNC | PVMW_BATCH_PRESENT];

/** §2/§7.7 oracle: does (lo, hi) map a target page under `flags`? */
function matches(flags: number, lo: number, hi: number, n: number): boolean {
  let pfn: number;
  if ((flags & PVMW_MIGRATION) !== 0) {
    if (!softleafIsMigration(lo, hi)) return false;
    pfn = softleafPfn(lo, hi);
  } else if (ptePresent(lo, hi)) {
    pfn = ptePfn(lo, hi);
  } else if ((flags & PVMW_BATCH_PRESENT) === 0 && (softleafIsDevicePrivate(lo, hi) || softleafIsDeviceExclusive(lo, hi))) {
    pfn = softleafPfn(lo, hi);
  } else {
    return false;
  }
  return pfn >= PFN0 && pfn < PFN0 + n;
}

/** map_pte's early test (without SYNC): may this first entry be a candidate? */
function mapCandidate(flags: number, lo: number, hi: number): boolean {
  if (pteNone(lo, hi)) return false;
  if (ptePresent(lo, hi)) return (flags & PVMW_MIGRATION) === 0;
  if ((flags & PVMW_MIGRATION) !== 0) return true;
  if ((flags & PVMW_BATCH_PRESENT) !== 0) return false;
  return softleafIsDevicePrivate(lo, hi) || softleafIsDeviceExclusive(lo, hi);
}

/** NEXT stops on this entry. */
function nextCandidate(flags: number, lo: number, hi: number): boolean {
  return (flags & PVMW_BATCH_PRESENT) !== 0 ? ptePresent(lo, hi) : !pteNone(lo, hi);
}

/** LOCK events the walk must take over [start, end) (§7.1, §7.6 and D.4's SYNC zap-wait). */
function expectedLocks(b: Built, flags: number, start: number, end: number): number {
  let locks = 0;
  for (let region = start - (start % PMD_SIZE); region < end; region += PMD_SIZE) {
    const from = Math.max(start, region);
    const to = Math.min(end, region + PMD_SIZE);
    const t = b.pt.pteTableOf(from);
    if (t === null) {
      const pmdTablePresent = b.pt.lookupPmdTable(from) !== null;
      const suitable = region >= b.vma.vmStart && region + PMD_SIZE <= b.vma.vmEnd;
      if (pmdTablePresent && (flags & PVMW_SYNC) !== 0 && b.target.nrPages >= 512 && suitable) locks++;
      continue;
    }
    if ((flags & PVMW_SYNC) !== 0) {
      locks++;
      continue;
    }
    const first = entryAt(b.pt, from);
    let lock = mapCandidate(flags, first.lo, first.hi);
    for (let a = from + PAGE_SIZE; !lock && a < to; a += PAGE_SIZE) {
      const e = entryAt(b.pt, a);
      lock = nextCandidate(flags, e.lo, e.hi);
    }
    if (lock) locks++;
  }
  return locks;
}

/** PVMW_BATCH_PRESENT run oracle at a hit. */
function expectedRun(b: Built, a: number, end: number): number {
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

function checkWalk(l: Layout, flags: number): void {
  const b = build(l);
  const vma: PvmwVma = b.vma;
  const start = vmaAddress(vma, b.target.pgoff, b.target.nrPages);
  expect(start).toBeGreaterThanOrEqual(0);
  const end = walkEnd(b);
  const expectedHits: number[] = [];
  for (let a = start; a < end; a += PAGE_SIZE) {
    const e = entryAt(b.pt, a);
    if (matches(flags, e.lo, e.hi, b.target.nrPages)) expectedHits.push(a);
  }
  const crossExpected = pmdBoundaries(start, end).some((bd) => b.pt.pteTableOf(bd - PAGE_SIZE) !== null);
  const lockExpected = expectedLocks(b, flags, start, end);

  const w = folioVmaWalk(b.pt, b.target, vma, start, flags);
  const locks = b.ledger.locks;
  const hits: number[] = [];
  let prev = -1;
  let crossed = false;
  while (pageVmaMappedWalk(w)) {
    // §7.1 exactly one lock; §7.2 the PTE's own ptl, address = table base + index·4K, check_pte holds
    expect(locks.heldCount).toBe(1);
    expect(w.pte).not.toBeNull();
    expect(w.ptl).toBe(w.pte!.ptl);
    expect(locks.isHeld(w.ptl)).toBe(true);
    expect(w.address).toBe(w.pte!.vaOf(w.pteIndex));
    const e = entryAt(b.pt, w.address);
    expect(matches(flags, e.lo, e.hi, b.target.nrPages)).toBe(true);
    // §7.4 address only grows; below end on a true return
    expect(w.address).toBeGreaterThan(prev);
    expect(w.address).toBeLessThan(end);
    prev = w.address;
    // §7.5 never cleared once set
    const now = (w.flags & PVMW_PGTABLE_CROSSED) !== 0;
    if (crossed) expect(now).toBe(true);
    crossed = now;
    if ((flags & PVMW_BATCH_PRESENT) !== 0) {
      expect(w.nr).toBe(expectedRun(b, w.address, end));
      w.nr = 1;
    }
    hits.push(w.address);
  }
  // §7.1 none held after false
  expect(locks.heldCount).toBe(0);
  expect(hits).toEqual(expectedHits);
  // §7.5 iff a 2M boundary was crossed in NEXT
  expect((w.flags & PVMW_PGTABLE_CROSSED) !== 0).toBe(crossExpected);
  const c = b.ledger.snapshot();
  expect(c.PGTABLE_CROSSED > 0).toBe(crossExpected);
  // §7.6 no lock while scanning none entries without SYNC; consecutive hits in one table do not re-lock
  expect(c.LOCK).toBe(lockExpected);
  expect(c.UNLOCK).toBe(c.LOCK);
  expect(c.PVMW_CALL).toBe(hits.length + 1);
}

describe('§7 invariants over random layouts and flags (fast-check)', () => {
  it('1–7: locks, matches, monotonic address, PGTABLE_CROSSED, lock placement', () => {
    fc.assert(
      fc.property(layoutArb(KINDS), fc.constantFrom(...FLAG_SETS), (l, flags) => checkWalk(l, flags)),
      { numRuns: 250 },
    );
  });

  // Exhaustive over the flag sets for a few fixed shapes (aligned, straddling, VMA cut).
  const shapes: [string, Partial<Layout>][] = [
    ['aligned 2M', { folioPages: 512, offset: 0 }],
    ['64K straddling', { folioPages: 16, offset: 508 }],
    ['2M straddling, VMA cut at both ends', { folioPages: 512, offset: 300, startCut: 7, endCut: 100, decoys: true }],
  ];
  for (const [name, shape] of shapes) {
    for (const flags of FLAG_SETS) {
      it(`${name}, flags 0x${flags.toString(16)}: every kind in turn`, () => {
        const n = shape.folioPages!;
        const kinds = Array.from({ length: n }, (_, i) => KINDS[(i * 7) % KINDS.length]!);
        checkWalk({ profile: 'arm64-contpte', offset: 0, startCut: 0, endCut: 0, lead: 3, trail: 5, decoys: false, kinds, folioPages: n, ...shape }, flags);
      });
    }
  }
});
