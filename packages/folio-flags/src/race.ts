import { FoliolabError } from '@foliolab/ledger';
import { Folio } from './folio.js';
import { describeFlagWord, flagByName, type FlagDesc, type FlagName } from './pageflags.js';

/**
 * The flag-race explorer (spec §1.2, seed 004: David Hildenbrand on
 * "[PATCH v5 4/6] mm: Introduce a pageflag for partially mapped folios",
 * 12 Dec 2024). Short per-CPU programs of flag operations on one folio are
 * interleaved in every possible way; each interleaving runs on a fresh copy
 * of the folio's flag words. Atomic operations and plain tests are one step;
 * a non-atomic __set/__clear is two steps (load the word, store it back with
 * the bit changed), so any write another CPU makes between them is
 * overwritten — the lost update. The explorer works on copies and charges no
 * ledger.
 */

/** Operation kinds: atomic (one step), non-atomic `__` (load + store), plain test (one load). */
export type RaceOpKind = 'set' | 'clear' | 'test_set' | 'test_clear' | '__set' | '__clear' | 'test';

/** One flag operation of a CPU's program. */
export interface RaceOp {
  readonly kind: RaceOpKind;
  readonly flag: FlagName;
  /** Page index within the folio (default 0). Head flags redirect to 0; second-page flags use 1. */
  readonly page?: number;
  /** Kernel-style label; derived from kind and flag when absent. */
  readonly label?: string;
}

/** A bit one CPU changed that a stale non-atomic store of another CPU reverted. */
export interface LostUpdate {
  readonly page: number;
  readonly flag: string;
  readonly bit: number;
  /** What the lost update did to the bit. */
  readonly change: 'set' | 'clear';
  /** CPU whose update was lost, and its operation. */
  readonly cpu: number;
  readonly op: string;
  /** CPU whose non-atomic store overwrote it, and its operation. */
  readonly byCpu: number;
  readonly byOp: string;
}

/** One interleaving and what it produced. */
export interface RaceRun {
  /** Position in the deterministic (lexicographic by CPU) enumeration. */
  readonly index: number;
  /** The CPU taking each step. */
  readonly schedule: readonly number[];
  /** Human-readable steps, e.g. `cpu0 load page[1] __folio_set_partially_mapped`. */
  readonly steps: readonly string[];
  /** Final flag word of each page in RaceReport.pages. */
  readonly final: readonly number[];
  readonly lost: readonly LostUpdate[];
  /** Per CPU, per op: the value a test returned (old bit for test_set/test_clear), else null. */
  readonly returns: readonly (readonly (boolean | null)[])[];
}

/** A reachable final state and how many interleavings reach it. */
export interface RaceOutcome {
  readonly final: readonly number[];
  /** Flag names set in each final word (describeFlagWord). */
  readonly flags: readonly (readonly string[])[];
  readonly count: number;
  /** How many of those interleavings lost an update. */
  readonly losing: number;
  /** Index of the first run reaching it. */
  readonly firstRun: number;
}

/** The explorer's answer: plain data for a renderer. */
export interface RaceReport {
  readonly folio: { readonly head: number; readonly order: number };
  readonly cpus: readonly {
    readonly cpu: number;
    readonly ops: readonly { readonly label: string; readonly kind: RaceOpKind; readonly page: number; readonly steps: number }[];
  }[];
  /** Page indices (within the folio) whose words the programs touch, ascending. */
  readonly pages: readonly number[];
  readonly initial: readonly number[];
  readonly interleavings: number;
  /** Interleavings with at least one lost update. */
  readonly losing: number;
  /** Distinct names of flags whose update was lost somewhere. */
  readonly lostFlags: readonly string[];
  /** Reachable final states in order of first appearance. */
  readonly outcomes: readonly RaceOutcome[];
  readonly runs: readonly RaceRun[];
}

/** Default cap on the number of interleavings. */
export const RACE_MAX_INTERLEAVINGS = 100_000;
const MAX_CPUS = 4;

const KINDS: readonly RaceOpKind[] = ['set', 'clear', 'test_set', 'test_clear', '__set', '__clear', 'test'];
const PAGE_NAMES: Partial<Record<FlagName, string>> = { anon_exclusive: 'AnonExclusive', hwpoison: 'HWPoison', private: 'Private' };

interface Compiled {
  readonly desc: FlagDesc;
  readonly kind: RaceOpKind;
  readonly page: number;
  readonly word: number; // index into the copied words
  readonly label: string;
  readonly steps: number;
}

/**
 * Enumerate every interleaving of the CPUs' programs on `folio`'s current
 * flag words and report reachable final words, their counts, and the lost
 * updates. Exact and deterministic; throws FoliolabError('E2BIG') when the
 * interleavings exceed `maxInterleavings` (default 100 000).
 */
