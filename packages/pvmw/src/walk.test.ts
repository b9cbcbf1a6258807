import { FoliolabError, measure, nonZero } from '@foliolab/ledger';
import { PAGE_SIZE, pteIndex } from '@foliolab/pagetable-arm64-contpte';
import { describe, expect, it } from 'vitest';
import {
  NO_LOCK,
  PVMW_BATCH_PRESENT,
  PVMW_MIGRATION,
  PVMW_PGTABLE_CROSSED,
  PVMW_SYNC,
  PageVmaMappedWalk,
  folioVmaWalk,
  pageVmaMappedWalk,
  pageVmaMappedWalkDone,
  pageVmaMappedWalkRestart,
} from './index.js';
import { BASE, PFN0, lay, type Built } from './test-fixtures.js';

/*
 * Spec "Package pvmw" §3, the PTE-level branches that a single thread can
 * reach. Maps are one char per 4K page of a 16-page folio (see lay()):
 *   P present  . none  s swap  m marker  f foreign  M migration  d dev-private  x dev-exclusive
 * Profile arm64-nocont unless stated: every ptep_get is 1 PTE_READ.
 */

function walkOf(b: Built, flags = 0): PageVmaMappedWalk {
  return folioVmaWalk(b.pt, b.target, b.vma, b.vma.vmStart, flags);
}

/** Page index of each hit of a walk that changes nothing (unlocked at the end). */
function hitPages(b: Built, flags = 0): number[] {
  const w = walkOf(b, flags);
  const out: number[] = [];
  while (pageVmaMappedWalk(w)) out.push((w.address - b.a0) / PAGE_SIZE);
  return out;
}

describe('§3 first call and NEXT (ptl held)', () => {
  it('§8 step 1 on a fresh contpte block: lockless get (G+1), LOCK, PMD re-read, check_pte (G)', () => {
    const b = lay('PPPPPPPPPPPPPPPP', { profile: 'arm64-contpte' });
    const w = walkOf(b);
    const c = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(true)).counts;
    // G = 3: entry 0 is young and dirty (earlyExit gather)
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PMD_READ: 2, PTE_READ: 4 + 3, LOCK: 1 });
    expect(w.ptl).toBe(w.pte!.ptl);
    expect(b.ledger.locks.kind(w.ptl)).toBe('ptl');
    pageVmaMappedWalkDone(w);
  });

  it('consecutive hits in one table keep the ptl: 1 LOCK for 16 hits; each later hit = 1 step + NEXT read + check_pte read', () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    const w = walkOf(b);
    const c = measure(b.ledger, () => {
      let hits = 0;
      while (pageVmaMappedWalk(w)) {
        expect(w.address).toBe(b.a0 + hits * PAGE_SIZE);
        expect(b.ledger.locks.heldCount).toBe(1);
        hits++;
      }
      expect(hits).toBe(16);
    }).counts;
    expect(nonZero(c)).toEqual({ PVMW_CALL: 17, PVMW_STEP: 16, PTE_READ: 2 + 15 * 2, PMD_READ: 2, LOCK: 1, UNLOCK: 1 });
    expect(b.ledger.locks.heldCount).toBe(0);
  });

  it('contpte: NEXT under the held ptl uses the gathering ptep_get (G), not the lockless G+1', () => {
    const b = lay('PPPPPPPPPPPPPPPP', { profile: 'arm64-contpte' });
    const w = walkOf(b);
    const c = measure(b.ledger, () => {
      while (pageVmaMappedWalk(w));
    }).counts;
    // G = 3 for every entry of the young+dirty block: first call (G+1) + G, then 15 × (NEXT G + check_pte G)
    expect(c.PTE_READ).toBe(4 + 3 + 15 * 6);
  });

  it('a swap or marker entry under the held ptl costs NEXT read + failed check_pte; none costs 1 read', () => {
    const b = lay('PsmP.P..........');
    const w = walkOf(b);
    expect(pageVmaMappedWalk(w)).toBe(true);
    const c = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(true)).counts;
    expect(w.address).toBe(b.a0 + 3 * PAGE_SIZE);
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PVMW_STEP: 3, PTE_READ: 2 + 2 + 2 });
    const c2 = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(true)).counts;
    expect(nonZero(c2)).toEqual({ PVMW_CALL: 1, PVMW_STEP: 2, PTE_READ: 1 + 2 });
    pageVmaMappedWalkDone(w);
  });

  it('not_found at end: the last call steps past end and unlocks', () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    const w = walkOf(b);
    for (let i = 0; i < 16; i++) pageVmaMappedWalk(w);
    const c = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(false)).counts;
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PVMW_STEP: 1, UNLOCK: 1 });
    expect(w.address).toBe(b.a0 + 16 * PAGE_SIZE);
    // walk_done clears no field (kernel): ptl still names the released lock, pte is still set
    expect(w.ptl).not.toBe(NO_LOCK);
    expect(w.pte).not.toBeNull();
  });

  it('foreign present entries (other folio) never match', () => {
    expect(hitPages(lay('ffffPPffffffffff'))).toEqual([4, 5]);
  });
});

