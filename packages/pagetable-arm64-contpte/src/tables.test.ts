import { FoliolabError, Ledger } from '@foliolab/ledger';
import { describe, expect, it } from 'vitest';
import {
  HPAGE_PMD_NR,
  Machine,
  PMD_SIZE,
  PageTables,
  PteTable,
  bytesPerPte,
  isPmdDevicePrivateEntry,
  isPmdMigrationEntry,
  makeUserPte,
  mkDevicePrivatePte,
  mkMigrationPte,
  peekPmd,
  pmdIndex,
  pmdIsTable,
  pmdLockId,
  pmdMkhuge,
  pmdPfn,
  pmdTransHuge,
  pmdpGet,
  pmdpHugeGetAndClear,
  pteBits,
  pteIndex,
  pteLockId,
  pteMkinvalid,
  setPmdAt,
} from './index.js';
import { VA0, cost } from './test-fixtures.js';

describe('§1 geometry', () => {
  it('PTE index = (va >> 12) & 511; a 64K block never crosses a table', () => {
    expect(pteIndex(VA0 + 5 * 4096)).toBe(5);
    expect(pteIndex(VA0 + PMD_SIZE - 4096)).toBe(511);
    expect(pmdIndex(2 ** 47 + PMD_SIZE * 3)).toBe(3);
    expect(512 % 16).toBe(0);
  });
});

describe('§1 page tables allocated on demand', () => {
  it('the first pte_alloc allocates PUD, PMD and PTE tables, each charged PGTABLE_ALLOC', () => {
    const m = new Machine();
    const mm = new PageTables(m);
    let t: PteTable | null = null;
    const c = cost(m.ledger, () => (t = mm.pteAlloc(VA0)));
    expect(c.PGTABLE_ALLOC).toBe(3);
    expect(c.PMD_WRITE).toBe(1);
    expect(c.LOCK).toBe(3);
    expect(c.UNLOCK).toBe(3);
    expect(t).toBeInstanceOf(PteTable);
    expect(mm.pteTableOf(VA0)).toBe(t);
    // the same 2M region reuses the table; the next 2M needs only a new PTE table
    expect(cost(m.ledger, () => mm.pteAlloc(VA0 + 4096)).PGTABLE_ALLOC).toBeUndefined();
    expect(cost(m.ledger, () => mm.pteAlloc(VA0 + PMD_SIZE)).PGTABLE_ALLOC).toBe(1);
    expect(mm.pteTableOf(VA0 + 4 * PMD_SIZE)).toBeNull();
  });

  it('the PMD entry of a PTE table is a table descriptor, and pmdpGet charges PMD_READ', () => {
    const m = new Machine();
    const mm = new PageTables(m);
    const t = mm.pteAlloc(VA0);
    const v = pteBits();
    expect(cost(m.ledger, () => pmdpGet(t.pmdTable, pmdIndex(VA0), v))).toEqual({ PMD_READ: 1 });
    expect(pmdIsTable(v.lo, v.hi)).toBe(true);
    expect(pmdTransHuge(v.lo, v.hi)).toBe(false);
    expect(mm.pteTableFromPmd(v.lo, v.hi)).toBe(t);
  });

  it('split PTE/PMD locks: one per table page; without split locks, mm->page_table_lock', () => {
    const m = new Machine();
    const split = new PageTables(m);
    const a = split.pteAlloc(VA0);
    const b = split.pteAlloc(VA0 + PMD_SIZE);
    expect(pteLockId(a)).not.toBe(pteLockId(b));
    expect(m.ledger.locks.kind(pteLockId(a))).toBe('ptl');
    expect(m.ledger.locks.kind(pmdLockId(a.pmdTable))).toBe('pmd');
    expect(pmdLockId(a.pmdTable)).toBe(pmdLockId(b.pmdTable));
    const flat = new PageTables(m, { splitPtlocks: false });
    const c = flat.pteAlloc(VA0);
    expect(pteLockId(c)).toBe(flat.pageTableLock);
    expect(pmdLockId(c.pmdTable)).toBe(flat.pageTableLock);
    expect(m.ledger.locks.kind(flat.pageTableLock)).toBe('page_table_lock');
  });

  it('costs 8 bytes per PTE slot, plus 1 with TLB tracking', () => {
    const m = new Machine({ ledger: new Ledger() });
    expect(bytesPerPte(new PageTables(m))).toBe(9);
    const mm = new PageTables(m, { trackTlb: false });
    expect(bytesPerPte(mm)).toBe(8);
    expect(mm.pteAlloc(VA0).tlb).toBeNull();
  });

  it('validates VAs at the boundary (48-bit, 4K aligned where required)', () => {
    const mm = new PageTables(new Machine());
    expect(() => mm.pteAlloc(2 ** 48)).toThrow(FoliolabError);
    expect(() => mm.pteAlloc(-4096)).toThrow(/48-bit/);
    expect(() => mm.lookupPud(1.5)).toThrow(FoliolabError);
  });
});

