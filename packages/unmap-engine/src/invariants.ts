import { F_SWAP, FLAG, type Folio } from '@foliolab/folio-flags';
import {
  checkContpteInvariants,
  ptePfn,
  ptePresent,
  pteSwpExclusive,
  pteWrite,
  softleafIsDeviceExclusive,
  softleafIsDevicePrivate,
  softleafIsHwpoison,
  softleafIsMarker,
  softleafIsMigration,
  softleafIsSwap,
  softleafOffset,
  softleafPfn,
  softleafType,
} from '@foliolab/pagetable-arm64-contpte';
import { checkRmapInvariants, type FolioCensus } from '@foliolab/rmap';
import { checkSwapInvariants, swpEntry, type SwpEntry } from '@foliolab/swap';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, PAGE_SIZE } from './consts.js';
import { allFolios, gupRefs, pincountOf } from './census.js';
import { hex } from './consts.js';
import type { Kernel } from './kernel.js';
import { folioLruList, lruWalk, NR_LRU_LISTS } from './lru.js';
import { isSpecial } from './pte-util.js';

/*
 * checkInvariants(): every invariant the specs list that can be checked
 * between operations, from a page-table census:
 *  - PTE ↔ mapcount agreement and every rmap invariant (rmap package, with
 *    the census: PTEs per page, writable PTEs per page, GUP references);
 *  - refcount = mappings + swap cache + GUP gets + pins (exact at rest:
 *    nothing is isolated or in an LRU-add batch between operations);
 *  - swap counts = swap PTEs (+ cache) and swp-exclusive ⇒ count 1 (swap
 *    package, with the census);
 *  - contpte block consistency (page-table package);
 *  - no writable PTE on a non-exclusive anon page;
 *  - RSS counters = PTE census; MM_SWAPENTS > 0 ⇒ on the mmlist;
 *  - every PTE lies inside a VMA; VMAs sorted and disjoint;
 *  - no migration entry, no held lock, no pending TLB batch at rest;
 *  - LRU list integrity; every live anon folio is on the LRU.
 */

export interface Violation {
  readonly rule: string;
  readonly where: string;
  readonly detail: string;
}

export interface InvariantReport {
  readonly ok: boolean;
  readonly violations: Violation[];
}

interface Census {
  ptes: number;
  perPage: Int32Array;
  writable: Int32Array;
}

