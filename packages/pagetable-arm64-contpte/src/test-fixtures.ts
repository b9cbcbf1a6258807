/*
 * Shared fixtures for this package's tests (not part of the API: not
 * re-exported by index.ts).
 */
import { measure, nonZero, type EventCounts, type Ledger } from '@foliolab/ledger';
import {
  Machine,
  PageTables,
  archProfile,
  fixedSizeFolios,
  makeUserPte,
  setPtes,
  type ArchName,
  type ArchProfileOptions,
  type PageTablesOptions,
  type PteTable,
  type UserPteOptions,
} from './index.js';

/** A 2M-aligned user VA: slot i of the first table maps VA0 + i·4K. */
export const VA0 = 0x4000_0000;
/** A 16-aligned PFN for test folios. */
export const PFN0 = 0x1000;

export interface Fixture {
  machine: Machine;
  mm: PageTables;
  table: PteTable;
  ledger: Ledger;
}

/** A machine + mm with 64K folios and one PTE table at VA0. */
export function makeMm(profile: ArchName = 'arm64-contpte', popts: ArchProfileOptions = {}, mmOpts: PageTablesOptions = {}): Fixture {
  const machine = new Machine({ profile: archProfile(profile, popts) });
  const mm = new PageTables(machine, { folios: fixedSizeFolios(16), ...mmOpts });
  const table = mm.pteAlloc(VA0);
  machine.ledger.reset();
  return { machine, mm, table, ledger: machine.ledger };
}

/** Map 16 pages of a folio at slots [index, index+16) with one batched set_ptes. */
export function mapBlock(f: Fixture, index: number, pfn: number, o: UserPteOptions = { write: true, young: true, dirty: true }): void {
  const p = makeUserPte(pfn, o);
  setPtes(f.table, index, p.lo, p.hi, 16);
}

/** Non-zero event counts charged by `fn`. */
export function cost(ledger: Ledger, fn: () => unknown): Partial<EventCounts> {
  return nonZero(measure(ledger, fn).counts);
}

/** Copy of a table's raw words, for "state untouched" checks. */
export function snapshot(table: PteTable): [number[], number[]] {
  return [Array.from(table.lo), Array.from(table.hi)];
}
