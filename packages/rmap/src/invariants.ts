import {
  ENTIRELY_MAPPED,
  F_DEFERRED_NEXT,
  F_DEFERRED_PREV,
  F_ENTIRE_MAPCOUNT,
  F_LARGE_MAPCOUNT,
  F_MAPPING,
  F_MM_ID0,
  F_MM_ID1,
  F_MM_ID_MAPCOUNT0,
  F_MM_ID_MAPCOUNT1,
  F_NR_PAGES_MAPPED,
  F_PINCOUNT,
  FLAG,
  FOLIO_PAGES_MAPPED,
  MM_IDS_LOCK_MASK,
  MM_IDS_SHARED_MASK,
  MM_ID_DUMMY,
  MM_ID_MASK,
  PAGE_MAPPING_FLAGS,
  PAGE_MAPPING_KSM,
  mappingId,
  mappingIsAnon,
  type Folio,
} from '@foliolab/folio-flags';
import type { DeferredSplitQueue } from './split-queue.js';
import type { RmapState } from './state.js';
import { NR_STAT_ORDERS } from './stats.js';
import { HPAGE_PMD_NR, HPAGE_PMD_ORDER } from './types.js';

/*
 * checkRmapInvariants: spec folio-rmap-swap §2 "Invariants (rmap)", every
 * item that can be checked from folio state, plus the ones that need facts
 * only a page-table census has (passed in by the caller). Reads only; charges
 * nothing.
 */

/** One violated rule. `head` is −1 for rules about global state (queue, stats). */
export interface RmapViolation {
  readonly head: number;
  readonly rule: string;
  readonly message: string;
}

/** What a caller's page-table census knows about one folio. */
export interface FolioCensus {
  /** Present PTEs mapping pages of the folio, in all page tables. */
  readonly ptes?: number;
  /** PMDs mapping the folio. */
  readonly pmds?: number;
  /** Present PTEs per page (index = page in folio). */
  readonly ptesPerPage?: ArrayLike<number>;
  /** Writable present PTEs per page. */
  readonly writablePerPage?: ArrayLike<number>;
  /** References beyond mappings, swap cache and pins the caller knows of (isolation, LRU batch, FOLL_GET). */
  readonly extraRefs?: number;
}

/** Optional external facts for checkRmapInvariants. */
export interface RmapFacts {
  /** Census of one folio (undefined = unknown). */
  readonly census?: (folio: Folio) => FolioCensus | undefined;
  /**
   * `folios` lists every allocated folio of the memmap: also check the
   * global stats (NR_ANON_MAPPED, NR_ANON_THPS, NR_FILE_MAPPED,
   * NR_{FILE,SHMEM}_PMDMAPPED, nr_anon[order], nr_anon_partially_mapped[order])
   * against the sum over folios.
   */
  readonly allFolios?: boolean;
}

const AE = FLAG.anon_exclusive.mask;
const PM = FLAG.partially_mapped.mask;
const LR = FLAG.large_rmappable.mask;
const SWAPBACKED = FLAG.swapbacked.mask;
const SWAPCACHE = FLAG.swapcache.mask;

class Out {
  readonly list: RmapViolation[] = [];
  add(head: number, rule: string, message: string): void {
    this.list.push({ head, rule, message });
  }
}

/**
 * Check the rmap invariants of `folios` (and the deferred split queue) under
 * `rmap`'s mapcount mode; returns the violations (empty = consistent).
 */
export function checkRmapInvariants(rmap: RmapState, folios: Iterable<Folio>, facts: RmapFacts = {}): RmapViolation[] {
  const out = new Out();
  const listed = new Set<number>();
  checkQueue(rmap.splitQueue, listed, out);
  const sums: Sums = {
    anonMapped: 0,
    anonThps: 0,
    fileMapped: 0,
    filePmd: 0,
    shmemPmd: 0,
    nrAnon: new Float64Array(NR_STAT_ORDERS),
    flagged: new Float64Array(NR_STAT_ORDERS),
  };
  for (const folio of folios) {
    if (!rmap.memmap.folioIsLive(folio)) {
      out.add(folio.head, 'live', `folio ${folio.head} is not an allocated folio of this memmap`);
      continue;
    }
    checkFolio(rmap, folio, facts.census?.(folio), listed, out, sums);
  }
  if (facts.allFolios === true) checkStats(rmap, sums, out);
  return out.list;
}

