import {
  F_DEFERRED_NEXT,
  F_ENTIRE_MAPCOUNT,
  F_LARGE_MAPCOUNT,
  F_MAPPING,
  F_SWAP,
  FLAG,
  mappingIsAnon,
  type Folio,
} from '@foliolab/folio-flags';
import { nonZero } from '@foliolab/ledger';
import {
  pteDirty,
  pteMarkerBits,
  ptePfn,
  ptePresent,
  pteProtnone,
  pteSwpExclusive,
  pteSwpUffdWp,
  pteUffdWp,
  pteValidCont,
  pteWrite,
  pteYoung,
  softleafIsDeviceExclusive,
  softleafIsDevicePrivate,
  softleafIsHwpoison,
  softleafIsMarker,
  softleafIsMigration,
  softleafIsMigrationWrite,
  softleafIsSwap,
  softleafOffset,
  softleafPfn,
  softleafType,
  PTE_MARKER_UFFD_WP,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import { swapCacheFolioAt, swapCountAt, swapSnapshot, swapZeroAt, swpOffset, swpType, type SwpEntry } from '@foliolab/swap';
import { MTHP_SIZES, MTHP_ORDER } from './config.js';
import { hex, MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS } from './consts.js';
import { allFolios } from './census.js';
import { checkInvariants, type InvariantReport } from './invariants.js';
import type { Kernel } from './kernel.js';
import { isSpecial } from './pte-util.js';
import { MTHP_EVENTS } from './stats.js';
import { vmaFlagNames } from './vma.js';

/*
 * The foliolab.state/v1 dump (docs/ENGINE-API.md): config, processes (RSS,
 * VMAs, every non-none PTE in address order), folios (PFN order), swap slots
 * and swap cache, stats, the ledger's non-zero events, the invariant report.
 * PTE young/dirty are the values ptep_get would return (gathered over a
 * contpte block), since CONT is an arch-private representation.
 */

/** One non-none PTE. Fields depend on `kind`. */
export interface PteDump {
  addr: string;
  kind: 'present' | 'swap' | 'marker' | 'migration' | 'deviceExclusive' | 'devicePrivate' | 'hwpoison';
  pfn?: number;
  write?: boolean;
  dirty?: boolean;
  young?: boolean;
  cont?: boolean;
  uffdWp?: boolean;
  zeroPage?: boolean;
  protNone?: boolean;
  type?: number;
  offset?: number;
  exclusive?: boolean;
  bits?: number;
}

export interface VmaDump {
  start: string;
  end: string;
  pgoff: number;
  flags: string[];
  anonVma: number | null;
}

export interface ProcessDump {
  pid: number;
  name: string;
  parent: number | null;
  exited: boolean;
  rss: { anon: number; file: number; shmem: number; swapents: number };
  hiwaterRss: number;
  hasPinned: boolean;
  onMmlist: boolean;
  vmas: VmaDump[];
  ptes: PteDump[];
}

export interface FolioDump {
  pfn: number;
  order: number;
  refcount: number;
  mapcount: number;
  entireMapcount: number;
  pincount: number;
  flags: string[];
  /** One char per page: 1 = PageAnonExclusive. */
  anonExclusive: string;
  swap: { type: number; offset: number } | null;
  deferredSplit: boolean;
  partiallyMapped: boolean;
  /** One char per page: 1 = PG_hwpoison (only when some page is poisoned). */
  hwpoison?: string;
  /** Legacy mode only: per-page _mapcount + 1. */
  pageMapcounts?: number[];
}

export interface SwapSlotDump {
  offset: number;
  count: number;
  cached: number | null;
  zero: boolean;
}

/** The `config` section of the dump. */
export interface ConfigDump {
  arch: string;
  archOptions: Record<string, unknown>;
  policy: string;
  mapcountMode: string;
  memory: number;
  swap: number;
  swapSynchronousIo: boolean;
  mthp: Record<string, string>;
  pvmwSkip: string;
  zeroPfn: number;
}

export interface StateV1 {
  schema: 'foliolab.state/v1';
  config: ConfigDump;
  processes: ProcessDump[];
  folios: FolioDump[];
  swap: { slots: SwapSlotDump[]; swapCache: { pfn: number; offset: number; nr: number }[]; usage: { totalSlots: number; freeSlots: number } };
  stats: { vmstat: Record<string, number>; mthp: Record<string, Record<string, number>>; reclaim: Record<string, number> };
  ledger: Record<string, number>;
  invariants: InvariantReport;
}

function gatheredAd(t: PteTable, i: number): { dirty: boolean; young: boolean } {
  const lo = t.lo[i]!;
  const hi = t.hi[i]!;
  if (!pteValidCont(lo, hi) || !t.mm.contpte) return { dirty: pteDirty(lo, hi), young: pteYoung(lo, hi) };
  const b = i - (i % 16);
  let dirty = false;
  let young = false;
  for (let j = b; j < b + 16; j++) {
    dirty ||= pteDirty(t.lo[j]!, t.hi[j]!);
    young ||= pteYoung(t.lo[j]!, t.hi[j]!);
  }
  return { dirty, young };
}

function ptesOf(k: Kernel, pid: number): PteDump[] {
  const p = k.procs.get(pid)!;
  const out: PteDump[] = [];
  const tables = [...p.pt.pteTables].sort((a, b) => a.baseVa - b.baseVa);
  for (const t of tables) {
    for (let i = 0; i < 512; i++) {
      const lo = t.lo[i]!;
      const hi = t.hi[i]!;
      if ((lo | hi) === 0) continue;
      const addr = hex(t.vaOf(i));
      if (ptePresent(lo, hi)) {
        const ad = gatheredAd(t, i);
        const e: PteDump = { addr, kind: 'present', pfn: ptePfn(lo, hi), write: pteWrite(lo, hi), dirty: ad.dirty, young: ad.young, cont: pteValidCont(lo, hi), uffdWp: pteUffdWp(lo, hi) };
        if (isSpecial(hi)) e.zeroPage = true;
        if (pteProtnone(lo, hi)) e.protNone = true;
        out.push(e);
      } else if (softleafIsSwap(lo, hi)) {
        out.push({ addr, kind: 'swap', type: softleafType(lo, hi), offset: softleafOffset(lo, hi), exclusive: pteSwpExclusive(lo, hi), uffdWp: pteSwpUffdWp(lo, hi) });
      } else if (softleafIsMarker(lo, hi)) {
        out.push({ addr, kind: 'marker', uffdWp: (pteMarkerBits(lo, hi) & PTE_MARKER_UFFD_WP) !== 0, bits: pteMarkerBits(lo, hi) });
      } else if (softleafIsMigration(lo, hi)) {
        out.push({ addr, kind: 'migration', pfn: softleafPfn(lo, hi), write: softleafIsMigrationWrite(lo, hi) });
      } else if (softleafIsDeviceExclusive(lo, hi)) {
        out.push({ addr, kind: 'deviceExclusive', pfn: softleafPfn(lo, hi), uffdWp: pteSwpUffdWp(lo, hi) });
      } else if (softleafIsDevicePrivate(lo, hi)) {
        out.push({ addr, kind: 'devicePrivate', pfn: softleafPfn(lo, hi) });
      } else if (softleafIsHwpoison(lo, hi)) {
        out.push({ addr, kind: 'hwpoison', pfn: softleafPfn(lo, hi) });
      }
    }
  }
  return out;
}

const FOLIO_FLAG_NAMES: readonly (keyof typeof FLAG)[] = [
  'locked',
  'writeback',
  'referenced',
  'uptodate',
  'dirty',
  'lru',
  'active',
  'workingset',
  'swapbacked',
  'unevictable',
  'mlocked',
  'reclaim',
];

function folioDump(k: Kernel, f: Folio): FolioDump {
  const mm = k.memmap;
  const w = mm.flags[f.head]!;
  const flags: string[] = [];
  if (mappingIsAnon(f.fa[f.fb + F_MAPPING]!)) flags.push('anon');
  for (const n of FOLIO_FLAG_NAMES) {
    if (n === 'reclaim' && f.order > 0) continue;
    if ((w & FLAG[n].mask) !== 0) flags.push(n);
  }
  const swapcache = (w & FLAG.swapcache.mask) !== 0 && (w & FLAG.swapbacked.mask) !== 0;
  if (swapcache) flags.push('swapcache');
  if (f.order > 0) {
    const w1 = mm.flags[f.head + 1]!;
    for (const n of ['large_rmappable', 'partially_mapped', 'has_hwpoisoned'] as const) if ((w1 & FLAG[n].mask) !== 0) flags.push(n);
  }
  let ax = '';
  let poisoned = '';
  for (let p = f.head; p < f.head + f.nr; p++) {
    ax += (mm.flags[p]! & FLAG.anon_exclusive.mask) !== 0 ? '1' : '0';
    poisoned += (mm.flags[p]! & FLAG.hwpoison.mask) !== 0 ? '1' : '0';
  }
  if (poisoned.includes('1')) flags.push('hwpoison');
  const mapcount = f.order === 0 ? mm.mapcount![f.head]! + 1 : f.fa[f.fb + F_LARGE_MAPCOUNT]! + 1;
  const sw = f.fa[f.fb + F_SWAP]! as SwpEntry;
  const d: FolioDump = {
    pfn: f.head,
    order: f.order,
    refcount: mm.aux[f.head]!,
    mapcount,
    entireMapcount: f.order === 0 ? 0 : f.fa[f.fb + F_ENTIRE_MAPCOUNT]! + 1,
    pincount: f.order > 0 ? f.fa[f.fb + 4]! : Math.floor(mm.aux[f.head]! / 1024),
    flags,
    anonExclusive: ax,
    swap: swapcache ? { type: swpType(sw), offset: swpOffset(sw) } : null,
    deferredSplit: f.order >= 2 && f.fa[f.fb + F_DEFERRED_NEXT] !== -1,
    partiallyMapped: f.order > 0 && (mm.flags[f.head + 1]! & FLAG.partially_mapped.mask) !== 0,
  };
  if (poisoned.includes('1')) d.hwpoison = poisoned;
  if (k.rmap.pageMapcount) {
    const pm: number[] = [];
    for (let p = f.head; p < f.head + f.nr; p++) pm.push(mm.mapcount![p]! + 1);
    d.pageMapcounts = pm;
  }
  return d;
}

/** The state dump. `withInvariants` false skips the (costly) checker and reports ok. */
export function dumpState(k: Kernel, withInvariants = true): StateV1 {
  const c = k.config;
  const config: ConfigDump = {
    arch: c.arch,
    archOptions: { ...c.archOptions },
    policy: c.policy,
    mapcountMode: c.mapcountMode,
    memory: c.memory,
    swap: c.swap,
    swapSynchronousIo: c.swapSynchronousIo,
    mthp: { ...c.mthp },
    pvmwSkip: c.pvmwSkip,
    zeroPfn: k.zeroPfn,
  };
  const processes: ProcessDump[] = [...k.procs.values()]
    .sort((a, b) => a.pid - b.pid)
    .map((p) => ({
      pid: p.pid,
      name: p.name,
      parent: p.parent,
      exited: p.exited,
      rss: { anon: p.rss[MM_ANONPAGES]!, file: p.rss[MM_FILEPAGES]!, shmem: p.rss[MM_SHMEMPAGES]!, swapents: p.rss[MM_SWAPENTS]! },
      hiwaterRss: p.hiwaterRss,
      hasPinned: p.hasPinned,
      onMmlist: p.onMmlist,
      vmas: p.vmas.map((v) => ({ start: hex(v.vmStart), end: hex(v.vmEnd), pgoff: v.vmPgoff, flags: vmaFlagNames(v), anonVma: v.anonVma?.id ?? null })),
      ptes: p.exited ? [] : ptesOf(k, p.pid),
    }));
  const folios = allFolios(k).map((f) => folioDump(k, f));
  const slots: SwapSlotDump[] = [];
  const swapCache: { pfn: number; offset: number; nr: number }[] = [];
  let usage = { totalSlots: 0, freeSlots: 0 };
  const si = k.si;
  if (si !== null) {
    for (let s = 1; s < si.nrSlots; s++) {
      const full = swapCountAt(si, s);
      const cached = swapCacheFolioAt(si, s);
      if (full === 0 && cached < 0) continue;
      slots.push({ offset: s, count: full, cached: cached >= 0 ? cached : null, zero: swapZeroAt(si, s) });
    }
    for (let s = 1; s < si.nrSlots; s++) {
      const cached = swapCacheFolioAt(si, s);
      if (cached < 0 || (s > 1 && swapCacheFolioAt(si, s - 1) === cached)) continue;
      const f = k.memmap.folioAt(cached);
      swapCache.push({ pfn: cached, offset: s, nr: f.nr });
    }
    usage = { totalSlots: si.totalSwapPages, freeSlots: si.nrSwapPages };
  }
  const rs = k.rmap.stats.snapshot();
  const ss = si !== null ? swapSnapshot(si) : null;
  const vmstat: Record<string, number> = { ...k.stats.vm };
  vmstat.nr_anon_mapped = rs.NR_ANON_MAPPED;
  vmstat.thp_deferred_split_page = rs.thp_deferred_split_page;
  vmstat.nr_foll_pin_acquired = rs.NR_FOLL_PIN_ACQUIRED;
  vmstat.nr_foll_pin_released = rs.NR_FOLL_PIN_RELEASED;
  vmstat.split_queue_len = k.rmap.splitQueue.len;
  vmstat.nr_swapcache = ss?.nrSwapcache ?? 0;
  vmstat.pswpin = ss?.pswpin ?? 0;
  vmstat.pswpout = ss?.pswpout ?? 0;
  vmstat.swpout_zero = ss?.swpoutZero ?? 0;
  vmstat.swpin_zero = ss?.swpinZero ?? 0;
  vmstat.thp_swpout = ss?.thpSwpout ?? 0;
  vmstat.thp_swpout_fallback = ss?.thpSwpoutFallback ?? 0;
  vmstat.nr_free_pages = k.memmap.nrFreePages;
  const mthp: Record<string, Record<string, number>> = {};
  const own = k.stats.mthp;
  for (const size of MTHP_SIZES) {
    const o = MTHP_ORDER[size];
    const m: Record<string, number> = {};
    for (const ev of MTHP_EVENTS) m[ev] = own[ev][o]!;
    m.swpout = ss?.swpout[o] ?? 0;
    m.swpout_fallback = own.swpout_fallback[o]! + (ss?.swpoutFallback[o] ?? 0);
    m.swpin = ss?.swpin[o] ?? 0;
    m.split_deferred = rs.split_deferred[o] ?? 0;
    m.nr_anon = rs.nr_anon[o] ?? 0;
    m.nr_anon_partially_mapped = rs.nr_anon_partially_mapped[o] ?? 0;
    mthp[size] = m;
  }
  return {
    schema: 'foliolab.state/v1',
    config,
    processes,
    folios,
    swap: { slots, swapCache, usage },
    stats: { vmstat, mthp, reclaim: { ...k.stats.reclaim } },
    ledger: nonZero(k.ledger.snapshot()),
    invariants: withInvariants ? checkInvariants(k) : { ok: true, violations: [] },
  };
}
