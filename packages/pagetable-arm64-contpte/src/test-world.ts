/*
 * A test world shared by the differential tests of the hot-path entry points
 * (internal.test.ts, hot-paths.test.ts): one PTE table of 16-slot blocks
 * built from `kinds`, and a comparison of two worlds after the same work on
 * each. Not part of the API (not re-exported by index.ts).
 */
import { ChromeTraceSink, Ledger } from '@foliolab/ledger';
import { expect } from 'vitest';
import {
  Machine,
  PTE_HI_CONT,
  PageTables,
  archProfile,
  fixedSizeFolios,
  hwAccess,
  makeUserPte,
  mkSwapPte,
  pokePte,
  pteBits,
  setPtes,
  tlbStaleVas,
  type ArchName,
  type PteTable,
} from './index.js';

/** The table's first VA (2M-aligned). */
export const VA0 = 0x4000_0000;
/** PFN of block 0's first page. */
export const PFN0 = 0x2000;
/** Every arch profile. */
export const PROFILES: readonly ArchName[] = ['arm64-contpte', 'arm64-nocont', 'x86'];

export interface World {
  ledger: Ledger;
  machine: Machine;
  mm: PageTables;
  table: PteTable;
  sink: ChromeTraceSink | null;
}

/**
 * One PTE table of 16-slot blocks, by `kinds`: 0 none, 1 a 64K folio mapped
 * with one set_ptes (contpte where the profile folds), 2 the same folio
 * mapped one PTE at a time with slot 3 read-only (never folds), 3 swap
 * entries, 4 a folded block whose slot 5 lost CONT (a broken block), 5 a
 * folded block that hardware then accessed (A/D on single entries).
 */
export function world(profile: ArchName, kinds: readonly number[], trackTlb: boolean, trace: boolean): World {
  const ledger = new Ledger();
  const machine = new Machine({ profile: archProfile(profile), ledger });
  const mm = new PageTables(machine, { folios: fixedSizeFolios(16), trackTlb });
  const table = mm.pteAlloc(VA0);
  const swp = pteBits();
  kinds.forEach((kind, b) => {
    const p = makeUserPte(PFN0 + 16 * b, { write: true, young: (b & 1) === 0, dirty: (b & 2) === 0 });
    if (kind === 1 || kind === 4) setPtes(table, 16 * b, p.lo, p.hi, 16);
    if (kind === 4) pokePte(table, 16 * b + 5, table.lo[16 * b + 5]!, (table.hi[16 * b + 5]! & ~PTE_HI_CONT) >>> 0);
    if (kind === 5) {
      const q = makeUserPte(PFN0 + 16 * b, { write: true, young: false, dirty: false });
      setPtes(table, 16 * b, q.lo, q.hi, 16);
      hwAccess(table, 16 * b + (b % 16), (b & 1) === 0);
      hwAccess(table, 16 * b + 15, false);
    }
    if (kind === 2) {
      for (let k = 0; k < 16; k++) {
        const q = makeUserPte(PFN0 + 16 * b + k, { write: k !== 3, young: (k & 1) === 0, dirty: (b & 2) === 0 });
        setPtes(table, 16 * b + k, q.lo, q.hi, 1);
      }
    }
    if (kind === 3) for (let k = 0; k < 16; k++) pokePte(table, 16 * b + k, mkSwapPte(swp, 1, 100 + 16 * b + k).lo, swp.hi);
  });
  ledger.reset();
  let sink: ChromeTraceSink | null = null;
  if (trace) {
    sink = new ChromeTraceSink();
    ledger.setTrace(sink);
  }
  return { ledger, machine, mm, table, sink };
}

/** Same stores, counts, TLB-visibility state, TLB-state allocation and trace. */
export function expectSame(a: World, b: World): void {
  expect(Array.from(b.table.lo)).toEqual(Array.from(a.table.lo));
  expect(Array.from(b.table.hi)).toEqual(Array.from(a.table.hi));
  expect(Array.from(b.ledger.counts)).toEqual(Array.from(a.ledger.counts));
  expect(tlbStaleVas(b.mm)).toEqual(tlbStaleVas(a.mm));
  expect(b.table.tlb === null).toBe(a.table.tlb === null); // the TLB state array exists in both or neither (memory budget)
  expect(b.sink?.events ?? null).toEqual(a.sink?.events ?? null);
}
