import {
  F_LARGE_MAPCOUNT,
  F_MM_ID0,
  F_MM_ID1,
  F_MM_ID_MAPCOUNT1,
  F_NR_PAGES_MAPPED,
  FLAG,
  MM_IDS_LOCK_MASK,
  MM_IDS_SHARED_MASK,
  folioPutRefs,
  folioRefAdd,
  folioSetPartiallyMapped,
  folioSubrange,
} from '@foliolab/folio-flags';
import { describe, expect, it } from 'vitest';
import { RMAP_EXCLUSIVE, checkRmapInvariants, folioRemoveRmapPtes, folioTryDupAnonRmapPtes, type RmapViolation } from './index.js';
import { faultIn, makeMm, makeVma, makeWorld } from './test-fixtures.js';

function rules(v: RmapViolation[]): string[] {
  return [...new Set(v.map((x) => x.rule))].sort();
}

function legacy64k() {
  const w = makeWorld('legacy');
  const vma = makeVma(w, makeMm(1), 0x100000, 16);
  const folio = faultIn(w, 4, vma, 0x100000, RMAP_EXCLUSIVE);
  return { w, vma, folio };
}

function mmId64k() {
  const w = makeWorld('mm_id');
  const vma = makeVma(w, makeMm(1), 0x100000, 16);
  const folio = faultIn(w, 4, vma, 0x100000, RMAP_EXCLUSIVE);
  return { w, vma, folio };
}

describe('checkRmapInvariants detects each broken rule (spec §2 "Invariants (rmap)")', () => {
  it('a consistent state has no violations, with or without a census', () => {
    const { w, folio } = legacy64k();
    expect(checkRmapInvariants(w.rmap, [folio], { allFolios: true })).toEqual([]);
    const census = { ptes: 16, pmds: 0, ptesPerPage: new Array<number>(16).fill(1), writablePerPage: new Array<number>(16).fill(1) };
    expect(checkRmapInvariants(w.rmap, [folio], { census: () => census })).toEqual([]);
  });

  it('legacy: Σ page mapcounts, _nr_pages_mapped, ENTIRELY_MAPPED', () => {
    const { w, folio } = legacy64k();
    w.memmap.mapcount![folio.head + 3] = -1;
    expect(rules(checkRmapInvariants(w.rmap, [folio]))).toEqual(['large-mapcount-sum', 'nr-pages-mapped']);
    w.memmap.mapcount![folio.head + 3] = 0;
    folio.fa[folio.fb + F_NR_PAGES_MAPPED] = folio.fa[folio.fb + F_NR_PAGES_MAPPED]! + 0x800000;
    expect(rules(checkRmapInvariants(w.rmap, [folio]))).toEqual(['entirely-mapped']);
  });

  it('mm_id: lock bit held, SHARED clear while two mms map, slot id without count', () => {
    const { w, vma, folio } = mmId64k();
    folioRefAdd(folio, 16); // fork's folio_ref_add(nr) before the dup
    folioTryDupAnonRmapPtes(folioSubrange(folio, 0, 16), { ...vma, mm: makeMm(2) }, vma);
    expect(checkRmapInvariants(w.rmap, [folio], { allFolios: true })).toEqual([]);
    folio.fa[folio.fb + F_MM_ID0] = folio.fa[folio.fb + F_MM_ID0]! | MM_IDS_LOCK_MASK;
    folio.fa[folio.fb + F_MM_ID1] = folio.fa[folio.fb + F_MM_ID1]! & ~MM_IDS_SHARED_MASK;
    expect(rules(checkRmapInvariants(w.rmap, [folio]))).toEqual(['mm-id-lock', 'mm-id-shared']);
    folio.fa[folio.fb + F_MM_ID0] = folio.fa[folio.fb + F_MM_ID0]! & ~MM_IDS_LOCK_MASK;
    folio.fa[folio.fb + F_MM_ID1] = folio.fa[folio.fb + F_MM_ID1]! | MM_IDS_SHARED_MASK;
    folio.fa[folio.fb + F_MM_ID_MAPCOUNT1] = -1; // slot 1 names mm 2 but is empty
    expect(rules(checkRmapInvariants(w.rmap, [folio]))).toEqual(['mm-id-slots']);
  });

  it('refcount below mappings + swap cache + pins', () => {
    const { w, folio } = mmId64k();
    folioPutRefs(folio, 1);
    expect(rules(checkRmapInvariants(w.rmap, [folio]))).toEqual(['refcount']);
  });

  it('AnonExclusive mapped twice; writable PTE on a non-exclusive page; census mismatches', () => {
    const { w, vma, folio } = legacy64k();
    w.memmap.mapcount![folio.head + 2] = 1; // page 2 mapped twice, still exclusive
    folio.fa[folio.fb + F_LARGE_MAPCOUNT] = folio.fa[folio.fb + F_LARGE_MAPCOUNT]! + 1;
    expect(rules(checkRmapInvariants(w.rmap, [folio]))).toEqual(['exclusive', 'refcount']);
    w.memmap.mapcount![folio.head + 2] = 0;
    folio.fa[folio.fb + F_LARGE_MAPCOUNT] = folio.fa[folio.fb + F_LARGE_MAPCOUNT]! - 1;
    w.memmap.flags[folio.head + 5] = w.memmap.flags[folio.head + 5]! & ~FLAG.anon_exclusive.mask;
    const writable = new Array<number>(16).fill(1);
    expect(rules(checkRmapInvariants(w.rmap, [folio], { census: () => ({ writablePerPage: writable }) }))).toEqual(['writable-exclusive']);
    expect(rules(checkRmapInvariants(w.rmap, [folio], { census: () => ({ ptes: 15, pmds: 1 }) }))).toEqual(['pmd-census', 'pte-census']);
    void vma;
  });

  it('deferred list: flagged but unlisted, split_queue_len, and the global stats', () => {
    const { w, vma, folio } = legacy64k();
    folioSetPartiallyMapped(folio);
    expect(rules(checkRmapInvariants(w.rmap, [folio]))).toEqual(['partially-mapped']);
    expect(rules(checkRmapInvariants(w.rmap, [folio], { allFolios: true }))).toEqual(['partially-mapped', 'stats']);
    w.memmap.flags[folio.head + 1] = w.memmap.flags[folio.head + 1]! & ~FLAG.partially_mapped.mask;
    folioRemoveRmapPtes(folioSubrange(folio, 0, 1), vma);
    expect(checkRmapInvariants(w.rmap, [folio], { allFolios: true })).toEqual([]);
    w.rmap.splitQueue.len = 2;
    expect(rules(checkRmapInvariants(w.rmap, [folio]))).toEqual(['split-queue-len']);
    w.rmap.splitQueue.len = 1;
    w.rmap.stats.NR_ANON_MAPPED += 1;
    expect(rules(checkRmapInvariants(w.rmap, [folio], { allFolios: true }))).toEqual(['stats']);
  });
});
