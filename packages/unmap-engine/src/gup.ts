import { FLAG, folioSetReferenced, folioTrylock, folioUnlock, folioSetDirty, type Folio } from '@foliolab/folio-flags';
import { EV, FoliolabError } from '@foliolab/ledger';
import {
  mkDeviceExclusivePte,
  pteBits,
  pteDirty,
  ptePfn,
  ptePresent,
  pteWrite,
  ptepClearFlush,
  ptepGet,
  setPteAt,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import { tryGrabFolio, unpinFolio } from '@foliolab/rmap';
import { PAGE_SIZE } from './consts.js';
import { FAULT_UNSHARE, FAULT_WRITE, handleMmFault } from './fault.js';
import { forEachAccess } from './data.js';
import { putFolioRefs } from './folio-ops.js';
import { folioMarkAccessed } from './lru.js';
import type { Kernel, PinHandle } from './kernel.js';
import { isSpecial, pteIdx } from './pte-util.js';
import type { Proc } from './proc.js';
import { vmaLookup, type Vma } from './vma.js';
import { VM_WRITE } from './consts.js';

/*
 * GUP (mm/gup.c, 7.2.13) as user space reaches it: pin_user_pages_fast /
 * get_user_pages_fast (gup_fast_fallback). GUP-fast walks the range without
 * faulting and stops at the first PTE it cannot take (not present, special
 * such as the zero page, not writable for FOLL_WRITE, or a read pin of a
 * not-exclusive anon page: gup_must_unshare); each page it takes gets
 * folio_set_referenced (gup_fast_pte_range). The rest of the range goes
 * through the slow path with FOLL_TOUCH (__get_user_pages: follow_page_pte,
 * faulting as needed — a write fault breaks COW so the page ends up
 * PageAnonExclusive, an unshare fault for a read pin of a shared page —
 * then folio_mark_dirty for FOLL_WRITE if neither the PTE nor the folio is
 * dirty, and folio_mark_accessed per page). try_grab_folio: FOLL_GET +1 ref;
 * FOLL_PIN large +1 ref +1 pincount, small +1024; MMF_HAS_PINNED for pins.
 * The shared zero page is not refcounted (6.5+): a read-only GUP of it takes
 * nothing. make_device_exclusive() (2025 rework) lives here too.
 */

const pte = pteBits();
const tmp = pteBits();

/** Pages per get_user_pages_fast call of a FOLL_GET reference: vmsplice's iter_to_pipe takes 16 at a time (7.2.13 fs/splice.c). */
const GET_CHUNK_PAGES = 16;

/** Whether the PTE at `addr` satisfies GUP without a fault (follow_page_pte + gup_must_unshare). */
function followOk(k: Kernel, p: Proc, addr: number, write: boolean, pin: boolean): boolean {
  const t = p.pt.pteTableOf(addr);
  if (t === null) return false;
  const i = pteIdx(addr);
  const lo = t.lo[i]!;
  const hi = t.hi[i]!;
  if (!ptePresent(lo, hi) || (lo & 1) === 0) return false;
  if (write && !pteWrite(lo, hi)) return false;
  if (isSpecial(hi)) return !write;
  const ex = (k.memmap.flags[ptePfn(lo, hi)]! & FLAG.anon_exclusive.mask) !== 0;
  if (pin && !ex) return false;
  return true;
}

/** gup_fast_pte_range's test: a present, non-special PTE GUP can take as it is. */
function fastOk(k: Kernel, p: Proc, addr: number, write: boolean, pin: boolean): boolean {
  if (!followOk(k, p, addr, write, pin)) return false;
  const t = p.pt.pteTableOf(addr)!;
  return !isSpecial(t.hi[pteIdx(addr)]!);
}

/** How many pages from `a` (at most up to `end`) GUP-fast takes before it stops. */
function gupFastPrefix(k: Kernel, p: Proc, a: number, end: number, write: boolean, pin: boolean): number {
  let n = 0;
  while (a + n * PAGE_SIZE < end && fastOk(k, p, a + n * PAGE_SIZE, write, pin)) n++;
  return n;
}

/**
 * follow_page_pte()'s FOLL_TOUCH (7.2.13 mm/gup.c): with FOLL_WRITE,
 * folio_mark_dirty unless the PTE (ptep_get: gathered over a contpte block)
 * or the folio is dirty already; then folio_mark_accessed.
 */
export function gupTouch(k: Kernel, t: PteTable, i: number, f: Folio, write: boolean): void {
  if (write) {
    ptepGet(t, i, tmp);
    if (!pteDirty(tmp.lo, tmp.hi) && (k.memmap.flags[f.head]! & FLAG.dirty.mask) === 0) folioSetDirty(f);
  }
  folioMarkAccessed(k, f);
}

/**
 * pin_user_pages_fast (kind 'pin') / get_user_pages_fast ('get', 16 pages per
 * call as vmsplice makes them) over [start, end); `fast` false is the slow
 * path alone (get_user_pages_remote). Returns the handle.
 */
export function doPin(k: Kernel, p: Proc, start: number, end: number, kind: 'pin' | 'get', write: boolean, fast = true): PinHandle {
  const n = (end - start) / PAGE_SIZE;
  const pfns = new Int32Array(n);
  const pin = kind === 'pin';
  const chunk = pin ? n : GET_CHUNK_PAGES;
  let fastEnd = start;
  if (pin) p.hasPinned = true; // the GUP entry points set MMF_HAS_PINNED before grabbing
  forEachAccess(k, p, start, end, true, (a) => {
    const j = (a - start) / PAGE_SIZE;
    if (fast && j % chunk === 0) fastEnd = a + gupFastPrefix(k, p, a, Math.min(end, a + chunk * PAGE_SIZE), write, pin) * PAGE_SIZE;
    if (a < fastEnd) {
      // gup_fast_pte_range: try_grab_folio_fast, folio_set_referenced
      const t = p.pt.pteTableOf(a)!;
      const pfn = ptePfn(t.lo[pteIdx(a)]!, t.hi[pteIdx(a)]!);
      pfns[j] = pfn;
      const f = k.folioOf(pfn);
      tryGrabFolio(f, 1, kind, pin ? p : null);
      folioSetReferenced(f);
      return;
    }
    const vma = vmaLookup(p, a)!;
    // __get_user_pages: follow_page_pte, fault, retry (a read fault may be followed by an unshare fault).
    for (let tries = 0; !followOk(k, p, a, write, pin); tries++) {
      const t = p.pt.pteTableOf(a);
      const lo = t === null ? 0 : t.lo[pteIdx(a)]!;
      const hi = t === null ? 0 : t.hi[pteIdx(a)]!;
      const present = ptePresent(lo, hi) && (lo & 1) !== 0;
      if (present && isSpecial(hi) && !write) break; // a read-only GUP of the zero page is satisfied
      if (tries === 3) throw new FoliolabError('EINVARIANT', `GUP: 0x${a.toString(16)} still not satisfied after ${tries} faults`);
      handleMmFault(k, p, vma, a, write ? FAULT_WRITE : present && pin ? FAULT_UNSHARE : 0);
    }
    const t = p.pt.pteTableOf(a)!;
    const i = pteIdx(a);
    if (isSpecial(t.hi[i]!)) {
      // FOLL_TOUCH marks the shared zero page accessed too (7.2.13 mm/gup.c:follow_page_pte: is_zero_pfn → its
      // page, then folio_mark_accessed); the model keeps no flags for it, and the oracle records none.
      pfns[j] = -1;
      return;
    }
    const pfn = ptePfn(t.lo[i]!, t.hi[i]!);
    pfns[j] = pfn;
    const f = k.folioOf(pfn);
    tryGrabFolio(f, 1, kind, pin ? p : null);
    gupTouch(k, t, i, f, write);
  });
  const h: PinHandle = { id: k.nextPin++, pid: p.pid, kind, write, pfns };
  k.pins.set(h.id, h);
  return h;
}

/**
 * populate_vma_page_range() (7.2.13 mm/gup.c) for [start, end) of one VMA:
 * __get_user_pages with FOLL_TOUCH, FOLL_WRITE for a writable private VMA
 * (a write fault breaks COW), else FOLL_FORCE and read faults; no pages are
 * taken. Each page is faulted in as needed, then touched (follow_page_pte's
 * FOLL_TOUCH): a 64K folio met 16 times is referenced by the first touch and
 * activated by the second. A present page is not accessed, so its PTE keeps
 * its young and dirty bits. The caller skips VMAs that are not accessible.
 */
export function populateVmaPageRange(k: Kernel, p: Proc, vma: Vma, start: number, end: number): void {
  const write = (vma.flags & VM_WRITE) !== 0;
  forEachAccess(k, p, start, end, write, (a) => {
    for (let tries = 0; !followOk(k, p, a, write, false); tries++) {
      const t = p.pt.pteTableOf(a);
      const lo = t === null ? 0 : t.lo[pteIdx(a)]!;
      const hi = t === null ? 0 : t.hi[pteIdx(a)]!;
      if (ptePresent(lo, hi) && (lo & 1) !== 0 && isSpecial(hi) && !write) break;
      if (tries === 3) throw new FoliolabError('EINVARIANT', `populate: 0x${a.toString(16)} still not satisfied after ${tries} faults`);
      handleMmFault(k, p, vma, a, write ? FAULT_WRITE : 0);
    }
    const t = p.pt.pteTableOf(a)!;
    const i = pteIdx(a);
    if (isSpecial(t.hi[i]!)) return; // the zero page: FOLL_TOUCH marks it accessed (follow_page_pte); the model keeps no flags for it
    gupTouch(k, t, i, k.folioOf(ptePfn(t.lo[i]!, t.hi[i]!)), write);
  });
}

/** unpin_user_pages / put_page over a handle's pages (the last reference frees the folio). */
export function doUnpin(k: Kernel, h: PinHandle): void {
  for (const pfn of h.pfns) {
    if (pfn < 0) continue;
    const f = k.folioOf(pfn);
    if (h.kind === 'pin') {
      if (unpinFolio(f, 1)) k.releaseFolio(f);
    } else {
      putFolioRefs(k, f, 1);
    }
  }
  k.pins.delete(h.id);
}

/**
 * make_device_exclusive(mm, addr) (2025): GUP (get_user_page_vma_remote, FOLL_GET | FOLL_WRITE | FOLL_TOUCH),
 * lock the folio, ptep_clear_flush (dirty → folio dirty), install a
 * device-exclusive entry (the mapping, rmap and refcount of the PTE stay),
 * then the caller's folio_unlock + folio_put.
 */
export function doMakeDeviceExclusive(k: Kernel, p: Proc, addr: number): void {
  const h = doPin(k, p, addr, addr + PAGE_SIZE, 'get', true, false); // get_user_page_vma_remote: the slow path
  const pfn = h.pfns[0]!;
  const f = k.folioOf(pfn);
  folioTrylock(f);
  const t = p.pt.pteTableOf(addr)!;
  const i = pteIdx(addr);
  k.ledger.lock(t.ptl);
  k.ledger.charge(EV.MMU_NOTIFIER);
  ptepClearFlush(t, i, pte);
  if (pteDirty(pte.lo, pte.hi) && (k.memmap.flags[f.head]! & FLAG.dirty.mask) === 0) folioSetDirty(f);
  mkDeviceExclusivePte(tmp, pfn);
  setPteAt(t, i, tmp.lo, tmp.hi);
  k.ledger.charge(EV.MMU_NOTIFIER);
  k.ledger.unlock(t.ptl);
  folioUnlock(f);
  k.pins.delete(h.id);
  k.nextPin--;
  putFolioRefs(k, f, 1);
}
