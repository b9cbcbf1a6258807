import type { EventCounts } from '@foliolab/ledger';
import { describe, expect, it } from 'vitest';
import { workedExample64K, type GatherVariant } from './index.js';

/*
 * Spec §8: a 64K anon folio, aligned, one valid-CONT block (young+dirty after
 * memset), deferred flush; no TLBIRANGE, no KPTI, no BBML2.
 *
 *   0123456789abcdef   one char per 4K page of the folio
 *   CCCCCCCCCCCCCCCC   C = valid-CONT, young, dirty, writable
 *
 * | event               | one-by-one | batched |
 * | PTE_READ            | 3G+62      | 3G+1    |
 * | PTE_XCHG            | 32         | 16      |
 * | PTE_WRITE           | 32         | 16      |
 * | TLBI                | 32 (17)    | 16 (1)  |   (with range)
 * | DSB_ISHST           | 17         | 1       |
 * | DSB_ISH (in folio)  | 1          | 0       |
 * | final DSB_ISH       | 1          | 1       |
 * | LOCK / UNLOCK       | 1 / 1      | 1 / 1   |
 * | PVMW_CALL           | 17         | 1       |
 */

const tlbi = (c: EventCounts): number => c.TLBI_VA + c.TLBI_RANGE + c.TLBI_ASID;

/** G per §5 for a block whose entry 0 is young and dirty. */
const G: Record<GatherVariant, number> = { earlyExit: 3, old17: 17 };

describe('§8 worked example, arm64-contpte, deferred flush', () => {
  for (const variant of ['earlyExit', 'old17'] as const) {
    for (const hasTlbiRange of [false, true]) {
      it(`${variant}, range TLBI ${hasTlbiRange ? 'on' : 'off'}: the table event for event`, () => {
        const r = workedExample64K({ gatherVariant: variant, hasTlbiRange });
        const g = G[variant];
        expect(r.g).toBe(g);
        const one = r.oneByOne;
        const bat = r.batched;
        expect(one.folio.PTE_READ).toBe(3 * g + 62);
        expect(bat.folio.PTE_READ).toBe(3 * g + 1);
        expect([one.folio.PTE_XCHG, bat.folio.PTE_XCHG]).toEqual([32, 16]);
        expect([one.folio.PTE_WRITE, bat.folio.PTE_WRITE]).toEqual([32, 16]);
        expect([tlbi(one.folio), tlbi(bat.folio)]).toEqual(hasTlbiRange ? [17, 1] : [32, 16]);
        expect([one.folio.DSB_ISHST, bat.folio.DSB_ISHST]).toEqual([17, 1]);
        expect([one.folio.DSB_ISH, bat.folio.DSB_ISH]).toEqual([1, 0]);
        expect([one.flush.DSB_ISH, bat.flush.DSB_ISH]).toEqual([1, 1]);
        expect([one.folio.LOCK, one.folio.UNLOCK, bat.folio.LOCK, bat.folio.UNLOCK]).toEqual([1, 1, 1, 1]);
        expect([one.folio.PVMW_CALL, bat.folio.PVMW_CALL]).toEqual([17, 1]);
        // not in the §8 table: the unfold, the walk steps, the PMD reads (D.2 + recheck), the pending adds
        expect([one.folio.CONTPTE_UNFOLD, bat.folio.CONTPTE_UNFOLD]).toEqual([1, 0]);
        expect([one.folio.PVMW_STEP, bat.folio.PVMW_STEP]).toEqual([16, 0]);
        expect([one.folio.PMD_READ, bat.folio.PMD_READ]).toEqual([2, 2]);
        expect([one.folio.TLB_PENDING_ADD, bat.folio.TLB_PENDING_ADD]).toEqual([16, 1]);
        expect([one.flush.TLB_BATCH_FLUSH, bat.flush.TLB_BATCH_FLUSH]).toEqual([1, 1]);
        // §9.7: the deferred entries stay visible until the final flush
        expect([one.staleAfterWalk, bat.staleAfterWalk]).toEqual([16, 16]);
        expect([one.staleAfterFlush, bat.staleAfterFlush]).toEqual([0, 0]);
      });
    }
  }

  it('Δ column (earlyExit, no range): −61 reads, −16 XCHG, −16 WRITE, −16 TLBI, −16 DSB_ISHST, −1 DSB_ISH, −16 PVMW_CALL', () => {
    const r = workedExample64K();
    const d = (f: (c: EventCounts) => number): number => f(r.batched.total) - f(r.oneByOne.total);
    expect(d((c) => c.PTE_READ)).toBe(-61);
    expect(d((c) => c.PTE_XCHG)).toBe(-16);
    expect(d((c) => c.PTE_WRITE)).toBe(-16);
    expect(d(tlbi)).toBe(-16);
    expect(d((c) => c.DSB_ISHST)).toBe(-16);
    expect(d((c) => c.DSB_ISH)).toBe(-1);
    expect(d((c) => c.PVMW_CALL)).toBe(-16);
  });

  it('KPTI doubles every TLBI', () => {
    const r = workedExample64K({ kpti: true });
    expect([tlbi(r.oneByOne.folio), tlbi(r.batched.folio)]).toEqual([64, 32]);
  });
});

