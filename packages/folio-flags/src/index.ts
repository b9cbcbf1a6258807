// Page-flag layout, aliases, flag descriptors.
export {
  PG,
  NR_PAGEFLAGS,
  PG_ALIASES,
  pgBit,
  FOLIO_ORDER_MASK,
  MODEL_ALLOCATED,
  MODEL_BUDDY,
  MODEL_BUDDY_ORDER_SHIFT,
  MODEL_BUDDY_ORDER_MASK,
  MODEL_BITS,
  FLAG,
  FLAGS,
  PF_ANY_MASK,
  PF_SECOND_MASK,
  flagByName,
  describeFlagWord,
} from './pageflags.js';
export type { FlagDesc, FlagName, FlagPlacement } from './pageflags.js';

// Head-only folio fields (overlay / spill-row offsets).
export {
  F_OWNER,
  F_LARGE_MAPCOUNT,
  F_NR_PAGES_MAPPED,
  F_ENTIRE_MAPCOUNT,
  F_PINCOUNT,
  F_MM_ID_MAPCOUNT0,
  F_MM_ID_MAPCOUNT1,
  F_MM_ID0,
  F_MM_ID1,
  F_DEFERRED_PREV,
  F_DEFERRED_NEXT,
  F_SWAP,
  F_MAPPING,
  F_INDEX,
  F_SPARE0,
  F_SPARE1,
  NR_FOLIO_FIELD_SLOTS,
  FIELDS_IN_TAILS_MIN_ORDER,
  FOLIO_FIELD_NAMES,
  FOLIO_FIELD_INIT,
  MM_IDS_LOCK_MASK,
  MM_IDS_SHARED_MASK,
  MM_ID_MASK,
  MM_ID_DUMMY,
  ENTIRELY_MAPPED,
  FOLIO_PAGES_MAPPED,
  PAGE_MAPPING_ANON,
  PAGE_MAPPING_MOVABLE,
  PAGE_MAPPING_KSM,
  PAGE_MAPPING_FLAGS,
  MAPPING_ID_MAX,
  anonMapping,
  fileMapping,
  mappingId,
  mappingIsAnon,
} from './fields.js';

// The memmap, its allocator and folio handles.
export { Memmap, MEMMAP_MAX_PAGES, PAGE_FLAGS_CHECK_AT_FREE, PAGE_MAPCOUNT_MAX } from './memmap.js';
export type { MemmapOptions, MemmapBytes, FolioLookup } from './memmap.js';
export { MAX_FOLIO_ORDER, MAX_ORDER_NR_PAGES } from './buddy.js';
export type { Folio } from './folio.js';
export { pageOf, folioPageIdx, folioTestAnon } from './folio.js';
export { checkMemmap } from './memmap-check.js';
export { folioRefCount, folioRefAdd, folioPutRefs, folioTryGet } from './refcount.js';

// Generic flag operations.
export {
  folioTestFlag,
  folioSetFlag,
  folioClearFlag,
  folioTestSetFlag,
  folioTestClearFlag,
  __folioSetFlag,
  __folioClearFlag,
  plainFlagLoad,
  plainFlagStore,
  pageTestFlag,
  pageSetFlag,
  pageClearFlag,
  pageTestSetFlag,
  pageTestClearFlag,
  __pageSetFlag,
  __pageClearFlag,
} from './flags.js';
/** @internal Batched per-page atomic flag ops for callers that validated the range (same events). */
export { pagesAtomicSet, pagesAtomicClear } from './flags.js';
/** @internal Flag tests for callers that already checked the folio live (same events, no checks). */
export { folioTestFlagUnchecked } from './flags.js';
export { folioTestSwapcacheUnchecked } from './flag-wrappers.js';

// Kernel-named wrappers.
export {
  folioTestLocked,
  folioTrylock,
  folioUnlock,
  __folioSetLocked,
  __folioClearLocked,
  folioTestWriteback,
  folioTestSetWriteback,
  folioTestClearWriteback,
  folioTestReferenced,
  folioSetReferenced,
  folioClearReferenced,
  folioTestClearReferenced,
  __folioSetReferenced,
  folioTestUptodate,
  folioMarkUptodate,
  __folioMarkUptodate,
  folioClearUptodate,
  folioTestDirty,
  folioSetDirty,
  folioClearDirty,
  folioTestSetDirty,
  folioTestClearDirty,
  folioTestLru,
  folioSetLru,
  folioClearLru,
  folioTestClearLru,
  folioTestActive,
  folioSetActive,
  folioClearActive,
  folioTestClearActive,
  folioTestUnevictable,
  folioSetUnevictable,
  folioClearUnevictable,
  folioTestClearUnevictable,
  folioTestReclaim,
  folioSetReclaim,
  folioClearReclaim,
  folioTestClearReclaim,
  folioTestSwapbacked,
  folioSetSwapbacked,
  folioClearSwapbacked,
  __folioSetSwapbacked,
  __folioClearSwapbacked,
  folioTestSwapcache,
  folioSetSwapcache,
  folioClearSwapcache,
  folioTestMlocked,
  folioSetMlocked,
  folioClearMlocked,
  folioTestSetMlocked,
  folioTestClearMlocked,
  __folioClearMlocked,
  pageAnonExclusive,
  setPageAnonExclusive,
  clearPageAnonExclusive,
  __clearPageAnonExclusive,
  folioClearPagesAnonExclusive,
  folioSetPagesAnonExclusive,
  folioCountPagesAnonExclusive,
  pageHWPoison,
  setPageHWPoison,
  clearPageHWPoison,
  testSetPageHWPoison,
  testClearPageHWPoison,
  folioTestHwpoison,
  folioTestHasHwpoisoned,
  folioSetHasHwpoisoned,
  folioClearHasHwpoisoned,
  folioTestSetHasHwpoisoned,
  folioTestClearHasHwpoisoned,
  folioTestPartiallyMapped,
  folioSetPartiallyMapped,
  folioClearPartiallyMapped,
  __folioSetPartiallyMapped,
  __folioClearPartiallyMapped,
  folioTestLargeRmappable,
  folioSetLargeRmappable,
  folioClearLargeRmappable,
} from './flag-wrappers.js';

// FolioSubrange.
export { folioSubrange, folioSubrangeAll } from './subrange.js';
export type { FolioSubrange } from './subrange.js';

// The flag-race explorer.
export { exploreFlagRace, RACE_MAX_INTERLEAVINGS } from './race.js';
export type { RaceOp, RaceOpKind, RaceReport, RaceRun, RaceOutcome, LostUpdate } from './race.js';
export { RACE_PRESETS, racePreset, runRacePreset } from './race-presets.js';
export type { RacePreset, RacePresetName } from './race-presets.js';
