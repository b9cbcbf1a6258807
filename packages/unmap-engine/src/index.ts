// The engine and its configuration.
export { Engine } from './engine.js';
export type { MmapOptions, ReclaimOptions, PinOptions } from './engine.js';
export { resolveConfig, POLICIES, ARCH_NAMES, MTHP_SIZES, INJECT_NAMES, MTHP_ORDER, orderSize } from './config.js';
export type {
  EngineConfig,
  ResolvedConfig,
  Policy,
  ArchName,
  ArchOptions,
  MthpSetting,
  MthpSize,
  InjectName,
  PvmwSkip,
  EngineLimits,
} from './config.js';

// Results and observations.
export type { ReadResult, LostPage } from './data.js';
export type { ReclaimResult } from './reclaim.js';
export type { StateV1, ConfigDump, PteDump, VmaDump, ProcessDump, FolioDump, SwapSlotDump } from './dump.js';
export type { MemoryBytes } from './engine.js';
export type { InvariantReport, Violation } from './invariants.js';
export type { Advice } from './madvise.js';
export type { UffdOp, UffdRegisterOptions } from './uffd.js';
export type { PoisonOptions, PoisonResult } from './poison.js';
export type { Prot } from './mmap.js';

// Kernel constants callers may want (TTU flags for white-box tests).
export {
  TTU_SPLIT_HUGE_PMD,
  TTU_IGNORE_MLOCK,
  TTU_SYNC,
  TTU_HWPOISON,
  TTU_BATCH_FLUSH,
  TTU_RMAP_LOCKED,
} from './consts.js';

// Policy equivalence.
export { ALLOWED_DIFFERENCES, BATCHING_ORDER, diffStates, isAllowedDifference, pathMatches } from './equivalence.js';
export type { AllowedDifference, DifferingValues, StateDifference } from './equivalence.js';