describe('§2 map_pte without PVMW_SYNC', () => {
  it('none entries are scanned locklessly: no LOCK until a candidate; then LOCK + PMD re-read', () => {
    const b = lay('....PPPP........');
    const w = walkOf(b);
    const c = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(true)).counts;
    expect(w.address).toBe(b.a0 + 4 * PAGE_SIZE);
    // map_pte: 1 lockless read (none → false); NEXT: 3 none + 1 present lockless; relock; check_pte
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PVMW_STEP: 4, PTE_READ: 1 + 4 + 1, PMD_READ: 2, LOCK: 1 });
    pageVmaMappedWalkDone(w);
  });

  it('a table of none entries: no lock at all, false', () => {
    const b = lay('P...............', { startCut: 1, decoys: true });
    const c = measure(b.ledger, () => expect(hitPages(b)).toEqual([])).counts;
    expect(c.LOCK).toBe(0);
    expect(c.PTE_READ).toBe(15);
  });

  it('a second table whose visited entries are all none is crossed into but never locked', () => {
    const b = lay('PPPPPPPP........', { offset: 504, trail: 32 });
    const pt = b.pt.pteAlloc(b.a0 + 20 * PAGE_SIZE); // table B exists (an entry past end, still in the VMA)
    expect(pteIndex(pt.baseVa)).toBe(0);
    b.ledger.reset();
    const c = measure(b.ledger, () => expect(hitPages(b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])).counts;
    expect([c.LOCK, c.UNLOCK, c.PGTABLE_CROSSED]).toEqual([1, 1, 1]);
  });

  it('a swap entry first: map_pte returns false unlocked (neither device-private nor device-exclusive)', () => {
    const b = lay('sPPP............');
    const w = walkOf(b);
    const c = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(true)).counts;
    expect(w.address).toBe(b.a0 + PAGE_SIZE);
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PVMW_STEP: 1, PTE_READ: 3, PMD_READ: 2, LOCK: 1 });
    pageVmaMappedWalkDone(w);
  });

  it('with PVMW_MIGRATION a present first entry returns false; migration entries of the target match', () => {
    expect(hitPages(lay('PMPM.h..s.fMmdxP'), PVMW_MIGRATION)).toEqual([1, 3, 11]);
  });

  it('device-private and device-exclusive entries match without flags and are locked at once', () => {
    const b = lay('dxPM.hs.m.......');
    expect(hitPages(b)).toEqual([0, 1, 2]);
    const w = walkOf(b);
    const c = measure(b.ledger, () => pageVmaMappedWalk(w)).counts;
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PTE_READ: 2, PMD_READ: 2, LOCK: 1 });
    pageVmaMappedWalkDone(w);
  });
});

