import { Memmap, folioSubrange } from '@foliolab/folio-flags';
import { measure } from '@foliolab/ledger';
import { expect, it } from 'vitest';
import {
  RMAP_EXCLUSIVE,
  anonVmaPrepare,
  createRmap,
  folioAddNewAnonRmap,
  folioPrepLargeRmappable,
  folioRefAdd,
  folioRemoveRmapPtes,
  type RmapVma,
} from './index.js';

it('the README example prints what the README says', () => {
  const memmap = new Memmap({ nrPages: 512, perPageMapcount: true });
  const rmap = createRmap(memmap, { mapcountMode: 'mm_id' });
  const vma: RmapVma = { mm: { mmId: 1, hasPinned: false }, vmStart: 0x100000, vmEnd: 0x110000, vmPgoff: 0x100, anonVma: null };
  anonVmaPrepare(rmap, vma);
  const folio = memmap.allocFolio(4)!;
  folioPrepLargeRmappable(folio);
  folioRefAdd(folio, 15);
  folioAddNewAnonRmap(folio, vma, 0x100000, RMAP_EXCLUSIVE);
  const { counts } = measure(memmap.ledger, () => {
    for (let i = 0; i < 16; i++) folioRemoveRmapPtes(folioSubrange(folio, i, 1), vma);
  });
  expect([rmap.splitQueue.len, rmap.stats.split_deferred[4]]).toEqual([1, 1]);
  expect([counts.DEFERRED_SPLIT_ENQUEUE, counts.ATOMIC_MAPCOUNT, counts.LOCK]).toEqual([1, 16, 17]);
});
