import { runScenario, type EngineConfig, type RunResult, type Scenario } from '@foliolab/scenario';
import { Engine, MTHP_ORDER, type MthpSize, type Policy, type ReclaimOptions, type StateV1 } from '@foliolab/unmap-engine';
import { engineObservation, type Slots } from './engine-view.js';
import type { OracleArch, StepObs, Stop } from './types.js';

/*
 * Translation: a scenario runs through the engine (under `mainline` unless
 * asked otherwise), and every engine call it makes — with the addresses,
 * lengths, pids and tokens the runner resolved — becomes one step of the
 * guest program, which repeats it with real system calls. The engine's state
 * after each call, projected onto what user space can observe, is the
 * engine's answer for that step (engine-view.ts).
 *
 * A call user space cannot make (an injected failure, device-exclusive
 * entries, poison options beyond MADV_HWPOISON, reclaim of a chosen subset
 * of folios) ends the translation there: the kernel's later answers would
 * describe a different history, and an answer that is not the kernel's own is
 * worse than none.
 */

/** Guest operations (guest/koracle.h `enum ko_op`). */
export const KO = {
  MMAP: 1,
  WRITE: 2,
  READ: 3,
  FORK: 4,
  EXIT: 5,
  MUNMAP: 6,
  MREMAP: 7,
  MPROTECT: 8,
  MADVISE: 9,
  RECLAIM: 10,
  PIN: 11,
  UNPIN: 12,
  UFFD: 13,
  POISON: 14,
  MLOCK: 15,
  MUNLOCK: 16,
} as const;
export type KoOp = (typeof KO)[keyof typeof KO];

const MAP_LOCKED = 1 << 8;
const MAP_DROPPABLE = 1 << 9;
/** KO_TOKEN_FRESH: a new token per page. */
export const TOKEN_FRESH = 2n ** 32n;
const PROT: Record<string, number> = { none: 0, r: 1, rw: 3 };
/** MADV_* of the guest's uapi (asm-generic: the same on arm64 and x86-64). */
export const MADV: Record<string, number> = { dontneed: 4, free: 8, dontfork: 10, dofork: 11, cold: 20, pageout: 21 };
const UFFD_OP: Record<string, number> = { register: 1, protect: 2, unprotect: 3, unregister: 4 };
const PAGE = 4096;

export interface GuestStep {
  /** The scenario step this call belongs to. */
  index: number;
  op: KoOp;
  /** Slot of the process that performs it (fork: the parent). */
  proc: number;
  addr: number;
  len: number;
  arg: bigint;
  arg2: number;
  /** One line for the C comment. */
  what: string;
}

export interface GuestProgram {
  id: string;
  name: string;
  procNames: string[];
  ninit: number;
  steps: GuestStep[];
  /** Every range the scenario ever maps, merged, in pages. */
  domain: { start: number; pages: number }[];
  /** Bit o set: anonymous folios of order o are "always". */
  mthpAlways: number;
  swapBytes: number;
  swapSync: boolean;
  npins: number;
  stop: Stop | null;
  notes: string[];
}

export interface Translation {
  program: GuestProgram;
  /** The engine's answer after each translated step, in program order. */
  engine: StepObs[];
  run: RunResult;
}

export interface TranslateOptions {
  arch?: OracleArch;
  policy?: Policy;
  /** Record id (default: a C-safe form of the scenario name). */
  id?: string;
}

/** The engine arch profile a guest arch stands for. */
export function engineArchOf(arch: OracleArch, scenario: Scenario): 'arm64-contpte' | 'arm64-nocont' | 'x86' {
  if (arch === 'x86') return 'x86';
  return scenario.config?.arch === 'arm64-nocont' ? 'arm64-nocont' : 'arm64-contpte';
}

/** The guest arch a scenario's config asks for. */
export function oracleArchOf(scenario: Scenario): OracleArch {
  return scenario.config?.arch === 'x86' ? 'x86' : 'arm64';
}

interface Call {
  method: string;
  args: unknown[];
  result: unknown;
  error: string | null;
  before: StateV1 | null;
  after: StateV1 | null;
}