describe('§2 map_pte with PVMW_SYNC', () => {
  it('locks the table before looking: none entries are then read with ptep_get under the lock', () => {
    const b = lay('....PPPP........');
    const w = walkOf(b, PVMW_SYNC);
    const c = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(true)).counts;
    // LOCK + PMD re-read (pte_offset_map_lock); check_pte(none) fails; NEXT 3 none + 1 present; check_pte
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PVMW_STEP: 4, PTE_READ: 1 + 4 + 1, PMD_READ: 2, LOCK: 1 });
    pageVmaMappedWalkDone(w);
  });

  it('a table of none entries is still locked once', () => {
    const b = lay('P...............', { startCut: 1, decoys: true });
    const c = measure(b.ledger, () => expect(hitPages(b, PVMW_SYNC)).toEqual([])).counts;
    expect([c.LOCK, c.UNLOCK]).toEqual([1, 1]);
  });
});

describe('§3 NEXT at a 2M boundary', () => {
  it('unlocks, sets PVMW_PGTABLE_CROSSED (never cleared), restarts and locks the next table', () => {
    const b = lay('PPPPPPPPPPPPPPPP', { offset: 504 });
    const w = walkOf(b);
    const flags: boolean[] = [];
    const c = measure(b.ledger, () => {
      while (pageVmaMappedWalk(w)) flags.push((w.flags & PVMW_PGTABLE_CROSSED) !== 0);
    }).counts;
    expect(flags).toEqual([...Array<boolean>(8).fill(false), ...Array<boolean>(8).fill(true)]);
    expect((w.flags & PVMW_PGTABLE_CROSSED) !== 0).toBe(true);
    expect(nonZero(c)).toEqual({
      PVMW_CALL: 17,
      PVMW_STEP: 16,
      PTE_READ: 2 + 7 * 2 + 2 + 7 * 2, // each table: lockless + check, then NEXT + check
      PMD_READ: 4,
      LOCK: 2,
      UNLOCK: 2,
      PVMW_RESTART: 1,
      PGTABLE_CROSSED: 1,
    });
  });

  it('crossing into a missing table: step_forward over the none PMD, and the loop ends with false (E)', () => {
    const b = lay('PPPPPPPP........', { offset: 504 });
    expect(b.pt.pteTableOf(b.a0 + 8 * PAGE_SIZE)).toBeNull();
    const w = walkOf(b);
    let hits = 0;
    const c = measure(b.ledger, () => {
      while (pageVmaMappedWalk(w)) hits++;
    }).counts;
    expect(hits).toBe(8);
    expect(c.PGTABLE_CROSSED).toBe(1);
    // the 9th call: NEXT crosses (UNLOCK), RESTART reads the none PMD, step_forward(2M) passes end
    expect([c.LOCK, c.UNLOCK, c.PMD_READ, c.PVMW_STEP]).toEqual([1, 1, 3, 8 + 1]);
    expect(w.ptl).toBe(NO_LOCK);
  });

  it('step_forward over a none PMD does not set PVMW_PGTABLE_CROSSED', () => {
    const b = lay('........PPPPPPPP', { offset: 504 });
    const w = walkOf(b);
    expect(pageVmaMappedWalk(w)).toBe(true);
    expect(w.address).toBe(b.a0 + 8 * PAGE_SIZE);
    expect(w.flags & PVMW_PGTABLE_CROSSED).toBe(0);
    pageVmaMappedWalkDone(w);
  });
});

describe('§3 D.1 upper levels', () => {
  it('no PGD entry: one step_forward(512G) and false', () => {
    const b = lay('................');
    const c = measure(b.ledger, () => expect(hitPages(b)).toEqual([])).counts;
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PVMW_STEP: 1 });
  });

  it('no PUD entry: one step_forward(1G)', () => {
    const b = lay('................');
    b.pt.pteAlloc(BASE + 2 ** 30); // same PGD entry, other PUD entry
    b.ledger.reset();
    const w = walkOf(b);
    const c = measure(b.ledger, () => expect(pageVmaMappedWalk(w)).toBe(false)).counts;
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PVMW_STEP: 1 });
    expect(w.address).toBe(BASE + 2 ** 30);
  });
});

