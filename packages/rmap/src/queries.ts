import {
  F_ENTIRE_MAPCOUNT,
  F_LARGE_MAPCOUNT,
  F_MM_ID1,
  F_MM_ID_MAPCOUNT0,
  F_MM_ID_MAPCOUNT1,
  MM_IDS_SHARED_MASK,
  MM_ID_DUMMY,
  type Folio,
} from '@foliolab/folio-flags';
import { maybeDmaPinned, needsCowForDma } from './dup-share.js';
import { mmIdOf } from './mapcount.js';
import type { RmapVma } from './types.js';
import { checkVma, fail, stateOfFolio } from './validate.js';

/*
 * Read-side helpers (include/linux/mm.h, rmap.h). Plain reads of counters
 * are not charged (the spec's cost list charges only the pincount read, as
 * ATOMIC_READ, which folioMaybeDmaPinned / folioNeedsCowForDma do).
 */

/** folio_mapcount(): page-table mappings (PTE = 1, PMD = 1); small folios use page[0]'s `_mapcount`. */
export function folioMapcount(folio: Folio): number {
  stateOfFolio('folioMapcount', folio);
  if (folio.order === 0) return folio.mm.mapcount![folio.head]! + 1;
  return folio.fa[folio.fb + F_LARGE_MAPCOUNT]! + 1;
}

/** folio_mapped(): mapped by at least one page table. */
export function folioMapped(folio: Folio): boolean {
  return folioMapcount(folio) > 0;
}

function large(fn: string, folio: Folio): void {
  stateOfFolio(fn, folio);
  if (folio.order === 0) fail(fn, 'EINVAL', `folio ${folio.head} is order 0: it has no large mapcounts`, { head: folio.head });
}

/** folio_large_mapcount(): `_large_mapcount` + 1 (large folios only). */
export function folioLargeMapcount(folio: Folio): number {
  large('folioLargeMapcount', folio);
  return folio.fa[folio.fb + F_LARGE_MAPCOUNT]! + 1;
}

/** folio_entire_mapcount(): PMD mappings, `_entire_mapcount` + 1 (large folios only). */
export function folioEntireMapcount(folio: Folio): number {
  large('folioEntireMapcount', folio);
  return folio.fa[folio.fb + F_ENTIRE_MAPCOUNT]! + 1;
}

/**
 * page_mapcount(page) (include/linux/mm.h, v6.12, PAGE_MAPCOUNT only):
 * `_mapcount` + 1, plus the entire mapcount for a page of a large folio.
 * `page` is the page index in the folio. Rejected in mm_id mode for large
 * folios: NO_PAGE_MAPCOUNT has no per-page mapcount (use
 * folioAveragePageMapcount).
 */
export function pageMapcount(folio: Folio, page: number): number {
  const st = stateOfFolio('pageMapcount', folio);
  if (!Number.isInteger(page) || page < 0 || page >= folio.nr) {
    fail('pageMapcount', 'ERANGE', `page ${page} is outside folio ${folio.head} of ${folio.nr} pages`, { head: folio.head, page });
  }
  const own = folio.mm.mapcount![folio.head + page]! + 1;
  if (folio.order === 0) return own;
  if (!st.pageMapcount) fail('pageMapcount', 'EINVAL', 'mm_id mode (NO_PAGE_MAPCOUNT) keeps no per-page mapcount for large folios');
  return own + folio.fa[folio.fb + F_ENTIRE_MAPCOUNT]! + 1;
}

/** folio_average_page_mapcount() (include/linux/mm.h, v6.15): entire mapcount + PTE mappings / nr, rounded. */
export function folioAveragePageMapcount(folio: Folio): number {
  stateOfFolio('folioAveragePageMapcount', folio);
  if (folio.order === 0) return folio.mm.mapcount![folio.head]! + 1;
  let mapcount = folio.fa[folio.fb + F_LARGE_MAPCOUNT]! + 1;
  if (mapcount <= 0) return 0;
  const entire = folio.fa[folio.fb + F_ENTIRE_MAPCOUNT]! + 1;
  if (mapcount <= entire) return entire;
  mapcount -= entire;
  return ((mapcount + folio.nr / 2) >>> folio.order) + entire;
}