/** Run every check; never throws for a violation (it is reported). */
export function checkInvariants(k: Kernel): InvariantReport {
  const v: Violation[] = [];
  const add = (rule: string, where: string, detail: string): void => {
    v.push({ rule, where, detail });
  };
  const mm = k.memmap;
  const census = new Map<number, Census>();
  const swapRefs = new Map<number, number>();
  const swapExcl = new Set<number>();
  const censusOf = (f: Folio): Census => {
    let c = census.get(f.head);
    if (c === undefined) {
      c = { ptes: 0, perPage: new Int32Array(f.nr), writable: new Int32Array(f.nr) };
      census.set(f.head, c);
    }
    return c;
  };
  for (const p of k.procs.values()) {
    const where = `pid ${p.pid}`;
    if (p.exited) {
      if (p.vmas.length !== 0 || p.rss.some((x) => x !== 0)) add('exited', where, 'an exited process still has VMAs or RSS');
      continue;
    }
    for (let j = 0; j < p.vmas.length; j++) {
      const a = p.vmas[j]!;
      if (a.vmStart % PAGE_SIZE !== 0 || a.vmEnd % PAGE_SIZE !== 0 || a.vmEnd <= a.vmStart) add('vma', where, `bad VMA [${hex(a.vmStart)}, ${hex(a.vmEnd)})`);
      const b = p.vmas[j + 1];
      if (b !== undefined && b.vmStart < a.vmEnd) add('vma', where, `VMAs [${hex(a.vmStart)}, ${hex(a.vmEnd)}) and [${hex(b.vmStart)}, …) overlap or are unsorted`);
    }
    let anon = 0;
    let swapents = 0;
    for (const t of p.pt.pteTables) {
      for (let i = 0; i < 512; i++) {
        const lo = t.lo[i]!;
        const hi = t.hi[i]!;
        if ((lo | hi) === 0) continue;
        const va = t.vaOf(i);
        const at = `${where} ${hex(va)}`;
        const vma = p.vmas.find((x) => x.vmStart <= va && va < x.vmEnd);
        if (vma === undefined) add('pte-outside-vma', at, 'a non-none PTE outside every VMA');
        if (ptePresent(lo, hi)) {
          const pfn = ptePfn(lo, hi);
          if (isSpecial(hi)) {
            if (pfn !== k.zeroPfn) add('special-pte', at, `special PTE maps pfn ${pfn}, not the zero page`);
            continue;
          }
          const f = mm.folioOf(pfn);
          if (f === null || f.head === k.zeroPfn) {
            add('pte-free-page', at, `PTE maps pfn ${pfn}, which is not in an allocated folio`);
            continue;
          }
          const c = censusOf(f);
          c.ptes++;
          c.perPage[pfn - f.head]!++;
          anon++;
          if (pteWrite(lo, hi)) {
            c.writable[pfn - f.head]!++;
            if ((mm.flags[pfn]! & FLAG.anon_exclusive.mask) === 0) add('writable-not-exclusive', at, `writable PTE on page ${pfn} that is not PageAnonExclusive`);
          }
        } else if (softleafIsSwap(lo, hi)) {
          swapents++;
          if (k.si === null || softleafType(lo, hi) !== k.si.type) {
            add('swap-pte', at, 'swap PTE without its swap device');
            continue;
          }
          const e = swpEntry(k.si.type, softleafOffset(lo, hi));
          swapRefs.set(e, (swapRefs.get(e) ?? 0) + 1);
          if (pteSwpExclusive(lo, hi)) swapExcl.add(e);
        } else if (softleafIsDeviceExclusive(lo, hi) || softleafIsDevicePrivate(lo, hi)) {
          const pfn = softleafPfn(lo, hi);
          const f = mm.folioOf(pfn);
          if (f === null) {
            add('pte-free-page', at, `device entry names free pfn ${pfn}`);
            continue;
          }
          const c = censusOf(f);
          c.ptes++;
          c.perPage[pfn - f.head]!++;
          anon++;
        } else if (softleafIsMigration(lo, hi)) {
          add('migration-at-rest', at, 'a migration entry outlived its split/migration');
        } else if (!softleafIsHwpoison(lo, hi) && !softleafIsMarker(lo, hi)) {
          add('pte-encoding', at, `unknown entry 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}`);
        }
      }
    }
    if (p.rss[MM_ANONPAGES] !== anon) add('rss', where, `MM_ANONPAGES ${p.rss[MM_ANONPAGES]} but ${anon} anon PTEs`);
    if (p.rss[MM_SWAPENTS] !== swapents) add('rss', where, `MM_SWAPENTS ${p.rss[MM_SWAPENTS]} but ${swapents} swap PTEs`);
    if (p.rss[MM_FILEPAGES] !== 0 || p.rss[MM_SHMEMPAGES] !== 0) add('rss', where, 'file/shmem counters are non-zero without file mappings');
    if (swapents > 0 && !p.onMmlist) add('mmlist', where, 'has swap PTEs but is not on the mmlist');
    for (const s of checkContpteInvariants(p.pt)) add('contpte', where, s);
  }
  const folios = allFolios(k);
  const { gets, pins } = gupRefs(k);
  for (const f of folios) {
    const c = census.get(f.head);
    const w = mm.flags[f.head]!;
    const swapcache = (w & (FLAG.swapcache.mask | FLAG.swapbacked.mask)) === (FLAG.swapcache.mask | FLAG.swapbacked.mask);
    const g = gets.get(f.head) ?? 0;
    const pinCount = pins.get(f.head) ?? 0;
    if (pincountOf(k, f) !== pinCount) add('pins', `folio ${f.head}`, `pincount ${pincountOf(k, f)} but ${pinCount} pin handles reference it`);
    const expected = (c?.ptes ?? 0) + (swapcache ? f.nr : 0) + g + (f.order > 0 ? pinCount : pinCount * 1024);
    const ref = mm.aux[f.head]!;
    if (ref !== expected) {
      add('refcount-exact', `folio ${f.head}`, `refcount ${ref}, expected ${expected} (PTEs ${c?.ptes ?? 0}, swap cache ${swapcache ? f.nr : 0}, gets ${g}, pins ${pinCount})`);
    }
    // memory_failure's delete_from_lru_cache keeps a poisoned page off the LRU (7.2.13 mm/memory-failure.c me_swapcache_dirty)
    if ((w & FLAG.lru.mask) === 0 && (w & FLAG.hwpoison.mask) === 0) add('lru', `folio ${f.head}`, 'a live folio is not on the LRU');
    if ((w & FLAG.locked.mask) !== 0) add('locked-at-rest', `folio ${f.head}`, 'folio left locked');
    if (swapcache && k.si !== null) {
      const e = f.fa[f.fb + F_SWAP]! as SwpEntry;
      if (e === 0) add('swapcache', `folio ${f.head}`, 'PG_swapcache without folio->swap');
    }
  }
  const censusFn = (f: Folio): FolioCensus | undefined => {
    const c = census.get(f.head);
    return { ptes: c?.ptes ?? 0, pmds: 0, ptesPerPage: c?.perPage ?? new Int32Array(f.nr), writablePerPage: c?.writable ?? new Int32Array(f.nr), extraRefs: gets.get(f.head) ?? 0 };
  };
  for (const r of checkRmapInvariants(k.rmap, folios, { census: censusFn, allFolios: true })) add(`rmap:${r.rule}`, r.head < 0 ? 'rmap' : `folio ${r.head}`, r.message);
  if (k.si !== null) {
    for (const s of checkSwapInvariants(k.si, { swapPteRefs: swapRefs, swapPteExclusive: (e) => swapExcl.has(e) })) add('swap', 'swap', s);
  }
  checkLru(k, add);
  if (k.ledger.locks.heldCount !== 0) add('locks-held', 'ledger', `locks held at rest: ${k.ledger.locks.heldNames().join(', ')}`);
  if (k.tlb.flushRequired) add('tlb-batch', 'tlb_ubc', 'a deferred TLB flush is still pending at rest');
  return { ok: v.length === 0, violations: v };
}

