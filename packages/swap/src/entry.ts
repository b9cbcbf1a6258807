import { FoliolabError } from '@foliolab/ledger';
import { F_SWAP, type Folio } from '@foliolab/folio-flags';

declare const swpEntryBrand: unique symbol;

/**
 * A `swp_entry_t.val`: swap type in the top bits, slot offset below. Branded so
 * a plain number (a PFN, a count) cannot be passed where an entry is expected;
 * make one with swpEntry().
 *
 * Model limit: the kernel puts the type at bit 58 (BITS_PER_XA_VALUE −
 * MAX_SWAPFILES_SHIFT) of a 64-bit word and the arm64 swap PTE carries a
 * 50-bit offset (pagetable-contpte-pvmw.md §3, bits 12–61). Here the type
 * sits at bit SWP_TYPE_SHIFT = 26, so an entry is a non-negative 31-bit
 * integer that fits `folio->swap` in the memmap's Int32 field slot (F_SWAP)
 * and stays a plain JS number: offsets are < 2^26 (64 Mi slots, 256 GiB of
 * swap), types are 0–31 with the arm64 meaning of the 5-bit type field
 * (0–23 real swap devices, MAX_SWAPFILES = 24).
 */
export type SwpEntry = number & { readonly [swpEntryBrand]: true };

/** Bits of the swap type (MAX_SWAPFILES_SHIFT). */
export const MAX_SWAPFILES_SHIFT = 5;
/** Real swap types are 0..MAX_SWAPFILES−1; 24..31 are the softleaf types (hwpoison, migration, device, marker). */
export const MAX_SWAPFILES = 24;
/** Model position of the type field in an entry (the kernel's is 58; see SwpEntry). */
export const SWP_TYPE_SHIFT = 26;
/** Largest offset the model encodes, plus one. */
export const SWP_OFFSET_LIMIT = 1 << SWP_TYPE_SHIFT;
/** Mask of the offset field. */
export const SWP_OFFSET_MASK = SWP_OFFSET_LIMIT - 1;
/** `SWAP_ENTRY_INVALID`: offset 0 is the swap header, never allocated, so entry 0 means "no slot". */
export const SWAP_ENTRY_INVALID = 0;

/** swp_entry(type, offset) (include/linux/swapops.h, v7.0); throws ERANGE outside the model's fields. */
export function swpEntry(type: number, offset: number): SwpEntry {
  if (!Number.isInteger(type) || type < 0 || type >= 1 << MAX_SWAPFILES_SHIFT) {
    throw new FoliolabError('ERANGE', `swpEntry: type ${type} is outside 0..${(1 << MAX_SWAPFILES_SHIFT) - 1}`, { type, offset });
  }
  if (!Number.isInteger(offset) || offset < 0 || offset > SWP_OFFSET_MASK) {
    throw new FoliolabError('ERANGE', `swpEntry: offset ${offset} is outside 0..${SWP_OFFSET_MASK} (model limit 2^26)`, {
      type,
      offset,
    });
  }
  return ((type << SWP_TYPE_SHIFT) | offset) as SwpEntry;
}

/** swp_type(entry). */
export function swpType(entry: SwpEntry): number {
  return entry >>> SWP_TYPE_SHIFT;
}

/** swp_offset(entry). */
export function swpOffset(entry: SwpEntry): number {
  return entry & SWP_OFFSET_MASK;
}

/** `folio->swap` (a field read, not charged); SWAP_ENTRY_INVALID when the folio has no swap slots. */
export function folioSwapEntry(folio: Folio): SwpEntry {
  return folio.fa[folio.fb + F_SWAP]! as SwpEntry;
}

/**
 * page_swap_entry(folio_page(folio, i)) / folio_page_swap_entry (v7.0):
 * `folio->swap + i`. Throws when the folio has no swap slots or `i` is not
 * a page of it.
 */
export function folioPageSwapEntry(folio: Folio, i: number): SwpEntry {
  const base = folioSwapEntry(folio);
  if (base === SWAP_ENTRY_INVALID) {
    throw new FoliolabError('EINVAL', `folioPageSwapEntry: folio ${folio.head} has no swap entry`, { head: folio.head });
  }
  if (!Number.isInteger(i) || i < 0 || i >= folio.nr) {
    throw new FoliolabError('ERANGE', `folioPageSwapEntry: page ${i} is outside folio ${folio.head} of ${folio.nr} pages`, {
      head: folio.head,
      index: i,
    });
  }
  return (base + i) as SwpEntry;
}
