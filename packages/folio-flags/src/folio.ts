import { FoliolabError } from '@foliolab/ledger';
import type { Memmap } from './memmap.js';
import { F_MAPPING, mappingIsAnon } from './fields.js';

/**
 * A folio handle: `(memmap, head PFN, order)` plus the cached location of the
 * head-only fields (`fa[fb + F_X]`, see fields.ts). One small object per folio
 * lookup, never one per page. A handle is only meaningful while the folio is
 * allocated; using it after freeFolio() is a use-after-free, which the public
 * operations reject.
 *
 * Handles are created by the Memmap (allocFolio, folioOf); the package exports
 * only the type.
 */
export class Folio {
  /** Pages in the folio (folio_nr_pages). */
  readonly nr: number;

  constructor(
    readonly mm: Memmap,
    /** PFN of page[0]. */
    readonly head: number,
    /** folio_order(). */
    readonly order: number,
    /** The typed array holding this folio's fields: `mm.aux` (order ≥ 4) or a spill chunk. */
    readonly fa: Int32Array,
    /** Index of field slot 0 in `fa`. */
    readonly fb: number,
  ) {
    this.nr = 1 << order;
  }
}

/** PFN of page `i` of `folio` (models folio_page(), v6.15). */
export function pageOf(folio: Folio, i: number): number {
  if (!Number.isInteger(i) || i < 0 || i >= folio.nr) {
    throw new FoliolabError('ERANGE', `pageOf: page index ${i} is outside folio ${folio.head} of ${folio.nr} pages`, {
      head: folio.head,
      nr: folio.nr,
      index: i,
    });
  }
  return folio.head + i;
}

/** Index of `pfn` within `folio` (models folio_page_idx(), v6.15); throws if it is not in the folio. */
export function folioPageIdx(folio: Folio, pfn: number): number {
  const i = pfn - folio.head;
  if (!Number.isInteger(pfn) || i < 0 || i >= folio.nr) {
    throw new FoliolabError('ERANGE', `folioPageIdx: pfn ${pfn} is not in folio ${folio.head} of ${folio.nr} pages`, {
      head: folio.head,
      nr: folio.nr,
      pfn,
    });
  }
  return i;
}


/** folio_test_anon(): the PAGE_MAPPING_ANON bit of `mapping` (a field read; not charged). */
export function folioTestAnon(folio: Folio): boolean {
  return mappingIsAnon(folio.fa[folio.fb + F_MAPPING]!);
}
