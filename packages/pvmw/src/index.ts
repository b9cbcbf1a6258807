// Flags, interfaces
export { PVMW_SYNC, PVMW_MIGRATION, PVMW_BATCH_PRESENT, PVMW_PGTABLE_CROSSED, PVMW_INPUT_FLAGS, NO_LOCK, EFAULT } from './types.js';
export type { PvmwVma, PvmwTarget, PvmwRaceSite } from './types.js';

// The walk
export { PageVmaMappedWalk, folioVmaWalk } from './state.js';
export { vmaAddress, vmaAddressEndOf } from './vma.js';
export { pageVmaMappedWalk, pageVmaMappedWalkDone, pageVmaMappedWalkRestart } from './walk.js';
export { pageVmaMappedWalkJump } from './jump.js';

// try_to_unmap_one's batch scan
export {
  folioPteBatchFlags,
  folioPteBatchFlagsUnchecked,
  FPB_RESPECT_DIRTY,
  FPB_RESPECT_SOFT_DIRTY,
  FPB_RESPECT_WRITE,
  FPB_MERGE_WRITE,
  FPB_MERGE_YOUNG_DIRTY,
} from './batch.js';

// Skip policies after a partial batch (seed 003)
export { walkAndUnmap, SKIP_POLICIES, HANDLER_RESTARTED } from './driver.js';
export type { SkipPolicy, PvmwHitHandler, WalkAndUnmapOptions, WalkAndUnmapResult } from './driver.js';
export { skipPolicyCosts, pickCounts } from './costs.js';
export type { BatchShape, SkipPolicyCostOptions, PolicyCost } from './costs.js';
