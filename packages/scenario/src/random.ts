import { stringify } from 'yaml';
import { formatSize } from './sizes.js';
import type { MthpSize, Prot, Scenario, Step } from './types.js';

/*
 * Random scenarios, deterministic per seed: several processes and fork trees,
 * partial munmap / mremap / mprotect, DONTFORK / DOFORK, MADV_FREE followed by
 * writes, pins and GUP references, uffd-wp, mlock, pageout and reclaim, over a
 * few 2M-aligned regions with unaligned offsets — weighted to where batching
 * goes wrong: folios split by partial operations, mixed write / uffd-wp /
 * exclusive states inside one folio, folios moved across a PMD boundary.
 *
 * A small model of each process's pages (mapped, protection, uffd-wp) keeps
 * most steps valid. A step the engine still rejects ends the run there; the
 * kernel oracle then records what Linux answers to that same step.
 * `oracle: true` leaves out what user space cannot express (failure
 * injection, device-exclusive entries, poison options, reclaim of a range).
 */

export interface RandomScenarioOptions {
  /** Steps to generate (default: 12 to 40, from the seed). */
  steps?: number;
  /** Only steps the kernel oracle can run in a real process (default true). */
  oracle?: boolean;
  arch?: 'arm64-contpte' | 'arm64-nocont' | 'x86';
}

const PAGE = 4096;
const REGION = 2 * 2 ** 20;
const BASE = 0x4000_0000;
const REGIONS = 4;
const REGION_PAGES = 96;

/** mulberry32: a small, fast, well-mixed 32-bit PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface PageState {
  prot: Prot;
  wp: boolean;
  uffd: boolean;
  dontfork: boolean;
  locked: boolean;
  /** Written since the last zap: a page poison can find. */
  present: boolean;
}

interface Proc {
  name: string;
  pages: Map<number, PageState>;
}

type Weighted<T> = [number, T][];

function pick<T>(r: () => number, xs: Weighted<T>): T {
  let total = 0;
  for (const [w] of xs) total += w;
  let x = r() * total;
  for (const [w, v] of xs) {
    x -= w;
    if (x < 0) return v;
  }
  return xs[xs.length - 1]![1];
}

const hex = (a: number): string => `0x${a.toString(16)}`;

