import { F_SWAP, FLAG, type Folio } from '@foliolab/folio-flags';
import { swpEntry, swpOffset, swpType, type SwpEntry } from './entry.js';
import { slotCached, slotCount, slotData, slotMap, slotShadow, slotZero, SwapDevice } from './device.js';
import {
  CLUSTER_FLAG,
  COUNT_CONTINUED,
  LIST_FRAG,
  LIST_FREE,
  LIST_FULL,
  LIST_NONE,
  LIST_NONFULL,
  ST,
  SWAP_COUNT_MASK,
  SWAP_HAS_CACHE,
  SWAP_MAP_BAD,
} from './layout.js';
import { clusterFlag } from './cluster.js';

/** Facts about the world outside the swap layer that the invariants compare against. */
export interface SwapFacts {
  /**
   * References to each slot from outside the swap layer: swap PTEs in all mms
   * plus shmem mapping entries (an engine computes it from its page tables).
   * A Map keyed by entry value or a function; a missing entry counts 0.
   */
  readonly swapPteRefs?: ReadonlyMap<number, number> | ((entry: SwpEntry) => number);
  /** Whether a swap PTE with the swp-exclusive bit references `entry` (then its count must be 1). */
  readonly swapPteExclusive?: (entry: SwpEntry) => boolean;
}

const MAX_REPORTS = 50;
const M_SWAPCACHE = FLAG.swapcache.mask | FLAG.swapbacked.mask;

/**
 * The swap invariants of folio-rmap-swap.md §3 "Invariants (swap)", checked
 * between operations; returns the violations (empty = consistent), at most 50.
 *
 * - count(s) = external references (facts.swapPteRefs), exclusive ⇒ count 1;
 * - s cached ⇔ its table word is folio F ⇔ F has PG_swapcache ∧ F.swap ≤ s <
 *   F.swap + nr(F); a table word is a PFN or a shadow, never both; the legacy
 *   SWAP_HAS_CACHE bit ⇔ cached;
 * - s free ⇔ count 0 ∧ not cached, and a free slot keeps no shadow, zeromap bit
 *   or data; a cached slot at count 0 is legal (lazy free);
 * - a folio's slots are contiguous, aligned to nr, in one cluster; its
 *   refcount covers the cache's nr references;
 * - ci->count = used slots (the bad header included); a cluster has its swap
 *   table (and count bytes, shadows, data) exactly while ci->count > 0;
 *   every cluster is on
 *   exactly the list its count allows (free: 0; full: all; nonfull / frag of
 *   its order: in between), list links and lengths agree;
 * - extension: an extended slot has a table and a count above the inline
 *   limit, other slots hold 0 there; per-cluster extended-slot counts agree;
 *   an extend_table exists only while some slot uses it (phase III);
 * - inuse_pages, nr_swap_pages, NR_SWAPCACHE and the live-table count agree;
 *   per-CPU hints are invalid or aligned offsets inside the device; no swap
 *   lock is held.
 */
export function checkSwapInvariants(si: SwapDevice, facts: SwapFacts = {}): string[] {
  const out: string[] = [];
  if (!(si instanceof SwapDevice)) return ['checkSwapInvariants: not a SwapDevice'];
  const report = (msg: string): boolean => {
    if (out.length < MAX_REPORTS) out.push(msg);
    return out.length >= MAX_REPORTS;
  };
  checkSlots(si, facts, report);
  if (out.length === 0) checkFolios(si, report);
  if (out.length === 0) checkClusters(si, report);
  return out;
}

type Report = (msg: string) => boolean;

function refsOf(facts: SwapFacts): ((e: SwpEntry) => number) | null {
  const r = facts.swapPteRefs;
  if (r === undefined) return null;
  if (typeof r === 'function') return r;
  return (e) => r.get(e) ?? 0;
}

