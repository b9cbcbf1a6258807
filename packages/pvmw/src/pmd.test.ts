import { measure, nonZero, type Ledger } from '@foliolab/ledger';
import {
  HPAGE_PMD_NR,
  Machine,
  PMD_SIZE,
  PageTables,
  fixedSizeFolios,
  makeUserPte,
  mkDevicePrivatePte,
  mkMigrationPte,
  pmdIndex,
  pmdMkhuge,
  pmdpHugeGetAndClear,
  pteBits,
  setPmdAt,
  setPtes,
  type PmdTable,
} from '@foliolab/pagetable-arm64-contpte';
import { describe, expect, it } from 'vitest';
import {
  NO_LOCK,
  PVMW_MIGRATION,
  PVMW_SYNC,
  folioVmaWalk,
  pageVmaMappedWalk,
  pageVmaMappedWalkDone,
  pageVmaMappedWalkRestart,
  type PvmwTarget,
  type PvmwVma,
} from './index.js';

/*
 * Spec "Package pvmw" §3 A, B, D.3, D.4: PMD-level entries and hugetlb.
 *
 *   |<------------ 2M at VA ------------>|
 *   [ one L2 entry: THP block / PMD migration / device-private / none ]
 */

const VA = 0x4000_0000;
const PFN = 0x8_0000;

interface Pmd {
  pt: PageTables;
  ledger: Ledger;
  pmdT: PmdTable;
  vma: PvmwVma;
  thp: PvmwTarget;
}

function pmdFixture(vma: Partial<PvmwVma> = {}): Pmd {
  const machine = new Machine({ profile: 'arm64-contpte' });
  const pt = new PageTables(machine, { folios: fixedSizeFolios(HPAGE_PMD_NR) });
  const pmdT = pt.pmdAlloc(VA);
  machine.ledger.reset();
  return {
    pt,
    ledger: machine.ledger,
    pmdT,
    vma: { vmStart: VA, vmEnd: VA + 2 * PMD_SIZE, vmPgoff: VA / 4096, ...vma },
    thp: { pfn: PFN, nrPages: HPAGE_PMD_NR, pgoff: VA / 4096 },
  };
}

const reg = pteBits();
function setThp(f: Pmd, pfn = PFN): void {
  const prot = makeUserPte(pfn, { write: true, young: true, dirty: true });
  pmdMkhuge(reg, prot.lo, prot.hi, pfn);
  setPmdAt(f.pmdT, pmdIndex(VA), reg.lo, reg.hi);
  f.ledger.reset();
}
function setPmdSoftleaf(f: Pmd, v: { lo: number; hi: number }): void {
  setPmdAt(f.pmdT, pmdIndex(VA), v.lo, v.hi);
  f.ledger.reset();
}

describe('§3 D.3 trans-huge PMD', () => {
  it('hit: LOCK the PMD lock, re-read; true with pte null; the next call is not_found (A)', () => {
    const f = pmdFixture();
    setThp(f);
    const w = folioVmaWalk(f.pt, f.thp, f.vma, VA);
    const c = measure(f.ledger, () => expect(pageVmaMappedWalk(w)).toBe(true)).counts;
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PMD_READ: 2, LOCK: 1 });
    expect([w.pte, w.pmd, w.ptl]).toEqual([null, f.pmdT, f.pmdT.ptl]);
    expect(f.ledger.locks.kind(w.ptl)).toBe('pmd');
    const c2 = measure(f.ledger, () => expect(pageVmaMappedWalk(w)).toBe(false)).counts;
    expect(nonZero(c2)).toEqual({ PVMW_CALL: 1, UNLOCK: 1 });
  });

  it('check_pmd is an overlap: a 64K folio inside the THP matches, a folio past it does not', () => {
    const f = pmdFixture();
    setThp(f);
    const inside = folioVmaWalk(f.pt, { pfn: PFN + 496, nrPages: 16, pgoff: VA / 4096 + 496 }, f.vma, VA);
    expect(pageVmaMappedWalk(inside)).toBe(true);
    pageVmaMappedWalkDone(inside);
    const past = folioVmaWalk(f.pt, { pfn: PFN + 512, nrPages: 16, pgoff: VA / 4096 }, f.vma, VA);
    const c = measure(f.ledger, () => expect(pageVmaMappedWalk(past)).toBe(false)).counts;
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PMD_READ: 2, LOCK: 1, UNLOCK: 1 });
  });

  it('with PVMW_MIGRATION a present THP is not_found', () => {
    const f = pmdFixture();
    setThp(f);
    const w = folioVmaWalk(f.pt, f.thp, f.vma, VA, PVMW_MIGRATION);
    expect(pageVmaMappedWalk(w)).toBe(false);
    expect(f.ledger.locks.heldCount).toBe(0);
  });

  it('split under the caller: clear the PMD, install a PTE table, restart → PTE-level hits from the same address', () => {
    const f = pmdFixture();
    setThp(f);
    const w = folioVmaWalk(f.pt, f.thp, f.vma, VA);
    expect(pageVmaMappedWalk(w)).toBe(true);
    // split_huge_pmd_locked, modelled from outside: the PMD becomes a table of 512 PTEs
    pmdpHugeGetAndClear(f.pmdT, pmdIndex(VA), reg);
    f.ledger.unlock(w.ptl); // pteAlloc populates under the PMD lock
    const t = f.pt.pteAlloc(VA);
    f.ledger.lock(w.ptl);
    const p = makeUserPte(PFN, { write: true });
    setPtes(t, 0, p.lo, p.hi, HPAGE_PMD_NR);
    pageVmaMappedWalkRestart(w);
    expect(pageVmaMappedWalk(w)).toBe(true);
    expect([w.pte, w.pteIndex, w.address]).toEqual([t, 0, VA]);
    pageVmaMappedWalkDone(w);
  });
});

