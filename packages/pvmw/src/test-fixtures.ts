/*
 * Shared fixtures for this package's tests (not part of the API: not
 * re-exported by index.ts, not published). A layout is a folio mapped at a
 * possibly unaligned VA, one entry kind per folio page:
 *
 *   ....|PPPPPPPPssPP..mP|....     P present (this folio), s swap, m marker,
 *       ^vmStart         ^vmEnd    . none, f foreign present, …
 */
import { EVENT_NAMES, NR_EVENTS, type EventCounts, type Ledger } from '@foliolab/ledger';
import fc from 'fast-check';
import {
  Machine,
  PAGE_SIZE,
  PMD_SIZE,
  PTRS_PER_PTE,
  PTE_MARKER_GUARD,
  PageTables,
  archProfile,
  fixedSizeFolios,
  makeUserPte,
  mkDeviceExclusivePte,
  mkDevicePrivatePte,
  mkHwpoisonPte,
  mkMarkerPte,
  mkMigrationPte,
  mkSwapPte,
  pokePte,
  pteBits,
  pteIndex,
  setPtes,
  type ArchName,
  type PteTable,
} from '@foliolab/pagetable-arm64-contpte';
import type { PvmwTarget, PvmwVma } from './index.js';

/** A 1G-aligned VA: folios are placed at BASE + offset pages. */
export const BASE = 0x4000_0000;
/** A 512-aligned PFN: the folio's first page. */
export const PFN0 = 0x8_0000;
/** PFNs of foreign present entries (another folio). */
export const FOREIGN_PFN = 0x9_0000;

export type Kind = 'present' | 'none' | 'swap' | 'marker' | 'foreign' | 'hwpoison' | 'migration' | 'devPrivate' | 'devExclusive';

export interface Layout {
  profile: ArchName;
  folioPages: number;
  /** Folio start = BASE + offset pages (0..511; > 512 − folioPages straddles a PMD boundary). */
  offset: number;
  /** Folio pages cut off by the VMA start / end (the VMA then starts / ends inside the folio). */
  startCut: number;
  endCut: number;
  /** VMA pages before / after the folio when not cut. */
  lead: number;
  trail: number;
  /** One kind per folio page (pages outside the VMA are ignored). */
  kinds: Kind[];
  /** Present entries mapping this folio just outside the VMA, which the walk must never reach. */
  decoys: boolean;
}

export interface Built {
  machine: Machine;
  pt: PageTables;
  ledger: Ledger;
  vma: PvmwVma;
  target: PvmwTarget;
  /** VA of folio page 0. */
  a0: number;
}

const reg = pteBits();

function encode(kind: Kind, j: number): { lo: number; hi: number } {
  switch (kind) {
    case 'swap':
      return mkSwapPte(reg, 1, 0x1000 + j);
    case 'marker':
      return mkMarkerPte(reg, PTE_MARKER_GUARD);
    case 'foreign':
      return makeUserPte(FOREIGN_PFN + j, { write: true });
    case 'hwpoison':
      return mkHwpoisonPte(reg, PFN0 + j);
    case 'migration':
      return mkMigrationPte(reg, 'read', PFN0 + j);
    case 'devPrivate':
      return mkDevicePrivatePte(reg, PFN0 + j, true);
    case 'devExclusive':
      return mkDeviceExclusivePte(reg, PFN0 + j);
    default:
      throw new Error(`encode: ${kind}`);
  }
}

/** Build the mm for a layout; the ledger is reset afterwards. */
export function build(l: Layout): Built {
  const machine = new Machine({ profile: archProfile(l.profile) });
  const pt = new PageTables(machine, { folios: fixedSizeFolios(l.folioPages) });
  const n = l.folioPages;
  const a0 = BASE + l.offset * PAGE_SIZE;
  const vmStart = l.startCut > 0 ? a0 + l.startCut * PAGE_SIZE : a0 - l.lead * PAGE_SIZE;
  const vmEnd = l.endCut > 0 ? a0 + (n - l.endCut) * PAGE_SIZE : a0 + (n + l.trail) * PAGE_SIZE;
  const vma: PvmwVma = { vmStart, vmEnd, vmPgoff: vmStart / PAGE_SIZE };
  const target: PvmwTarget = { pfn: PFN0, nrPages: n, pgoff: a0 / PAGE_SIZE };
  const inVma = (j: number): boolean => j >= l.startCut && j < n - l.endCut;
  // Runs of present pages inside one PTE table: one set_ptes each (contpte where aligned).
  for (let j = 0; j < n; ) {
    if (!inVma(j) || l.kinds[j] !== 'present') {
      j++;
      continue;
    }
    const va = a0 + j * PAGE_SIZE;
    let k = 1;
    while (j + k < n && inVma(j + k) && l.kinds[j + k] === 'present' && pteIndex(va) + k < PTRS_PER_PTE) k++;
    const t = pt.pteAlloc(va);
    const p = makeUserPte(PFN0 + j, { write: true, young: true, dirty: true });
    setPtes(t, pteIndex(va), p.lo, p.hi, k);
    j += k;
  }
  for (let j = 0; j < n; j++) {
    const kind = l.kinds[j]!;
    if (!inVma(j) || kind === 'present' || kind === 'none') continue;
    const va = a0 + j * PAGE_SIZE;
    const e = encode(kind, j);
    pokePte(pt.pteAlloc(va), pteIndex(va), e.lo >>> 0, e.hi >>> 0);
  }
  if (l.decoys) {
    // Other VMAs map folio pages right outside this one (e.g. after mprotect split it).
    if (l.startCut > 0) pokeDecoy(pt, vmStart - PAGE_SIZE, l.startCut - 1);
    if (l.endCut > 0) pokeDecoy(pt, vmEnd, n - l.endCut);
  }
  machine.ledger.reset();
  return { machine, pt, ledger: machine.ledger, vma, target, a0 };
}