interface Sums {
  anonMapped: number;
  anonThps: number;
  fileMapped: number;
  filePmd: number;
  shmemPmd: number;
  readonly nrAnon: Float64Array;
  readonly flagged: Float64Array;
}

function checkFolio(st: RmapState, f: Folio, census: FolioCensus | undefined, listed: Set<number>, out: Out, sums: Sums): void {
  const mm = f.mm;
  const mc = mm.mapcount!;
  const { fa, fb, head, nr } = f;
  const large = f.order > 0;
  const at = `folio ${head}`;
  const anon = mappingIsAnon(fa[fb + F_MAPPING]!);
  const total = large ? fa[fb + F_LARGE_MAPCOUNT]! + 1 : mc[head]! + 1;
  const entire = large ? fa[fb + F_ENTIRE_MAPCOUNT]! + 1 : 0;
  if (total < 0 || entire < 0 || entire > total) out.add(head, 'counters', `${at}: mapcount ${total}, entire ${entire}`);
  for (let p = head; p < head + nr; p++) if (mc[p]! < -1) out.add(head, 'counters', `${at}: page ${p - head} _mapcount ${mc[p]}`);
  if (large && fa[fb + F_PINCOUNT]! < 0) out.add(head, 'counters', `${at}: _pincount ${fa[fb + F_PINCOUNT]}`);
  if (!large) checkSmallFields(f, out);
  else {
    if (st.pageMapcount) checkLegacy(f, out, st.mmId);
    if (st.mmId) checkMmId(f, out, st.pageMapcount);
  }
  if (census !== undefined) checkCensus(st, f, census, out);
  checkRefcount(f, total, census, out);
  checkExclusive(st, f, census, out);
  checkDeferred(f, anon, listed, out);
  if (anon && total > 0) {
    const mapping = fa[fb + F_MAPPING]!;
    if ((mapping & PAGE_MAPPING_FLAGS) !== PAGE_MAPPING_KSM && !st.anonVmas.has(mappingId(mapping))) {
      out.add(head, 'anon-vma', `${at}: mapped anon folio without a live anon_vma (id ${mappingId(mapping)})`);
    }
  }
  const pmdMapped = large && entire > 0 && f.order === HPAGE_PMD_ORDER;
  if (anon) {
    sums.anonMapped += pagesMapped(st, f);
    if (pmdMapped) sums.anonThps += HPAGE_PMD_NR;
    if (large) sums.nrAnon[f.order]!++;
  } else {
    sums.fileMapped += pagesMapped(st, f);
    if (pmdMapped && (mm.flags[head]! & SWAPBACKED) !== 0) sums.shmemPmd += HPAGE_PMD_NR;
    else if (pmdMapped) sums.filePmd += HPAGE_PMD_NR;
  }
  if (f.order >= 2 && (mm.flags[head + 1]! & PM) !== 0) sums.flagged[f.order]!++;
}

/** Pages this folio contributes to NR_ANON_MAPPED / NR_FILE_MAPPED (whole folios under NO_PAGE_MAPCOUNT). */
function pagesMapped(st: RmapState, f: Folio): number {
  const mc = f.mm.mapcount!;
  if (f.order === 0) return mc[f.head]! >= 0 ? 1 : 0;
  const { fa, fb } = f;
  if (!st.pageMapcount) return fa[fb + F_LARGE_MAPCOUNT]! >= 0 ? f.nr : 0;
  if (fa[fb + F_ENTIRE_MAPCOUNT]! >= 0) return f.nr;
  let n = 0;
  for (let p = f.head; p < f.head + f.nr; p++) if (mc[p]! >= 0) n++;
  return n;
}

function checkSmallFields(f: Folio, out: Out): void {
  const { fa, fb, head } = f;
  if (fa[fb + F_LARGE_MAPCOUNT] !== -1 || fa[fb + F_ENTIRE_MAPCOUNT] !== -1 || fa[fb + F_NR_PAGES_MAPPED] !== 0 || fa[fb + F_PINCOUNT] !== 0) {
    out.add(head, 'small-fields', `folio ${head}: order-0 folio has large-folio counters set`);
  }
  if (fa[fb + F_MM_ID0] !== 0 || fa[fb + F_MM_ID1] !== 0) out.add(head, 'mm-id', `folio ${head}: order-0 folio has MM_ID state`);
}

