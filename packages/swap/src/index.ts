// Swap entries (swp_entry_t) and their model layout.
export {
  swpEntry,
  swpType,
  swpOffset,
  folioSwapEntry,
  folioPageSwapEntry,
  MAX_SWAPFILES,
  MAX_SWAPFILES_SHIFT,
  SWP_TYPE_SHIFT,
  SWP_OFFSET_LIMIT,
  SWP_OFFSET_MASK,
  SWAP_ENTRY_INVALID,
} from './entry.js';
export type { SwpEntry } from './entry.js';

// Error numbers returned as expected outcomes.
export { ENOENT, EIO, EAGAIN, ENOMEM, EEXIST } from './errno.js';
export type { NegENOENT, NegEIO, NegEAGAIN, NegENOMEM, NegEEXIST } from './errno.js';

// The device.
export { SwapDevice } from './device.js';
export {
  SWAPFILE_CLUSTER,
  PMD_ORDER,
  SWAP_NR_ORDERS,
  SWAP_MAX_SLOTS,
  SWAP_HAS_CACHE,
  COUNT_CONTINUED,
  SWAP_MAP_BAD,
  SWAP_MAP_MAX,
  SWP_TB_COUNT_MAX,
  CLUSTER_FLAG,
} from './layout.js';
export type { SwapDeviceOptions, SwapCountModel, SwapFaults } from './device.js';

// Allocation, counts, the swap cache.
export { folioAllocSwap } from './alloc.js';
/** @internal Unchecked variants for the engine's reclaim path (preconditions in their doc comments). */
export { folioAllocSwapUnchecked } from './alloc.js';
export { folioDupSwap, folioPutSwap, swapDupEntryDirect, swapPutEntriesDirect } from './dup-put.js';
/** @internal Unchecked variants for the engine's hot paths (no FolioSubrange, no validation). */
export { folioDupSwapUnchecked, folioPutSwapUnchecked } from './dup-put.js';
export type { SwapGfp } from './dup-put.js';
export {
  swapCacheAddFolio,
  swapCacheDelFolio,
  __swapCacheDelFolio,
  swapCacheGetFolio,
  folioFreeSwap,
  swapCount,
  __swapCount,
  swapSlotInfo,
} from './swap-cache.js';
export type { SwapCacheAddResult, SwapSlotInfo } from './swap-cache.js';
/** @internal */
export { __swapCacheDelFolioUnchecked } from './swap-cache.js';

// I/O, data tokens, the zeromap.
export { swapWriteout, swapReadFolio, swapZeromapBatch, swapZeromapState } from './io.js';
export type { ZeromapBatch } from './io.js';
/** @internal */
export { swapWriteoutUnchecked } from './io.js';

// Slot accessors for other packages (@internal, unchecked), memory accounting, debug views.
export { swapCountAt, swapCacheFolioAt, swapCacheSetAt, swapZeroAt, swapDataAt, swapMemoryBytes } from './slots.js';
export type { SwapMemoryBytes, SwapSlotView } from './slots.js';

// Stats and invariants.
export { swapSnapshot, swapDump, countSwpoutFallback } from './stats.js';
export type { SwapSnapshot, SwapDump } from './stats.js';
export { checkSwapInvariants } from './check.js';
export type { SwapFacts } from './check.js';
