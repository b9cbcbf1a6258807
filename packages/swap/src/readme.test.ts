import { __folioMarkUptodate, __folioSetLocked, __folioSetSwapbacked, folioSubrangeAll, Memmap } from '@foliolab/folio-flags';
import { measure, nonZero } from '@foliolab/ledger';
import { expect, it } from 'vitest';
import {
  SwapDevice,
  checkSwapInvariants,
  folioAllocSwap,
  folioDupSwap,
  folioSwapEntry,
  swapCount,
  swapSnapshot,
  swapWriteout,
  swpOffset,
} from './index.js';

it('the README example prints what the README says', () => {
  const mm = new Memmap({ nrPages: 1024, dataTokens: true });
  const si = new SwapDevice({ memmap: mm, nrSlots: 2048 });
  const folio = mm.allocFolio(4)!;
  __folioSetLocked(folio);
  __folioMarkUptodate(folio);
  __folioSetSwapbacked(folio);
  expect([folioAllocSwap(si, folio), swpOffset(folioSwapEntry(folio))]).toEqual([0, 512]);
  const { counts } = measure(mm.ledger, () => folioDupSwap(si, folioSubrangeAll(folio)));
  expect(nonZero(counts)).toEqual({ LOCK: 1, UNLOCK: 1, SWAP_CLUSTER_OP: 1, SWAP_SLOT_UPDATE: 16 });
  swapWriteout(si, folio);
  expect([swapSnapshot(si).swpoutZero, swapCount(si, folioSwapEntry(folio)), checkSwapInvariants(si)]).toEqual([16, 1, []]);
});
