import { EV, FoliolabError } from '@foliolab/ledger';
import { F_SWAP, FLAG, folioMarkUptodate, folioUnlock, type Folio } from '@foliolab/folio-flags';
import { SWP_OFFSET_MASK, type SwpEntry } from './entry.js';
import { NEG_EIO, type NegEIO } from './errno.js';
import { chargePcpu, slotData, slotZero, zeromapSetRange, type SwapDevice } from './device.js';
import { PMD_ORDER, ST } from './layout.js';
import { assertCacheFolio, assertEntryRange, rawUptodate, rawWriteback } from './validate.js';
import { folioMaybeSwapped, freeSwapLocked } from './swap-cache.js';

/*
 * Swap I/O with data tokens (mm/page_io.c, v7.0). The clusters' data arrays
 * (`ciData`) are the disk: a write stores each page's memmap token in its slot, a read
 * puts them back. A token of 0 is a zero-filled page. On a
 * SWP_SYNCHRONOUS_IO device (zram-like, the default) writeback starts and
 * ends inside swapWriteout (swap_writepage_bdev_sync); on another device
 * (swap_writepage_bdev_async) the folio returns under writeback and is listed
 * in `writebackInFlight` until its owner ends it. zswap is not modelled. Without memmap data tokens nothing is
 * stored and every page counts as non-zero.
 */

const M_LOCKED = FLAG.locked.mask;
const M_WRITEBACK = FLAG.writeback.mask;

/**
 * swap_writeout() (7.2.13 mm/page_io.c) for a locked swap-cache folio,
 * returning with the folio unlocked as the kernel does:
 * - first `folio_free_swap()`: a folio none of whose slots is referenced
 *   any more (all counts 0: nothing to write for) leaves the swap cache, is
 *   marked dirty and keeps its data in memory; nothing is written;
 * - is_folio_zero_filled() scans the pages in order until a non-zero one
 *   (one LOOP_ITER per page read — the ledger has no memory-scan event);
 * - all zero: swap_zeromap_folio_set() — zeromap bit of every slot, no I/O,
 *   SWPOUT_ZERO += nr (the vm event `swpout_zero`); swpout/PSWPOUT not counted;
 * - else swap_zeromap_folio_clear(), the tokens are written,
 *   count_swpout_vm_event(): thp_swpout (PMD-sized), swpout[order], PSWPOUT
 *   += nr; folio_start_writeback, folio_unlock, and on a synchronous device
 *   the end of writeback (on another one the folio stays under writeback).
 * The zero test is per folio, as in the kernel: a folio with some zero pages
 * is written whole and none of its zeromap bits is set.
 */
export function swapWriteout(si: SwapDevice, folio: Folio): 0 {
  const fn = 'swapWriteout';
  assertCacheFolio(fn, si, folio);
  if (rawWriteback(folio)) throw new FoliolabError('EBUSY', `${fn}: folio ${folio.head} is already under writeback`, { head: folio.head });
  return swapWriteoutUnchecked(si, folio);
}

/**
 * @internal swap_writeout(), unchecked: the same events and end state as
 * `swapWriteout`. The caller guarantees: `si` is a SwapDevice; `folio` is a
 * live folio of its memmap, locked, not under writeback, in this device's
 * swap cache (PG_swapcache, folio->swap of this device, its slots bound to it).
 */
export function swapWriteoutUnchecked(si: SwapDevice, folio: Folio): 0 {
  const { head, nr, order } = folio;
  const off = folio.fa[folio.fb + F_SWAP]! & SWP_OFFSET_MASK;
  const ledger = si.ledger;
  // `if (folio_free_swap(folio)) goto out_unlock;` — in the swap cache and not under writeback (the
  // caller's guarantee), so it frees when folio_maybe_swapped() finds every count 0.
  if (!folioMaybeSwapped(si, off, nr)) {
    freeSwapLocked(si, folio, off);
    unlockFolio(folio);
    return 0;
  }
  const tok = si.memmap.token;
  let zero = tok !== null;
  if (tok !== null) {
    let scanned = 0;
    for (let p = head; p < head + nr; p++) {
      scanned++;
      if (tok[p] !== 0) {
        zero = false;
        break;
      }
    }
    ledger.charge(EV.LOOP_ITER, scanned);
  }
  zeromapSetRange(si, off, nr, zero);
  if (zero) {
    si.stat[ST.SWPOUT_ZERO]! += nr;
    ledger.charge(EV.PCPU_COUNTER);
    unlockFolio(folio);
    return 0;
  }
  if (tok !== null) {
    const b = off & (si.clusterSize - 1);
    const data = si.ciData[off >>> si.clusterShift]!;
    for (let k = 0; k < nr; k++) data[b + k] = tok[head + k]!;
  }
  if (order >= PMD_ORDER) {
    si.stat[ST.THP_SWPOUT]!++;
    ledger.charge(EV.PCPU_COUNTER);
  }
  si.swpout[order]!++;
  si.stat[ST.PSWPOUT]! += nr;
  ledger.charge(EV.PCPU_COUNTER, 2);
  // folio_test_set_writeback(), folio_unlock(), folio_test_clear_writeback()
  // on the live folio's head word: one ATOMIC_RMW each, in this order.
  const flags = folio.mm.flags;
  ledger.charge(EV.ATOMIC_RMW);
  flags[head] = flags[head]! | M_WRITEBACK;
  unlockFolio(folio);
  if (!si.synchronousIo) {
    si.writebackInFlight.push(head); // swap_writepage_bdev_async: submit_bio, end_swap_bio_write later
    return 0;
  }
  ledger.charge(EV.ATOMIC_RMW);
  flags[head] = flags[head] & ~M_WRITEBACK;
  return 0;
}