describe('§8 variants', () => {
  it('immediate flush: one DSB_ISH per flush (one-by-one +16, batched +1), nothing left for the final flush', () => {
    const r = workedExample64K({ batchFlush: false });
    expect([r.oneByOne.folio.DSB_ISH, r.batched.folio.DSB_ISH]).toEqual([1 + 16, 0 + 1]);
    expect([r.oneByOne.flush.DSB_ISH, r.batched.flush.DSB_ISH]).toEqual([0, 0]);
    expect([r.oneByOne.folio.DSB_ISHST, r.batched.folio.DSB_ISHST]).toEqual([17, 1]);
    expect([r.oneByOne.staleAfterWalk, r.batched.staleAfterWalk]).toEqual([0, 0]);
  });

  it("swap PTEs via the real arm64 set_pte_at: +1 read per swap PTE (the spec's table counts a bare store)", () => {
    const r = workedExample64K({ swapPteWrite: 'setPteAt' });
    expect(r.oneByOne.folio.PTE_READ).toBe(3 * 3 + 62 + 16);
    expect(r.batched.folio.PTE_READ).toBe(3 * 3 + 1 + 16);
    expect(r.oneByOne.folio.PTE_WRITE).toBe(32);
  });

  it('x86: G = 1, no unfold, the batch scan adds 15 reads; lockless get and clear read nothing extra', () => {
    const r = workedExample64K({ profile: 'x86' });
    expect(r.g).toBe(1);
    // one-by-one: call 1 = lockless 1 + check_pte 1 + ttu 1; steps 2–16 = NEXT + check_pte + ttu
    expect(r.oneByOne.folio.PTE_READ).toBe(3 + 15 * 3);
    // batched: 3 + folio_pte_batch reading entries 1..15
    expect(r.batched.folio.PTE_READ).toBe(3 + 15);
    expect([r.oneByOne.folio.PTE_XCHG, r.batched.folio.PTE_XCHG]).toEqual([16, 16]);
    expect([r.oneByOne.folio.PTE_WRITE, r.batched.folio.PTE_WRITE]).toEqual([16, 16]);
    expect(r.oneByOne.folio.CONTPTE_UNFOLD).toBe(0);
    // alone in mm_cpumask: no deferral, per-page INVLPG (16 ≤ 33)
    expect([r.oneByOne.folio.X86_INVLPG, r.batched.folio.X86_INVLPG]).toEqual([16, 16]);
  });

  it('x86 with another CPU in mm_cpumask: deferred, one FLUSH_ALL per CPU and one IPI at the end', () => {
    const r = workedExample64K({ profile: 'x86', x86OtherCpus: 1 });
    expect([r.oneByOne.folio.X86_INVLPG, r.batched.folio.X86_INVLPG]).toEqual([0, 0]);
    expect(r.oneByOne.flush).toMatchObject({ X86_FLUSH_ALL: 2, X86_IPI: 1, TLB_BATCH_FLUSH: 1 });
    expect(r.batched.flush).toMatchObject({ X86_FLUSH_ALL: 2, X86_IPI: 1, TLB_BATCH_FLUSH: 1 });
    expect([r.oneByOne.staleAfterFlush, r.batched.staleAfterFlush]).toEqual([0, 0]);
  });

  it('arm64-nocont: plain PTEs, G = 1, no unfold, one-by-one reads as x86', () => {
    const r = workedExample64K({ profile: 'arm64-nocont' });
    expect(r.g).toBe(1);
    expect(r.oneByOne.folio.PTE_READ).toBe(48);
    expect(r.batched.folio.PTE_READ).toBe(18);
    expect([r.oneByOne.folio.TLBI_VA, r.batched.folio.TLBI_VA]).toEqual([16, 16]);
  });
});
