import { normalisePages, type RawPage } from './normalise.js';
import type { GuestProgram } from './translate.js';
import type { LostObs, ProcObs, StepObs, VmaObs } from './types.js';

/*
 * Reading the guest's console: the `KO …` lines of each scenario (see
 * guest/koracle.c) become per-step observations in the oracle's normal form
 * (pagemap bits per Documentation/admin-guide/mm/pagemap.rst, kpageflags bit
 * numbers per include/uapi/linux/kernel-page-flags.h, swap types per 7.2.13
 * include/linux/swap.h), and the kernel's own messages are kept.
 */

const PM_PRESENT = 1n << 63n;
const PM_SWAP = 1n << 62n;
const PM_GUARD = 1n << 58n;
const PM_UFFD_WP = 1n << 57n;
const PM_EXCLUSIVE = 1n << 56n;
const PM_SOFT_DIRTY = 1n << 55n;
const PM_PFN_MASK = (1n << 55n) - 1n;

/** kpageflags bit → name (include/uapi/linux/kernel-page-flags.h and the kernel-hacking bits). */
export const KPF_NAMES: Readonly<Record<number, string>> = {
  0: 'locked',
  1: 'error',
  2: 'referenced',
  3: 'uptodate',
  4: 'dirty',
  5: 'lru',
  6: 'active',
  7: 'slab',
  8: 'writeback',
  9: 'reclaim',
  10: 'buddy',
  11: 'mmap',
  12: 'anon',
  13: 'swapcache',
  14: 'swapbacked',
  15: 'compound_head',
  16: 'compound_tail',
  17: 'huge',
  18: 'unevictable',
  19: 'hwpoison',
  20: 'nopage',
  21: 'ksm',
  22: 'thp',
  23: 'offline',
  24: 'zero_page',
  25: 'idle',
  26: 'pgtable',
  32: 'reserved',
  33: 'mlocked',
  34: 'owner_2',
  35: 'private',
  36: 'private_2',
  37: 'owner_private',
  38: 'arch',
  39: 'uncached',
  40: 'softdirty',
  41: 'arch_2',
  42: 'arch_3',
};
/** Bits that describe the folio's shape or have their own field, not flags. */
const STRUCTURAL = new Set(['compound_head', 'compound_tail', 'thp', 'mmap', 'huge', 'nopage', 'zero_page', 'owner_2', 'hwpoison']);

/** Swap types of the special entries (7.2.13 include/linux/swap.h with MIGRATION, MEMORY_FAILURE, DEVICE_PRIVATE, one marker type). */
const MAX_SWAPFILES = 32 - 3 - 3 - 1 - 1;

/** Linux errno numbers (asm-generic: the same on arm64 and x86-64). */
const ERRNO: Readonly<Record<number, string>> = {
  1: 'EPERM',
  2: 'ENOENT',
  3: 'ESRCH',
  4: 'EINTR',
  5: 'EIO',
  9: 'EBADF',
  11: 'EAGAIN',
  12: 'ENOMEM',
  13: 'EACCES',
  14: 'EFAULT',
  16: 'EBUSY',
  17: 'EEXIST',
  19: 'ENODEV',
  22: 'EINVAL',
  28: 'ENOSPC',
  38: 'ENOSYS',
  95: 'EOPNOTSUPP',
  133: 'EHWPOISON',
};
const SIGNAL: Readonly<Record<number, string>> = { 7: 'SIGBUS', 11: 'SIGSEGV' };

/**
 * Counters a record keeps: the exact event counters and folded gauges that
 * only the scenario's own memory moves. The rest (page allocator, slab, our
 * own processes' faults and mlock in a fork) is noise that changes from run
 * to run. khugepaged's collapse count is kept to show it never ran.
 */
const RECORDED_COUNTER =
  /^(mthp\..*|khugepaged\..*|pswp(in|out)|swp(in|out)_zero|pglazyfreed?|pgmajfault|pg(de)?activate|pgrefill|pgrotated|pgp?g(in|out)|swap_ra(_hit)?|nr_swapcached|nr_foll_pin_(acquired|released)|nr_anon_transparent_hugepages|workingset_\w+_anon|thp_\w+|pg(steal|scan)_\w+|zswp\w*)$/;

