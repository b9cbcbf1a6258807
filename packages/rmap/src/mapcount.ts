import {
  F_LARGE_MAPCOUNT,
  F_MM_ID0,
  F_MM_ID1,
  F_MM_ID_MAPCOUNT0,
  F_MM_ID_MAPCOUNT1,
  MM_IDS_LOCK_MASK,
  MM_IDS_SHARED_MASK,
  MM_ID_DUMMY,
  MM_ID_MASK,
  type Folio,
} from '@foliolab/folio-flags';
import { EV } from '@foliolab/ledger';
import type { RmapState } from './state.js';

/*
 * `_large_mapcount` updates (include/linux/rmap.h).
 *
 * legacy (no CONFIG_MM_ID, ≈v6.12): a plain atomic_add / atomic_sub — one
 * ATOMIC_MAPCOUNT.
 *
 * mm_id and page_mapcount_mm_id (CONFIG_MM_ID, v6.15 David Hildenbrand's
 * MM_ID series; 7.2.13 include/linux/rmap.h, unchanged): the total
 * and the two per-mm slots are updated with plain stores under the
 * `_mm_ids` bit spinlock (bit 31 of F_MM_ID0). Cost model (decided here,
 * used everywhere): the bit lock is a LOCK/UNLOCK pair on the folio's
 * 'mm_id'-kind ledger lock `mm_ids:<head>`, and the locked read-modify-write
 * of `_large_mapcount` is one ATOMIC_MAPCOUNT. The slot stores under the
 * lock are not charged (same cache line, no atomics).
 *
 * All functions here are internal: callers validated the folio and diff.
 */

function lockLargeMapcount(st: RmapState, f: Folio): number {
  const id = st.mmIdsLock(f.head);
  st.ledger.lock(id); // bit_spin_lock(): throws on a self-deadlock
  f.fa[f.fb + F_MM_ID0] = f.fa[f.fb + F_MM_ID0]! | MM_IDS_LOCK_MASK;
  return id;
}

function unlockLargeMapcount(st: RmapState, f: Folio, id: number): void {
  f.fa[f.fb + F_MM_ID0] = f.fa[f.fb + F_MM_ID0]! & ~MM_IDS_LOCK_MASK; // __bit_spin_unlock(): non-atomic release
  st.ledger.unlock(id);
}

function setMmId(f: Folio, slot: number, id: number): void {
  const at = f.fb + slot;
  f.fa[at] = (f.fa[at]! & ~MM_ID_MASK) | id;
}

/** folio_mm_id(folio, idx). */
export function mmIdOf(f: Folio, idx: 0 | 1): number {
  return f.fa[f.fb + (idx === 0 ? F_MM_ID0 : F_MM_ID1)]! & MM_ID_MASK;
}

/**
 * folio_add_return_large_mapcount(folio, diff, vma) (v6.15 MM_ID) or the
 * legacy atomic_add_return. Returns the new mapcount (value + 1).
 */
export function addReturnLargeMapcount(st: RmapState, f: Folio, diff: number, mmId: number): number {
  const { fa, fb } = f;
  if (!st.mmId) {
    st.ledger.charge(EV.ATOMIC_MAPCOUNT);
    const v = fa[fb + F_LARGE_MAPCOUNT]! + diff;
    fa[fb + F_LARGE_MAPCOUNT] = v;
    return v + 1;
  }
  const lock = lockLargeMapcount(st, f);
  st.ledger.charge(EV.ATOMIC_MAPCOUNT);
  const v = fa[fb + F_LARGE_MAPCOUNT]! + diff;
  fa[fb + F_LARGE_MAPCOUNT] = v;
  const id0 = fa[fb + F_MM_ID0]! & MM_ID_MASK;
  const id1 = fa[fb + F_MM_ID1]! & MM_ID_MASK;
  if (id0 === mmId) {
    fa[fb + F_MM_ID_MAPCOUNT0] = fa[fb + F_MM_ID_MAPCOUNT0]! + diff;
  } else if (id1 === mmId) {
    fa[fb + F_MM_ID_MAPCOUNT1] = fa[fb + F_MM_ID_MAPCOUNT1]! + diff;
  } else if (id0 === MM_ID_DUMMY) {
    setMmId(f, F_MM_ID0, mmId);
    fa[fb + F_MM_ID_MAPCOUNT0] = diff - 1;
    // We might have other mappings already.
    if (v !== diff - 1) fa[fb + F_MM_ID1] = fa[fb + F_MM_ID1]! | MM_IDS_SHARED_MASK;
  } else if (id1 === MM_ID_DUMMY) {
    setMmId(f, F_MM_ID1, mmId);
    fa[fb + F_MM_ID_MAPCOUNT1] = diff - 1;
    // Slot 0 certainly has mappings as well.
    fa[fb + F_MM_ID1] = fa[fb + F_MM_ID1]! | MM_IDS_SHARED_MASK;
  }
  // else: both slots taken by other mms; the mapping stays untracked (SHARED is already set).
  unlockLargeMapcount(st, f, lock);
  return v + 1;
}

