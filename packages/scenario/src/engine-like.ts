import type { Ledger } from '@foliolab/ledger';
import type { Advice, EngineConfig, InjectName, Prot } from './types.js';

/*
 * The engine as the runner sees it: a structural mirror of `Engine` in
 * docs/ENGINE-API.md. The runner codes against this interface so that it can
 * be tested with a fake and so that `@foliolab/unmap-engine` is bound in one
 * place only (default-engine.ts). The dump types name what the runner and
 * the path language read; they carry no index signatures, so the engine's
 * own (richer) interfaces stay assignable to them — extra keys are fine.
 */

/** One entry of `processes[].ptes` (only non-none PTEs are dumped). */
export interface PteDump {
  addr: string;
  kind: string; // present | swap | marker | migration | deviceExclusive | devicePrivate | hwpoison
  pfn?: number;
  write?: boolean;
  dirty?: boolean;
  young?: boolean;
  cont?: boolean;
  uffdWp?: boolean;
  type?: number;
  offset?: number;
  exclusive?: boolean;
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
  anonExclusive: string;
  swap: { type: number; offset: number } | null;
  deferredSplit: boolean;
  partiallyMapped: boolean;
  pageMapcounts?: number[];
}

export interface InvariantViolation { rule: string; where: string; detail: string }
export interface InvariantReport { ok: boolean; violations: InvariantViolation[] }

/** `foliolab.state/v1`, the stable state dump (ENGINE-API.md). */
export interface StateV1 {
  /** 'foliolab.state/v1' */
  schema: string;
  config: { arch?: string; policy?: string; mapcountMode?: string };
  processes: ProcessDump[];
  folios: FolioDump[];
  swap: {
    /** Non-free slots only. */
    slots: { offset: number; count: number; cached: number | null }[];
    swapCache: { pfn: number; offset: number; nr: number }[];
  };
  /** vmstat-like counters and per-size mTHP stats (`stats.mthp["64K"].swpout`). */
  stats: { vmstat: object; mthp: object };
  /** Non-zero events, cumulative. */
  ledger: object;
  invariants: InvariantReport;
}

export interface MmapOptions { addr?: number; len: number; prot?: Prot; anon?: true; shared?: false; locked?: boolean; droppable?: boolean }
export interface ReadResult { pages: number; lost: { addr: number | string; expected: number; actual: number }[] }
export interface ReclaimOptions { kind: 'proactive' | 'node'; pid?: number; addr?: number; len?: number; nrToReclaim?: number }

/** What the runner needs from an engine: the contract's `Engine`. */
export interface EngineLike {
  readonly ledger: Ledger;
  createProcess(name?: string): number;
  fork(pid: number): number;
  exit(pid: number): void;
  mmap(pid: number, o: MmapOptions): number;
  munmap(pid: number, addr: number, len: number): void;
  mremap(pid: number, addr: number, oldLen: number, newLen: number, o?: { fixed?: number }): number;
  mprotect(pid: number, addr: number, len: number, prot: Prot): void;
  madvise(pid: number, addr: number, len: number, advice: Advice): void;
  mlock(pid: number, addr: number, len: number): void;
  munlock(pid: number, addr: number, len: number): void;
  write(pid: number, addr: number, len: number, token?: number): void;
  read(pid: number, addr: number, len: number): ReadResult;
  reclaim(o: ReclaimOptions): unknown;
  pin(pid: number, addr: number, len: number, o?: { kind?: 'pin' | 'get'; write?: boolean }): number;
  unpin(handle: number): void;
  uffdwp(pid: number, addr: number, len: number, op: 'register' | 'protect' | 'unprotect' | 'unregister'): void;
  /** memory_failure(); an engine may return what it tells the caller (`{ sigbus, errno }`). */
  poison(pid: number, addr: number, o?: { ttuHwpoison?: boolean; split?: boolean }): unknown;
  makeDeviceExclusive(pid: number, addr: number): void;
  dump(): StateV1;
  checkInvariants(): InvariantReport;
  setInject(name: InjectName, value: number | boolean): void;
}

/** Builds an engine for a config (the runner's only way to get one). */
export type EngineFactory = (config: EngineConfig) => EngineLike;