/** Whether a kernel counter goes into a record. */
export function recordedCounter(name: string): boolean {
  return RECORDED_COUNTER.test(name);
}

/** The outcome string of a guest step's rc/err. */
export function outcomeOf(rc: number, err: number): string {
  if (rc === 0) return 'ok';
  if (err === 2000) return 'UFFD_WP_FAULT';
  if (err >= 1000) return SIGNAL[err - 1000] ?? `signal ${err - 1000}`;
  return ERRNO[err] ?? `errno ${err}`;
}

/** A counter name as the engine spells it: mthp.2048K.x → mthp.2M.x. */
export function counterName(n: string): string {
  const m = /^mthp\.(\d+)K\.(.*)$/.exec(n);
  if (m === null) return n;
  const kb = Number(m[1]);
  return `mthp.${kb >= 1024 ? `${kb / 1024}M` : `${kb}K`}.${m[2]}`;
}

interface RawStep {
  step: number;
  rc: number;
  err: number;
  lost: LostObs[];
  counters: Record<string, number>;
  calls: Record<string, number> | null;
  procs: Map<number, { vmas: VmaObs[]; pages: RawPage[] }>;
  done: boolean;
}

/** One scenario's part of the console. */
export interface GuestRun {
  id: string;
  status: 'ok' | 'abort' | 'missing';
  abort: string | null;
  info: Record<string, string>;
  steps: RawStep[];
  kernelLog: string[];
  /** Lines that looked like ours but did not parse (a kernel message cut into one, say). */
  garbled: string[];
}

/** Everything one boot printed: facts, and each scenario's run. */
export interface GuestConsole {
  facts: Record<string, string>;
  runs: Map<string, GuestRun>;
  done: boolean;
}

function pageOf(slot: number, f: string[]): RawPage | null {
  const addr = Number.parseInt(f[0]!, 16);
  const pm = BigInt(`0x${f[1]}`);
  const uffdWp = (pm & PM_UFFD_WP) !== 0n;
  const softDirty = (pm & PM_SOFT_DIRTY) !== 0n;
  if ((pm & PM_PRESENT) !== 0n) {
    const kpf = BigInt(`0x${f[2]}`);
    const bit = (b: number): boolean => (kpf & (1n << BigInt(b))) !== 0n;
    if (bit(24)) return { slot, addr, kind: 'zero', uffdWp, softDirty };
    const pfn = Number(pm & PM_PFN_MASK);
    const head = Number.parseInt(f[4]!, 16);
    const flags: string[] = [];
    for (const [b, name] of Object.entries(KPF_NAMES)) if (bit(Number(b)) && !STRUCTURAL.has(name)) flags.push(name);
    return {
      slot,
      addr,
      kind: 'present',
      head,
      idx: pfn - head,
      order: Number(f[5]),
      mapcount: Number(f[3]),
      exclusive: (pm & PM_EXCLUSIVE) !== 0n,
      flags: flags.sort(),
      anonExclusiveHead: bit(34) && bit(12),
      poisoned: bit(19),
      uffdWp,
      softDirty,
    };
  }
  if ((pm & PM_SWAP) !== 0n) {
    const frame = pm & PM_PFN_MASK;
    const type = Number(frame & 31n);
    const offset = Number(frame >> 5n);
    if (type < MAX_SWAPFILES) return { slot, addr, kind: 'swap', type, offset, uffdWp, softDirty };
    if (type === MAX_SWAPFILES) return { slot, addr, kind: 'hwpoison' };
    if (type <= MAX_SWAPFILES + 3) return { slot, addr, kind: 'migration' };
    if (type <= MAX_SWAPFILES + 6) return { slot, addr, kind: 'device' };
    return { slot, addr, kind: 'marker', uffdWp, guard: (pm & PM_GUARD) !== 0n };
  }
  return null;
}

function newRun(id: string): GuestRun {
  return { id, status: 'missing', abort: null, info: {}, steps: [], kernelLog: [], garbled: [] };
}

