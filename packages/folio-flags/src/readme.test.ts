import { nonZero } from '@foliolab/ledger';
import { expect, it } from 'vitest';
import {
  FLAG,
  Memmap,
  folioClearPagesAnonExclusive,
  folioSetFlag,
  folioSubrange,
  pageAnonExclusive,
  runRacePreset,
  setPageAnonExclusive,
} from './index.js';

it('the README example prints what the README says', () => {
  const mm = new Memmap({ nrPages: 512, perPageMapcount: true });
  const folio = mm.allocFolio(4)!;
  folioSetFlag(folio, FLAG.large_rmappable);
  for (let i = 0; i < folio.nr; i++) setPageAnonExclusive(mm, folio.head + i);
  folioClearPagesAnonExclusive(folioSubrange(folio, 4, 8));
  expect([pageAnonExclusive(mm, 3), pageAnonExclusive(mm, 4)]).toEqual([true, false]);
  expect(nonZero(mm.ledger.snapshot())).toEqual({ ATOMIC_RMW: 25, FLAG_LOAD: 2 });
  const race = runRacePreset('partially-mapped');
  expect([race.interleavings, race.losing, race.lostFlags]).toEqual([3, 1, ['anon_exclusive']]);
});
