/*
 * Kernel error numbers the swap primitives return as expected outcomes
 * (include/uapi/asm-generic/errno-base.h). Functions return `0` or `-E…`,
 * as their kernel counterparts do; misuse of the API throws FoliolabError.
 */

/** No such entry: a slot the caller expected in use is free. */
export const ENOENT = 2;
/** I/O error: swap_read_folio() of a folio whose slots are partly in the zeromap. */
export const EIO = 5;
/** Try again: a large folio without CONFIG_THP_SWAP (folio_alloc_swap). */
export const EAGAIN = 11;
/** Out of memory: no free aligned run, or a failed count-extension allocation. */
export const ENOMEM = 12;
/** Already exists: a slot is already bound to a swap-cache folio. */
export const EEXIST = 17;

/** The negated values as literal types, for return types: `0 | NegENOMEM`. */
export type NegENOENT = -2;
export type NegEIO = -5;
export type NegEAGAIN = -11;
export type NegENOMEM = -12;
export type NegEEXIST = -17;

/** @internal −ENOENT etc. as values of the literal types. */
export const NEG_ENOENT: NegENOENT = -2;
/** @internal */ export const NEG_EIO: NegEIO = -5;
/** @internal */ export const NEG_EAGAIN: NegEAGAIN = -11;
/** @internal */ export const NEG_ENOMEM: NegENOMEM = -12;
/** @internal */ export const NEG_EEXIST: NegEEXIST = -17;