export function exploreFlagRace(
  folio: Folio,
  cpus: readonly (readonly RaceOp[])[],
  opts: { readonly maxInterleavings?: number } = {},
): RaceReport {
  if (!(folio instanceof Folio)) throw new FoliolabError('EINVAL', 'exploreFlagRace: folio is not a Folio handle', {});
  folio.mm.assertLive('exploreFlagRace', folio);
  if (cpus.length < 1 || cpus.length > MAX_CPUS) {
    throw new FoliolabError('EINVAL', `exploreFlagRace: need 1..${MAX_CPUS} CPU programs, got ${String(cpus?.length)}`, {});
  }
  const pageSet = new Set<number>();
  const pre = cpus.map((prog, c) => prog.map((op, i) => resolveOp(folio, op, c, i, pageSet)));
  const pages = [...pageSet].sort((a, b) => a - b);
  const progs: Compiled[][] = pre.map((prog) => prog.map((op) => ({ ...op, word: pages.indexOf(op.page) })));
  const stepsPerCpu = progs.map((p) => p.reduce((s, op) => s + op.steps, 0));
  const max = opts.maxInterleavings ?? RACE_MAX_INTERLEAVINGS;
  const total = countInterleavings(stepsPerCpu, max);
  if (total > max) {
    throw new FoliolabError(
      'E2BIG',
      `exploreFlagRace: programs with ${stepsPerCpu.join('+')} steps have more than ${max} interleavings`,
      { steps: stepsPerCpu, max },
    );
  }
  const initial = pages.map((p) => folio.mm.flags[folio.head + p]!);
  const runs: RaceRun[] = [];
  const schedule = new Array<number>(stepsPerCpu.reduce((a, b) => a + b, 0));
  const left = stepsPerCpu.slice();
  const visit = (pos: number): void => {
    if (pos === schedule.length) {
      runs.push(runSchedule(runs.length, schedule.slice(), progs, initial));
      return;
    }
    for (let c = 0; c < left.length; c++) {
      if (left[c] === 0) continue;
      left[c]!--;
      schedule[pos] = c;
      visit(pos + 1);
      left[c]!++;
    }
  };
  visit(0);
  return summarize(folio, progs, pages, initial, runs);
}

function resolveOp(folio: Folio, op: RaceOp, cpu: number, i: number, pages: Set<number>): Omit<Compiled, 'word'> {
  const where = `exploreFlagRace: cpu${cpu} op ${i}`;
  const desc = flagByName(String(op?.flag));
  if (desc === undefined) throw new FoliolabError('EINVAL', `${where}: unknown flag ${String(op?.flag)}`, { cpu, op: i });
  if (!KINDS.includes(op.kind)) throw new FoliolabError('EINVAL', `${where}: unknown kind ${String(op.kind)}`, { cpu, op: i });
  const asked = op.page ?? 0;
  if (!Number.isInteger(asked) || asked < 0 || asked >= folio.nr) {
    throw new FoliolabError('ERANGE', `${where}: page ${asked} is outside folio of ${folio.nr} pages`, { cpu, op: i, page: asked });
  }
  if (desc.placement === 'second' && folio.order === 0) {
    throw new FoliolabError('EINVAL', `${where}: ${desc.kernelName} is a second-page flag; the folio is order 0`, { cpu, op: i });
  }
  const page = desc.placement === 'head' ? 0 : desc.placement === 'second' ? 1 : asked;
  pages.add(page);
  const steps = op.kind === '__set' || op.kind === '__clear' ? 2 : 1;
  return { desc, kind: op.kind, page, label: op.label ?? defaultLabel(op.kind, desc, page), steps };
}

function defaultLabel(kind: RaceOpKind, desc: FlagDesc, page: number): string {
  const pageName = PAGE_NAMES[desc.name];
  if (desc.placement === 'any' && pageName !== undefined) {
    const prefix = { set: 'SetPage', clear: 'ClearPage', test_set: 'TestSetPage', test_clear: 'TestClearPage', __set: '__SetPage', __clear: '__ClearPage', test: 'Page' }[kind];
    return `${prefix}${pageName}(page[${page}])`;
  }
  const verb = { set: 'folio_set_', clear: 'folio_clear_', test_set: 'folio_test_set_', test_clear: 'folio_test_clear_', __set: '__folio_set_', __clear: '__folio_clear_', test: 'folio_test_' }[kind];
  return `${verb}${desc.name}`;
}

