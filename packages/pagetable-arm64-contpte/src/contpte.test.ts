import { EV, EVENT_NAMES, type Ledger, type TraceSink } from '@foliolab/ledger';
import { describe, expect, it } from 'vitest';
import {
  contpteBlockState,
  contpteConvert,
  contpteTryUnfold,
  contpteTryUnfoldPartial,
  hwAccess,
  makeUserPte,
  peekPte,
  pteBits,
  pteCont,
  pteDirty,
  ptePfn,
  pteYoung,
  ptepGetAndClear,
  ptepGetLockless,
  tlbStaleCount,
  type PteTable,
} from './index.js';
import { PFN0, cost, makeMm, mapBlock } from './test-fixtures.js';

/** Records charged events in order, and checks the block is all zero at every DSB_ISH. */
class ConvertSpy implements TraceSink {
  readonly seq: string[] = [];
  zeroAtDsb: boolean[] = [];
  constructor(private readonly table: PteTable) {}
  attach(_l: Ledger): void {}
  onCharge(ev: number, n: number): void {
    this.seq.push(`${EVENT_NAMES[ev]}×${n}`);
    if (ev === EV.DSB_ISH) {
      let zero = true;
      for (let i = 0; i < 16; i++) if ((this.table.lo[i]! | this.table.hi[i]!) !== 0) zero = false;
      this.zeroAtDsb.push(zero);
    }
  }
  onLock(): void {}
  onBegin(): void {}
  onEnd(): void {}
}

describe('§5 contpte_convert (break-before-make)', () => {
  it('16 XCHG, then a 64K __flush_tlb_range completed while the block is zero, then 16 WRITEs (§9.2)', () => {
    const f = makeMm();
    mapBlock(f, 0, PFN0);
    const spy = new ConvertSpy(f.table);
    f.ledger.setTrace(spy);
    ptepGetAndClear(f.table, 3, pteBits());
    f.ledger.setTrace(null);
    expect(spy.seq).toEqual(['PTE_READ×1', 'PTE_XCHG×16', 'DSB_ISHST×1', 'TLBI_VA×16', 'DSB_ISH×1', 'PTE_WRITE×16', 'CONTPTE_UNFOLD×1', 'PTE_XCHG×1']);
    expect(spy.zeroAtDsb).toEqual([true]);
    // the unfold's own TLBI + DSB completed: only the cleared entry may still be cached
    expect(tlbStaleCount(f.mm)).toBe(1);
  });

  it('with FEAT_TLBIRANGE the block flush is one range TLBI', () => {
    const f = makeMm('arm64-contpte', { hasTlbiRange: true });
    mapBlock(f, 0, PFN0);
    expect(cost(f.ledger, () => contpteTryUnfold(f.table, 0, f.table.lo[0]!, f.table.hi[0]!))).toEqual({
      PTE_XCHG: 16,
      DSB_ISHST: 1,
      TLBI_RANGE: 1,
      DSB_ISH: 1,
      PTE_WRITE: 16,
      CONTPTE_UNFOLD: 1,
    });
  });

  it('bbml2NoAbort: no TLBI, and the old translations stay TLB-visible', () => {
    const f = makeMm('arm64-contpte', { bbml2NoAbort: true });
    mapBlock(f, 0, PFN0);
    expect(cost(f.ledger, () => contpteTryUnfold(f.table, 0, f.table.lo[0]!, f.table.hi[0]!))).toEqual({ PTE_XCHG: 16, PTE_WRITE: 16, CONTPTE_UNFOLD: 1 });
    expect(tlbStaleCount(f.mm)).toBe(16);
  });

  it('ORs every old entry’s young/dirty into the repainted block', () => {
    const f = makeMm();
    mapBlock(f, 0, PFN0, { write: true, young: false });
    hwAccess(f.table, 13, true);
    contpteTryUnfold(f.table, 0, f.table.lo[0]!, f.table.hi[0]!);
    expect(contpteBlockState(f.table, 0)).toBe('noncont');
    for (let i = 0; i < 16; i++) {
      const e = peekPte(f.table, i, pteBits());
      expect(ptePfn(e.lo, e.hi)).toBe(PFN0 + i);
      expect(pteCont(e.lo, e.hi)).toBe(false);
      expect(pteYoung(e.lo, e.hi) && pteDirty(e.lo, e.hi)).toBe(true);
    }
    // and folding back (convert with CONT) restores a consistent CONT block
    const p = peekPte(f.table, 0, pteBits());
    expect(cost(f.ledger, () => contpteConvert(f.table, 0, p.lo, p.hi | (1 << 20))).CONTPTE_FOLD).toBe(1);
    expect(contpteBlockState(f.table, 0)).toBe('cont');
  });

  it('try_unfold ignores entries that are not valid-CONT; unfold_partial costs nothing on an aligned whole block', () => {
    const f = makeMm();
    mapBlock(f, 0, PFN0);
    const pn = makeUserPte(PFN0, { protNone: true });
    expect(cost(f.ledger, () => contpteTryUnfold(f.table, 0, pn.lo, pn.hi | (1 << 20)))).toEqual({});
    expect(cost(f.ledger, () => contpteTryUnfoldPartial(f.table, 0, 16))).toEqual({});
    expect(cost(f.ledger, () => contpteTryUnfoldPartial(f.table, 0, 32))).toEqual({});
    expect(cost(f.ledger, () => contpteTryUnfoldPartial(f.table, 0, 15)).CONTPTE_UNFOLD).toBe(1);
  });
});

describe('§5 ptep_get_lockless consistency', () => {
  it('a block that is not consistent would make the kernel retry forever: an invariant error here', () => {
    const f = makeMm();
    mapBlock(f, 0, PFN0);
    f.table.hi[7] = f.table.hi[7]! & ~(1 << 20); // fault injection: drop CONT on one entry
    expect(() => ptepGetLockless(f.table, 0, pteBits())).toThrow(/inconsistent contpte block/);
  });
});

describe('hardware access (hwAF / hwDBM)', () => {
  it('sets AF and clears RDONLY on the accessed descriptor only; faults without hardware support', () => {
    const f = makeMm('arm64-contpte', { hwAF: false, hwDBM: false });
    mapBlock(f, 0, PFN0, { write: true, young: false });
    expect(hwAccess(f.table, 2, false)).toBe(false);
    const g = makeMm();
    mapBlock(g, 0, PFN0, { write: true, young: false });
    expect(hwAccess(g.table, 2, true)).toBe(true);
    const e = peekPte(g.table, 2, pteBits());
    expect(pteYoung(e.lo, e.hi) && pteDirty(e.lo, e.hi)).toBe(true);
    const o = peekPte(g.table, 3, pteBits());
    expect(pteYoung(o.lo, o.hi) || pteDirty(o.lo, o.hi)).toBe(false);
    expect(hwAccess(g.table, 40, false)).toBe(false); // none
    const h = makeMm();
    mapBlock(h, 0, PFN0, { write: false });
    expect(hwAccess(h.table, 0, true)).toBe(false); // write to a read-only mapping
  });
});