function checkLegacy(f: Folio, out: Out, mmId: boolean): void {
  const mc = f.mm.mapcount!;
  const { fa, fb, head, nr } = f;
  let pageSum = 0;
  let mappedPages = 0;
  for (let p = head; p < head + nr; p++) {
    pageSum += mc[p]! + 1;
    if (mc[p]! >= 0) mappedPages++;
  }
  const total = fa[fb + F_LARGE_MAPCOUNT]! + 1;
  const entire = fa[fb + F_ENTIRE_MAPCOUNT]! + 1;
  if (pageSum + entire !== total) {
    out.add(head, 'large-mapcount-sum', `folio ${head}: Σ page mapcounts ${pageSum} + entire ${entire} ≠ large mapcount ${total}`);
  }
  const npm = fa[fb + F_NR_PAGES_MAPPED]!;
  if ((npm & FOLIO_PAGES_MAPPED) !== mappedPages) {
    out.add(head, 'nr-pages-mapped', `folio ${head}: _nr_pages_mapped counts ${npm & FOLIO_PAGES_MAPPED} pages, ${mappedPages} have _mapcount ≥ 0`);
  }
  if (npm < 0 || npm >= 2 * ENTIRELY_MAPPED || (npm >= ENTIRELY_MAPPED) !== entire > 0) {
    out.add(head, 'entirely-mapped', `folio ${head}: _nr_pages_mapped 0x${npm.toString(16)} vs entire mapcount ${entire}`);
  }
  if (!mmId && (fa[fb + F_MM_ID0] !== 0 || fa[fb + F_MM_ID1] !== 0 || fa[fb + F_MM_ID_MAPCOUNT0] !== -1 || fa[fb + F_MM_ID_MAPCOUNT1] !== -1)) {
    out.add(head, 'mm-id', `folio ${head}: legacy mode (no MM_ID) but the _mm_id slots are in use`);
  }
}

function checkMmId(f: Folio, out: Out, pageMapcount: boolean): void {
  const mc = f.mm.mapcount!;
  const { fa, fb, head, nr } = f;
  const at = `folio ${head}`;
  if (!pageMapcount) {
    for (let p = head; p < head + nr; p++) {
      if (mc[p] !== -1) {
        out.add(head, 'no-page-mapcount', `${at}: NO_PAGE_MAPCOUNT but page ${p - head} has _mapcount ${mc[p]}`);
        break;
      }
    }
    if (fa[fb + F_NR_PAGES_MAPPED] !== 0) out.add(head, 'no-page-mapcount', `${at}: NO_PAGE_MAPCOUNT but _nr_pages_mapped is ${fa[fb + F_NR_PAGES_MAPPED]}`);
  }
  const w0 = fa[fb + F_MM_ID0]!;
  const w1 = fa[fb + F_MM_ID1]!;
  if ((w0 & MM_IDS_LOCK_MASK) !== 0) out.add(head, 'mm-id-lock', `${at}: the _mm_ids bit lock is held outside an update`);
  const shared = (w1 & MM_IDS_SHARED_MASK) !== 0;
  const total = fa[fb + F_LARGE_MAPCOUNT]! + 1;
  let occupied = 0;
  const counts: number[] = [];
  for (const [idSlot, countSlot] of [
    [F_MM_ID0, F_MM_ID_MAPCOUNT0],
    [F_MM_ID1, F_MM_ID_MAPCOUNT1],
  ] as const) {
    const id = fa[fb + idSlot]! & MM_ID_MASK;
    const c = fa[fb + countSlot]! + 1;
    counts.push(c);
    if ((id === MM_ID_DUMMY) !== (c === 0) || c < 0) out.add(head, 'mm-id-slots', `${at}: slot with mm id ${id} has count ${c}`);
    occupied += Math.max(0, c);
  }
  if ((fa[fb + F_MM_ID0]! & MM_ID_MASK) !== MM_ID_DUMMY && (fa[fb + F_MM_ID0]! & MM_ID_MASK) === (fa[fb + F_MM_ID1]! & MM_ID_MASK)) {
    out.add(head, 'mm-id-slots', `${at}: both slots hold the same mm`);
  }
  if (occupied > total) out.add(head, 'mm-id-slots', `${at}: slots account ${occupied} mappings, total is ${total}`);
  if (total === 0 && (occupied !== 0 || shared)) out.add(head, 'mm-id-slots', `${at}: unmapped but slots ${counts.join('/')} shared=${shared}`);
  if (total > 0 && !shared && !counts.includes(total)) {
    out.add(head, 'mm-id-shared', `${at}: SHARED clear but no slot holds all ${total} mappings (${counts.join('/')})`);
  }
}

