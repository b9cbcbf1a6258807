import { measure, nonZero } from '@foliolab/ledger';
import { PAGE_SIZE, getAndClearPtes, mkSwapPte, pteBits, __setPte } from '@foliolab/pagetable-arm64-contpte';
import { describe, expect, it } from 'vitest';
import { PVMW_BATCH_PRESENT, PVMW_SYNC, folioVmaWalk, pageVmaMappedWalk, pageVmaMappedWalkDone } from './index.js';
import { lay } from './test-fixtures.js';

/*
 * PVMW_BATCH_PRESENT as this package reads seed 003 (Barry Song: "skip
 * nr − 1 swap entries"; Dev Jain: "Look for present entries"), plus the
 * spec's "returns a run with its length". Unverified against any posted code.
 */

const r = pteBits();

/** Convert `k` entries from the hit to swap PTEs, as the anon unmap does. */
function toSwap(t: Parameters<typeof __setPte>[0], i: number, k: number): void {
  getAndClearPtes(t, i, k, r);
  for (let j = 0; j < k; j++) __setPte(t, i + j, mkSwapPte(r, 0, 0x40 + i + j).lo, r.hi);
}

describe('the run reported at a hit (walk.nr)', () => {
  it('present entries mapping consecutive target pages, stopping at the first other entry', () => {
    const b = lay('PPPPPsPPfPPPPPPP');
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0, PVMW_BATCH_PRESENT);
    const runs: [number, number][] = [];
    while (pageVmaMappedWalk(w)) {
      runs.push([(w.address - b.a0) / PAGE_SIZE, w.nr]);
      w.nr = 1; // handled nothing beyond the hit: look at every entry
    }
    expect(runs).toEqual([
      [0, 5], [1, 4], [2, 3], [3, 2], [4, 1],
      [6, 2], [7, 1],
      [9, 7], [10, 6], [11, 5], [12, 4], [13, 3], [14, 2], [15, 1],
    ]);
  });

  it('capped at the PTE table end when the folio straddles a PMD boundary', () => {
    const b = lay('PPPPPPPPPPPPPPPP', { offset: 506 });
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0, PVMW_BATCH_PRESENT);
    expect(pageVmaMappedWalk(w)).toBe(true);
    expect(w.nr).toBe(6);
    toSwap(w.pte!, w.pteIndex, 6);
    w.nr = 6;
    expect(pageVmaMappedWalk(w)).toBe(true);
    expect([(w.address - b.a0) / PAGE_SIZE, w.nr]).toEqual([6, 10]);
    pageVmaMappedWalkDone(w);
  });

  it('capped at the VMA end (end = vm_end)', () => {
    const b = lay('PPPPPPPPPPPPPPPP', { endCut: 5, decoys: true });
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0, PVMW_BATCH_PRESENT);
    pageVmaMappedWalk(w);
    expect(w.nr).toBe(11);
    pageVmaMappedWalkDone(w);
  });

  it('contpte: one gathering read per further 64K block (hint 16)', () => {
    const b = lay('PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP', { profile: 'arm64-contpte' });
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0, PVMW_BATCH_PRESENT);
    const c = measure(b.ledger, () => pageVmaMappedWalk(w)).counts;
    expect(w.nr).toBe(64);
    // lockless get (G+1 = 4), check_pte (G = 3), then 3 blocks × G
    expect(c.PTE_READ).toBe(4 + 3 + 3 * 3);
    pageVmaMappedWalkDone(w);
  });
});

describe('the next call skips the handled run without reading it', () => {
  it('nr − 1 entries skipped for free: the call costs one NEXT step + read + check_pte', () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0, PVMW_BATCH_PRESENT);
    pageVmaMappedWalk(w);
    toSwap(w.pte!, 0, 10);
    w.nr = 10;
    const c = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(true)).counts;
    expect(w.address).toBe(b.a0 + 10 * PAGE_SIZE);
    // the run 10..15 was measured at the first hit (same ptl held): no new scan
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PVMW_STEP: 1, PTE_READ: 2 });
    expect(w.nr).toBe(6);
    pageVmaMappedWalkDone(w);
  });

  it('walk.nr outside 1..run is refused before anything is charged or moved', () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0, PVMW_BATCH_PRESENT);
    pageVmaMappedWalk(w);
    for (const bad of [0, 17, 1.5]) {
      w.nr = bad;
      const c = measure(b.ledger, () => expect(() => pageVmaMappedWalk(w)).toThrow(/walk.nr/)).counts;
      expect(nonZero(c)).toEqual({});
      expect(w.pteIndex).toBe(0);
    }
    pageVmaMappedWalkDone(w);
  });
});

describe('"look for present entries": non-present entries are skipped like none', () => {
  it('swap entries under the held ptl cost 1 read (no check_pte); without the flag 2', () => {
    const map = 'PssssssP........';
    const flagged = lay(map);
    const plain = lay(map);
    const w1 = folioVmaWalk(flagged.pt, flagged.target, flagged.vma, flagged.a0, PVMW_BATCH_PRESENT);
    const w2 = folioVmaWalk(plain.pt, plain.target, plain.vma, plain.a0);
    pageVmaMappedWalk(w1);
    pageVmaMappedWalk(w2);
    w1.nr = 1;
    const c1 = measure(flagged.ledger, () => pageVmaMappedWalk(w1)).counts;
    const c2 = measure(plain.ledger, () => pageVmaMappedWalk(w2)).counts;
    expect([w1.address, w2.address]).toEqual([flagged.a0 + 7 * PAGE_SIZE, plain.a0 + 7 * PAGE_SIZE]);
    // flagged: 6 skipped swap reads, NEXT + check_pte at page 7, and the run scan reading page 8
    expect([c1.PTE_READ, c2.PTE_READ]).toEqual([6 + 2 + 1, 12 + 2]);
    pageVmaMappedWalkDone(w1);
    pageVmaMappedWalkDone(w2);
  });

  it('a table holding only swap entries is scanned without taking its lock (without the flag it is locked)', () => {
    const map = 'ssssssssssssssss';
    const flagged = lay(map);
    const plain = lay(map);
    const c1 = measure(flagged.ledger, () => pageVmaMappedWalk(folioVmaWalk(flagged.pt, flagged.target, flagged.vma, flagged.a0, PVMW_BATCH_PRESENT))).counts;
    const c2 = measure(plain.ledger, () => pageVmaMappedWalk(folioVmaWalk(plain.pt, plain.target, plain.vma, plain.a0))).counts;
    expect([c1.LOCK, c2.LOCK]).toEqual([0, 1]);
  });

  it('device-private / device-exclusive entries are not matched under the flag (a caller relying on it would leave them mapped)', () => {
    const b = lay('dxPP............');
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0, PVMW_BATCH_PRESENT);
    expect(pageVmaMappedWalk(w)).toBe(true);
    expect(w.address).toBe(b.a0 + 2 * PAGE_SIZE);
    pageVmaMappedWalkDone(w);
  });

  it('with SYNC the table is locked at once and the skip still applies', () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    const w = folioVmaWalk(b.pt, b.target, b.vma, b.a0, PVMW_BATCH_PRESENT | PVMW_SYNC);
    pageVmaMappedWalk(w);
    toSwap(w.pte!, 0, 16);
    w.nr = 16;
    const c = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(false)).counts;
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PVMW_STEP: 1, UNLOCK: 1 });
  });
});
