/*
 * Test fixtures (not exported from the package; excluded from the published
 * files). Each test builds its own memmap and device from nothing.
 */
import {
  __folioMarkUptodate,
  __folioSetLocked,
  __folioSetSwapbacked,
  folioPutRefs,
  folioSubrange,
  folioUnlock,
  FLAG,
  Memmap,
  type Folio,
} from '@foliolab/folio-flags';
import { SwapDevice, type SwapDeviceOptions } from './index.js';

export interface Rig {
  readonly mm: Memmap;
  readonly si: SwapDevice;
}

/** A memmap with data tokens and a swap device on it. */
export function makeRig(opts: Partial<Omit<SwapDeviceOptions, 'memmap'>> & { nrPages?: number } = {}): Rig {
  const mm = new Memmap({ nrPages: opts.nrPages ?? 4096, dataTokens: true });
  const si = new SwapDevice({ ...opts, memmap: mm, nrSlots: opts.nrSlots ?? 2048 });
  return { mm, si };
}

/**
 * An anon folio as shrink_folio_list hands it to folio_alloc_swap: locked,
 * uptodate, swap-backed, refcount 1 (the isolation reference), with tokens
 * `tokenBase + i` (0 = all pages zero-filled).
 */
export function anonFolio(mm: Memmap, order: number, tokenBase = 100): Folio {
  const f = mm.allocFolio(order);
  if (f === null) throw new Error(`anonFolio: no free block of order ${order}`);
  __folioSetLocked(f);
  __folioMarkUptodate(f);
  __folioSetSwapbacked(f);
  for (let i = 0; i < f.nr; i++) mm.token![f.head + i] = tokenBase === 0 ? 0 : tokenBase + i;
  return f;
}

/** A fresh locked, swap-backed, not-uptodate folio for a swap-in. */
export function swapinFolio(mm: Memmap, order: number): Folio {
  const f = mm.allocFolio(order);
  if (f === null) throw new Error(`swapinFolio: no free block of order ${order}`);
  __folioSetLocked(f);
  __folioSetSwapbacked(f);
  return f;
}

/** The whole folio as a subrange. */
export const all = (f: Folio): ReturnType<typeof folioSubrange> => folioSubrange(f, 0, f.nr);

/** Drop the caller's last reference and free a folio that is out of the swap cache. */
export function release(mm: Memmap, f: Folio): void {
  if ((mm.flags[f.head]! & FLAG.locked.mask) !== 0) folioUnlock(f);
  if (folioPutRefs(f, 1)) mm.freeFolio(f);
}

/** Whether PG_locked is set (uncharged). */
export const isLocked = (mm: Memmap, f: Folio): boolean => (mm.flags[f.head]! & FLAG.locked.mask) !== 0;
/** Whether PG_swapcache is set (uncharged). */
export const inCache = (mm: Memmap, f: Folio): boolean => (mm.flags[f.head]! & FLAG.swapcache.mask) !== 0;
/** Whether PG_dirty is set (uncharged). */
export const isDirty = (mm: Memmap, f: Folio): boolean => (mm.flags[f.head]! & FLAG.dirty.mask) !== 0;
