/**
 * Head-only folio fields and where they live (struct folio, include/linux/mm_types.h ≈v6.15).
 *
 * The kernel overlays these fields on the tail pages' struct page (page[1..3]).
 * The model does the same with the per-page `aux` Int32Array: a folio of
 * order ≥ 4 keeps field F at `aux[head + F]` (tail slots 1..15). Folios of
 * order 0..3 have too few tails, so they get a 16-slot row in a spill pool;
 * slot 0 of a spill row holds the owner's head PFN. `aux[head]` itself is
 * always the folio `_refcount`. A Folio handle caches `(fa, fb)` so that every
 * field is `f.fa[f.fb + F_X]` whatever the order.
 *
 * Counters use the kernel's "minus one" storage where the kernel does.
 */

/** Slot 0 of a spill row: the owner's head PFN (a consistency check; not a kernel field). */
export const F_OWNER = 0;
/** `folio->_large_mapcount` (−1 = unmapped). */
export const F_LARGE_MAPCOUNT = 1;
/** `folio->_nr_pages_mapped` (PAGE_MAPCOUNT: pages with _mapcount ≥ 0, plus ENTIRELY_MAPPED). */
export const F_NR_PAGES_MAPPED = 2;
/** `folio->_entire_mapcount` (−1 = no PMD/PUD mapping). */
export const F_ENTIRE_MAPCOUNT = 3;
/** `folio->_pincount` (FOLL_PIN count of a large folio). */
export const F_PINCOUNT = 4;
/** `folio->_mm_id_mapcount[0]` (−1 = slot empty). */
export const F_MM_ID_MAPCOUNT0 = 5;
/** `folio->_mm_id_mapcount[1]` (−1 = slot empty). */
export const F_MM_ID_MAPCOUNT1 = 6;
/**
 * `folio->_mm_id[0]`: bits 0..30 the mm id (0 = MM_ID_DUMMY), bit 31 the
 * `_mm_ids` bit spinlock (FOLIO_MM_IDS_LOCK_BITNUM = 31) — the low half of
 * the kernel's `unsigned long _mm_ids` union, bit for bit.
 */
export const F_MM_ID0 = 7;
/**
 * `folio->_mm_id[1]`: bits 0..30 the mm id, bit 31 the `_mm_ids`
 * maybe-mapped-shared bit (kernel bit 63 of `_mm_ids`, the high half).
 */
export const F_MM_ID1 = 8;
/** `folio->_deferred_list.prev` as a head PFN (−1 = not on a list; order ≥ 2 only). */
export const F_DEFERRED_PREV = 9;
/** `folio->_deferred_list.next` as a head PFN (−1 = not on a list; order ≥ 2 only). */
export const F_DEFERRED_NEXT = 10;
/** `folio->swap.val`: the first swap slot (swp_entry_t); shares storage with `private` in the kernel. */
export const F_SWAP = 11;
/** `folio->mapping`: `id << 2 | PAGE_MAPPING_*` (0 = NULL); see anonMapping(). */
export const F_MAPPING = 12;
/** `folio->index`: the pgoff of the first page. */
export const F_INDEX = 13;
/** Reserved for later layers; 0 after allocation. */
export const F_SPARE0 = 14;
/** Reserved for later layers; 0 after allocation. */
export const F_SPARE1 = 15;

/** Slots per folio field block (a spill row; also the tail slots an order-4 folio has, plus aux[head]). */
export const NR_FOLIO_FIELD_SLOTS = 16;
/** Smallest order whose tail pages hold the fields themselves. */
export const FIELDS_IN_TAILS_MIN_ORDER = 4;

/** Names of the fields by offset, for dumps and error messages. */
export const FOLIO_FIELD_NAMES: readonly string[] = Object.freeze([
  'owner',
  '_large_mapcount',
  '_nr_pages_mapped',
  '_entire_mapcount',
  '_pincount',
  '_mm_id_mapcount[0]',
  '_mm_id_mapcount[1]',
  '_mm_id[0]',
  '_mm_id[1]',
  '_deferred_list.prev',
  '_deferred_list.next',
  'swap',
  'mapping',
  'index',
  'spare0',
  'spare1',
]);

/**
 * Reset values written by allocFolio (prep_compound_head(): `_large_mapcount`
 * −1, `_nr_pages_mapped` 0, `_mm_ids` 0, `_mm_id_mapcount[]` −1, `_pincount`
 * 0, `_entire_mapcount` −1, INIT_LIST_HEAD(`_deferred_list`); post_alloc_hook
 * leaves mapping NULL). Order-0 folios get the same values for uniformity,
 * though the kernel has no such fields for them.
 */
export const FOLIO_FIELD_INIT: readonly number[] = Object.freeze([
  0, -1, 0, -1, 0, -1, -1, 0, 0, -1, -1, 0, 0, 0, 0, 0,
]);

/** `_mm_ids` bit spinlock, as a mask on the F_MM_ID0 slot. */
export const MM_IDS_LOCK_MASK = 1 << 31;
/** `_mm_ids` maybe-mapped-shared bit, as a mask on the F_MM_ID1 slot. */
export const MM_IDS_SHARED_MASK = 1 << 31;
/** Mask of the mm id in either `_mm_id` slot (MM_ID_BITS = 31). */
export const MM_ID_MASK = 0x7fffffff;
/** The "no mm" id. */
export const MM_ID_DUMMY = 0;

/** `_nr_pages_mapped` bias while a PMD/PUD maps the folio (ENTIRELY_MAPPED). */
export const ENTIRELY_MAPPED = 0x800000;
/** `_nr_pages_mapped` mask of the count of PTE-mapped pages (FOLIO_PAGES_MAPPED). */
export const FOLIO_PAGES_MAPPED = ENTIRELY_MAPPED - 1;

/** `folio->mapping` low bits, as in the kernel's PAGE_MAPPING_* (anon = 1, KSM = anon|movable). */
export const PAGE_MAPPING_ANON = 1;
export const PAGE_MAPPING_MOVABLE = 2;
export const PAGE_MAPPING_KSM = PAGE_MAPPING_ANON | PAGE_MAPPING_MOVABLE;
export const PAGE_MAPPING_FLAGS = 3;
/** Largest anon_vma or mapping id that fits the model's mapping word. */
export const MAPPING_ID_MAX = (1 << 29) - 1;

/** Mapping word for an anon folio whose anon_vma is `anonVmaId` (≥ 1). */
export function anonMapping(anonVmaId: number): number {
  return (anonVmaId << 2) | PAGE_MAPPING_ANON;
}

/** Mapping word for a file folio of address_space `mappingId` (≥ 1). */
export function fileMapping(mappingId: number): number {
  return mappingId << 2;
}

/** The anon_vma or address_space id of a mapping word (0 for NULL). */
export function mappingId(mapping: number): number {
  return mapping >>> 2;
}

/** folio_test_anon() on a mapping word: the PAGE_MAPPING_ANON bit. */
export function mappingIsAnon(mapping: number): boolean {
  return (mapping & PAGE_MAPPING_ANON) !== 0;
}