/** Multinomial (Σn)! / Πnᵢ!, stopping early once it exceeds `cap`. */
function countInterleavings(steps: readonly number[], cap: number): number {
  let total = 1;
  let sum = 0;
  for (const n of steps) {
    for (let k = 1; k <= n; k++) {
      sum++;
      total = (total * sum) / k; // running product of binomials C(sum, k) stays integral
      if (total > cap) return total;
    }
  }
  return Math.round(total);
}

function runSchedule(
  index: number,
  schedule: number[],
  progs: readonly (readonly Compiled[])[],
  initial: readonly number[],
): RaceRun {
  const words = Uint32Array.from(initial);
  const writer = new Int32Array(words.length * 32).fill(-1); // (cpu << 16 | op) of the last change per bit
  const opIdx = progs.map(() => 0);
  const inOp = progs.map(() => 0);
  const reg = progs.map(() => 0);
  const returns = progs.map((p) => p.map((): boolean | null => null));
  const lost: LostUpdate[] = [];
  const steps: string[] = [];
  for (const c of schedule) {
    const i = opIdx[c]!;
    const op = progs[c]![i]!;
    const w = op.word;
    const mask = op.desc.mask;
    const cur = words[w]!;
    const me = (c << 16) | i;
    let kind: string = op.kind === 'test' ? 'load' : 'rmw';
    let next = cur;
    if (op.kind === 'test') {
      returns[c]![i] = (cur & mask) !== 0;
    } else if (op.kind === '__set' || op.kind === '__clear') {
      if (inOp[c] === 0) {
        reg[c] = cur;
        inOp[c] = 1;
        steps.push(`cpu${c} load  page[${op.page}] ${op.label}`);
        continue;
      }
      kind = 'store';
      const loaded = reg[c]!;
      next = op.kind === '__set' ? loaded | mask : loaded & ~mask;
      let reverted = (cur ^ loaded) & ~mask;
      while (reverted !== 0) {
        const bit = 31 - Math.clz32(reverted);
        reverted &= ~(1 << bit);
        const by = writer[w * 32 + bit]!; // every change is recorded, so by ≥ 0
        const victim = progs[by >>> 16]![by & 0xffff]!;
        lost.push({
          page: op.page,
          flag: bitName(op.page, bit),
          bit,
          change: (cur & (1 << bit)) !== 0 ? 'set' : 'clear',
          cpu: by >>> 16,
          op: victim.label,
          byCpu: c,
          byOp: op.label,
        });
      }
      inOp[c] = 0;
    } else {
      next = op.kind === 'set' || op.kind === 'test_set' ? cur | mask : cur & ~mask;
      if (op.kind === 'test_set' || op.kind === 'test_clear') returns[c]![i] = (cur & mask) !== 0;
    }
    let changed = (cur ^ next) >>> 0;
    while (changed !== 0) {
      const bit = 31 - Math.clz32(changed);
      changed &= ~(1 << bit);
      writer[w * 32 + bit] = me;
    }
    words[w] = next;
    steps.push(`cpu${c} ${kind.padEnd(5)} page[${op.page}] ${op.label}`);
    opIdx[c] = i + 1;
  }
  return { index, schedule, steps, final: Array.from(words), lost, returns };
}

function bitName(page: number, bit: number): string {
  const names = describeFlagWord((1 << bit) >>> 0, page).filter((n) => !n.startsWith('order='));
  return names[0] ?? `order-bit${bit}`;
}

function summarize(
  folio: Folio,
  progs: readonly (readonly Compiled[])[],
  pages: readonly number[],
  initial: readonly number[],
  runs: readonly RaceRun[],
): RaceReport {
  const byKey = new Map<string, { final: readonly number[]; count: number; losing: number; firstRun: number }>();
  const lostFlags = new Set<string>();
  let losing = 0;
  for (const r of runs) {
    const key = r.final.join(',');
    let o = byKey.get(key);
    if (o === undefined) byKey.set(key, (o = { final: r.final, count: 0, losing: 0, firstRun: r.index }));
    o.count++;
    if (r.lost.length > 0) {
      o.losing++;
      losing++;
      for (const l of r.lost) lostFlags.add(l.flag);
    }
  }
  const large = folio.order > 0;
  const outcomes = [...byKey.values()].map((o) => ({
    ...o,
    flags: o.final.map((w, i) => describeFlagWord(w, pages[i]!, large)),
  }));
  return {
    folio: { head: folio.head, order: folio.order },
    cpus: progs.map((p, cpu) => ({
      cpu,
      ops: p.map((op) => ({ label: op.label, kind: op.kind, page: op.page, steps: op.steps })),
    })),
    pages,
    initial,
    interleavings: runs.length,
    losing,
    lostFlags: [...lostFlags].sort(),
    outcomes,
    runs,
  };
}
