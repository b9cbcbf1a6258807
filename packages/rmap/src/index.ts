// Shared vocabulary: mm / VMA shapes, flags, errno, sizes.
export {
  PAGE_SHIFT,
  PAGE_SIZE,
  HPAGE_PMD_ORDER,
  HPAGE_PMD_NR,
  GUP_PIN_COUNTING_BIAS,
  RMAP_NONE,
  RMAP_EXCLUSIVE,
  EBUSY,
  EFAULT,
  vmaPages,
  linearPageIndex,
} from './types.js';
export type { RmapMm, RmapVma, RmapFlags, RmapTryResult } from './types.js';

// State, configuration, stats.
export { RmapState, createRmap, rmapOf } from './state.js';
export type { RmapConfig, MapcountMode } from './state.js';
export { RmapStats, NR_STAT_ORDERS } from './stats.js';
export type { RmapStatsSnapshot } from './stats.js';

// Adding, removing, duplicating and sharing mappings.
export {
  folioAddNewAnonRmap,
  folioAddAnonRmapPtes,
  folioAddAnonRmapPmd,
  folioAddFileRmapPtes,
  folioAddFileRmapPmd,
} from './add.js';
export { folioRemoveRmapPtes, folioRemoveRmapPmd } from './remove.js';
/** @internal Unchecked variants for the engine's hot paths (no FolioSubrange, no validation). */
export { folioRemoveRmapPtesUnchecked } from './remove.js';
export { folioTryShareAnonRmapPtesUnchecked, folioTryShareAnonRmapPteUnchecked } from './dup-share.js';
export { rmapFreeFolioUnchecked } from './deferred-split.js';
export {
  folioTryDupAnonRmapPtes,
  folioTryDupAnonRmapPmd,
  folioTryShareAnonRmapPtes,
  folioTryShareAnonRmapPte,
  folioTryShareAnonRmapPmd,
} from './dup-share.js';

// References and GUP pins.
export { tryGrabFolio, unpinFolio, folioPinCount } from './pins.js';
export type { GupKind } from './pins.js';
export { folioRefCount, folioRefAdd, folioPutRefs, folioTryGet } from '@foliolab/folio-flags';

// Queries.
export {
  folioMapcount,
  folioMapped,
  folioLargeMapcount,
  folioEntireMapcount,
  pageMapcount,
  folioAveragePageMapcount,
  folioMaybeMappedShared,
  folioMaybeDmaPinned,
  folioNeedsCowForDma,
  folioMmId,
  folioMmIdMapcount,
  folioMmIdOwner,
  folioIsDevicePrivate,
} from './queries.js';

// Deferred split.
export { DeferredSplitQueue, DEFERRED_NONE, folioOnDeferredList, deferredQueueIndexOf } from './split-queue.js';
export {
  DEFERRED_SPLIT_BATCH,
  deferredSplitFolio,
  folioUnqueueDeferredSplit,
  folioSplitUnqueueDeferred,
  deferredSplitCount,
  deferredSplitScan,
  folioPrepLargeRmappable,
  rmapFreeFolio,
} from './deferred-split.js';
export type { DeferredSplitFn, DeferredSplitScanOptions, DeferredSplitScanResult } from './deferred-split.js';

// anon_vma and the rmap walk.
export {
  AnonVma,
  anonVmaAlloc,
  anonVmaPrepare,
  anonVmaChainLink,
  anonVmaChainUnlink,
  anonVmaClone,
  unlinkAnonVmas,
  vmaAnonVmas,
  vmaAddress,
  folioAnonVma,
  rmapWalkAnon,
} from './anon-vma.js';
export type { RmapWalkControl } from './anon-vma.js';

// Invariants.
export { checkRmapInvariants } from './invariants.js';
export type { RmapViolation, RmapFacts, FolioCensus } from './invariants.js';
