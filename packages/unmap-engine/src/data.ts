import { F_SWAP, FLAG } from '@foliolab/folio-flags';
import {
  ptePfn,
  ptePresent,
  pteWrite,
  softleafIsDeviceExclusive,
  softleafIsHwpoison,
  softleafIsSwap,
  softleafOffset,
  softleafPfn,
} from '@foliolab/pagetable-arm64-contpte';
import { swapCacheFolioAt, swapDataAt, swapZeroAt, swpOffset, type SwpEntry } from '@foliolab/swap';
import { PAGE_SIZE } from './consts.js';
import { cpuAccess } from './fault.js';
import type { Kernel } from './kernel.js';
import { isSpecial, pteIdx } from './pte-util.js';
import type { Proc } from './proc.js';
import { vmaLookup } from './vma.js';

/*
 * Data tokens end to end (DESIGN.md §State): `write` stores one token per
 * page in the memmap's token array (after the write fault made the page
 * private and writable); COW copies the token, swap-out stores it in the
 * slot (or only the zeromap bit for token 0), swap-in brings it back.
 *
 * "What was last written" is not kept anywhere else (no per-page record
 * beyond the memmap token and the swap slot token — the 24 B/page budget):
 * `read` first locates where the page's data lives now by following the PTE
 * without side effects (present → memmap token, swap → the swap-cache page
 * or the slot / zeromap, none → the zero page), then performs the CPU read
 * (read fault, swap-in …) and compares the token it finds through the new
 * PTE. A mismatch is data lost by the fault path (wrong slot, wrong page,
 * mixed zeromap, lost COW copy …). A hwpoisoned page reads as lost.
 */

/** One lost page of a read. */
export interface LostPage {
  addr: number;
  expected: number;
  /** −1 for a hwpoisoned page (SIGBUS). */
  actual: number;
  reason?: 'hwpoison' | 'mismatch';
}

/** What `read` returns. */
export interface ReadResult {
  pages: number;
  lost: LostPage[];
}

/** Where the data of `addr` lives now, as a token (uncharged). NaN for a hwpoison entry. */
export function locateToken(k: Kernel, p: Proc, addr: number): number {
  const t = p.pt.pteTableOf(addr);
  if (t === null) return 0;
  const i = pteIdx(addr);
  const lo = t.lo[i]!;
  const hi = t.hi[i]!;
  const tok = k.memmap.token!;
  if ((lo | hi) === 0) return 0;
  if (ptePresent(lo, hi)) return isSpecial(hi) ? 0 : tok[ptePfn(lo, hi)]!;
  if (softleafIsSwap(lo, hi)) {
    const si = k.si!;
    const off = softleafOffset(lo, hi);
    const cached = swapCacheFolioAt(si, off);
    if (cached >= 0) {
      const f = k.memmap.folioAt(cached);
      return tok[cached + off - swpOffset(f.fa[f.fb + F_SWAP]! as SwpEntry)]!;
    }
    return swapZeroAt(si, off) ? 0 : swapDataAt(si, off);
  }
  if (softleafIsDeviceExclusive(lo, hi)) return tok[softleafPfn(lo, hi)]!;
  if (softleafIsHwpoison(lo, hi)) return NaN;
  return 0;
}

/**
 * Pages a write (or a read) of [start, end) may have to allocate, worst
 * case: one per none/zero-page/marker page written, one per swapped-out page
 * not in the swap cache, one more per page a write may COW. Used for the
 * up-front capacity check and the allocation reserve.
 */
export function allocNeed(k: Kernel, p: Proc, start: number, end: number, write: boolean): number {
  let need = 0;
  for (let a = start; a < end; a += PAGE_SIZE) need += pageNeed(k, p, a, write);
  return need;
}

/** The worst-case allocations of one page access (see allocNeed). */
export function pageNeed(k: Kernel, p: Proc, a: number, write: boolean): number {
  const t = p.pt.pteTableOf(a);
  if (t === null) return write ? 1 : 0;
  const i = pteIdx(a);
  const lo = t.lo[i]!;
  const hi = t.hi[i]!;
  if ((lo | hi) === 0) return write ? 1 : 0;
  if (ptePresent(lo, hi)) {
    return write && (isSpecial(hi) || (!pteWrite(lo, hi) && (k.memmap.flags[ptePfn(lo, hi)]! & FLAG.anon_exclusive.mask) === 0)) ? 1 : 0;
  }
  if (softleafIsSwap(lo, hi)) return (swapCacheFolioAt(k.si!, softleafOffset(lo, hi)) < 0 ? 1 : 0) + (write ? 1 : 0);
  if (softleafIsDeviceExclusive(lo, hi) || softleafIsHwpoison(lo, hi)) return 0;
  return write ? 1 : 0;
}

/**
 * Run `body` for every page of [start, end) in order with the access context
 * set (see Kernel.accessEnd): the worst-case needs of every page are taken
 * before anything changes.
 */
export function forEachAccess(k: Kernel, p: Proc, start: number, end: number, write: boolean, body: (a: number) => void): void {
  const n = (end - start) / PAGE_SIZE;
  const needs = new Uint8Array(n);
  let total = 0;
  for (let j = 0; j < n; j++) {
    needs[j] = pageNeed(k, p, start + j * PAGE_SIZE, write);
    total += needs[j]!;
  }
  k.accessEnd = end;
  let done = 0;
  try {
    for (let j = 0; j < n; j++) {
      const a = start + j * PAGE_SIZE;
      k.accessCur = a;
      done += needs[j]!;
      k.needAfter = total - done;
      body(a);
    }
  } finally {
    k.accessEnd = 0;
    k.needAfter = 0;
  }
}

/** The CPU writes one token per page of [start, end) (write faults as needed). */
export function doWrite(k: Kernel, p: Proc, start: number, end: number, token: number | undefined): void {
  const tok = k.memmap.token!;
  forEachAccess(k, p, start, end, true, (a) => {
    cpuAccess(k, p, vmaLookup(p, a)!, a, true);
    const t = p.pt.pteTableOf(a)!;
    const i = pteIdx(a);
    tok[ptePfn(t.lo[i]!, t.hi[i]!)] = token ?? k.freshToken();
  });
}

/** The CPU reads every page of [start, end); returns the lost pages. */
export function doRead(k: Kernel, p: Proc, start: number, end: number): ReadResult {
  const tok = k.memmap.token!;
  const lost: LostPage[] = [];
  let pages = 0;
  forEachAccess(k, p, start, end, false, (a) => {
    pages++;
    const expected = locateToken(k, p, a);
    if (Number.isNaN(expected)) {
      const t = p.pt.pteTableOf(a)!;
      const i = pteIdx(a);
      lost.push({ addr: a, expected: tok[softleafPfn(t.lo[i]!, t.hi[i]!)]!, actual: -1, reason: 'hwpoison' });
      return;
    }
    cpuAccess(k, p, vmaLookup(p, a)!, a, false);
    const t = p.pt.pteTableOf(a)!;
    const i = pteIdx(a);
    const actual = isSpecial(t.hi[i]!) ? 0 : tok[ptePfn(t.lo[i]!, t.hi[i]!)]!;
    if (actual !== expected) lost.push({ addr: a, expected, actual, reason: 'mismatch' });
  });
  return { pages, lost };
}
