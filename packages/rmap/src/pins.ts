import { F_PINCOUNT, folioPutRefs, folioRefAdd, type Folio } from '@foliolab/folio-flags';
import { EV } from '@foliolab/ledger';
import { GUP_PIN_COUNTING_BIAS, type RmapMm } from './types.js';
import { fail, stateOfFolio } from './validate.js';

/*
 * GUP references (mm/gup.c, v6.12–6.15), spec unmap-engine §1 "Refcount":
 * FOLL_GET takes `refs` plain references; FOLL_PIN on a large folio takes
 * `refs` references and `refs` on `_pincount`, on a small folio `refs` ×
 * GUP_PIN_COUNTING_BIAS references. Costs: one ATOMIC_REF per refcount RMW;
 * the `_pincount` atomic_add/sub is charged as ATOMIC_REF as well (it is a
 * reference count; the ledger has no dedicated pincount event); the
 * NR_FOLL_PIN_* node stats one PCPU_COUNTER each.
 */

/** FOLL_GET or FOLL_PIN. */
export type GupKind = 'get' | 'pin';

function checkRefs(fn: string, refs: number): void {
  if (!Number.isInteger(refs) || refs < 1) fail(fn, 'EINVAL', `refs ${refs} must be a positive integer`, { refs });
}

/**
 * try_grab_folio(folio, refs, flags) (mm/gup.c): take `refs` GUP references
 * of `kind`. Pinning also sets MMF_HAS_PINNED on `mm` (which the kernel does
 * in the GUP entry points before grabbing). A folio with refcount ≤ 0 is
 * the kernel's WARN + −ENOMEM: a FoliolabError here. The zero folio and
 * P2PDMA are not modelled.
 */
export function tryGrabFolio(folio: Folio, refs: number, kind: GupKind, mm: RmapMm | null = null): void {
  const fn = 'tryGrabFolio';
  const st = stateOfFolio(fn, folio);
  checkRefs(fn, refs);
  if (kind !== 'get' && kind !== 'pin') fail(fn, 'EINVAL', `kind ${String(kind)} must be 'get' or 'pin'`);
  const ref = folio.mm.aux[folio.head]!;
  if (ref <= 0) fail(fn, 'EINVAL', `folio ${folio.head} has refcount ${ref}: cannot grab a freed folio`, { head: folio.head });
  if (kind === 'get') {
    folioRefAdd(folio, refs);
    return;
  }
  if (mm !== null) mm.hasPinned = true;
  if (folio.order > 0) {
    folioRefAdd(folio, refs);
    st.ledger.charge(EV.ATOMIC_REF);
    folio.fa[folio.fb + F_PINCOUNT] = folio.fa[folio.fb + F_PINCOUNT]! + refs;
  } else {
    folioRefAdd(folio, refs * GUP_PIN_COUNTING_BIAS);
  }
  st.ledger.charge(EV.PCPU_COUNTER);
  st.stats.NR_FOLL_PIN_ACQUIRED += refs;
}

/**
 * gup_put_folio(folio, refs, FOLL_PIN) — unpin_user_page(s) (mm/gup.c):
 * drop `refs` pins. Returns true when the refcount reached 0 (the caller
 * frees). Unpinning more pins than the folio holds is a FoliolabError
 * (large: `_pincount` < refs; small: refcount < refs × 1024).
 */
export function unpinFolio(folio: Folio, refs = 1): boolean {
  const fn = 'unpinFolio';
  const st = stateOfFolio(fn, folio);
  checkRefs(fn, refs);
  const large = folio.order > 0;
  const pins = large ? folio.fa[folio.fb + F_PINCOUNT]! : Math.floor(folio.mm.aux[folio.head]! / GUP_PIN_COUNTING_BIAS);
  if (pins < refs) {
    fail(fn, 'EINVAL', `folio ${folio.head} holds ${pins} pin(s); cannot unpin ${refs}`, { head: folio.head, pins, refs });
  }
  st.ledger.charge(EV.PCPU_COUNTER);
  st.stats.NR_FOLL_PIN_RELEASED += refs;
  if (large) {
    st.ledger.charge(EV.ATOMIC_REF);
    folio.fa[folio.fb + F_PINCOUNT] = pins - refs;
    return folioPutRefs(folio, refs);
  }
  return folioPutRefs(folio, refs * GUP_PIN_COUNTING_BIAS);
}

/** folio_pincount / the pins a folio holds: `_pincount` (large) or ⌊refcount / 1024⌋ (small: an estimate, as the kernel's). */
export function folioPinCount(folio: Folio): number {
  stateOfFolio('folioPinCount', folio);
  return folio.order > 0 ? folio.fa[folio.fb + F_PINCOUNT]! : Math.floor(folio.mm.aux[folio.head]! / GUP_PIN_COUNTING_BIAS);
}
