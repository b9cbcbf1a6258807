/*
 * Test fixtures (not exported from the barrel): build an rmap world from
 * nothing, as the kernel's tools/testing/vma tests build their mm.
 */
import {
  F_DEFERRED_NEXT,
  F_DEFERRED_PREV,
  F_ENTIRE_MAPCOUNT,
  F_INDEX,
  F_LARGE_MAPCOUNT,
  F_MAPPING,
  F_MM_ID0,
  F_MM_ID1,
  F_MM_ID_MAPCOUNT0,
  F_MM_ID_MAPCOUNT1,
  F_NR_PAGES_MAPPED,
  F_PINCOUNT,
  FLAG,
  Memmap,
  type Folio,
} from '@foliolab/folio-flags';
import { type Ledger } from '@foliolab/ledger';
import {
  PAGE_SIZE,
  anonVmaPrepare,
  createRmap,
  folioAddNewAnonRmap,
  folioPrepLargeRmappable,
  folioRefAdd,
  type MapcountMode,
  type RmapConfig,
  type RmapFlags,
  type RmapMm,
  type RmapState,
  type RmapVma,
} from './index.js';

export const MODES: readonly MapcountMode[] = ['legacy', 'mm_id', 'page_mapcount_mm_id'];

/** CONFIG_PAGE_MAPCOUNT in this mode: large folios keep per-page `_mapcount` and `_nr_pages_mapped`. */
export const pageMapcountOn = (mode: MapcountMode): boolean => mode !== 'mm_id';
/** CONFIG_MM_ID in this mode: `_large_mapcount` updates take the `_mm_ids` bit lock and keep the per-mm slots. */
export const mmIdOn = (mode: MapcountMode): boolean => mode !== 'legacy';
/** The `_mm_ids` bit lock's LOCK/UNLOCK pair per large-mapcount update under MM_ID, none without. */
export const mmIdLock = (mode: MapcountMode, n = 1): Record<string, number> => (mmIdOn(mode) ? { LOCK: n, UNLOCK: n } : {});

export interface World {
  readonly memmap: Memmap;
  readonly rmap: RmapState;
  readonly ledger: Ledger;
}

export function makeWorld(mode: MapcountMode, config: Partial<RmapConfig> = {}, nrPages = 1024): World {
  const memmap = new Memmap({ nrPages, perPageMapcount: true });
  const rmap = createRmap(memmap, { mapcountMode: mode, ...config });
  return { memmap, rmap, ledger: memmap.ledger };
}

export function makeMm(mmId: number): RmapMm {
  return { mmId, hasPinned: false };
}

/** An anon VMA of `pages` pages at `start` (pgoff = start >> 12 unless given), with its own anon_vma. */
export function makeVma(w: World, mm: RmapMm, start: number, pages: number, pgoff = start / PAGE_SIZE): RmapVma {
  const vma: RmapVma = { mm, vmStart: start, vmEnd: start + pages * PAGE_SIZE, vmPgoff: pgoff, anonVma: null };
  anonVmaPrepare(w.rmap, vma);
  return vma;
}

/**
 * do_anonymous_page for one folio of `order`: allocate (large_rmappable),
 * refcount = one per mapping (nr PTEs, or 1 for a PMD-sized folio), then
 * folio_add_new_anon_rmap.
 */
export function faultIn(w: World, order: number, vma: RmapVma, address: number, flags: RmapFlags): Folio {
  const folio = w.memmap.allocFolio(order)!;
  folioPrepLargeRmappable(folio);
  const refs = order === 9 ? 1 : folio.nr;
  if (refs > 1) folioRefAdd(folio, refs - 1);
  folioAddNewAnonRmap(folio, vma, address, flags);
  return folio;
}

/** Every counter of a folio, as plain data (for equality checks). */
export function folioCounters(f: Folio, opts: { ignorePartiallyMapped?: boolean } = {}): Record<string, unknown> {
  const { fa, fb, head, nr, mm } = f;
  const flags = Array.from(mm.flags.subarray(head, head + nr));
  if (opts.ignorePartiallyMapped === true && nr > 1) flags[1] = flags[1]! & ~FLAG.partially_mapped.mask;
  return {
    refcount: mm.aux[head],
    large: fa[fb + F_LARGE_MAPCOUNT],
    entire: fa[fb + F_ENTIRE_MAPCOUNT],
    nrPagesMapped: fa[fb + F_NR_PAGES_MAPPED],
    pincount: fa[fb + F_PINCOUNT],
    mmId0: fa[fb + F_MM_ID0],
    mmId1: fa[fb + F_MM_ID1],
    mmIdMapcount0: fa[fb + F_MM_ID_MAPCOUNT0],
    mmIdMapcount1: fa[fb + F_MM_ID_MAPCOUNT1],
    mapping: fa[fb + F_MAPPING],
    index: fa[fb + F_INDEX],
    ...(opts.ignorePartiallyMapped === true ? {} : { deferredPrev: fa[fb + F_DEFERRED_PREV], deferredNext: fa[fb + F_DEFERRED_NEXT] }),
    pageMapcount: Array.from(mm.mapcount!.subarray(head, head + nr)),
    flags,
  };
}

/** The anon-exclusive bits of a folio's pages as a string, one char per page ('E' / '.'). */
export function exclusiveMap(f: Folio): string {
  let s = '';
  for (let p = f.head; p < f.head + f.nr; p++) s += (f.mm.flags[p]! & FLAG.anon_exclusive.mask) !== 0 ? 'E' : '.';
  return s;
}
