/*
 * Type-level tests, checked by `pnpm typecheck`: the batched rmap helpers
 * take a FolioSubrange (seed 000), never a folio or a loose (folio, page, nr).
 */
import type { Folio, FolioSubrange } from '@foliolab/folio-flags';
import { expectTypeOf } from 'vitest';
import { folioRemoveRmapPtes, folioTryDupAnonRmapPtes, folioTryShareAnonRmapPtes, type RmapTryResult, type RmapVma } from './index.js';

declare const folio: Folio;
declare const vma: RmapVma;

export function misuse(): void {
  // @ts-expect-error a folio is not a FolioSubrange
  folioRemoveRmapPtes(folio, vma);
  // @ts-expect-error nor is a loose (folio, page, nr) triple
  folioTryShareAnonRmapPtes(folio, 0, 1);
  // @ts-expect-error an object literal lacks the brand
  folioTryShareAnonRmapPtes({ folio, firstPage: 0, nr: 1, firstPfn: folio.head });
}

expectTypeOf(folioTryDupAnonRmapPtes).parameter(0).toEqualTypeOf<FolioSubrange>();
expectTypeOf(folioTryShareAnonRmapPtes).returns.toEqualTypeOf<RmapTryResult>();
expectTypeOf<RmapTryResult>().toEqualTypeOf<0 | -16>();
