/*
 * Type-level tests, checked by `pnpm typecheck` (tsc): a FolioSubrange cannot
 * be forged from an object literal or a loose (folio, page, nr) triple.
 */
import { expectTypeOf } from 'vitest';
import { folioSubrange, type Folio, type FolioSubrange } from './index.js';

declare const folio: Folio;

// @ts-expect-error an object literal lacks the brand
export const literal: FolioSubrange = { folio, firstPage: 0, nr: 1, firstPfn: folio.head };

// @ts-expect-error spreading plain data does not add the brand either
export const widened: FolioSubrange = { ...({ folio, firstPage: 0, nr: 1, firstPfn: 0 } as const) };

export function takesSubrange(r: FolioSubrange): number {
  return r.nr;
}

// @ts-expect-error batched helpers take a FolioSubrange, not a triple
takesSubrange(folio, 0, 1);

expectTypeOf(folioSubrange).returns.toEqualTypeOf<FolioSubrange>();
expectTypeOf<FolioSubrange['nr']>().toEqualTypeOf<number>();
