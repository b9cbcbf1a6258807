import {
  FLAG,
  folioSetHasHwpoisoned,
  folioTrylock,
  folioUnlock,
  testSetPageHWPoison,
} from '@foliolab/folio-flags';
import { EV } from '@foliolab/ledger';
import { ptePfn } from '@foliolab/pagetable-arm64-contpte';
import { TTU_HWPOISON, TTU_IGNORE_MLOCK, TTU_SYNC } from './consts.js';
import { putFolioRefs } from './folio-ops.js';
import type { Kernel } from './kernel.js';
import { lruRemoveOnFree } from './lru.js';
import { pteIdx } from './pte-util.js';
import type { Proc } from './proc.js';
import { splitFolio } from './split.js';
import { folioMappedRaw, tryToUnmap } from './ttu.js';

/*
 * memory_failure() on the page mapped at an address (mm/memory-failure.c,
 * 6.12+), the parts the unmap model needs: TestSetPageHWPoison (a second hit
 * is a no-op, -EHWPOISON), folio_set_has_hwpoisoned for a large folio,
 * try_to_split_thp_page (a large folio is split to order 0 first; a failed
 * split leaves the folio alone, MF_IGNORED), then hwpoison_user_mappings:
 * try_to_unmap(TTU_IGNORE_MLOCK | TTU_SYNC | TTU_HWPOISON), where a
 * swap-cache folio keeps its swap entries ("keeping poisoned page in swap
 * cache": TTU_HWPOISON dropped). An unmapped poisoned page not in the swap
 * cache leaves the LRU and is freed (taken offline by the buddy free).
 *
 * Options beyond the kernel: `ttuHwpoison: true` keeps TTU_HWPOISON even for
 * a swap-cache folio and `split: false` skips the split — together they give
 * spec §7 scenario 25 (page 7 → hwpoison entry, the other pages → swap
 * PTEs, nr 1 everywhere). Killing processes is not modelled.
 */

export interface PoisonOptions {
  ttuHwpoison?: boolean;
  split?: boolean;
}

/** Returns 'ignored' when the split failed, 'already' for a second hit, else 'recovered'. */
export function doPoison(k: Kernel, p: Proc, addr: number, o: PoisonOptions): 'recovered' | 'ignored' | 'already' {
  const t = p.pt.pteTableOf(addr)!;
  const i = pteIdx(addr);
  const pfn = ptePfn(t.lo[i]!, t.hi[i]!);
  const mm = k.memmap;
  if (testSetPageHWPoison(mm, pfn)) return 'already';
  let folio = k.folioOf(pfn);
  // get_hwpoison_page(): memory_failure holds a reference throughout.
  k.ledger.charge(EV.ATOMIC_REF);
  mm.aux[folio.head] = mm.aux[folio.head]! + 1;
  if (folio.order > 0) {
    folioSetHasHwpoisoned(folio);
    if (o.split !== false) {
      folioTrylock(folio);
      const err = splitFolio(k, folio, null, pfn - folio.head);
      folio = k.folioOf(pfn);
      folioUnlock(folio);
      if (err !== 0) {
        putFolioRefs(k, folio, 1);
        return 'ignored';
      }
    }
  }
  folio = k.folioOf(pfn);
  const sc = FLAG.swapcache.mask | FLAG.swapbacked.mask;
  const swapcache = (mm.flags[folio.head]! & sc) === sc;
  let ttu = TTU_IGNORE_MLOCK | TTU_SYNC | TTU_HWPOISON;
  if (swapcache && o.ttuHwpoison !== true) ttu &= ~TTU_HWPOISON;
  if (folioMappedRaw(k, folio)) {
    folioTrylock(folio);
    tryToUnmap(k, folio, ttu);
    folioUnlock(folio);
  }
  if (!folioMappedRaw(k, folio) && !swapcache) {
    // me_pagecache_clean → delete_from_lru_cache: off the LRU, the page is then freed (offline).
    if (lruRemoveOnFree(k, folio)) {
      mm.flags[folio.head] = (mm.flags[folio.head]! & ~(FLAG.lru.mask | FLAG.active.mask)) >>> 0;
      k.ledger.charge(EV.ATOMIC_RMW);
    }
  }
  putFolioRefs(k, folio, 1);
  return 'recovered';
}
