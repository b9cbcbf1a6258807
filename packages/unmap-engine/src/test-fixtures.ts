import { measure, nonZero, type EventCounts } from '@foliolab/ledger';
import { Engine, type EngineConfig, type FolioDump, type Policy, type ProcessDump, type PteDump, type StateV1 } from './index.js';

/*
 * Test fixtures (not exported from the package): a fresh engine with one
 * process and a mapping, dump accessors, and a ledger measurement helper.
 */

export const POLICIES: readonly Policy[] = ['per-pte', 'mainline', 'batched'];
/** A 2M-aligned address: the 64K folio of most scenarios sits at the start of a PTE table. */
export const A = 0x4000_0000;
export const K64 = 0x10000;

export interface Fixture {
  e: Engine;
  pid: number;
}

/** Engine with 64K mTHP on, one process, a `len` mapping at A. */
export function setup(policy: Policy, len = 4 * K64, cfg: EngineConfig = {}): Fixture {
  const e = new Engine({ policy, mthp: { '64K': 'always' }, ...cfg });
  const pid = e.createProcess();
  e.mmap(pid, { addr: A, len });
  return { e, pid };
}

export function proc(d: StateV1, pid: number): ProcessDump {
  const p = d.processes.find((x) => x.pid === pid);
  if (p === undefined) throw new Error(`no pid ${pid} in the dump`);
  return p;
}

/** The PTEs of `pid` in [start, start + n pages). */
export function ptesIn(d: StateV1, pid: number, start: number, n: number): (PteDump | undefined)[] {
  const by = new Map(proc(d, pid).ptes.map((p) => [Number.parseInt(p.addr, 16), p]));
  const out: (PteDump | undefined)[] = [];
  for (let i = 0; i < n; i++) out.push(by.get(start + i * 4096));
  return out;
}

/** The folio whose pfn range contains `pfn`. */
export function folioAt(d: StateV1, pfn: number): FolioDump | undefined {
  return d.folios.find((f) => pfn >= f.pfn && pfn < f.pfn + (1 << f.order));
}

/** The folio mapped at `addr` of `pid` (present PTE). */
export function folioMappedAt(d: StateV1, pid: number, addr: number): FolioDump {
  const pte = ptesIn(d, pid, addr, 1)[0];
  if (pte?.kind !== 'present') throw new Error(`nothing present at 0x${addr.toString(16)}`);
  const f = folioAt(d, pte.pfn!);
  if (f === undefined) throw new Error(`pfn ${pte.pfn} has no folio`);
  return f;
}

/** Non-zero ledger events of `fn`. */
export function costs(e: Engine, fn: () => void): Partial<EventCounts> {
  return nonZero(measure(e.ledger, fn).counts);
}

/** Dump and assert the invariants hold. */
export function dumpOk(e: Engine): StateV1 {
  const d = e.dump();
  if (!d.invariants.ok) throw new Error(`invariants: ${JSON.stringify(d.invariants.violations.slice(0, 5))}`);
  return d;
}
