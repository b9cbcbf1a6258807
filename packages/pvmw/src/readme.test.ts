import { measure } from '@foliolab/ledger';
import { Machine, PageTables, fixedSizeFolios, makeUserPte, setPtes } from '@foliolab/pagetable-arm64-contpte';
import { expect, it } from 'vitest';
import { folioVmaWalk, pageVmaMappedWalk, pickCounts, skipPolicyCosts } from './index.js';

it('the README example runs and prints what it says', () => {
  const machine = new Machine({ profile: 'arm64-contpte' });
  const pt = new PageTables(machine, { folios: fixedSizeFolios(16) });
  const va = 0x4000_0000;
  const pte = makeUserPte(0x80000, { write: true, young: true, dirty: true });
  setPtes(pt.pteAlloc(va), 0, pte.lo, pte.hi, 16);
  const vma = { vmStart: va, vmEnd: va + 0x20_0000, vmPgoff: va / 4096 };
  const walk = folioVmaWalk(pt, { pfn: 0x80000, nrPages: 16, pgoff: va / 4096 }, vma, va);
  const { counts } = measure(machine.ledger, () => {
    while (pageVmaMappedWalk(walk));
  });
  expect(pickCounts(counts, ['PVMW_CALL', 'PTE_READ', 'LOCK'])).toEqual({ PVMW_CALL: 17, PTE_READ: 97, LOCK: 1 });
  const r = skipPolicyCosts({ folioPages: 512, batch: 8 });
  expect(pickCounts(r.none.walk, ['PVMW_STEP', 'PTE_READ'])).toEqual({ PVMW_STEP: 512, PTE_READ: 1153 });
  expect(pickCounts(r.jump.walk, ['PVMW_STEP', 'PTE_READ'])).toEqual({ PVMW_STEP: 64, PTE_READ: 257 });
});