describe('§3 D.3 PMD migration entry', () => {
  it('PVMW_MIGRATION and an overlapping PFN: true under the PMD lock', () => {
    const f = pmdFixture();
    setPmdSoftleaf(f, mkMigrationPte(reg, 'write', PFN));
    const w = folioVmaWalk(f.pt, f.thp, f.vma, VA, PVMW_MIGRATION);
    const c = measure(f.ledger, () => expect(pageVmaMappedWalk(w)).toBe(true)).counts;
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PMD_READ: 2, LOCK: 1 });
    expect(w.pte).toBeNull();
    expect(pageVmaMappedWalk(w)).toBe(false);
  });

  it('without the flag, or with another PFN: not_found after LOCK + re-read', () => {
    const f = pmdFixture();
    setPmdSoftleaf(f, mkMigrationPte(reg, 'read', PFN));
    const c = measure(f.ledger, () => expect(pageVmaMappedWalk(folioVmaWalk(f.pt, f.thp, f.vma, VA))).toBe(false)).counts;
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PMD_READ: 2, LOCK: 1, UNLOCK: 1 });
    const other = folioVmaWalk(f.pt, { ...f.thp, pfn: PFN + 1024 }, f.vma, VA, PVMW_MIGRATION);
    expect(pageVmaMappedWalk(other)).toBe(false);
    expect(f.ledger.locks.heldCount).toBe(0);
  });
});

describe('§3 D.4 other non-present PMDs', () => {
  it('device-private PMD: LOCK the PMD lock, re-read, check_pmd; not with PVMW_MIGRATION', () => {
    // 7.2.13 mm/page_vma_mapped.c:page_vma_mapped_walk: pmd_is_device_private_entry joins the
    // trans-huge branch: pmd_lock, `pmde = *pvmw->pmd`, then not_found under PVMW_MIGRATION or when
    // check_pmd(softleaf_to_pfn(entry)) fails, else true with the PMD lock held.
    const f = pmdFixture();
    setPmdSoftleaf(f, mkDevicePrivatePte(reg, PFN, true));
    const w = folioVmaWalk(f.pt, f.thp, f.vma, VA);
    const c = measure(f.ledger, () => expect(pageVmaMappedWalk(w)).toBe(true)).counts;
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PMD_READ: 2, LOCK: 1 });
    expect([w.pte, w.ptl]).toEqual([null, f.pmdT.ptl]);
    pageVmaMappedWalkDone(w);
    const other = folioVmaWalk(f.pt, { ...f.thp, pfn: PFN + 1024 }, f.vma, VA);
    const o = measure(f.ledger, () => expect(pageVmaMappedWalk(other)).toBe(false)).counts;
    expect(nonZero(o)).toEqual({ PVMW_CALL: 1, PMD_READ: 2, LOCK: 1, UNLOCK: 1 });
    expect(pageVmaMappedWalk(folioVmaWalk(f.pt, f.thp, f.vma, VA, PVMW_MIGRATION))).toBe(false);
    expect(f.ledger.locks.heldCount).toBe(0);
  });

  const zapWait: [string, boolean, number, boolean | undefined, number][] = [
    ['SYNC, 2M target, suitable VMA: LOCK + UNLOCK the PMD lock', true, HPAGE_PMD_NR, undefined, 1],
    ['no SYNC', false, HPAGE_PMD_NR, undefined, 0],
    ['SYNC but a 64K target', true, 16, undefined, 0],
    ['SYNC but the VMA does not suit PMD-order THP', true, HPAGE_PMD_NR, false, 0],
  ];
  for (const [what, sync, nr, suitable, locks] of zapWait) {
    it(`none PMD, ${what}; then step_forward(2M)`, () => {
      const f = pmdFixture(suitable === undefined ? {} : { thpPmdOrderSuitable: suitable });
      f.pt.pteAlloc(VA + PMD_SIZE); // the next PMD has a table; this one is none
      f.ledger.reset();
      const w = folioVmaWalk(f.pt, { ...f.thp, nrPages: nr }, f.vma, VA, sync ? PVMW_SYNC : 0);
      const c = measure(f.ledger, () => expect(pageVmaMappedWalk(w)).toBe(false)).counts;
      expect([c.LOCK, c.UNLOCK, c.PMD_READ, c.PVMW_STEP]).toEqual([locks, locks, 1, 1]);
      expect(w.address).toBe(VA + PMD_SIZE);
    });
  }

  it('the anonymous suitability rule: the 2M range around the address must lie inside the VMA', () => {
    const f = pmdFixture({ vmStart: VA + 4096, vmPgoff: VA / 4096 + 1 });
    f.pt.pteAlloc(VA + PMD_SIZE);
    f.ledger.reset();
    const w = folioVmaWalk(f.pt, f.thp, f.vma, VA + 4096, PVMW_SYNC);
    const c = measure(f.ledger, () => pageVmaMappedWalk(w)).counts;
    expect(c.LOCK).toBe(0);
  });
});