/** Parse a boot's console lines. */
export function parseConsole(lines: readonly string[]): GuestConsole {
  const facts: Record<string, string> = {};
  const runs = new Map<string, GuestRun>();
  let cur: GuestRun | null = null;
  let done = false;
  const stepOf = (r: GuestRun, i: number): RawStep => {
    let s = r.steps[r.steps.length - 1];
    if (s === undefined || s.step !== i || s.done) {
      s = { step: i, rc: 0, err: 0, lost: [], counters: {}, calls: null, procs: new Map(), done: false };
      r.steps.push(s);
    }
    return s;
  };
  for (const line of lines) {
    let m: RegExpExecArray | null;
    if ((m = /^KORACLE-FACT (\S+) ?(.*)$/.exec(line)) !== null) facts[m[1]!] = m[2]!;
    else if ((m = /^KORACLE-RUN (\S+)/.exec(line)) !== null) {
      cur = newRun(m[1]!);
      runs.set(cur.id, cur);
    } else if (/^KORACLE-EXIT /.test(line)) cur = null;
    else if (/^KORACLE-DONE/.test(line)) done = true;
    else if (cur !== null && line.startsWith('KO ')) {
      const f = line.slice(3).trim().split(/\s+/);
      const kind = f[0];
      const i = Number(f[1]);
      try {
        switch (kind) {
          case 'begin':
            break;
          case 'info':
            cur.info[f[1]!] = f.slice(2).join(' ');
            break;
          case 'step': {
            const s = stepOf(cur, i);
            s.rc = Number(f[2]);
            s.err = Number(f[3]);
            break;
          }
          case 'lost':
            stepOf(cur, i).lost.push({ addr: `0x${f[2]}`, reason: Number(f[4]) === -1 ? 'hwpoison' : 'mismatch' });
            break;
          case 'ctr':
            if (recordedCounter(f[2]!)) stepOf(cur, i).counters[counterName(f[2]!)] = Number(f[3]);
            break;
          case 'call': {
            const s = stepOf(cur, i);
            s.calls = { ...(s.calls ?? {}), [f[2]!]: Number(f[3]) };
            break;
          }
          case 'proc':
            stepOf(cur, i).procs.set(Number(f[2]), { vmas: [], pages: [] });
            break;
          case 'vma': {
            const p = stepOf(cur, i).procs.get(Number(f[2]));
            if (p === undefined) throw new Error('vma before proc');
            p.vmas.push({ start: `0x${f[3]}`, end: `0x${f[4]}`, perms: f[5]!, flags: f.slice(8).sort(), rss: Number(f[6]) / 4, swap: Number(f[7]) / 4 });
            break;
          }
          case 'pg': {
            const slot = Number(f[2]);
            const p = stepOf(cur, i).procs.get(slot);
            if (p === undefined) throw new Error('pg before proc');
            const page = pageOf(slot, f.slice(3));
            if (page !== null) p.pages.push(page);
            break;
          }
          case 'done':
            stepOf(cur, i).done = true;
            break;
          case 'end':
            cur.status = f[2] === 'ok' ? 'ok' : 'abort';
            cur.abort = f[2] === 'ok' ? null : f.slice(3).join(' ');
            break;
          default:
            cur.garbled.push(line);
        }
      } catch {
        cur.garbled.push(line);
      }
    } else if (cur !== null && /^\[\s*\d+\.\d+\]/.test(line)) cur.kernelLog.push(line.replace(/^\[\s*\d+\.\d+\]\s*/, ''));
  }
  return { facts, runs, done };
}

/** A guest run as observations, with the program's step kinds and process names. */
export function guestObservations(run: GuestRun, program: GuestProgram, kinds: ReadonlyMap<number, string>, traced = false): StepObs[] {
  const out: StepObs[] = [];
  for (const s of run.steps) {
    if (!s.done) continue;
    const raw: RawPage[] = [];
    const procs: ProcObs[] = [];
    for (const [slot, p] of [...s.procs.entries()].sort((a, b) => a[0] - b[0])) {
      procs.push({ slot, name: program.procNames[slot] ?? `slot${slot}`, vmas: p.vmas, pages: [] });
      raw.push(...p.pages);
    }
    const runs = normalisePages(raw);
    for (const p of procs) p.pages = runs.get(p.slot) ?? [];
    const obs: StepObs = { step: s.step, kind: kinds.get(s.step) ?? 'step', outcome: outcomeOf(s.rc, s.err), lost: s.lost, counters: s.counters, processes: procs };
    if (traced) obs.calls = s.calls ?? {};
    out.push(obs);
  }
  return out;
}