/** A random scenario; the same seed and options give the same scenario. */
export function randomScenario(seed: number, o: RandomScenarioOptions = {}): Scenario {
  const r = prng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
  const oracle = o.oracle !== false;
  const mthp: Partial<Record<MthpSize, 'always'>> = {};
  for (const s of ['16K', '32K', '64K', '128K'] as const) if (r() < (s === '64K' ? 0.8 : 0.3)) mthp[s] = 'always';
  const procs: Proc[] = [{ name: 'p0', pages: new Map() }];
  let nextProc = 1;
  const steps: Step[] = [];
  const pins: { handle: string; proc: string }[] = [];
  let nextPin = 0;
  const live = (): Proc => procs[int(0, procs.length - 1)]!;

  /** A page range [start, start + n) of a process, mostly inside what it maps. */
  const range = (p: Proc, maxN = 40): [number, number] => {
    const mapped = [...p.pages.keys()];
    if (mapped.length === 0 || r() < 0.05) return [BASE / PAGE + int(0, REGIONS - 1) * (REGION / PAGE) + int(0, REGION_PAGES - 1), int(1, 16)];
    const first = mapped[int(0, mapped.length - 1)]!;
    const n = pick(r, [
      [3, int(1, 4)],
      [3, 16 - (first % 16)],
      [2, int(5, maxN)],
      [1, 16],
    ]);
    return [first, Math.max(1, n)];
  };
  const each = (p: Proc, start: number, n: number, f: (s: PageState, pg: number) => void): void => {
    for (let pg = start; pg < start + n; pg++) {
      const s = p.pages.get(pg);
      if (s !== undefined) f(s, pg);
    }
  };
  const all = (p: Proc, start: number, n: number, ok: (s: PageState | undefined) => boolean): boolean => {
    for (let pg = start; pg < start + n; pg++) if (!ok(p.pages.get(pg))) return false;
    return true;
  };
  const rangeArgs = (p: Proc, start: number, n: number): { process: string; addr: string; len: string } => ({ process: p.name, addr: hex(start * PAGE), len: formatSize(n * PAGE) });

  const ops: Weighted<() => void> = [
    [
      2,
      () => {
        const p = live();
        const region = int(0, REGIONS - 1);
        const off = pick(r, [
          [3, 0],
          [1, int(1, 15)],
        ]);
        const n = pick(r, [
          [2, 16],
          [2, 32],
          [1, int(8, 64)],
        ]);
        const start = BASE / PAGE + region * (REGION / PAGE) + off;
        if (!all(p, start, n, (s) => s === undefined)) return;
        const prot: Prot = pick(r, [
          [8, 'rw'],
          [1, 'r'],
        ]);
        steps.push({ mmap: { process: p.name, addr: hex(start * PAGE), len: formatSize(n * PAGE), prot } });
        for (let pg = start; pg < start + n; pg++) p.pages.set(pg, { prot, wp: false, uffd: false, dontfork: false, locked: false, present: false });
      },
    ],
    [
      7,
      () => {
        const p = live();
        const [start, n] = range(p);
        if (!all(p, start, n, (s) => s !== undefined && s.prot === 'rw' && !s.wp)) return;
        steps.push({ write: { ...rangeArgs(p, start, n), ...(r() < 0.15 ? { token: 0 } : {}) } });
        each(p, start, n, (s) => (s.present = true));
      },
    ],
    [
      4,
      () => {
        const p = live();
        const [start, n] = range(p);
        if (!all(p, start, n, (s) => s !== undefined && s.prot !== 'none')) return;
        steps.push({ read: rangeArgs(p, start, n) });
      },
    ],
    [
      2,
      () => {
        if (procs.length >= 4) return;
        const p = live();
        const child: Proc = { name: `p${nextProc++}`, pages: new Map() };
        for (const [pg, s] of p.pages) if (!s.dontfork) child.pages.set(pg, { ...s, uffd: false, wp: false, locked: false });
        steps.push({ fork: { process: p.name, child: child.name } });
        procs.push(child);
      },
    ],
    [
      1,
      () => {
        if (procs.length <= 1) return;
        const i = int(0, procs.length - 1);
        const p = procs[i]!;
        if (pins.some((h) => h.proc === p.name)) return;
        steps.push({ exit: { process: p.name } });
        procs.splice(i, 1);
      },
    ],
    [
      5,
      () => {
        const p = live();
        const [start, n] = range(p);
        const advice = pick(r, [
          [3, 'pageout' as const],
          [2, 'free' as const],
          [2, 'dontneed' as const],
          [1, 'cold' as const],
          [1, 'dontfork' as const],
          [1, 'dofork' as const],
        ]);
        const lru = advice !== 'dontfork' && advice !== 'dofork';
        // MADV_DONTNEED/FREE/COLD/PAGEOUT refuse VM_LOCKED ranges (EINVAL): the engine rejects them as bad input
        if (!all(p, start, n, (s) => s !== undefined && !(lru && s.locked))) return;
        steps.push(advice === 'pageout' ? { pageout: rangeArgs(p, start, n) } : { madvise: { ...rangeArgs(p, start, n), advice } });
        if (!lru) each(p, start, n, (s) => (s.dontfork = advice === 'dontfork'));
        if (advice === 'dontneed') each(p, start, n, (s) => (s.present = false));
      },
    ],
    [
      2,
      () => {
        const p = live();
        const [start, n] = range(p);
        if (all(p, start, n, (s) => s === undefined)) return;
        steps.push({ munmap: rangeArgs(p, start, n) });
        for (let pg = start; pg < start + n; pg++) p.pages.delete(pg);
      },
    ],
    [
      2,
      () => {
        const p = live();
        const [start, n] = range(p);
        if (!all(p, start, n, (s) => s !== undefined)) return;
        const prot: Prot = pick(r, [
          [2, 'r'],
          [3, 'rw'],
          [1, 'none'],
        ]);
        steps.push({ mprotect: { ...rangeArgs(p, start, n), prot } });
        each(p, start, n, (s) => (s.prot = prot));
      },
    ],
    [
      1,
      () => {
        const p = live();
        const [start, n] = range(p, 32);
        if (!all(p, start, n, (s) => s !== undefined)) return;
        const to = BASE / PAGE + int(0, REGIONS - 1) * (REGION / PAGE) + REGION / PAGE / 2 + int(-20, 20);
        if (to < start + n && to + n > start) return;
        if (!all(p, to, n, (s) => s === undefined)) return;
        steps.push({ mremap: { process: p.name, addr: hex(start * PAGE), oldLen: formatSize(n * PAGE), newLen: formatSize(n * PAGE), fixed: hex(to * PAGE) } });
        const moved: [number, PageState][] = [];
        for (let pg = start; pg < start + n; pg++) {
          moved.push([pg - start + to, p.pages.get(pg)!]);
          p.pages.delete(pg);
        }
        for (const [pg, s] of moved) p.pages.set(pg, s);
      },
    ],
    [
      1,
      () => {
        const p = live();
        const [start, n] = range(p, 20);
        if (!all(p, start, n, (s) => s !== undefined && s.prot !== 'none')) return;
        const lock = r() < 0.6;
        steps.push(lock ? { mlock: rangeArgs(p, start, n) } : { munlock: rangeArgs(p, start, n) });
        each(p, start, n, (s) => (s.locked = lock));
      },
    ],
    [
      1,
      () => {
        const p = live();
        const [start] = range(p);
        const n = int(1, 4);
        const write = r() < 0.6;
        if (!all(p, start, n, (s) => s !== undefined && (write ? s.prot === 'rw' && !s.wp : s.prot !== 'none'))) return;
        const handle = `h${nextPin++}`;
        steps.push({ pin: { ...rangeArgs(p, start, n), kind: write ? 'pin' : 'get', write, as: handle } });
        pins.push({ handle, proc: p.name });
      },
    ],
    [
      1,
      () => {
        if (pins.length === 0) return;
        const [h] = pins.splice(int(0, pins.length - 1), 1);
        steps.push({ unpin: { handle: h!.handle } });
      },
    ],
    [
      1,
      () => {
        const p = live();
        const [start, n] = range(p);
        if (!all(p, start, n, (s) => s !== undefined)) return;
        const op = pick(r, [
          [2, 'register' as const],
          [2, 'protect' as const],
          [1, 'unprotect' as const],
          [1, 'unregister' as const],
        ]);
        if (op !== 'register' && !all(p, start, n, (s) => s!.uffd)) return;
        steps.push({ uffdwp: { ...rangeArgs(p, start, n), op } });
        each(p, start, n, (s) => {
          if (op === 'register') s.uffd = true;
          if (op === 'protect') s.wp = true;
          if (op === 'unprotect') s.wp = false;
          if (op === 'unregister') s.uffd = s.wp = false;
        });
      },
    ],
    [1, () => steps.push({ reclaim: { kind: 'proactive' } })],
    [
      0.3,
      () => {
        const p = live();
        const [start] = range(p);
        if (!all(p, start, 1, (s) => s !== undefined && s.prot === 'rw' && s.present)) return;
        steps.push({ poison: { process: p.name, addr: hex(start * PAGE) } });
        p.pages.delete(start); // a poisoned page is neither written nor read again
      },
    ],
  ];
  if (!oracle) {
    ops.push([0.5, () => steps.push({ inject: { [pick(r, [[1, 'swapDupEnomem' as const], [1, 'swapAllocFail' as const]])]: int(1, 3) } })]);
    ops.push([
      0.3,
      () => {
        const p = live();
        const [start] = range(p);
        if (all(p, start, 1, (s) => s !== undefined && s.prot === 'rw' && !s.wp)) steps.push({ deviceExclusive: { process: p.name, addr: hex(start * PAGE) } });
      },
    ]);
  }

  const want = o.steps ?? int(12, 40);
  for (let guard = 0; steps.length < want && guard < want * 50; guard++) {
    if (procs[0]!.pages.size === 0 && procs.length === 1) ops[0]![1]();
    else pick(r, ops)();
  }
  return {
    name: `random scenario, seed ${seed}`,
    description: 'generated by randomScenario (@foliolab/scenario); run it with `foliolab run`',
    config: {
      arch: o.arch ?? 'arm64-contpte',
      policy: 'mainline',
      mthp,
      // the mode 7.2.13 runs (THP selects MM_ID, PAGE_MAPCOUNT on): with 'legacy' the engine never reuses a
      // large folio in do_wp_page (__wp_can_reuse_large_anon_folio needs MM_ID), so it copies, unmaps part of
      // the folio and queues a deferred split where the kernel does neither
      mapcountMode: 'page_mapcount_mm_id',
      memory: 64 * 2 ** 20,
      swap: 64 * 2 ** 20,
    },
    processes: [{ name: 'p0' }],
    steps,
  };
}

/** A scenario as YAML text (what `foliolab run` reads). */
export function scenarioYaml(s: Scenario): string {
  return stringify(s, { lineWidth: 0 });
}