function checkSlots(si: SwapDevice, facts: SwapFacts, report: Report): void {
  const refs = refsOf(facts);
  const excl = facts.swapPteExclusive ?? null;
  const legacy = si.countModel === 'legacy';
  const cs = si.clusterSize;
  let inuse = 0;
  let cachedSlots = 0;
  for (let s = 0; s < si.nrSlots; s++) {
    const m = slotMap(si, s);
    const cached = slotCached(si, s);
    const shadow = slotShadow(si, s);
    if (s === 0) {
      if (m !== SWAP_MAP_BAD || cached >= 0 || shadow !== 0) report(`slot 0 (the header) is not SWAP_MAP_BAD`);
      continue;
    }
    const e = swpEntry(si.type, s);
    const c = s >>> si.clusterShift;
    const t = si.ext[c] ?? null;
    const count = slotCount(si, s);
    if (m === SWAP_MAP_BAD && report(`slot ${s}: SWAP_MAP_BAD outside the header`)) return;
    if ((m & SWAP_HAS_CACHE) !== 0 !== (legacy && cached >= 0)) {
      if (report(`slot ${s}: SWAP_HAS_CACHE ${(m & SWAP_HAS_CACHE) !== 0} but cached ${cached >= 0} (model ${si.countModel})`)) return;
    }
    if ((m & COUNT_CONTINUED) !== 0) {
      if (t === null || (m & SWAP_COUNT_MASK) !== si.extMarker || count <= si.inlineLimit) {
        if (report(`slot ${s}: extended (byte 0x${m.toString(16)}) but table ${t !== null}, count ${count}`)) return;
      }
    } else if ((m & SWAP_COUNT_MASK) > si.inlineLimit || (t !== null && t[s & (cs - 1)] !== 0)) {
      if (report(`slot ${s}: inline byte 0x${m.toString(16)} with extension value ${t?.[s & (cs - 1)]}`)) return;
    }
    if (cached >= 0) {
      cachedSlots++;
      if (shadow !== 0 && report(`slot ${s}: table word is both folio ${cached} and shadow ${shadow}`)) return;
    }
    if (count > 0 || cached >= 0) inuse++;
    else if ((shadow !== 0 || slotZero(si, s) || slotData(si, s) !== 0) && report(`slot ${s}: free but keeps shadow/zeromap/data`)) return;
    if (refs !== null) {
      const r = refs(e);
      if (r !== count && report(`slot ${s}: count ${count} but ${r} external references`)) return;
    }
    if (excl !== null && excl(e) && count !== 1 && report(`slot ${s}: an exclusive swap PTE references it but count is ${count}`)) return;
  }
  if (inuse !== si.inusePages) report(`inuse_pages ${si.inusePages}, used slots ${inuse}`);
  if (si.nrSwapPages !== si.totalSwapPages - si.inusePages) {
    report(`nr_swap_pages ${si.nrSwapPages} ≠ total ${si.totalSwapPages} − inuse ${si.inusePages}`);
  }
  if (si.stat[ST.NR_SWAPCACHE] !== cachedSlots) report(`NR_SWAPCACHE ${si.stat[ST.NR_SWAPCACHE]}, cached slots ${cachedSlots}`);
}

/** Slots → folios and folios → slots. */
function checkFolios(si: SwapDevice, report: Report): void {
  const mm = si.memmap;
  for (let s = 1; s < si.nrSlots; s++) {
    const p = slotCached(si, s);
    if (p < 0) continue;
    const f = p < mm.nrPages ? mm.folioOf(p) : null;
    if (f === null || f.head !== p) {
      if (report(`slot ${s}: table word ${p} is not the head of an allocated folio`)) return;
      continue;
    }
    const first = swpOffset(f.fa[f.fb + F_SWAP]! as SwpEntry);
    if (s !== first) {
      if (report(`slot ${s}: folio ${p} has swap offset ${first}, not this slot`)) return;
      continue;
    }
    if (checkCacheFolio(si, f, report)) return;
    s += f.nr - 1;
  }
  for (let pfn = 0; pfn < mm.nrPages; ) {
    const f = mm.folioOf(pfn);
    if (f === null) {
      pfn++;
      continue;
    }
    const e = f.fa[f.fb + F_SWAP]! as SwpEntry;
    const inCache = (mm.flags[f.head]! & M_SWAPCACHE) === M_SWAPCACHE;
    if (e !== 0 && swpType(e) === si.type) {
      if (!inCache && report(`folio ${f.head}: swap entry offset ${swpOffset(e)} without PG_swapcache`)) return;
      if (inCache && slotCached(si, swpOffset(e)) !== f.head) {
        if (report(`folio ${f.head}: in the swap cache at offset ${swpOffset(e)} but the slot does not point to it`)) return;
      }
    }
    pfn = f.head + f.nr;
  }
}

