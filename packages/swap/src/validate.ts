import { FoliolabError } from '@foliolab/ledger';
import { FLAG, type Folio } from '@foliolab/folio-flags';
import { folioSwapEntry, swpOffset, swpType, type SwpEntry } from './entry.js';
import { SwapDevice } from './device.js';

/*
 * Boundary checks of the public functions. They read flags and fields
 * directly (no ledger charge): the kernel's counterparts are VM_WARN/BUG
 * assertions, free in production builds. They throw FoliolabError before any
 * state changes, so a rejected call leaves nothing half-applied.
 */

const M_LOCKED = FLAG.locked.mask;
const M_SWAPBACKED = FLAG.swapbacked.mask;
const M_SWAPCACHE = FLAG.swapcache.mask;
const M_WRITEBACK = FLAG.writeback.mask;
const M_UPTODATE = FLAG.uptodate.mask;

function fail(code: string, msg: string, details: Record<string, unknown>): never {
  throw new FoliolabError(code, msg, details);
}

/** `si` is a SwapDevice. */
export function assertDevice(fn: string, si: SwapDevice): void {
  if (!(si instanceof SwapDevice)) fail('EINVAL', `${fn}: the device argument is not a SwapDevice`, {});
}

/** `folio` is a live folio of the device's memmap. */
export function assertDeviceFolio(fn: string, si: SwapDevice, folio: Folio): void {
  assertDevice(fn, si);
  if (folio?.mm !== si.memmap || !si.memmap.folioIsLive(folio)) {
    fail('EINVAL', `${fn}: folio ${String(folio?.head)} is not an allocated folio of the swap device's memmap`, {
      head: folio?.head,
    });
  }
}

/** Head flags word of `folio`. */
export function headFlags(folio: Folio): number {
  return folio.mm.flags[folio.head]!;
}

/** Whether PG_swapcache counts (folio_test_swapcache: swapbacked && swapcache), uncharged. */
export function rawSwapcache(folio: Folio): boolean {
  const w = headFlags(folio);
  return (w & M_SWAPBACKED) !== 0 && (w & M_SWAPCACHE) !== 0;
}

/** PG_locked, uncharged. */
export function rawLocked(folio: Folio): boolean {
  return (headFlags(folio) & M_LOCKED) !== 0;
}

/** PG_writeback, uncharged. */
export function rawWriteback(folio: Folio): boolean {
  return (headFlags(folio) & M_WRITEBACK) !== 0;
}

/** PG_uptodate, uncharged. */
export function rawUptodate(folio: Folio): boolean {
  return (headFlags(folio) & M_UPTODATE) !== 0;
}

/** PG_swapbacked, uncharged. */
export function rawSwapbacked(folio: Folio): boolean {
  return (headFlags(folio) & M_SWAPBACKED) !== 0;
}

/** The folio is locked. */
export function assertLocked(fn: string, folio: Folio): void {
  if (!rawLocked(folio)) fail('EINVAL', `${fn}: folio ${folio.head} is not locked`, { head: folio.head });
}

/**
 * The folio is a locked swap-cache folio of this device whose nr table words
 * point to it; returns its first slot offset.
 */
export function assertCacheFolio(fn: string, si: SwapDevice, folio: Folio): number {
  assertDeviceFolio(fn, si, folio);
  assertLocked(fn, folio);
  const { head, nr } = folio;
  if (!rawSwapcache(folio)) fail('EINVAL', `${fn}: folio ${head} is not in the swap cache`, { head });
  const e = folioSwapEntry(folio);
  const off = swpOffset(e);
  if (swpType(e) !== si.type || off === 0 || off % nr !== 0 || off + nr > si.nrSlots) {
    fail('EINVAL', `${fn}: folio ${head} has swap entry type ${swpType(e)} offset ${off}, not an aligned range of device ${si.type}`, {
      head,
      type: swpType(e),
      offset: off,
    });
  }
  const table = si.ciCached[off >>> si.clusterShift] ?? null;
  const i = off & (si.clusterSize - 1);
  for (let k = 0; k < nr; k++) {
    if (table === null || table[i + k] !== head) {
      const s = off + k;
      const p = table === null ? -1 : (table[i + k] ?? -1);
      fail('EINVAL', `${fn}: slot ${s} of folio ${head} points to ${p}, not to the folio`, { head, slot: s });
    }
  }
  return off;
}

/** `entry` is an entry of this device and [offset, offset + nr) lies inside it; returns the offset. */
export function assertEntryRange(fn: string, si: SwapDevice, entry: SwpEntry, nr: number): number {
  assertDevice(fn, si);
  if (!Number.isInteger(entry) || entry < 0) fail('EINVAL', `${fn}: ${entry} is not a swap entry`, { entry });
  if (!Number.isInteger(nr) || nr < 1) fail('EINVAL', `${fn}: nr ${nr} must be a positive integer`, { entry, nr });
  const off = swpOffset(entry);
  if (swpType(entry) !== si.type) {
    fail('EINVAL', `${fn}: entry type ${swpType(entry)} is not device type ${si.type}`, { entry, type: swpType(entry) });
  }
  if (off === 0 || off + nr > si.nrSlots) {
    fail('ERANGE', `${fn}: slots ${off}..${off + nr - 1} are outside 1..${si.nrSlots - 1}`, { offset: off, nr });
  }
  return off;
}