describe('walk_done and restart (rmap.h)', () => {
  it('page_vma_mapped_walk_restart: unlock, null pmd/pte, keep address; the next call descends again', () => {
    const b = lay('..PPPPPPPPPPPPPP');
    const w = walkOf(b);
    expect(pageVmaMappedWalk(w)).toBe(true);
    const a = w.address;
    const c = measure(b.ledger, () => pageVmaMappedWalkRestart(w)).counts;
    expect(nonZero(c)).toEqual({ UNLOCK: 1, PVMW_RESTART: 1 });
    expect([w.ptl, w.pmd, w.pte, w.address]).toEqual([NO_LOCK, null, null, a]);
    expect(pageVmaMappedWalk(w)).toBe(true);
    expect(w.address).toBe(a);
    pageVmaMappedWalkDone(w);
    expect(() => pageVmaMappedWalkRestart(w)).toThrow(FoliolabError);
  });

  it('walk_done twice unlocks twice: the ledger refuses (kernel: a double spin_unlock)', () => {
    const b = lay('PPPPPPPPPPPPPPPP');
    const w = walkOf(b);
    pageVmaMappedWalk(w);
    pageVmaMappedWalkDone(w);
    expect(() => pageVmaMappedWalkDone(w)).toThrow(/released while not held/);
  });
});

describe('boundary validation (DEFINE_FOLIO_VMA_WALK)', () => {
  const b = lay('PPPPPPPPPPPPPPPP');
  const bad: [string, () => unknown][] = [
    ['address outside the vma', () => folioVmaWalk(b.pt, b.target, b.vma, b.vma.vmEnd)],
    ['unaligned address', () => folioVmaWalk(b.pt, b.target, b.vma, b.vma.vmStart + 1)],
    ['unknown flag', () => folioVmaWalk(b.pt, b.target, b.vma, b.vma.vmStart, 1 << 5)],
    ['result flag as input', () => folioVmaWalk(b.pt, b.target, b.vma, b.vma.vmStart, PVMW_PGTABLE_CROSSED)],
    ['MIGRATION with BATCH_PRESENT', () => folioVmaWalk(b.pt, b.target, b.vma, b.vma.vmStart, PVMW_MIGRATION | PVMW_BATCH_PRESENT)],
    ['empty target', () => folioVmaWalk(b.pt, { ...b.target, nrPages: 0 }, b.vma, b.vma.vmStart)],
    ['empty vma', () => folioVmaWalk(b.pt, b.target, { ...b.vma, vmEnd: b.vma.vmStart }, b.vma.vmStart)],
    ['hugetlb vma not 2M aligned', () => folioVmaWalk(b.pt, b.target, { ...b.vma, isHugetlb: true }, b.vma.vmStart)],
  ];
  for (const [what, fn] of bad) it(`rejects ${what} with EINVAL`, () => expect(fn).toThrow(expect.objectContaining({ code: 'EINVAL' })));

  it('init re-arms a walk object (outputs nulled, inputs replaced)', () => {
    const w = walkOf(b);
    pageVmaMappedWalk(w);
    pageVmaMappedWalkDone(w);
    w.init(b.target, b.vma, b.a0 + 4 * PAGE_SIZE, PVMW_SYNC);
    expect([w.pte, w.pmd, w.ptl, w.flags, pteIndex(w.address)]).toEqual([null, null, NO_LOCK, PVMW_SYNC, 4]);
    expect(pageVmaMappedWalk(w)).toBe(true);
    expect(w.pfn).toBe(PFN0);
    pageVmaMappedWalkDone(w);
  });
});
