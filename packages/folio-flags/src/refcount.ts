import { EV, FoliolabError } from '@foliolab/ledger';
import type { Folio } from './folio.js';

/*
 * The folio `_refcount` lives in `aux[head]` (page[0]'s slot). These helpers
 * model include/linux/page_ref.h / mm.h (v6.15). Each RMW is one ATOMIC_REF
 * (spec §2.1: "folio_put_refs(f, n) is one atomic sub-and-test"). Reaching 0
 * does not free the folio: the caller decides (Memmap.freeFolio), so that
 * layers above can run their free path (deferred-split unqueue, stats) first.
 */

/** folio_ref_count(): a plain read of `_refcount` (not charged). */
export function folioRefCount(folio: Folio): number {
  return folio.mm.aux[folio.head]!;
}

/** folio_ref_add(folio, nr) (folio_get when nr = 1): one ATOMIC_REF. */
export function folioRefAdd(folio: Folio, nr: number): void {
  const mm = folio.mm;
  mm.assertLive('folioRefAdd', folio);
  const ref = mm.aux[folio.head]!;
  if (!Number.isInteger(nr) || nr < 1 || ref <= 0) {
    throw new FoliolabError('EINVAL', `folioRefAdd: cannot add ${nr} to refcount ${ref} of folio ${folio.head}`, {
      head: folio.head,
      refcount: ref,
      nr,
    });
  }
  mm.ledger.charge(EV.ATOMIC_REF);
  mm.aux[folio.head] = ref + nr;
}

/**
 * folio_put_refs(folio, nr) (folio_put when nr = 1): one atomic sub-and-test.
 * Returns true when the count reached 0. Underflow is a FoliolabError.
 */
export function folioPutRefs(folio: Folio, nr: number): boolean {
  const mm = folio.mm;
  mm.assertLive('folioPutRefs', folio);
  const ref = mm.aux[folio.head]!;
  // (nr | 0) === nr: an int32 integer, enough since 1 ≤ nr ≤ ref; no Number.isInteger call per put.
  if ((nr | 0) !== nr || nr < 1 || nr > ref) {
    throw new FoliolabError('EINVAL', `folioPutRefs: cannot drop ${nr} from refcount ${ref} of folio ${folio.head}`, {
      head: folio.head,
      refcount: ref,
      nr,
    });
  }
  mm.ledger.charge(EV.ATOMIC_REF);
  mm.aux[folio.head] = ref - nr;
  return ref === nr;
}

/** folio_try_get(): increment unless 0 (a racing free); one ATOMIC_REF either way. */
export function folioTryGet(folio: Folio): boolean {
  const mm = folio.mm;
  mm.assertLive('folioTryGet', folio);
  mm.ledger.charge(EV.ATOMIC_REF);
  const ref = mm.aux[folio.head]!;
  if (ref === 0) return false;
  mm.aux[folio.head] = ref + 1;
  return true;
}