describe('§1 PMD-level entries', () => {
  it('pmd_trans_huge: a THP block, also when present-invalid; pmd_pfn masks to 2M', () => {
    const v = pmdMkhuge(pteBits(), makeUserPte(0).lo, makeUserPte(0).hi, 0x40000);
    expect(pmdTransHuge(v.lo, v.hi)).toBe(true);
    expect(pmdIsTable(v.lo, v.hi)).toBe(false);
    pteMkinvalid(v);
    expect(v.lo & 1).toBe(0);
    expect(pmdTransHuge(v.lo, v.hi)).toBe(true);
    expect(pmdTransHuge(0, 0)).toBe(false);
    // a PFN in the middle of the 2M block still reads back 2M-aligned
    const w = pmdMkhuge(pteBits(), makeUserPte(0).lo, makeUserPte(0).hi, 0x40000 + 7);
    expect(pmdPfn(w.lo, w.hi)).toBe(0x40000);
    expect(HPAGE_PMD_NR).toBe(512);
  });

  it('PMD migration and device-private entries', () => {
    const mig = mkMigrationPte(pteBits(), 'read', 0x40000);
    expect(isPmdMigrationEntry(mig.lo, mig.hi)).toBe(true);
    expect(pmdTransHuge(mig.lo, mig.hi)).toBe(false);
    const dev = mkDevicePrivatePte(pteBits(), 0x40000, true);
    expect(isPmdDevicePrivateEntry(dev.lo, dev.hi)).toBe(true);
    expect(isPmdMigrationEntry(dev.lo, dev.hi)).toBe(false);
  });

  it('setPmdAt installs leaves (PMD_WRITE) but never overwrites a PTE table', () => {
    const m = new Machine();
    const mm = new PageTables(m);
    const t = mm.pteAlloc(VA0);
    const pmd = t.pmdTable;
    const huge = pmdMkhuge(pteBits(), makeUserPte(0).lo, makeUserPte(0).hi, 0x40000);
    expect(() => setPmdAt(pmd, pmdIndex(VA0), huge.lo, huge.hi)).toThrow(/PTE table/);
    expect(cost(m.ledger, () => setPmdAt(pmd, pmdIndex(VA0) + 1, huge.lo, huge.hi))).toEqual({ PMD_WRITE: 1 });
    expect(mm.pteTableOf(VA0 + PMD_SIZE)).toBeNull();
    const out = pteBits();
    pmdpHugeGetAndClear(pmd, pmdIndex(VA0) + 1, out);
    expect(pmdTransHuge(out.lo, out.hi)).toBe(true);
    expect(peekPmd(pmd, pmdIndex(VA0) + 1, out)).toEqual({ lo: 0, hi: 0 });
    // a PMD that holds a THP can't get a PTE table
    setPmdAt(pmd, 9, huge.lo, huge.hi);
    expect(() => mm.pteAlloc(VA0 + 9 * PMD_SIZE)).toThrow(/not a table/);
  });
});