const ACTIONS = new Set([
  'mmap',
  'write',
  'read',
  'fork',
  'exit',
  'munmap',
  'mremap',
  'mprotect',
  'madvise',
  'reclaim',
  'pin',
  'unpin',
  'uffdwp',
  'poison',
  'mlock',
  'munlock',
  'makeDeviceExclusive',
  'setInject',
]);

/** An engine that records every action call with the state before (reclaim only) and after it. */
function recordingEngine(config: EngineConfig, calls: Call[], createdPids: number[]): Engine {
  const e = new Engine(config);
  return new Proxy(e, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      const name = String(prop);
      if (name === 'createProcess') {
        return (...args: unknown[]) => {
          const pid = (v as (...a: unknown[]) => number).apply(target, args);
          createdPids.push(pid);
          return pid;
        };
      }
      if (!ACTIONS.has(name)) return (v as (...a: unknown[]) => unknown).bind(target);
      return (...args: unknown[]) => {
        const call: Call = { method: name, args, result: undefined, error: null, before: name === 'reclaim' ? target.dump({ invariants: false }) : null, after: null };
        calls.push(call);
        try {
          call.result = (v as (...a: unknown[]) => unknown).apply(target, args);
          return call.result;
        } catch (err) {
          call.error = err instanceof Error ? err.message : String(err);
          throw err;
        } finally {
          call.after = target.dump({ invariants: false });
        }
      };
    },
  });
}

