import { measure, nonZero } from '@foliolab/ledger';
import { expect, it } from 'vitest';
import { Machine, PageTables, fixedSizeFolios, getAndClearPtes, makeUserPte, pteBits, ptepGet, setPtes } from './index.js';

it('the README example runs and prints what it says', () => {
  const machine = new Machine({ profile: 'arm64-contpte' });
  const mm = new PageTables(machine, { folios: fixedSizeFolios(16) });
  const table = mm.pteAlloc(0x4000_0000);
  const pte = makeUserPte(0x80000, { write: true, young: true, dirty: true });
  setPtes(table, 0, pte.lo, pte.hi, 16);
  const v = pteBits();
  expect(nonZero(measure(machine.ledger, () => ptepGet(table, 5, v)).counts)).toEqual({ PTE_READ: 3 });
  expect(nonZero(measure(machine.ledger, () => getAndClearPtes(table, 0, 16, v)).counts)).toEqual({ PTE_XCHG: 16 });
});
