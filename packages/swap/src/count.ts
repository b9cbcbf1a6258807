import { EV } from '@foliolab/ledger';
import { type SwapDevice } from './device.js';
import { COUNT_CONTINUED, ST, SWAP_COUNT_MASK, SWAP_HAS_CACHE } from './layout.js';

/*
 * Per-slot count updates under the cluster lock, for the three count models
 * (device.ts SwapCountModel). A slot whose count exceeds `inlineLimit` keeps
 * `extMarker | COUNT_CONTINUED` in its byte and the real count in the
 * cluster's extension table:
 *
 *   'extend' (phase III): inline 0..MAX−1, MAX = "see extend_table"
 *   continuation models:  inline 0..SWAP_MAP_MAX, beyond that continued
 *
 * Each update is one SWAP_SLOT_UPDATE.
 */

/**
 * @internal +1 on slot `s` (__swap_cluster_dup_entry / the second pass of
 * __swap_duplicate). Returns false, changing nothing, when the count must
 * move to the extension table and the cluster has none yet.
 */
export function dupSlotLocked(si: SwapDevice, s: number): boolean {
  const c = s >>> si.clusterShift;
  const i = s & (si.clusterSize - 1);
  const map = si.ciMap[c]!;
  const b = i;
  const m = map[b]!;
  if ((m & COUNT_CONTINUED) !== 0) {
    si.ext[c]![i]!++;
  } else {
    const v = m & SWAP_COUNT_MASK;
    if (v < si.inlineLimit) {
      map[b] = m + 1;
    } else {
      const t = si.ext[c] ?? null;
      if (t === null) return false;
      t[i] = v + 1;
      map[b] = (m & SWAP_HAS_CACHE) | COUNT_CONTINUED | si.extMarker;
      si.ciExtSlots[c]!++;
    }
  }
  si.ledger.charge(EV.SWAP_SLOT_UPDATE);
  return true;
}

/**
 * @internal −1 on slot `s`, whose count is ≥ 1 (__swap_cluster_put_entry /
 * swap_entry_put_locked). A count falling back to the inline range leaves the
 * extension table; the caller then runs extendTableTryFree().
 */
export function putSlotLocked(si: SwapDevice, s: number): void {
  const c = s >>> si.clusterShift;
  const i = s & (si.clusterSize - 1);
  const map = si.ciMap[c]!;
  const b = i;
  const m = map[b]!;
  if ((m & COUNT_CONTINUED) !== 0) {
    const t = si.ext[c]!;
    const e = t[i]! - 1;
    if (e > si.inlineLimit) {
      t[i] = e;
    } else {
      t[i] = 0;
      map[b] = (m & SWAP_HAS_CACHE) | e;
      si.ciExtSlots[c]!--;
    }
  } else {
    map[b] = m - 1;
  }
  si.ledger.charge(EV.SWAP_SLOT_UPDATE);
}

/**
 * @internal The common case of a batched +1 on the slots [i, i + nr) of
 * cluster `c` (cluster lock held): when every count is inline with room
 * (below `inlineLimit`, not extended), raise them all and charge one
 * SWAP_SLOT_UPDATE per slot, as dupSlotLocked would; else change nothing and
 * return false (the caller takes the per-slot path).
 */
export function dupSlotsInline(si: SwapDevice, c: number, i: number, nr: number): boolean {
  const map = si.ciMap[c]!;
  const lim = si.inlineLimit;
  const b = i;
  const end = b + nr;
  for (let k = b; k < end; k++) {
    const m = map[k]!;
    if ((m & COUNT_CONTINUED) !== 0 || (m & SWAP_COUNT_MASK) >= lim) return false;
  }
  for (let k = b; k < end; k++) map[k]!++;
  chargeSlotUpdates(si, nr);
  return true;
}

/**
 * @internal `nr` SWAP_SLOT_UPDATE charged as the per-slot loops do: one
 * charge per slot while a trace records each charge, one charge of nr
 * otherwise (the same counts).
 */
export function chargeSlotUpdates(si: SwapDevice, nr: number): void {
  const ledger = si.ledger;
  if (ledger.tracing) for (let k = 0; k < nr; k++) ledger.charge(EV.SWAP_SLOT_UPDATE);
  else ledger.charge(EV.SWAP_SLOT_UPDATE, nr);
}

/**
 * @internal swap_extend_table_alloc() (phase III) / add_swap_count_continuation()
 * (≤ v7.0): one allocation attempt for cluster `c`, SWAP_ALLOC_ATOMIC. A
 * GFP_ATOMIC attempt obeys the fault switches; a GFP_KERNEL one (fork's retry
 * after dropping the PTLs) does not fail in this model. Called without the
 * cluster lock. Returns whether the cluster now has a table.
 */
export function extendTableAlloc(si: SwapDevice, c: number, gfp: 'atomic' | 'kernel'): boolean {
  si.ledger.charge(EV.SWAP_ALLOC_ATOMIC);
  if (gfp === 'atomic') {
    const f = si.faults;
    if (f.failExtendAlloc || f.failNextExtendAllocs > 0) {
      if (f.failNextExtendAllocs > 0) f.failNextExtendAllocs--;
      si.stat[ST.EXT_ALLOC_FAILURES]!++;
      return false;
    }
  }
  if (si.ext[c] === null) {
    si.ext[c] = new Uint32Array(si.clusterSize);
    si.stat[ST.EXT_ALLOCS]!++;
    si.stat[ST.EXT_TABLES]!++;
  }
  return true;
}

/**
 * @internal swap_extend_table_try_free() (phase III): drop the cluster's
 * extend_table once no slot uses it. Continuations (the other models) live
 * until swapoff, which is not modelled. Cluster lock held.
 */
export function extendTableTryFree(si: SwapDevice, c: number): void {
  if (si.countModel !== 'extend' || si.ext[c] === null || si.ciExtSlots[c] !== 0) return;
  si.ext[c] = null;
  si.stat[ST.EXT_TABLES]!--;
}
