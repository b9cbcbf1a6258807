import {
  HPAGE_PMD_NR,
  Machine,
  PGDIR_SIZE,
  PMD_SIZE,
  PTE_MARKER_UFFD_WP,
  PageTables,
  makeUserPte,
  mkDeviceExclusivePte,
  mkDevicePrivatePte,
  mkHwpoisonPte,
  mkMarkerPte,
  mkMigrationPte,
  mkSwapPte,
  pteBits,
} from '@foliolab/pagetable-arm64-contpte';
import { describe, expect, it } from 'vitest';
import { checkPmd, pteMatches, stepForward } from './check.js';
import { EFAULT, PVMW_BATCH_PRESENT, PVMW_MIGRATION, PageVmaMappedWalk, vmaAddress, vmaAddressEndOf, type PvmwVma } from './index.js';

/*
 * Spec "Package pvmw" §1–§2 and §7.7, tested on the internal helpers on
 * purpose (they are static in the kernel): check_pte per entry kind and
 * flag, check_pmd, step_forward, vma_address, vma_address_end.
 */

const PFN = 0x8_0000;
const VMA: PvmwVma = { vmStart: 0x4000_0000, vmEnd: 0x4000_0000 + 4 * PMD_SIZE, vmPgoff: 0x4_0000 };

function walk(flags: number, pfn = PFN, nrPages = 16): PageVmaMappedWalk {
  return new PageVmaMappedWalk(new PageTables(new Machine()), { pfn, nrPages, pgoff: VMA.vmPgoff }, VMA, VMA.vmStart, flags);
}

type EntryKind = 'none' | 'present' | 'swap' | 'marker' | 'hwpoison' | 'migration' | 'devicePrivate' | 'deviceExclusive';
const r = pteBits();
function entry(kind: EntryKind, pfn: number): { lo: number; hi: number } {
  switch (kind) {
    case 'none':
      return { lo: 0, hi: 0 };
    case 'present':
      return makeUserPte(pfn, { write: true });
    case 'swap':
      return { ...mkSwapPte(r, 3, pfn) }; // a swap offset equal to the PFN must not be mistaken for one
    case 'marker':
      return { ...mkMarkerPte(r, PTE_MARKER_UFFD_WP) };
    case 'hwpoison':
      return { ...mkHwpoisonPte(r, pfn) };
    case 'migration':
      return { ...mkMigrationPte(r, 'write', pfn, true, true) };
    case 'devicePrivate':
      return { ...mkDevicePrivatePte(r, pfn, false) };
    case 'deviceExclusive':
      return { ...mkDeviceExclusivePte(r, pfn) };
  }
}

// §7.7 and §2: which kinds match, per flag set (for an entry whose PFN is in the target)
const MATCHES: Record<string, readonly EntryKind[]> = {
  none: ['present', 'devicePrivate', 'deviceExclusive'],
  MIGRATION: ['migration'],
  BATCH_PRESENT: ['present'],
};
const FLAGS: Record<string, number> = { none: 0, MIGRATION: PVMW_MIGRATION, BATCH_PRESENT: PVMW_BATCH_PRESENT };
const KINDS: readonly EntryKind[] = ['none', 'present', 'swap', 'marker', 'hwpoison', 'migration', 'devicePrivate', 'deviceExclusive'];

