import { describe, expect, it } from 'vitest';
import {
  EVENT_NAMES,
  FoliolabError,
  modeledNsFor,
  PRICE_ARCH_NAMES,
  priceArchOf,
  PRICES_ARM64,
  PRICES_X86,
  pricesFor,
  UNEVENTED_RECLAIM,
  uneventedReclaimNs,
} from './index.js';

describe('arch price tables (DESIGN.md §Cost ledger: a price per event, each sourced)', () => {
  it.each([
    ['arm64', PRICES_ARM64],
    ['x86', PRICES_X86],
  ] as const)('%s prices every event with a finite non-negative number', (_arch, table) => {
    expect(Object.keys(table).sort()).toEqual([...EVENT_NAMES].sort());
    for (const n of EVENT_NAMES) {
      expect(Number.isFinite(table[n]), n).toBe(true);
      expect(table[n], n).toBeGreaterThanOrEqual(0);
    }
    expect(Object.isFrozen(table)).toBe(true);
  });

  it('events that cannot happen on an arch are free there (x86 on arm64; TLBI/DSB/ISB/contpte on x86)', () => {
    for (const n of ['X86_INVLPG', 'X86_FLUSH_ALL', 'X86_IPI'] as const) expect(PRICES_ARM64[n]).toBe(0);
    for (const n of ['TLBI_VA', 'TLBI_RANGE', 'TLBI_ASID', 'DSB_ISHST', 'DSB_ISH', 'ISB', 'CONTPTE_FOLD', 'CONTPTE_UNFOLD'] as const) {
      expect(PRICES_X86[n]).toBe(0);
    }
  });

  it('x86 barriers follow arch/x86/include/asm/barrier.h: smp_rmb and smp_mb__after_atomic are compiler barriers', () => {
    expect(PRICES_X86.MB_RMB).toBe(0);
    expect(PRICES_X86.MB_AFTER_ATOMIC).toBe(0);
    // arm64 keeps the asm-generic smp_mb__after_atomic = smp_mb = DMB ISH
    expect(PRICES_ARM64.MB_AFTER_ATOMIC).toBe(PRICES_ARM64.MB_FULL);
    // x86 smp_mb is a LOCK ADD (commit 450cbdd0125c): one LOCK'd RMW
    expect(PRICES_X86.MB_FULL).toBe(PRICES_X86.ATOMIC_RMW);
  });

  it('the arm64 single-page flush trio matches the published mprotect saving (3.2 → 2.85 µs ≈ 350 ns) within 15%', () => {
    const trio = PRICES_ARM64.DSB_ISHST + PRICES_ARM64.TLBI_VA + PRICES_ARM64.DSB_ISH;
    expect(Math.abs(trio - 350) / 350).toBeLessThan(0.15);
  });

  it('an x86 full flush costs what the kernel break-even says: tlb_single_page_flush_ceiling = 33 INVLPGs (±5%)', () => {
    expect(Math.abs(PRICES_X86.X86_FLUSH_ALL - 33 * PRICES_X86.X86_INVLPG) / PRICES_X86.X86_FLUSH_ALL).toBeLessThan(0.05);
  });

  it('the §8 worked example (pagetable-contpte-pvmw.md): the arm64 saving per 64K folio is mostly contpte TLB work (anchors A1 hint)', () => {
    // §8 table, G = 3 (earlyExit gather on a young+dirty block): one-by-one vs batched.
    const G = 3;
    const oneByOne = { PTE_READ: 3 * G + 62, PTE_XCHG: 32, PTE_WRITE: 32, TLBI_VA: 32, DSB_ISHST: 17, DSB_ISH: 2, LOCK: 1, UNLOCK: 1, PVMW_CALL: 17 };
    const batched = { PTE_READ: 3 * G + 1, PTE_XCHG: 16, PTE_WRITE: 16, TLBI_VA: 16, DSB_ISHST: 1, DSB_ISH: 1, LOCK: 1, UNLOCK: 1, PVMW_CALL: 1 };
    const saving = modeledNsFor(oneByOne, 'arm64-contpte') - modeledNsFor(batched, 'arm64-contpte');
    expect(saving).toBeGreaterThan(0);
    const tlb = 16 * PRICES_ARM64.TLBI_VA + 16 * PRICES_ARM64.DSB_ISHST + PRICES_ARM64.DSB_ISH;
    expect(tlb / saving).toBeGreaterThan(0.75);
  });
});

describe('modeledNsFor', () => {
  it('is Σ count × price over the events given (absent = 0)', () => {
    expect(modeledNsFor({}, 'x86')).toBe(0);
    expect(modeledNsFor({ PTE_READ: 10, X86_INVLPG: 2 }, 'x86')).toBeCloseTo(10 * PRICES_X86.PTE_READ + 2 * PRICES_X86.X86_INVLPG, 9);
    expect(modeledNsFor({ TLBI_VA: 3, DSB_ISH: 1 }, 'arm64')).toBe(3 * PRICES_ARM64.TLBI_VA + PRICES_ARM64.DSB_ISH);
  });

  it('maps the engine arch profiles to their price family', () => {
    expect(priceArchOf('arm64-contpte')).toBe('arm64');
    expect(priceArchOf('arm64-nocont')).toBe('arm64');
    expect(priceArchOf('x86')).toBe('x86');
    expect(pricesFor('arm64-nocont')).toBe(PRICES_ARM64);
    expect(PRICE_ARCH_NAMES).toContain('arm64-contpte');
  });

  it('rejects an unknown arch, an unknown event and a bad count with EINVAL naming them', () => {
    const err = (f: () => unknown): FoliolabError => {
      try {
        f();
      } catch (e) {
        return e as FoliolabError;
      }
      throw new Error('expected a throw');
    };
    expect(err(() => modeledNsFor({}, 'riscv')).message).toBe('priceArchOf: unknown arch "riscv"; known: arm64, x86, arm64-contpte, arm64-nocont');
    expect(err(() => modeledNsFor({ PTE_REDA: 1 }, 'x86')).message).toBe('modeledNsFor: unknown event "PTE_REDA"');
    const bad = err(() => modeledNsFor({ PTE_READ: -1 }, 'x86'));
    expect(bad).toBeInstanceOf(FoliolabError);
    expect(bad.code).toBe('EINVAL');
    expect(() => modeledNsFor({ PTE_READ: Number.NaN }, 'arm64')).toThrow('count of PTE_READ must be a finite number ≥ 0');
  });
});

describe('unevented reclaim cost (A1: zero scan and shrink_folio_list, paid equally by both kernels)', () => {
  it('is per folio plus a per-KiB zero scan of the whole folio', () => {
    const x = UNEVENTED_RECLAIM.x86;
    expect(uneventedReclaimNs('x86', 4096, 64 * 1024)).toBeCloseTo(4096 * (x.perFolioNs + 64 * x.zeroScanNsPerKiB), 6);
    expect(uneventedReclaimNs('arm64-contpte', 0, 4096)).toBe(0);
    expect(() => uneventedReclaimNs('x86', -1, 4096)).toThrow(FoliolabError);
  });

  it('the zero scan is bandwidth-bound and slower per byte on the server x86 core than on an M-class core', () => {
    expect(UNEVENTED_RECLAIM.x86.zeroScanNsPerKiB).toBeGreaterThan(UNEVENTED_RECLAIM.arm64.zeroScanNsPerKiB);
  });
});