function checkCensus(st: RmapState, f: Folio, c: FolioCensus, out: Out): void {
  const { fa, fb, head } = f;
  const large = f.order > 0;
  const total = large ? fa[fb + F_LARGE_MAPCOUNT]! + 1 : f.mm.mapcount![head]! + 1;
  const entire = large ? fa[fb + F_ENTIRE_MAPCOUNT]! + 1 : 0;
  if (c.pmds !== undefined && c.pmds !== entire) out.add(head, 'pmd-census', `folio ${head}: entire mapcount ${entire}, census ${c.pmds} PMDs`);
  if (c.ptes !== undefined && c.ptes + entire !== total) {
    out.add(head, 'pte-census', `folio ${head}: large mapcount ${total} ≠ ${c.ptes} PTEs + ${entire} PMD mappings`);
  }
  if (c.ptesPerPage !== undefined && (st.pageMapcount || !large)) {
    const mc = f.mm.mapcount!;
    for (let i = 0; i < f.nr; i++) {
      if (mc[head + i]! + 1 !== (c.ptesPerPage[i] ?? 0)) {
        out.add(head, 'page-census', `folio ${head}: page ${i} _mapcount+1 ${mc[head + i]! + 1}, census ${c.ptesPerPage[i]} PTEs`);
        break;
      }
    }
  }
}

function checkRefcount(f: Folio, mapcount: number, c: FolioCensus | undefined, out: Out): void {
  const mm = f.mm;
  const ref = mm.aux[f.head]!;
  const inSwapCache = (mm.flags[f.head]! & SWAPBACKED) !== 0 && (mm.flags[f.head]! & SWAPCACHE) !== 0;
  const pins = f.order > 0 ? f.fa[f.fb + F_PINCOUNT]! : 0; // small pins hide in the refcount (×1024)
  const need = mapcount + (inSwapCache ? f.nr : 0) + pins + (c?.extraRefs ?? 0);
  if (ref < need) out.add(f.head, 'refcount', `folio ${f.head}: refcount ${ref} < mappings ${mapcount} + swap cache + pins ${pins} + extra = ${need}`);
}

function checkExclusive(st: RmapState, f: Folio, c: FolioCensus | undefined, out: Out): void {
  const mm = f.mm;
  const { fa, fb, head, nr } = f;
  const mc = mm.mapcount!;
  const ksm = (fa[fb + F_MAPPING]! & PAGE_MAPPING_FLAGS) === PAGE_MAPPING_KSM;
  const entire = f.order > 0 ? fa[fb + F_ENTIRE_MAPCOUNT]! + 1 : 0;
  for (let i = 0; i < nr; i++) {
    const p = head + i;
    const excl = (mm.flags[p]! & AE) !== 0;
    if (excl && (ksm || !mappingIsAnon(fa[fb + F_MAPPING]!))) {
      out.add(head, 'exclusive', `folio ${head}: page ${i} is AnonExclusive on a ${ksm ? 'KSM' : 'non-anon'} folio`);
      return;
    }
    if (excl && (entire > 1 || ((st.pageMapcount || f.order === 0) && mc[p]! > 0))) {
      out.add(head, 'exclusive', `folio ${head}: page ${i} is AnonExclusive but mapped more than once`);
      return;
    }
    if (excl && c?.ptesPerPage !== undefined && (c.ptesPerPage[i] ?? 0) > 1) {
      out.add(head, 'exclusive', `folio ${head}: page ${i} is AnonExclusive but ${c.ptesPerPage[i]} PTEs map it`);
      return;
    }
    const w = c?.writablePerPage?.[i] ?? 0;
    // While PMD-mapped only the head bit is read.
    const bitToRead = entire > 0 && (c?.ptesPerPage?.[i] ?? 0) === 0 ? (mm.flags[head]! & AE) !== 0 : excl;
    if (w > 0 && !bitToRead) {
      out.add(head, 'writable-exclusive', `folio ${head}: page ${i} has a writable PTE but is not AnonExclusive`);
      return;
    }
  }
}