function pokeDecoy(pt: PageTables, va: number, page: number): void {
  const p = makeUserPte(PFN0 + page, { write: true });
  pokePte(pt.pteAlloc(va), pteIndex(va), p.lo, p.hi);
}

/** Uncharged (lo, hi) at `va` (0, 0 when no table). */
export function entryAt(pt: PageTables, va: number): { lo: number; hi: number } {
  const t = pt.pteTableOf(va);
  if (t === null) return { lo: 0, hi: 0 };
  const i = pteIndex(va);
  return { lo: t.lo[i]!, hi: t.hi[i]! };
}

/** Copy of every PTE table's words, for "identical page tables" checks. */
export function tablesSnapshot(pt: PageTables): number[][] {
  return pt.pteTables.map((t: PteTable) => [t.baseVa, ...Array.from(t.lo), ...Array.from(t.hi)]);
}

/** The end of the walk as the walker computes it on the first call. */
export function walkEnd(b: Built): number {
  const folioEnd = b.a0 + b.target.nrPages * PAGE_SIZE;
  return b.target.nrPages === 1 ? b.vma.vmStart + PAGE_SIZE : Math.min(folioEnd, b.vma.vmEnd);
}

/** 2M boundaries strictly inside (from, to). */
export function pmdBoundaries(from: number, to: number): number[] {
  const out: number[] = [];
  for (let b = from - (from % PMD_SIZE) + PMD_SIZE; b < to; b += PMD_SIZE) out.push(b);
  return out;
}

/** Counts charged to `ledger` while `fn` runs, accumulated into `acc` (by event id). */
export function accumulate(ledger: Ledger, acc: Float64Array, fn: () => number): number {
  const before = ledger.counts.slice();
  const r = fn();
  for (let e = 0; e < NR_EVENTS; e++) acc[e]! += ledger.counts[e]! - before[e]!;
  return r;
}

/** `a − b` as EventCounts, with `b` by event id. */
export function minusIds(a: EventCounts, b: Float64Array): EventCounts {
  const out = {} as EventCounts;
  EVENT_NAMES.forEach((n, e) => (out[n] = a[n] - b[e]!));
  return out;
}

const KIND_OF: Readonly<Record<string, Kind>> = {
  P: 'present',
  '.': 'none',
  s: 'swap',
  m: 'marker',
  f: 'foreign',
  h: 'hwpoison',
  M: 'migration',
  d: 'devPrivate',
  x: 'devExclusive',
};

/**
 * A layout from one char per folio page (P present, . none, s swap,
 * m marker, f foreign present, h hwpoison, M migration, d device-private,
 * x device-exclusive); the folio size is the string length.
 */
export function lay(map: string, o: Partial<Omit<Layout, 'kinds' | 'folioPages'>> = {}): Built {
  const kinds = [...map].map((c) => {
    const k = KIND_OF[c];
    if (k === undefined) throw new Error(`lay: bad char ${c}`);
    return k;
  });
  return build({ profile: 'arm64-nocont', offset: 0, startCut: 0, endCut: 0, lead: 0, trail: 0, decoys: false, ...o, folioPages: kinds.length, kinds });
}

/** Layouts: runs of kinds, a folio of 16 or 512 pages at any page offset, optional VMA cuts. */
export function layoutArb(kinds: readonly Kind[]): fc.Arbitrary<Layout> {
  return fc
    .record({
      profile: fc.constantFrom('arm64-contpte' as const, 'arm64-nocont' as const, 'x86' as const),
      big: fc.boolean(),
      offset: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 511 })),
      cutA: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 511 })),
      cutB: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 511 })),
      lead: fc.integer({ min: 0, max: 600 }),
      trail: fc.integer({ min: 0, max: 600 }),
      runs: fc.array(fc.record({ kind: fc.constantFrom(...kinds), len: fc.integer({ min: 1, max: 48 }) }), { minLength: 1, maxLength: 24 }),
      decoys: fc.boolean(),
    })
    .map(({ profile, big, offset, cutA, cutB, lead, trail, runs, decoys }) => {
      const n = big ? 512 : 16;
      const ks: Kind[] = [];
      for (const r of runs) for (let i = 0; i < r.len && ks.length < n; i++) ks.push(r.kind);
      while (ks.length < n) ks.push('present');
      let startCut = cutA % n;
      let endCut = cutB % n;
      if (startCut + endCut >= n) endCut = 0;
      if (startCut + endCut >= n) startCut = 0;
      return { profile, folioPages: n, offset, startCut, endCut, lead, trail, kinds: ks, decoys };
    });
}

