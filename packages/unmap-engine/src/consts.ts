/*
 * Kernel constants the engine shares between its files: VMA flags, TTU flags,
 * mm counter indexes, errno values. Values are the model's own where the
 * kernel's bit positions do not matter (VM_* are never exposed raw).
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const PMD_SIZE = 2 * 1024 * 1024;
export const PTRS_PER_PTE = 512;

// --- vm_flags (include/linux/mm.h), model bit positions ----------------------
export const VM_READ = 1 << 0;
export const VM_WRITE = 1 << 1;
export const VM_EXEC = 1 << 2;
/** Never set: the engine models private anonymous mappings only. */
export const VM_SHARED = 1 << 3;
export const VM_MAYREAD = 1 << 4;
export const VM_MAYWRITE = 1 << 5;
export const VM_LOCKED = 1 << 6;
/** VM_DONTCOPY (MADV_DONTFORK). */
export const VM_DONTCOPY = 1 << 7;
export const VM_WIPEONFORK = 1 << 8;
export const VM_DROPPABLE = 1 << 9;
/** Registered with userfaultfd in write-protect mode. */
export const VM_UFFD_WP = 1 << 10;
/** Model: an anonymous VMA (vma_is_anonymous: no vm_ops). Always set. */
export const VM_ANON = 1 << 11;
export const VM_NORESERVE = 1 << 12;
/**
 * VM_ACCOUNT: the private writable mapping is charged to the commit (mmap of a
 * writable private mapping without MAP_NORESERVE; mprotect making one
 * writable). Not in the dump (smaps "ac" is not compared); it matters for
 * merging, since is_mergeable_vma compares every flag.
 */
export const VM_ACCOUNT = 1 << 13;

/** Flags that must be equal for two VMAs to merge (VM_SOFTDIRTY is not modelled). */
export const VM_MERGE_MASK = 0xffff;

// --- enum ttu_flags (include/linux/rmap.h) ------------------------------------
export const TTU_SPLIT_HUGE_PMD = 1 << 2;
export const TTU_IGNORE_MLOCK = 1 << 3;
export const TTU_SYNC = 1 << 4;
export const TTU_HWPOISON = 1 << 5;
export const TTU_BATCH_FLUSH = 1 << 6;
export const TTU_RMAP_LOCKED = 1 << 7;

// --- mm counters (enum NR_MM_COUNTERS order) -----------------------------------
export const MM_FILEPAGES = 0;
export const MM_ANONPAGES = 1;
export const MM_SWAPENTS = 2;
export const MM_SHMEMPAGES = 3;
export const NR_MM_COUNTERS = 4;

// --- errno ---------------------------------------------------------------------
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EBUSY = 16;
export const EIO = 5;

/** GUP_PIN_COUNTING_BIAS. */
export const GUP_PIN_COUNTING_BIAS = 1024;

/** Base of top-down mmap placement (mm->mmap_base). */
export const MMAP_BASE = 0x7f00_0000_0000;
/** Lowest address mmap hands out without a hint (mmap_min_addr-ish). */
export const MMAP_MIN = 0x1000_0000;

/** Hex string of an address, as the dump prints it. */
export function hex(v: number): string {
  return '0x' + v.toString(16);
}
