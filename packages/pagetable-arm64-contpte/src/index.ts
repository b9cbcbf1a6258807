// Geometry and address math
export {
  PAGE_SHIFT,
  PAGE_SIZE,
  PTRS_PER_TABLE,
  PTRS_PER_PTE,
  PMD_SHIFT,
  PMD_SIZE,
  PUD_SHIFT,
  PUD_SIZE,
  PGDIR_SHIFT,
  PGDIR_SIZE,
  CONT_PTES,
  CONT_PTE_SIZE,
  VA_BITS,
  VA_LIMIT,
  PFN_LIMIT,
  pteIndex,
  pmdIndex,
  pudIndex,
  pgdIndex,
  alignDown,
  pmdAddrEnd,
  pteContAddrEnd,
} from './geometry.js';

// Present-PTE encoding
export {
  pteBits,
  PTE_VALID,
  PTE_TYPE_PAGE,
  PTE_ATTRINDX_SHIFT,
  PTE_ATTRINDX_MASK,
  PTE_USER,
  PTE_RDONLY,
  PTE_SHARED_SHIFT,
  PTE_SHARED,
  PTE_AF,
  PTE_NG,
  PTE_PRESENT_INVALID,
  PTE_LO_PFN_MASK,
  PTE_HI_PFN_MASK,
  PTE_HI_GP,
  PTE_HI_WRITE,
  PTE_HI_DBM,
  PTE_HI_CONT,
  PTE_HI_PXN,
  PTE_HI_UXN,
  PTE_HI_DIRTY,
  PTE_HI_SPECIAL,
  PTE_HI_DEVMAP,
  PTE_HI_UFFD_WP,
  ptePfn,
  pfnLo,
  pfnHi,
  pteNone,
  pteValid,
  ptePresentInvalid,
  ptePresent,
  pteProtnone,
  pteCont,
  pteValidCont,
  pteWrite,
  pteRdonly,
  pteHwDirty,
  pteSwDirty,
  pteDirty,
  pteYoung,
  pteSpecial,
  pteUffdWp,
  pteUser,
  pteUserExec,
  pteSame,
  pteMkclean,
  pteMkdirty,
  pteWrprotect,
  pteMkwrite,
  pteMkwriteNovma,
  pteMkold,
  pteMkyoung,
  pteMkuffdWp,
  pteClearUffdWp,
  pteMkcont,
  pteMknoncont,
  pteMkspecial,
  pteMkinvalid,
  pteMkvalid,
  pteSetPfn,
  pteToBigInt,
  pteFromBigInt,
  pteHex,
  makeUserPte,
} from './pte.js';
export type { PteBits, UserPteOptions } from './pte.js';

// Softleaf (non-present) encoding
export {
  PTE_SWP_EXCLUSIVE,
  PTE_SWP_UFFD_WP,
  SWP_TYPE_SHIFT,
  SWP_TYPE_MASK,
  SWP_OFFSET_BITS,
  MAX_SWAPFILES,
  SWP_HWPOISON,
  SWP_MIGRATION_READ,
  SWP_MIGRATION_READ_EXCLUSIVE,
  SWP_MIGRATION_WRITE,
  SWP_DEVICE_WRITE,
  SWP_DEVICE_READ,
  SWP_DEVICE_EXCLUSIVE,
  SWP_PTE_MARKER,
  SWP_MIG_YOUNG_BIT,
  SWP_MIG_DIRTY_BIT,
  PTE_MARKER_UFFD_WP,
  PTE_MARKER_POISONED,
  PTE_MARKER_GUARD,
  PTE_MARKER_MASK,
  softleafType,
  softleafOffset,
  softleafIsSwap,
  softleafIsMigration,
  softleafIsMigrationWrite,
  softleafIsDevicePrivate,
  softleafIsDeviceExclusive,
  softleafIsHwpoison,
  softleafIsMarker,
  softleafHasPfn,
  softleafPfn,
  softleafMigrationYoung,
  softleafMigrationDirty,
  pteMarkerBits,
  pteSwpExclusive,
  pteSwpUffdWp,
  pteSwpMkexclusive,
  pteSwpClearExclusive,
  pteSwpMkuffdWp,
  pteSwpClearUffdWp,
  mkSwapPte,
  mkMigrationPte,
  mkDevicePrivatePte,
  mkDeviceExclusivePte,
  mkHwpoisonPte,
  mkMarkerPte,
} from './softleaf.js';
export type { MigrationAccess } from './softleaf.js';
export { decodePte, encodePte } from './codec.js';
export type {
  PteValue,
  NonePte,
  PresentPte,
  SwapPte,
  MigrationPte,
  DevicePrivatePte,
  DeviceExclusivePte,
  HwpoisonPte,
  MarkerPte,
} from './codec.js';