/**
 * folio_sub_return_large_mapcount(folio, diff, vma) (v6.15 MM_ID) or the
 * legacy atomic_sub_return. Returns the new mapcount (value + 1).
 */
export function subReturnLargeMapcount(st: RmapState, f: Folio, diff: number, mmId: number): number {
  const { fa, fb } = f;
  if (!st.mmId) {
    st.ledger.charge(EV.ATOMIC_MAPCOUNT);
    const v = fa[fb + F_LARGE_MAPCOUNT]! - diff;
    fa[fb + F_LARGE_MAPCOUNT] = v;
    return v + 1;
  }
  const lock = lockLargeMapcount(st, f);
  st.ledger.charge(EV.ATOMIC_MAPCOUNT);
  const v = fa[fb + F_LARGE_MAPCOUNT]! - diff;
  fa[fb + F_LARGE_MAPCOUNT] = v;
  // A per-mm count can legitimately underflow (mappings added while no slot
  // was free); it is reset to "empty" once it goes negative.
  let clearCheck = true;
  if ((fa[fb + F_MM_ID0]! & MM_ID_MASK) === mmId) {
    const c = fa[fb + F_MM_ID_MAPCOUNT0]! - diff;
    if (c >= 0) {
      fa[fb + F_MM_ID_MAPCOUNT0] = c;
      clearCheck = false; // the kernel's `goto out`
    } else {
      fa[fb + F_MM_ID_MAPCOUNT0] = -1;
      setMmId(f, F_MM_ID0, MM_ID_DUMMY);
    }
  } else if ((fa[fb + F_MM_ID1]! & MM_ID_MASK) === mmId) {
    const c = fa[fb + F_MM_ID_MAPCOUNT1]! - diff;
    if (c >= 0) {
      fa[fb + F_MM_ID_MAPCOUNT1] = c;
      clearCheck = false;
    } else {
      fa[fb + F_MM_ID_MAPCOUNT1] = -1;
      setMmId(f, F_MM_ID1, MM_ID_DUMMY);
    }
  }
  // One slot owning every mapping means "mapped exclusively"; fully unmapped
  // (v = −1) has both slots empty and clears the bit too.
  if (clearCheck && (fa[fb + F_MM_ID_MAPCOUNT0] === v || fa[fb + F_MM_ID_MAPCOUNT1] === v)) {
    fa[fb + F_MM_ID1] = fa[fb + F_MM_ID1]! & ~MM_IDS_SHARED_MASK;
  }
  unlockLargeMapcount(st, f, lock);
  return v + 1;
}

/**
 * folio_set_large_mapcount(folio, mapcount, vma): atomic_set of the total
 * and (mm_id) slot 0 claimed by `mmId`; plain stores on a folio nobody else
 * sees yet, so nothing is charged.
 */
export function setLargeMapcount(st: RmapState, f: Folio, mapcount: number, mmId: number): void {
  const { fa, fb } = f;
  fa[fb + F_LARGE_MAPCOUNT] = mapcount - 1;
  if (!st.mmId) return;
  fa[fb + F_MM_ID_MAPCOUNT0] = mapcount - 1;
  setMmId(f, F_MM_ID0, mmId);
}