describe('§2 check_pte: every entry kind × flag set (exhaustive)', () => {
  for (const [fname, flags] of Object.entries(FLAGS)) {
    for (const kind of KINDS) {
      const want = MATCHES[fname]!.includes(kind);
      it(`${fname}: ${kind} ${want ? 'matches' : 'never matches'}; out-of-range PFNs never do`, () => {
        const w = walk(flags);
        for (const pfn of [PFN, PFN + 7, PFN + 15]) {
          const e = entry(kind, pfn);
          expect(pteMatches(w, e.lo, e.hi, 1)).toBe(want);
        }
        for (const pfn of [PFN - 1, PFN + 16, 0]) {
          const e = entry(kind, pfn);
          expect(pteMatches(w, e.lo, e.hi, 1)).toBe(false);
        }
      });
    }
  }

  it('check_pte(n) is an overlap of [pfn, pfn+n) with the target (hugetlb: n = 512)', () => {
    const w = walk(0, PFN + 100, 16);
    const e = entry('present', PFN);
    expect(pteMatches(w, e.lo, e.hi, HPAGE_PMD_NR)).toBe(true);
    expect(pteMatches(w, e.lo, e.hi, 100)).toBe(false);
    expect(pteMatches(w, e.lo, e.hi, 101)).toBe(true);
    const after = entry('present', PFN + 116);
    expect(pteMatches(w, after.lo, after.hi, HPAGE_PMD_NR)).toBe(false);
  });

  it('present-invalid (PROT_NONE / NUMA hint) entries are present and match', () => {
    const e = makeUserPte(PFN + 3, { protNone: true });
    expect(pteMatches(walk(0), e.lo, e.hi, 1)).toBe(true);
    expect(pteMatches(walk(PVMW_MIGRATION), e.lo, e.hi, 1)).toBe(false);
  });
});

describe('§2 check_pmd, step_forward', () => {
  it('check_pmd: [pfn, pfn+512) overlaps the target', () => {
    const w = walk(0, PFN + 511, 1);
    expect(checkPmd(w, PFN)).toBe(true);
    expect(checkPmd(w, PFN + 512)).toBe(false);
    expect(checkPmd(w, PFN - 1)).toBe(false);
    expect(checkPmd(walk(0, PFN, 16), PFN + 15)).toBe(true);
    expect(checkPmd(walk(0, PFN, 16), PFN + 16)).toBe(false);
  });

  it('step_forward: next size boundary, one PVMW_STEP each', () => {
    const w = walk(0);
    w.address = VMA.vmStart + 5 * 4096;
    stepForward(w, PMD_SIZE);
    expect(w.address).toBe(VMA.vmStart + PMD_SIZE);
    stepForward(w, PMD_SIZE); // from a boundary: the next one
    expect(w.address).toBe(VMA.vmStart + 2 * PMD_SIZE);
    stepForward(w, PGDIR_SIZE);
    expect(w.address).toBe(PGDIR_SIZE);
    expect(w.pt.ledger.snapshot().PVMW_STEP).toBe(3);
  });
});

describe('§1 vma_address / vma_address_end', () => {
  it('vma_address: inside, before the start (overlapping or not), past the end', () => {
    expect(vmaAddress(VMA, VMA.vmPgoff + 3, 16)).toBe(VMA.vmStart + 3 * 4096);
    expect(vmaAddress(VMA, VMA.vmPgoff - 5, 16)).toBe(VMA.vmStart); // overlaps the VMA's start
    expect(vmaAddress(VMA, VMA.vmPgoff - 16, 16)).toBe(-EFAULT);
    expect(vmaAddress(VMA, VMA.vmPgoff + 4 * 512, 16)).toBe(-EFAULT);
    expect(vmaAddress(VMA, VMA.vmPgoff + 4 * 512 - 1, 16)).toBe(VMA.vmEnd - 4096);
  });

  it('vma_address_end: address + 4K for one page; else the range end clamped to vm_end', () => {
    expect(vmaAddressEndOf(VMA, VMA.vmPgoff + 9, 1, VMA.vmStart + 77 * 4096)).toBe(VMA.vmStart + 78 * 4096);
    expect(vmaAddressEndOf(VMA, VMA.vmPgoff, 16, VMA.vmStart)).toBe(VMA.vmStart + 16 * 4096);
    expect(vmaAddressEndOf(VMA, VMA.vmPgoff + 2040, 16, VMA.vmStart)).toBe(VMA.vmEnd);
    // pgoff + nr_pages before vm_pgoff: "wrapped" → vm_end
    expect(vmaAddressEndOf(VMA, VMA.vmPgoff - 40, 16, VMA.vmStart)).toBe(VMA.vmEnd);
  });
});
