import { FoliolabError } from '@foliolab/ledger';
import { Folio } from './folio.js';

declare const folioSubrangeBrand: unique symbol;

/**
 * A checked run of consecutive pages of one folio: `nr ≥ 1` pages starting at
 * page index `firstPage`, all inside the folio. This is the `struct
 * folio_subrange {folio, first_page, nr_pages}` Dev Jain floated in review of
 * "[PATCH 8/9] mm/rmap: introduce folio_try_share_anon_rmap_ptes" (Apr 2026,
 * seed 000) so batched helpers cannot be handed nr = 0 (a 4-billion-iteration
 * loop in `ClearPagesAnonExclusive`) or a range past the folio end.
 *
 * Branded: only folioSubrange() makes one, so a plain object literal does
 * not type-check. Later packages take this instead of loose (folio, page, nr).
 */
export interface FolioSubrange {
  readonly folio: Folio;
  /** Index of the first page within the folio. */
  readonly firstPage: number;
  /** Pages in the range, ≥ 1. */
  readonly nr: number;
  /** PFN of the first page (folio.head + firstPage). */
  readonly firstPfn: number;
  readonly [folioSubrangeBrand]: true;
}

/**
 * Make a FolioSubrange, or throw FoliolabError('EINVAL' / 'ERANGE') when
 * `nr` is not a positive integer, `firstPage` is not an integer, or the range
 * does not lie inside the folio, or the folio was freed (models the checks of
 * __folio_rmap_sanity_checks(), v6.15, made mandatory).
 */
export function folioSubrange(folio: Folio, firstPage: number, nr: number): FolioSubrange {
  if (!(folio instanceof Folio)) {
    throw new FoliolabError('EINVAL', 'folioSubrange: folio is not a Folio handle', {});
  }
  folio.mm.assertLive('folioSubrange', folio);
  // The common valid case with int32 tests; anything else falls through to the checks that name the error.
  if ((firstPage | 0) === firstPage && (nr | 0) === nr && nr > 0 && firstPage >= 0 && firstPage + nr <= folio.nr) {
    return Object.freeze({ folio, firstPage, nr, firstPfn: folio.head + firstPage }) as FolioSubrange;
  }
  if (!Number.isInteger(firstPage) || !Number.isInteger(nr)) {
    throw new FoliolabError('EINVAL', `folioSubrange: firstPage ${firstPage} and nr ${nr} must be integers`, {
      head: folio.head,
      firstPage,
      nr,
    });
  }
  if (nr <= 0) {
    throw new FoliolabError('EINVAL', `folioSubrange: nr ${nr} must be at least 1`, { head: folio.head, firstPage, nr });
  }
  if (firstPage < 0 || firstPage + nr > folio.nr) {
    throw new FoliolabError(
      'ERANGE',
      `folioSubrange: pages ${firstPage}..${firstPage + nr - 1} are outside folio ${folio.head} of ${folio.nr} pages`,
      { head: folio.head, folioNr: folio.nr, firstPage, nr },
    );
  }
  return Object.freeze({ folio, firstPage, nr, firstPfn: folio.head + firstPage }) as FolioSubrange;
}

/** The whole folio as a FolioSubrange. */
export function folioSubrangeAll(folio: Folio): FolioSubrange {
  return folioSubrange(folio, 0, folio.nr);
}