/** The folio at the first slot of a cached run; true when the report is full. */
function checkCacheFolio(si: SwapDevice, f: Folio, report: Report): boolean {
  const { head, nr } = f;
  const e = f.fa[f.fb + F_SWAP]! as SwpEntry;
  const off = swpOffset(e);
  if ((si.memmap.flags[head]! & M_SWAPCACHE) !== M_SWAPCACHE && report(`folio ${head}: cached in slots but no PG_swapcache`)) return true;
  if (swpType(e) !== si.type && report(`folio ${head}: swap type ${swpType(e)} is not ${si.type}`)) return true;
  if (off % nr !== 0 && report(`folio ${head}: swap offset ${off} is not aligned to ${nr}`)) return true;
  if (off + nr > si.nrSlots && report(`folio ${head}: slots ${off}+${nr} run past the device`)) return true;
  for (let s = off; s < off + nr && s < si.nrSlots; s++) {
    if (slotCached(si, s) !== head && report(`folio ${head}: slot ${s} does not point to it (contiguity)`)) return true;
  }
  const ref = si.memmap.aux[head]!;
  if (ref < nr && report(`folio ${head}: refcount ${ref} below the swap cache's ${nr}`)) return true;
  return false;
}

function checkClusters(si: SwapDevice, report: Report): void {
  const cs = si.clusterSize;
  let tables = 0;
  for (let c = 0; c < si.nrClusters; c++) {
    let used = 0;
    let extended = 0;
    for (let s = c * cs; s < (c + 1) * cs; s++) {
      if (slotMap(si, s) !== 0 || slotCached(si, s) >= 0) used++;
      if ((slotMap(si, s) & COUNT_CONTINUED) !== 0) extended++;
    }
    if (si.ciCount[c] !== used && report(`cluster ${c}: ci->count ${si.ciCount[c]}, used slots ${used}`)) return;
    // The swap table lives exactly while the cluster is in use (swap_cluster_alloc_table / _free_table).
    const hasTable = si.ciBase[c]! >= 0;
    if (hasTable !== (si.ciCount[c] !== 0) && report(`cluster ${c}: count ${si.ciCount[c]} but swap table ${hasTable ? 'allocated' : 'missing'}`)) return;
    if (!hasTable && si.ciShadow[c] !== null && report(`cluster ${c}: shadows without a swap table`)) return;
    if (si.ciExtSlots[c] !== extended && report(`cluster ${c}: ${si.ciExtSlots[c]} extended slots recorded, ${extended} found`)) return;
    if (si.ext[c] !== null) {
      tables++;
      if (si.countModel === 'extend' && extended === 0 && report(`cluster ${c}: extend_table with no slot using it`)) return;
    }
    if (checkClusterList(si, c, report)) return;
    const lock = si.ciLock[c]!;
    if (lock >= 0 && si.ledger.locks.isHeld(lock) && report(`cluster ${c}: ci->lock held between operations`)) return;
  }
  if (si.stat[ST.EXT_TABLES] !== tables) report(`extension tables: ${tables} live, counter ${si.stat[ST.EXT_TABLES]}`);
  if (checkTablePool(si, report)) return;
  if (si.ledger.locks.isHeld(si.siLock)) report('si->lock held between operations');
  checkListLinks(si, report);
  for (let o = 0; o < si.pcpOffset.length; o++) {
    const off = si.pcpOffset[o]!;
    if (off !== 0 && (off >= si.nrSlots || off % (1 << o) !== 0)) report(`per-CPU hint of order ${o}: offset ${off}`);
  }
}

