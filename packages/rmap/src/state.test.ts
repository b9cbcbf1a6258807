import { Memmap, folioSubrange } from '@foliolab/folio-flags';
import { FoliolabError } from '@foliolab/ledger';
import { describe, expect, it } from 'vitest';
import { RMAP_EXCLUSIVE, RmapStats, createRmap, folioMapcount, folioRemoveRmapPtes, rmapOf, type MapcountMode } from './index.js';
import { faultIn, makeMm, makeVma, makeWorld } from './test-fixtures.js';

describe('RmapState', () => {
  it('requires the per-page _mapcount array, a known mode, and one state per memmap', () => {
    expect(() => createRmap(new Memmap({ nrPages: 512 }), { mapcountMode: 'legacy' })).toThrow(/perPageMapcount/);
    const mm = new Memmap({ nrPages: 512, perPageMapcount: true });
    expect(() => createRmap(mm, { mapcountMode: 'both' as MapcountMode })).toThrow(/mapcountMode/);
    expect(() => rmapOf(mm)).toThrow(/createRmap/);
    const st = createRmap(mm, { mapcountMode: 'mm_id' });
    expect(rmapOf(mm)).toBe(st);
    expect([st.mapcountMode, st.splitUnderusedThp, st.haveGupFast]).toEqual(['mm_id', true, true]);
    expect(() => createRmap(mm, { mapcountMode: 'legacy' })).toThrow(FoliolabError);
    expect(() => createRmap(new Memmap({ nrPages: 512, perPageMapcount: true }), { mapcountMode: 'legacy', devicePrivatePfns: { start: 4, end: 2 } })).toThrow(
      /devicePrivatePfns/,
    );
  });

  it('operations on a folio of a memmap without rmap state are rejected', () => {
    const bare = new Memmap({ nrPages: 512, perPageMapcount: true });
    expect(() => folioMapcount(bare.allocFolio(0)!)).toThrow(/no RmapState/);
  });

  it('a freed folio handle is rejected (use after free)', () => {
    const w = makeWorld('legacy');
    const vma = makeVma(w, makeMm(1), 0x100000, 16);
    const f = faultIn(w, 0, vma, 0x100000, RMAP_EXCLUSIVE);
    const sub = folioSubrange(f, 0, 1);
    folioRemoveRmapPtes(sub, vma);
    w.memmap.aux[f.head] = 0;
    w.memmap.freeFolio(f);
    expect(() => folioRemoveRmapPtes(sub, vma)).toThrow(/not an allocated folio/);
  });

  it('stats snapshot is plain data detached from the live counters', () => {
    const s = new RmapStats();
    s.nr_anon[4] = 2;
    const snap = s.snapshot();
    s.nr_anon[4] = 3;
    expect(snap.nr_anon[4]).toBe(2);
    expect(JSON.parse(JSON.stringify(snap))).toEqual(snap);
  });
});