// PMD level
export {
  PMD_TYPE_MASK,
  PMD_TYPE_TABLE,
  PMD_TYPE_SECT,
  HPAGE_PMD_NR,
  pmdNone,
  pmdPresent,
  pmdIsTable,
  pmdTransHuge,
  pmdLeaf,
  pmdPfn,
  isPmdMigrationEntry,
  isPmdDevicePrivateEntry,
  pmdMkhuge,
} from './pmd.js';
export { pmdpGet, peekPmd, setPmdAt, pmdpHugeGetAndClear } from './pmdops.js';
/** @internal Unchecked `pmdp_get` for the walkers' hot paths (the caller has a PMD table and a slot 0..511). */
export { doPmdpGet as internalPmdpGet } from './pmdops.js';

// Profiles, machine, page tables
export { archProfile, Machine } from './profile.js';
export type { ArchName, ArchProfile, ArchProfileOptions, GatherVariant, MachineOptions } from './profile.js';
export { PageTables, UpperTable, PmdTable, PteTable, fixedSizeFolios, pteLockId, pmdLockId, bytesPerPte, pageTableBytes } from './tables.js';
export type { FolioBounds, PageTablesOptions } from './tables.js';

// contpte internals (arch-private in the kernel; exported for tests and the engine's invariants)
export { contpteTryFold, contpteTryUnfold, contpteConvert, contpteTryUnfoldPartial } from './contpte-api.js';

// Public ptep API
export {
  ptepGet,
  ptepGetLockless,
  pteBatchHint,
  setPtes,
  setPteAt,
  __setPte,
  pteClear,
  ptepGetAndClear,
  ptepGetAndClearFull,
  getAndClearFullPtes,
  getAndClearPtes,
  clearFullPtes,
  clearPtes,
  peekPte,
  pokePte,
} from './ptep.js';
/** @internal Unchecked variants for the engine's hot paths (the caller has validated table, index and nr). */
export {
  doPtepGet as internalPtepGet,
  doPtepGetLockless as internalPtepGetLockless,
  doSetPteAt as internalSetPteAt,
  doSetSwapPtes as internalSetSwapPtes,
  doGetAndClearFullPtes as internalGetAndClearPtes,
} from './ptep.js';
export {
  doClearYoungDirtyPtes as internalClearYoungDirtyPtes,
  /** @internal `nr` one-entry `clear_young_dirty_ptes` calls in one (the `per-pte` madvise loops; same stores and events). */
  doClearYoungDirtyPtesEach as internalClearYoungDirtyPtesEach,
} from './ptep-flags.js';
export {
  wrprotectPtes,
  ptepSetWrprotect,
  clearYoungDirtyPtes,
  CYDP_CLEAR_YOUNG,
  CYDP_CLEAR_DIRTY,
  ptepTestAndClearYoung,
  ptepClearFlushYoung,
  clearFlushYoungPtes,
  ptepSetAccessFlags,
  pteAccessible,
  ptepClearFlush,
} from './ptep-flags.js';
export { hwAccess } from './hw.js';

// TLB
export {
  MAX_DVM_OPS,
  MAX_TLBI_RANGE_PAGES,
  X86_SINGLE_PAGE_FLUSH_CEILING,
  tlbiOpsForRange,
  dsbIsh,
  flushTlbPageNosync,
  flushTlbPage,
  __flushTlbRangeNosync,
  __flushTlbRange,
  flushTlbRange,
  flushTlbMm,
} from './tlb.js';
/** @internal Unchecked TLB flushes for the engine's hot paths (the caller has a PageTables and a non-empty 4K-aligned user range). */
export { doFlushTlbRange as internalFlushTlbRange, doFlushTlbRangeNosync as internalFlushTlbRangeNosync } from './tlb.js';
export { tlbMayHoldStale, tlbStaleVas, tlbStaleCount } from './tlbtrack.js';
export {
  TlbUnmapBatch,
  archTlbbatchShouldDefer,
  setTlbUbcFlushPending,
  tryToUnmapFlush,
  tryToUnmapFlushDirty,
  flushTlbBatchedPending,
  incTlbFlushPending,
  decTlbFlushPending,
} from './tlbbatch.js';
/** @internal Unchecked `set_tlb_ubc_flush_pending` (the caller has a batch of the mm's machine and a checked range). */
export { doSetTlbUbcFlushPending as internalSetTlbUbcFlushPending } from './tlbbatch.js';

// Invariants and the worked example
export { contpteBlockState, contpteBlockProblem, checkContpteInvariants } from './invariants.js';
export type { BlockState } from './invariants.js';
export { workedExample64K } from './example.js';
export type { WorkedExampleOptions, WorkedExampleResult, UnmapCounts } from './example.js';