describe('§3 B hugetlb (2M hstate)', () => {
  const hvma = (): Partial<PvmwVma> => ({ isHugetlb: true, vmEnd: VA + PMD_SIZE });

  it('hit: huge ptl = the PMD lock, check_pte(512) on the L2 entry; pmd stays null; the next call is not_found', () => {
    const f = pmdFixture(hvma());
    setThp(f);
    const w = folioVmaWalk(f.pt, f.thp, f.vma, VA);
    const c = measure(f.ledger, () => expect(pageVmaMappedWalk(w)).toBe(true)).counts;
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PMD_READ: 1, LOCK: 1 });
    expect([w.hugePte, w.hugePteIndex, w.pmd, w.pte, w.ptl]).toEqual([f.pmdT, pmdIndex(VA), null, null, f.pmdT.ptl]);
    const c2 = measure(f.ledger, () => expect(pageVmaMappedWalk(w)).toBe(false)).counts;
    expect(nonZero(c2)).toEqual({ PVMW_CALL: 1, UNLOCK: 1 });
  });

  it('no PMD table: false with no lock taken', () => {
    const machine = new Machine();
    const pt = new PageTables(machine);
    const w = folioVmaWalk(pt, { pfn: PFN, nrPages: 512, pgoff: 0 }, { vmStart: VA, vmEnd: VA + PMD_SIZE, vmPgoff: 0, isHugetlb: true }, VA);
    const c = measure(machine.ledger, () => expect(pageVmaMappedWalk(w)).toBe(false)).counts;
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1 });
    expect(w.ptl).toBe(NO_LOCK);
  });

  it('a none entry or another page: LOCK, read, not_found', () => {
    const f = pmdFixture(hvma());
    const c = measure(f.ledger, () => expect(pageVmaMappedWalk(folioVmaWalk(f.pt, f.thp, f.vma, VA))).toBe(false)).counts;
    expect(nonZero(c)).toEqual({ PVMW_CALL: 1, PMD_READ: 1, LOCK: 1, UNLOCK: 1 });
    setThp(f, PFN + 512);
    expect(pageVmaMappedWalk(folioVmaWalk(f.pt, f.thp, f.vma, VA))).toBe(false);
  });

  it('a hugetlb migration entry matches only with PVMW_MIGRATION', () => {
    const f = pmdFixture(hvma());
    setPmdSoftleaf(f, mkMigrationPte(reg, 'read', PFN));
    expect(pageVmaMappedWalk(folioVmaWalk(f.pt, f.thp, f.vma, VA))).toBe(false);
    const w = folioVmaWalk(f.pt, f.thp, f.vma, VA, PVMW_MIGRATION);
    expect(pageVmaMappedWalk(w)).toBe(true);
    pageVmaMappedWalkDone(w);
    expect(f.ledger.locks.heldCount).toBe(0);
  });
});
