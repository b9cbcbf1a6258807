import { FLAG, folioTrylock, folioUnlock, folioSetDirty } from '@foliolab/folio-flags';
import { EV, FoliolabError } from '@foliolab/ledger';
import {
  mkDeviceExclusivePte,
  pteBits,
  pteDirty,
  ptePfn,
  ptePresent,
  pteWrite,
  ptepClearFlush,
  setPteAt,
} from '@foliolab/pagetable-arm64-contpte';
import { tryGrabFolio, unpinFolio } from '@foliolab/rmap';
import { PAGE_SIZE } from './consts.js';
import { FAULT_UNSHARE, FAULT_WRITE, handleMmFault } from './fault.js';
import { forEachAccess } from './data.js';
import { putFolioRefs } from './folio-ops.js';
import type { Kernel, PinHandle } from './kernel.js';
import { isSpecial, pteIdx } from './pte-util.js';
import type { Proc } from './proc.js';
import { vmaLookup } from './vma.js';

/*
 * GUP (mm/gup.c, 6.x): follow_page_pte with faults as needed —
 * FOLL_WRITE needs a writable PTE (write fault: COW or reuse, so the page
 * ends up PageAnonExclusive), a FOLL_PIN without FOLL_WRITE of a
 * not-exclusive anon page needs an unshare fault (gup_must_unshare) — then
 * try_grab_folio (FOLL_GET: +1 ref; FOLL_PIN: large +1 ref +1 pincount,
 * small +1024) and MMF_HAS_PINNED for pins. The shared zero page is not
 * refcounted (6.5+): a read-only GUP of it takes nothing.
 * make_device_exclusive() (2025 rework) lives here too.
 */

const pte = pteBits();
const tmp = pteBits();

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

/** pin_user_pages / get_user_pages over [start, end); returns the handle. */
export function doPin(k: Kernel, p: Proc, start: number, end: number, kind: 'pin' | 'get', write: boolean): PinHandle {
  const n = (end - start) / PAGE_SIZE;
  const pfns = new Int32Array(n);
  if (kind === 'pin') p.hasPinned = true; // the GUP entry points set MMF_HAS_PINNED before grabbing
  forEachAccess(k, p, start, end, true, (a) => {
    const j = (a - start) / PAGE_SIZE;
    const vma = vmaLookup(p, a)!;
    // __get_user_pages: follow_page_pte, fault, retry (a read fault may be followed by an unshare fault).
    for (let tries = 0; !followOk(k, p, a, write, kind === 'pin'); tries++) {
      const t = p.pt.pteTableOf(a);
      const lo = t === null ? 0 : t.lo[pteIdx(a)]!;
      const hi = t === null ? 0 : t.hi[pteIdx(a)]!;
      const present = ptePresent(lo, hi) && (lo & 1) !== 0;
      if (present && isSpecial(hi) && !write) break; // a read-only GUP of the zero page is satisfied
      if (tries === 3) throw new FoliolabError('EINVARIANT', `GUP: 0x${a.toString(16)} still not satisfied after ${tries} faults`);
      handleMmFault(k, p, vma, a, write ? FAULT_WRITE : present && kind === 'pin' ? FAULT_UNSHARE : 0);
    }
    const t = p.pt.pteTableOf(a)!;
    const i = pteIdx(a);
    if (isSpecial(t.hi[i]!)) {
      pfns[j] = -1;
      return;
    }
    const pfn = ptePfn(t.lo[i]!, t.hi[i]!);
    pfns[j] = pfn;
    tryGrabFolio(k.folioOf(pfn), 1, kind, kind === 'pin' ? p : null);
  });
  const h: PinHandle = { id: k.nextPin++, pid: p.pid, kind, write, pfns };
  k.pins.set(h.id, h);
  return h;
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
 * make_device_exclusive(mm, addr) (2025): GUP with FOLL_GET | FOLL_WRITE,
 * lock the folio, ptep_clear_flush (dirty → folio dirty), install a
 * device-exclusive entry (the mapping, rmap and refcount of the PTE stay),
 * then the caller's folio_unlock + folio_put.
 */
export function doMakeDeviceExclusive(k: Kernel, p: Proc, addr: number): void {
  const h = doPin(k, p, addr, addr + PAGE_SIZE, 'get', true);
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