function checkLru(k: Kernel, add: (rule: string, where: string, detail: string) => void): void {
  const v = k.lruvec;
  let total = 0;
  for (let lru = 0; lru < NR_LRU_LISTS; lru++) {
    let n = 0;
    let pages = 0;
    let prev = 0;
    let bad = false;
    lruWalk(k, lru, (head, p, list) => {
      const f = k.memmap.folioOf(head);
      if (f === null || f.head !== head) {
        add('lru', 'lru', `list ${lru} entry ${head} is not a folio head`);
        bad = true;
        return false;
      }
      if ((k.memmap.flags[f.head]! & FLAG.lru.mask) === 0) add('lru', `folio ${f.head}`, `on LRU list ${lru} without PG_lru`);
      if (list !== lru) add('lru', `folio ${f.head}`, `on list ${lru}, records list ${list}`);
      else if (folioLruList(f) !== lru) add('lru', `folio ${f.head}`, `on list ${lru}, its flags say list ${folioLruList(f)} (folio_lru_list)`);
      if (p !== prev) add('lru', `folio ${f.head}`, `prev link ${p}, expected ${prev}`);
      prev = head + 1;
      pages += f.nr;
      if (++n > k.memmap.nrPages) {
        add('lru', 'lru', `list ${lru}: cycle`);
        bad = true;
        return false;
      }
      return true;
    });
    if (bad) return;
    if (prev !== v.tail[lru]) add('lru', 'lru', `list ${lru}: tail ${v.tail[lru]}, walk ended at ${prev}`);
    if (pages !== v.pages[lru]) add('lru', 'lru', `list ${lru}: size ${v.pages[lru]} pages, list holds ${pages}`);
    total += n;
  }
  if (total !== v.count) add('lru', 'lru', `${v.count} folios counted, lists hold ${total}`);
}