/** folio_unlock() (clear_bit_unlock: one ATOMIC_RMW) on a live folio. */
function unlockFolio(folio: Folio): void {
  const flags = folio.mm.flags;
  folio.mm.ledger.charge(EV.ATOMIC_RMW);
  flags[folio.head] = flags[folio.head]! & ~M_LOCKED;
}

/** What swapZeromapBatch returns. */
export interface ZeromapBatch {
  /** Entries from the first whose zeromap bit equals the first's. */
  readonly nr: number;
  /** The first entry's zeromap bit. */
  readonly isZeromap: boolean;
}

/**
 * swap_zeromap_batch(entry, max_nr, &is_zeromap) (mm/swap.h, v7.0): how many
 * entries from `entry` share its zeromap bit. A large swap-in needs nr ==
 * max_nr (can_swapin_thp), else it falls back to smaller folios.
 */
export function swapZeromapBatch(si: SwapDevice, entry: SwpEntry, maxNr: number): ZeromapBatch {
  const off = assertEntryRange('swapZeromapBatch', si, entry, maxNr);
  return { nr: zeromapRun(si, off, maxNr), isZeromap: slotZero(si, off) };
}

/** The zeromap state of [entry, entry + nr): all bits set, none, or mixed. */
export function swapZeromapState(si: SwapDevice, entry: SwpEntry, nr: number): 'allZero' | 'noneZero' | 'mixed' {
  const off = assertEntryRange('swapZeromapState', si, entry, nr);
  if (zeromapRun(si, off, nr) !== nr) return 'mixed';
  return slotZero(si, off) ? 'allZero' : 'noneZero';
}

function zeromapRun(si: SwapDevice, off: number, nr: number): number {
  const first = slotZero(si, off);
  let n = 1;
  while (n < nr && slotZero(si, off + n) === first) n++;
  return n;
}

/**
 * swap_read_folio() (v7.0) into a locked, not-uptodate swap-cache folio,
 * returning with it unlocked as the kernel does:
 * - zeromap bits mixed over the folio: −EIO, folio not uptodate (the kernel
 *   warns and do_swap_page() sigbuses); no token changes;
 * - all zero: tokens 0, SWPIN_ZERO += nr (`swpin_zero`);
 * - else the slots' tokens, PSWPIN += nr, swpin[order] += 1.
 * Reads `folio->swap`: since phase II every swap-in goes through the cache.
 */
export function swapReadFolio(si: SwapDevice, folio: Folio): 0 | NegEIO {
  const fn = 'swapReadFolio';
  const off = assertCacheFolio(fn, si, folio);
  const { head, nr, order } = folio;
  if (rawUptodate(folio)) throw new FoliolabError('EINVAL', `${fn}: folio ${head} is already uptodate`, { head });
  const tok = si.memmap.token;
  if (zeromapRun(si, off, nr) !== nr) {
    folioUnlock(folio);
    return NEG_EIO;
  }
  if (slotZero(si, off)) {
    tok?.fill(0, head, head + nr);
    si.stat[ST.SWPIN_ZERO]! += nr;
    chargePcpu(si);
  } else {
    if (tok !== null) for (let k = 0; k < nr; k++) tok[head + k] = slotData(si, off + k);
    si.stat[ST.PSWPIN]! += nr;
    si.swpin[order]!++;
    chargePcpu(si, 2);
  }
  folioMarkUptodate(folio);
  folioUnlock(folio);
  return 0;
}