/** The swap-table pool: every table in use by one cluster or on the free stack, free tables clean; true when the report is full. */
function checkTablePool(si: SwapDevice, report: Report): boolean {
  const cs = si.clusterSize;
  const owner = new Int32Array(si.tbCapacity).fill(-1);
  let inUse = 0;
  for (let c = 0; c < si.nrClusters; c++) {
    const b = si.ciBase[c]!;
    if (b < 0) continue;
    inUse++;
    const t = b / cs;
    if (b % cs !== 0 || t >= si.tbCapacity || owner[t] !== -1) return report(`cluster ${c}: swap table base ${b} is not a pool table of its own`);
    if (si.ciCached[c] !== si.poolCached[t] || si.ciMap[c] !== si.poolMap[t] || si.ciData[c] !== si.poolData[t]) {
      return report(`cluster ${c}: its table views are not those of pool table ${t}`);
    }
    owner[t] = c;
  }
  for (let c = 0; c < si.nrClusters; c++) {
    if (si.ciBase[c]! < 0 && (si.ciCached[c] !== null || si.ciMap[c] !== null || si.ciData[c] !== null)) {
      return report(`cluster ${c}: table views without a swap table`);
    }
  }
  const n = si.tbCapacity;
  if (si.poolCached.length !== n || si.poolMap.length !== n || si.poolData.length !== n) {
    return report(`swap-table pool: ${si.poolCached.length} / ${si.poolMap.length} / ${si.poolData.length} tables for capacity ${n}`);
  }
  if (si.poolChunks.length !== (n === 0 ? 0 : 32 - Math.clz32(n - 1) + 1)) {
    return report(`swap-table pool: ${si.poolChunks.length} chunks for capacity ${n}`);
  }
  if (inUse !== si.tbInUse || inUse + si.tbFreeTop !== si.tbCapacity) {
    return report(`swap-table pool: ${inUse} in use (recorded ${si.tbInUse}), ${si.tbFreeTop} free, capacity ${si.tbCapacity}`);
  }
  for (let k = 0; k < si.tbFreeTop; k++) {
    const t = si.tbFree[k]!;
    if (t < 0 || t >= si.tbCapacity || owner[t] !== -1) return report(`swap-table pool: free entry ${t} is in use or outside the pool`);
    owner[t] = -2;
    const cached = si.poolCached[t] ?? null;
    const map = si.poolMap[t] ?? null;
    const data = si.poolData[t] ?? null;
    // A table never handed out has no views yet (poolInitTable): all three or none.
    if (cached === null || map === null || data === null) {
      if (cached !== null || map !== null || data !== null) return report(`swap-table pool: free table ${t} has some views only`);
      continue;
    }
    for (let i = 0; i < cs; i++) {
      if (cached[i] !== -1 || map[i] !== 0 || data[i] !== 0) return report(`swap-table pool: free table ${t} is not clean`);
    }
  }
  return false;
}

/** A cluster is on the list its count and order call for; true when the report is full. */
function checkClusterList(si: SwapDevice, c: number, report: Report): boolean {
  const n = si.ciCount[c]!;
  const list = si.ciList[c]!;
  const flag = clusterFlag(si, c);
  const order = si.ciOrder[c]!;
  if (list === LIST_NONE) return report(`cluster ${c}: on no list between operations`);
  if (flag === CLUSTER_FLAG.FREE && (n !== 0 || order !== 0)) return report(`cluster ${c}: free with count ${n}, order ${order}`);
  if (flag === CLUSTER_FLAG.FULL && n !== si.clusterSize) return report(`cluster ${c}: full with count ${n}`);
  if (flag === CLUSTER_FLAG.NONFULL || flag === CLUSTER_FLAG.FRAG) {
    const base = flag === CLUSTER_FLAG.NONFULL ? LIST_NONFULL : LIST_FRAG;
    if (n === 0 || n === si.clusterSize) return report(`cluster ${c}: on a nonfull/frag list with count ${n}`);
    if (list - base !== order) return report(`cluster ${c}: on the list of order ${list - base} but has order ${order}`);
  }
  if (n === 0 && list !== LIST_FREE) return report(`cluster ${c}: empty but not on the free list`);
  return false;
}

function checkListLinks(si: SwapDevice, report: Report): void {
  let total = 0;
  for (let list = LIST_FREE; list <= LIST_FULL; list++) {
    let len = 0;
    let prev = -1;
    for (let c = si.listHead[list]!; c >= 0; c = si.ciNext[c]!) {
      if (si.ciList[c] !== list || si.ciPrev[c] !== prev || ++len > si.nrClusters) {
        report(`list ${list}: broken link at cluster ${c}`);
        return;
      }
      prev = c;
    }
    if (si.listTail[list] !== prev || si.listLen[list] !== len) report(`list ${list}: tail/length disagree (${len} walked)`);
    total += len;
  }
  if (total !== si.nrClusters) report(`${total} clusters on lists, ${si.nrClusters} exist`);
}
