import { SWP_OFFSET_LIMIT } from './entry.js';

/*
 * Constants of the swap model: cluster geometry, count-byte bits, cluster
 * flags and list ids, stat indexes.
 */

/** SWAPFILE_CLUSTER with CONFIG_THP_SWAP (HPAGE_PMD_NR); 256 without. */
export const SWAPFILE_CLUSTER = 512;
/** PMD_ORDER on arm64 with 4K pages. */
export const PMD_ORDER = 9;
/** SWAP_NR_ORDERS with CONFIG_THP_SWAP (PMD_ORDER + 1); 1 without. */
export const SWAP_NR_ORDERS = PMD_ORDER + 1;
/** Largest device the model accepts (SWP_OFFSET_LIMIT slots). */
export const SWAP_MAX_SLOTS = SWP_OFFSET_LIMIT;

/** swap_map / count-byte bits (include/linux/swap.h ≤ v6.19): the cache bit of the legacy model. */
export const SWAP_HAS_CACHE = 0x40;
/** COUNT_CONTINUED: in this model, "the real count is in the cluster's extension table" (both overflow models). */
export const COUNT_CONTINUED = 0x80;
/** SWAP_MAP_BAD: the header slot (offset 0). */
export const SWAP_MAP_BAD = 0x3f;
/** SWAP_MAP_MAX: the largest inline count of the swap_map byte (≤ v7.0). */
export const SWAP_MAP_MAX = 0x3e;
/** SWP_TB_COUNT_MAX of phase III with 4 count bits: the saturated value meaning "see extend_table". */
export const SWP_TB_COUNT_MAX = 15;
/** Inline count bits of the model's count byte. */
export const SWAP_COUNT_MASK = 0x3f;

/** Cluster flags (enum swap_cluster_flags, v7.0; DISCARD omitted). USABLE = FRAG. */
export const CLUSTER_FLAG = Object.freeze({ NONE: 0, FREE: 1, NONFULL: 2, FRAG: 3, FULL: 4 });

/** @internal List ids: free, nonfull[order], frag[order], full; −1 = off list (isolated). */
export const LIST_NONE = -1;
/** @internal */
export const LIST_FREE = 0;
/** @internal nonfull_clusters[order] is LIST_NONFULL + order. */
export const LIST_NONFULL = 1;
/** @internal frag_clusters[order] is LIST_FRAG + order. */
export const LIST_FRAG = 1 + SWAP_NR_ORDERS;
/** @internal */
export const LIST_FULL = 1 + 2 * SWAP_NR_ORDERS;
/** @internal */
export const NR_LISTS = LIST_FULL + 1;

/** @internal Indexes into SwapDevice.stat. */
export const ST = Object.freeze({
  NR_SWAPCACHE: 0,
  THP_SWPOUT: 1,
  THP_SWPOUT_FALLBACK: 2,
  PSWPOUT: 3,
  PSWPIN: 4,
  SWPOUT_ZERO: 5,
  SWPIN_ZERO: 6,
  EXT_ALLOCS: 7,
  EXT_ALLOC_FAILURES: 8,
  EXT_TABLES: 9,
});
/** @internal */
export const NR_ST = 10;