/** A C identifier and file name for a scenario: its file's base name, or its name. */
export function recordId(s: string): string {
  const id = s
    .toLowerCase()
    .replace(/\.(ya?ml|json)$/, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return id.length > 0 ? id.slice(0, 80) : 'scenario';
}

function pageFloor(a: number): number {
  return Math.floor(a / PAGE) * PAGE;
}
function pageCeil(a: number): number {
  return Math.ceil(a / PAGE) * PAGE;
}

/** The config of a scenario as the guest needs it; a reason when the kernel cannot be set up that way. */
function guestConfig(s: Scenario): { mthpAlways: number; swapBytes: number; swapSync: boolean; notes: string[]; refuse: string | null } {
  const c = s.config ?? {};
  const notes: string[] = [];
  let mthpAlways = 0;
  for (const [size, setting] of Object.entries(c.mthp ?? {})) if (setting === 'always') mthpAlways |= 1 << MTHP_ORDER[size as MthpSize];
  const memory = typeof c.memory === 'number' ? c.memory : 64 * 2 ** 20;
  const swapBytes = typeof c.swap === 'number' ? c.swap : memory;
  if (c.mapcountMode === 'mm_id')
    notes.push('mapcountMode mm_id (CONFIG_NO_PAGE_MAPCOUNT): the kernel runs CONFIG_PAGE_MAPCOUNT=y, so per-page mapcounts are not compared');
  notes.push(`simulated memory ${memory} bytes: the guest has its own RAM; only the swap device is sized as the scenario says`);
  let refuse: string | null = null;
  if (c.archOptions?.archUnmapOne === true) refuse = 'archOptions.archUnmapOne: arch_unmap_one() exists only on sparc64';
  for (const [n, v] of Object.entries(c.inject ?? {})) if (v !== false && v !== 0) refuse = `config.inject.${n}: failure injection has no user-space equivalent`;
  return { mthpAlways, swapBytes, swapSync: c.swapSynchronousIo !== false, notes, refuse };
}

function mergeDomain(ranges: [number, number][]): { start: number; pages: number }[] {
  const sorted = ranges.filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out.map(([s, e]) => ({ start: s, pages: (e - s) / PAGE }));
}

/** Folio heads mapped by live processes in a dump (present, not the zero page), optionally only in [start, end) of one pid. */
function mappedHeads(d: StateV1, pid?: number, start = 0, end = Number.POSITIVE_INFINITY): Set<number> {
  const out = new Set<number>();
  const heads = d.folios.map((f) => [f.pfn, f.pfn + 2 ** f.order] as const);
  for (const p of d.processes) {
    if (p.exited || (pid !== undefined && p.pid !== pid)) continue;
    for (const pte of p.ptes) {
      const a = Number.parseInt(pte.addr, 16);
      if (pte.kind !== 'present' || pte.zeroPage === true || a < start || a >= end) continue;
      const h = heads.find(([s, e]) => pte.pfn! >= s && pte.pfn! < e);
      if (h !== undefined) out.add(h[0]);
    }
  }
  return out;
}

/** Pages a reclaim step asks for: all pages of the scenario's folios (the engine holds no other). */
function reclaimTarget(d: StateV1): number {
  let pages = 0;
  for (const f of d.folios) pages += 2 ** f.order;
  return pages;
}

/**
 * The engine's outcome of a call as the kernel would report it: memory.reclaim
 * fails with EAGAIN when it reclaimed less than it was asked for (7.2.13
 * mm/vmscan.c user_proactive_reclaim).
 */
function engineOutcome(c: Call): string | null {
  if (c.error !== null) return `rejected: ${c.error}`;
  if (c.method === 'poison') {
    // memory_failure's answer to the caller: SIGBUS (caught by the guest's handler) before any errno
    const r = c.result as { sigbus?: boolean; errno?: string | null } | undefined;
    if (r?.sigbus === true) return 'SIGBUS';
    if (typeof r?.errno === 'string') return r.errno;
  }
  if (c.method === 'reclaim') {
    const want = reclaimTarget(c.before!);
    const got = (c.result as { reclaimed: number }).reclaimed;
    if (got < want) return `EAGAIN (reclaimed ${got} of ${want} pages)`;
  }
  return null;
}

/** Translate one engine call; a string when user space cannot express it. */
function guestStep(
  c: Call,
  index: number,
  childName: string,
  slotOf: (pid: unknown) => number,
  slots: SlotMap,
  pins: Map<number, { handle: number; slot: number }>,
): GuestStep | null | string {
  const a = c.args;
  const n = (i: number): number => a[i] as number;
  const base = { index, proc: 0, addr: 0, len: 0, arg: 0n, arg2: 0 };
  switch (c.method) {
    case 'mmap': {
      const o = a[1] as { addr?: number; len: number; prot?: string; locked?: boolean; droppable?: boolean };
      const addr = typeof c.result === 'number' ? c.result : (o.addr ?? 0);
      let arg = PROT[o.prot ?? 'rw']!;
      if (o.locked === true) arg |= MAP_LOCKED;
      if (o.droppable === true) arg |= MAP_DROPPABLE;
      return { ...base, op: KO.MMAP, proc: slotOf(a[0]), addr, len: pageCeil(o.len), arg: BigInt(arg), what: `mmap ${o.prot ?? 'rw'}${o.locked === true ? ' locked' : ''}${o.droppable === true ? ' droppable' : ''}` };
    }
    case 'write':
    case 'read': {
      const start = pageFloor(n(1));
      const end = pageCeil(n(1) + n(2));
      const token = c.method === 'write' && a[3] !== undefined ? BigInt(a[3] as number) : TOKEN_FRESH;
      return { ...base, op: c.method === 'write' ? KO.WRITE : KO.READ, proc: slotOf(a[0]), addr: start, len: end - start, arg: c.method === 'write' ? token : 0n, what: c.method };
    }
    case 'fork': {
      const child = slots.add(c.result as number, childName);
      return { ...base, op: KO.FORK, proc: slotOf(a[0]), arg: BigInt(child), what: `fork → slot ${child}` };
    }
    case 'exit':
      return { ...base, op: KO.EXIT, proc: slotOf(a[0]), what: 'exit' };
    case 'munmap':
    case 'mlock':
    case 'munlock': {
      const op = c.method === 'munmap' ? KO.MUNMAP : c.method === 'mlock' ? KO.MLOCK : KO.MUNLOCK;
      return { ...base, op, proc: slotOf(a[0]), addr: n(1), len: pageCeil(n(2)), what: c.method };
    }
    case 'mprotect':
      return { ...base, op: KO.MPROTECT, proc: slotOf(a[0]), addr: n(1), len: pageCeil(n(2)), arg: BigInt(PROT[a[3] as string]!), what: `mprotect ${String(a[3])}` };
    case 'madvise': {
      const adv = MADV[a[3] as string];
      if (adv === undefined) return `madvise ${String(a[3])}: unknown advice`;
      return { ...base, op: KO.MADVISE, proc: slotOf(a[0]), addr: n(1), len: pageCeil(n(2)), arg: BigInt(adv), what: `madvise ${String(a[3])}` };
    }
    case 'mremap': {
      const o = a[4] as { fixed?: number } | undefined;
      const to = typeof c.result === 'number' ? c.result : (o?.fixed ?? n(1));
      // The kernel picks its own destination when it moves a mapping: force the engine's.
      const dest = o?.fixed !== undefined || to !== n(1) ? to : 0;
      return { ...base, op: KO.MREMAP, proc: slotOf(a[0]), addr: n(1), len: pageCeil(n(2)), arg: BigInt(pageCeil(n(3))), arg2: dest, what: `mremap → ${dest === 0 ? 'in place' : `0x${dest.toString(16)}`}` };
    }
    case 'reclaim': {
      const o = a[0] as ReclaimOptions;
      const before = c.before!;
      if (o.pid !== undefined || o.addr !== undefined || o.len !== undefined) {
        const all = mappedHeads(before);
        const start = o.addr ?? 0;
        const some = mappedHeads(before, o.pid, start, o.len === undefined ? Number.POSITIVE_INFINITY : start + o.len);
        if (some.size !== all.size)
          return 'reclaim of the folios of one range: the kernel reclaims a cgroup or a node, not a chosen set of folios';
      }
      if (o.nrToReclaim !== undefined && o.nrToReclaim !== Number.POSITIVE_INFINITY) {
        let pages = 0;
        for (const f of before.folios) pages += 2 ** f.order;
        if (o.nrToReclaim < pages) return `reclaim of ${o.nrToReclaim} pages: memory.reclaim works in its own batches, so a partial target is not the same reclaim`;
      }
      // Ask for every page the scenario's folios hold: the kernel answers EAGAIN when it could not reclaim them all.
      const pages = reclaimTarget(before);
      return { ...base, op: KO.RECLAIM, arg: o.kind === 'node' ? 2n : 1n, arg2: pages * PAGE, what: `${o.kind === 'node' ? 'node reclaim' : 'memory.reclaim'} of ${pages} pages` };
    }
    case 'pin': {
      const o = (a[3] ?? {}) as { kind?: string; write?: boolean };
      const kind = o.kind ?? 'pin';
      const write = o.write === true;
      let mode: number;
      if (kind === 'pin' && write) mode = 1;
      else if (kind === 'get' && !write) mode = 2;
      else return `pin kind ${kind}${write ? ' write' : ''}: user space has FOLL_PIN|FOLL_WRITE (io_uring buffers) and FOLL_GET read (vmsplice) only`;
      const handle = pins.size;
      pins.set(c.result as number, { handle, slot: slotOf(a[0]) });
      return { ...base, op: KO.PIN, proc: slotOf(a[0]), addr: pageFloor(n(1)), len: pageCeil(n(1) + n(2)) - pageFloor(n(1)), arg: BigInt(handle), arg2: mode, what: mode === 1 ? 'pin (io_uring fixed buffer)' : 'get (vmsplice)' };
    }
    case 'unpin': {
      const p = pins.get(n(0));
      if (p === undefined) return 'unpin of an unknown handle';
      return { ...base, op: KO.UNPIN, proc: p.slot, arg: BigInt(p.handle), what: 'unpin' };
    }
    case 'uffdwp':
      return { ...base, op: KO.UFFD, proc: slotOf(a[0]), addr: n(1), len: pageCeil(n(2)), arg: BigInt(UFFD_OP[a[3] as string]!), what: `uffd ${String(a[3])}` };
    case 'poison': {
      const o = (a[2] ?? {}) as { ttuHwpoison?: boolean; split?: boolean };
      if (o.ttuHwpoison === true || o.split === false)
        return 'poison with ttuHwpoison/split options: MADV_HWPOISON always tries the split and drops TTU_HWPOISON for swap-cache folios';
      return { ...base, op: KO.POISON, proc: slotOf(a[0]), addr: pageFloor(n(1)), len: PAGE, what: 'MADV_HWPOISON' };
    }
    case 'makeDeviceExclusive':
      return 'device-exclusive entries need a device driver (make_device_exclusive)';
    case 'setInject':
      return a[1] === false || a[1] === 0 ? null : `inject ${String(a[0])}: failure injection has no user-space equivalent`;
  }
  return `engine call ${c.method} has no guest step`;
}

/** Scenario process slots: engine pid ↔ slot, with the scenario's names. */
class SlotMap implements Slots {
  readonly pidOf: number[] = [];
  readonly names: string[] = [];
  add(pid: number, name: string): number {
    this.pidOf.push(pid);
    this.names.push(name);
    return this.pidOf.length - 1;
  }
  slot(pid: number): number {
    const s = this.pidOf.indexOf(pid);
    if (s < 0) throw new Error(`translate: pid ${pid} has no slot`);
    return s;
  }
}

/** Number of scenario-step action calls: `inject` makes one per entry, `expect` and skipped steps none. */
function callsOfStep(r: RunResult['steps'][number], scenario: Scenario): number {
  if (r.skipped || r.kind === 'expect') return 0;
  if (r.kind === 'inject') return Object.keys((scenario.steps[r.index] as { inject: object }).inject).length;
  return 1;
}

/**
 * Run a scenario through the engine and translate what it did into a guest
 * program; the engine's own answer after each translated step comes along.
 */
export function translateScenario(scenario: Scenario, o: TranslateOptions = {}): Translation {
  const arch = o.arch ?? oracleArchOf(scenario);
  const policy = o.policy ?? 'mainline';
  const calls: Call[] = [];
  const created: number[] = [];
  const run = runScenario(scenario, {
    policy,
    arch: engineArchOf(arch, scenario),
    engineFactory: (config) => recordingEngine(config, calls, created),
  });
  const cfg = guestConfig(scenario);
  const slots = new SlotMap();
  created.forEach((pid, i) => slots.add(pid, scenario.processes[i]?.name ?? `p${pid}`));
  const ninit = created.length;
  const slotOf = (pid: unknown): number => slots.slot(pid as number);
  const pins = new Map<number, { handle: number; slot: number }>();
  const steps: GuestStep[] = [];
  const engine: StepObs[] = [];
  const ranges: [number, number][] = [];
  let stop: Stop | null = cfg.refuse === null ? null : { step: 0, reason: cfg.refuse };
  let prev: StateV1 | null = null;

  let ci = 0;
  for (const r of run.steps) {
    const nCalls = callsOfStep(r, scenario);
    for (let k = 0; k < nCalls && stop === null; k++) {
      const c = calls[ci++];
      if (c === undefined) break;
      for (const p of c.after?.processes ?? []) for (const v of p.vmas) ranges.push([Number.parseInt(v.start, 16), Number.parseInt(v.end, 16)]);
      if (c.method === 'mmap' || c.method === 'mremap') {
        const o2 = c.args[c.method === 'mmap' ? 1 : 4] as { addr?: number; len?: number; fixed?: number } | undefined;
        const at = typeof c.result === 'number' ? c.result : (o2?.addr ?? o2?.fixed);
        const len = c.method === 'mmap' ? (o2?.len ?? 0) : (c.args[3] as number);
        if (at !== undefined) ranges.push([pageFloor(at), pageCeil(at + len)]);
      }
      const child = (scenario.steps[r.index] as { fork?: { child?: string } }).fork?.child ?? `p${String(c.result)}`;
      const g = guestStep(c, r.index, child, slotOf, slots, pins);
      if (typeof g === 'string') {
        stop = { step: r.index, reason: g };
        break;
      }
      if (g === null) continue;
      steps.push(g);
      engine.push(engineObservation(c.after!, prev, { step: r.index, kind: r.kind, outcome: engineOutcome(c), result: c.result }, slots));
      prev = c.after;
    }
    if (stop !== null) break;
  }
  const id = o.id ?? recordId(scenario.name);
  const program: GuestProgram = {
    id,
    name: scenario.name,
    procNames: slots.names,
    ninit,
    steps,
    domain: mergeDomain(ranges),
    mthpAlways: cfg.mthpAlways,
    swapBytes: cfg.swapBytes,
    swapSync: cfg.swapSync,
    npins: pins.size,
    stop,
    notes: cfg.notes,
  };
  return { program, engine, run };
}