/**
 * folio_maybe_mapped_shared(): small folios mapcount > 1. Large, with MM_ID
 * (modes mm_id and page_mapcount_mm_id; 7.2.13 include/linux/mm.h): a single
 * mapping is exclusive, else the MM_ID SHARED bit. Large, legacy mode:
 * v6.12's folio_likely_mapped_shared() heuristic — mapped more than once and
 * (PMD-mapped, or mapcount > nr, or page[0] mapped twice).
 */
export function folioMaybeMappedShared(folio: Folio): boolean {
  const st = stateOfFolio('folioMaybeMappedShared', folio);
  const mapcount = folioMapcount(folio);
  if (folio.order === 0) return mapcount > 1;
  if (mapcount <= 1) return false;
  if (!st.mmId) {
    if (folio.fa[folio.fb + F_ENTIRE_MAPCOUNT]! + 1 > 0 || mapcount > folio.nr) return true;
    return folio.mm.mapcount![folio.head]! > 0;
  }
  return (folio.fa[folio.fb + F_MM_ID1]! & MM_IDS_SHARED_MASK) !== 0;
}

/** folio_maybe_dma_pinned(): large `_pincount` > 0, small refcount ≥ 1024. One ATOMIC_READ. */
export function folioMaybeDmaPinned(folio: Folio): boolean {
  return maybeDmaPinned(stateOfFolio('folioMaybeDmaPinned', folio), folio);
}

/** folio_needs_cow_for_dma(vma, folio): MMF_HAS_PINNED ∧ folio_maybe_dma_pinned() (ATOMIC_READ only if the mm has pinned). */
export function folioNeedsCowForDma(vma: RmapVma, folio: Folio): boolean {
  const st = stateOfFolio('folioNeedsCowForDma', folio);
  checkVma('folioNeedsCowForDma', vma);
  return needsCowForDma(st, vma, folio);
}

/** folio_mm_id(folio, idx): the mm id in slot `idx` (0 = MM_ID_DUMMY, empty). Always 0 in legacy mode. */
export function folioMmId(folio: Folio, idx: 0 | 1): number {
  stateOfFolio('folioMmId', folio);
  if (idx !== 0 && idx !== 1) fail('folioMmId', 'EINVAL', `slot ${String(idx)} must be 0 or 1`);
  return mmIdOf(folio, idx);
}

/** `_mm_id_mapcount[idx]` + 1: the mappings slot `idx` accounts for. */
export function folioMmIdMapcount(folio: Folio, idx: 0 | 1): number {
  stateOfFolio('folioMmIdMapcount', folio);
  if (idx !== 0 && idx !== 1) fail('folioMmIdMapcount', 'EINVAL', `slot ${String(idx)} must be 0 or 1`);
  return folio.fa[folio.fb + (idx === 0 ? F_MM_ID_MAPCOUNT0 : F_MM_ID_MAPCOUNT1)]! + 1;
}

/**
 * The mm that owns every mapping of a large folio according to MM_ID (mm_id
 * mode): SHARED clear, mapped, and one slot's count equals the total — what
 * __wp_can_reuse_large_anon_folio relies on. null when unmapped, maybe
 * shared, order 0, or in legacy mode (no MM_ID).
 */
export function folioMmIdOwner(folio: Folio): number | null {
  const st = stateOfFolio('folioMmIdOwner', folio);
  if (!st.mmId || folio.order === 0) return null;
  const { fa, fb } = folio;
  const total = fa[fb + F_LARGE_MAPCOUNT]!;
  if (total < 0 || (fa[fb + F_MM_ID1]! & MM_IDS_SHARED_MASK) !== 0) return null;
  if (fa[fb + F_MM_ID_MAPCOUNT0] === total && mmIdOf(folio, 0) !== MM_ID_DUMMY) return mmIdOf(folio, 0);
  if (fa[fb + F_MM_ID_MAPCOUNT1] === total && mmIdOf(folio, 1) !== MM_ID_DUMMY) return mmIdOf(folio, 1);
  return null;
}

/** folio_is_device_private() (per the RmapConfig devicePrivatePfns range). */
export function folioIsDevicePrivate(folio: Folio): boolean {
  return stateOfFolio('folioIsDevicePrivate', folio).isDevicePrivate(folio);
}