function checkDeferred(f: Folio, anon: boolean, listed: Set<number>, out: Out): void {
  const { fa, fb, head } = f;
  const prev = fa[fb + F_DEFERRED_PREV]!;
  const next = fa[fb + F_DEFERRED_NEXT]!;
  const flags = f.mm.flags;
  const flagged = f.order >= 1 && (flags[head + 1]! & PM) !== 0;
  if (f.order < 2) {
    if (prev !== -1 || next !== -1) out.add(head, 'deferred-list', `folio ${head}: order-${f.order} folio has deferred-list links`);
    if (flagged) out.add(head, 'partially-mapped', `folio ${head}: order-${f.order} folio has PG_partially_mapped`);
    return;
  }
  const onList = next !== -1;
  if ((prev === -1) !== (next === -1)) out.add(head, 'deferred-list', `folio ${head}: half-linked (prev ${prev}, next ${next})`);
  if (onList && !listed.has(head)) out.add(head, 'deferred-list', `folio ${head}: linked but not reachable from a split queue`);
  if (onList && (!anon || (flags[head + 1]! & LR) === 0)) {
    out.add(head, 'deferred-list', `folio ${head}: on the deferred list but ${anon ? 'not large_rmappable' : 'not anon'}`);
  }
  // Listed without the flag = queued by fault/collapse (split_underused_thp); the knob may have been
  // turned off since, so that is not checked.
  if (flagged && !onList) out.add(head, 'partially-mapped', `folio ${head}: PG_partially_mapped but not on the deferred list`);
}

function checkQueue(q: DeferredSplitQueue, listed: Set<number>, out: Out): void {
  const mm = q.memmap;
  let prevHead = q.listHead;
  let cur = q.first;
  let n = 0;
  let lastSeen = -1;
  while (cur >= 0) {
    if (listed.has(cur) || n > mm.nrPages) {
      out.add(-1, 'split-queue', `${q.name}: cycle at folio ${cur}`);
      return;
    }
    const h = mm.folioOf(cur);
    if (h === null || h.head !== cur) {
      out.add(-1, 'split-queue', `${q.name}: entry ${cur} is not a folio head`);
      return;
    }
    listed.add(cur);
    n++;
    if (h.fa[h.fb + F_DEFERRED_PREV] !== prevHead) out.add(cur, 'deferred-list', `folio ${cur}: prev link ${h.fa[h.fb + F_DEFERRED_PREV]}, expected ${prevHead}`);
    prevHead = cur;
    lastSeen = cur;
    const next = h.fa[h.fb + F_DEFERRED_NEXT]!;
    if (next < 0 && next !== q.listHead) out.add(cur, 'deferred-list', `folio ${cur}: last entry's next is ${next}, not the list head`);
    cur = next;
  }
  if (lastSeen !== q.last) out.add(-1, 'split-queue', `${q.name}: tail is ${q.last}, walk ended at ${lastSeen}`);
  if (n !== q.len) out.add(-1, 'split-queue-len', `${q.name}: split_queue_len ${q.len}, list holds ${n}`);
}

function checkStats(st: RmapState, sums: Sums, out: Out): void {
  const s = st.stats;
  if (s.NR_ANON_MAPPED !== sums.anonMapped) out.add(-1, 'stats', `NR_ANON_MAPPED ${s.NR_ANON_MAPPED}, folios say ${sums.anonMapped}`);
  if (s.NR_ANON_THPS !== sums.anonThps) out.add(-1, 'stats', `NR_ANON_THPS ${s.NR_ANON_THPS}, folios say ${sums.anonThps}`);
  if (s.NR_FILE_MAPPED !== sums.fileMapped) out.add(-1, 'stats', `NR_FILE_MAPPED ${s.NR_FILE_MAPPED}, folios say ${sums.fileMapped}`);
  if (s.NR_FILE_PMDMAPPED !== sums.filePmd) out.add(-1, 'stats', `NR_FILE_PMDMAPPED ${s.NR_FILE_PMDMAPPED}, folios say ${sums.filePmd}`);
  if (s.NR_SHMEM_PMDMAPPED !== sums.shmemPmd) out.add(-1, 'stats', `NR_SHMEM_PMDMAPPED ${s.NR_SHMEM_PMDMAPPED}, folios say ${sums.shmemPmd}`);
  for (let o = 1; o < NR_STAT_ORDERS; o++) {
    if (s.nr_anon[o] !== sums.nrAnon[o]) out.add(-1, 'stats', `nr_anon[${o}] ${s.nr_anon[o]}, folios say ${sums.nrAnon[o]}`);
    if (s.nr_anon_partially_mapped[o] !== sums.flagged[o]) {
      out.add(-1, 'stats', `nr_anon_partially_mapped[${o}] ${s.nr_anon_partially_mapped[o]}, flagged folios ${sums.flagged[o]}`);
    }
  }
}
