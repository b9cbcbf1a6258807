import { EV, FoliolabError } from '@foliolab/ledger';
import { folioMarkUptodate, folioTestClearWriteback, folioTestSetWriteback, folioUnlock, type Folio } from '@foliolab/folio-flags';
import type { SwpEntry } from './entry.js';
import { NEG_EIO, type NegEIO } from './errno.js';
import { chargePcpu, type SwapDevice } from './device.js';
import { PMD_ORDER, ST } from './layout.js';
import { assertCacheFolio, assertEntryRange, rawUptodate, rawWriteback } from './validate.js';

/*
 * Swap I/O with data tokens (mm/page_io.c, v7.0). The device's `data` array
 * is the disk: a write stores each page's memmap token in its slot, a read
 * puts them back. A token of 0 is a zero-filled page. I/O is synchronous
 * (a zram-like SWP_SYNCHRONOUS_IO device): writeback starts and ends inside
 * swapWriteout. zswap is not modelled. Without memmap data tokens nothing is
 * stored and every page counts as non-zero.
 */

/**
 * swap_writeout() (v7.0) for a locked swap-cache folio, returning with the
 * folio unlocked as the kernel does:
 * - is_folio_zero_filled() scans the pages in order until a non-zero one
 *   (one LOOP_ITER per page read — the ledger has no memory-scan event);
 * - all zero: swap_zeromap_folio_set() — zeromap bit of every slot, no I/O,
 *   SWPOUT_ZERO += nr (the vm event `swpout_zero`); swpout/PSWPOUT not counted;
 * - else swap_zeromap_folio_clear(), the tokens are written, writeback is set
 *   and cleared, and count_swpout_vm_event(): thp_swpout (PMD-sized),
 *   swpout[order], PSWPOUT += nr.
 * The zero test is per folio, as in the kernel: a folio with some zero pages
 * is written whole and none of its zeromap bits is set.
 */
export function swapWriteout(si: SwapDevice, folio: Folio): 0 {
  const fn = 'swapWriteout';
  const off = assertCacheFolio(fn, si, folio);
  const { head, nr, order } = folio;
  if (rawWriteback(folio)) throw new FoliolabError('EBUSY', `${fn}: folio ${head} is already under writeback`, { head });
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
    si.ledger.charge(EV.LOOP_ITER, scanned);
  }
  if (zero) {
    si.zeromap.fill(1, off, off + nr);
    si.stat[ST.SWPOUT_ZERO]! += nr;
    chargePcpu(si);
    folioUnlock(folio);
    return 0;
  }
  si.zeromap.fill(0, off, off + nr);
  if (tok !== null) si.data.set(tok.subarray(head, head + nr), off);
  if (order >= PMD_ORDER) {
    si.stat[ST.THP_SWPOUT]!++;
    chargePcpu(si);
  }
  si.swpout[order]!++;
  si.stat[ST.PSWPOUT]! += nr;
  chargePcpu(si, 2);
  folioTestSetWriteback(folio);
  folioUnlock(folio);
  folioTestClearWriteback(folio);
  return 0;
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
  return { nr: zeromapRun(si, off, maxNr), isZeromap: si.zeromap[off] === 1 };
}

/** The zeromap state of [entry, entry + nr): all bits set, none, or mixed. */
export function swapZeromapState(si: SwapDevice, entry: SwpEntry, nr: number): 'allZero' | 'noneZero' | 'mixed' {
  const off = assertEntryRange('swapZeromapState', si, entry, nr);
  if (zeromapRun(si, off, nr) !== nr) return 'mixed';
  return si.zeromap[off] === 1 ? 'allZero' : 'noneZero';
}

function zeromapRun(si: SwapDevice, off: number, nr: number): number {
  const first = si.zeromap[off];
  let n = 1;
  while (n < nr && si.zeromap[off + n] === first) n++;
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
  if (si.zeromap[off] === 1) {
    tok?.fill(0, head, head + nr);
    si.stat[ST.SWPIN_ZERO]! += nr;
    chargePcpu(si);
  } else {
    if (tok !== null) tok.set(si.data.subarray(off, off + nr), head);
    si.stat[ST.PSWPIN]! += nr;
    si.swpin[order]!++;
    chargePcpu(si, 2);
  }
  folioMarkUptodate(folio);
  folioUnlock(folio);
  return 0;
}

