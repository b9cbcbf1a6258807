import type { EngineFactory } from './engine-like.js';
import { deepEqual, show } from './expect.js';
import { runScenario, type LedgerDelta, type RunError } from './runner.js';
import { POLICIES, type ArchName, type Policy, type Scenario } from './types.js';

/*
 * The differential checker (DESIGN.md §Policies): run one scenario under
 * per-pte, mainline and batched, and diff the final state dumps. `ledger` and
 * `config.policy` differ by construction and are ignored; any other
 * difference must be listed in the engine's ALLOWED_DIFFERENCES table (passed
 * in), with its reason, or the policies are not equivalent.
 *
 * Arrays of objects are matched by identity (processes by pid, PTEs by addr,
 * folios by pfn, slots by offset, VMAs by start), so one extra PTE shows as
 * one difference, not a cascade: `processes[pid=1].ptes[addr=0x40000000].dirty`.
 */

/** A row of the engine's ALLOWED_DIFFERENCES table. */
export interface AllowedDifference {
  /** Path pattern: `.`/`[]` segments, `*` = any one segment, `**` = any number; matches the subtree. */
  readonly path: string;
  /** A difference between two policies is allowed when either is listed. */
  readonly policies: readonly Policy[];
  /**
   * A bit only a batch's OR can add (young, dirty): allowed only where the policy later in POLICIES
   * (per-pte, mainline, batched: the one that batches more) has `true` and the other `false`.
   */
  readonly batchSets?: true;
  readonly reason: string;
}

/** One differing place in the final states. */
export interface DiffEntry {
  path: string;
  /** The value under each policy; ABSENT where the place does not exist. */
  values: Partial<Record<Policy, unknown>>;
  /** The reason from ALLOWED_DIFFERENCES, when the difference is allowed. */
  allowed?: string;
}

/** Marks a place that exists under some policies only. */
export const ABSENT = '<absent>';

const IGNORED = [['ledger'], ['config', 'policy']];
const IDENTITY_KEYS = ['pid', 'addr', 'pfn', 'offset', 'start', 'name'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Split `a.b[pid=1][*]` into ['a','b','pid=1','*']. */
function segments(path: string): string[] {
  const out: string[] = [];
  for (const m of path.matchAll(/\[([^\]]*)\]|([^.[\]]+)/g)) out.push(m[1] ?? m[2]!);
  return out;
}

function matchSegs(pat: readonly string[], p: readonly string[], i = 0, j = 0): boolean {
  if (i === pat.length) return true; // pattern exhausted: the path is in its subtree
  if (pat[i] === '**') {
    for (let k = j; k <= p.length; k++) if (matchSegs(pat, p, i + 1, k)) return true;
    return false;
  }
  if (j === p.length) return false;
  return (pat[i] === '*' || pat[i] === p[j]) && matchSegs(pat, p, i + 1, j + 1);
}

/** Whether an ALLOWED_DIFFERENCES path pattern covers a diff path. */
export function pathMatches(pattern: string, path: string): boolean {
  return matchSegs(segments(pattern), segments(path));
}

function identityKey(arrays: unknown[][]): string | undefined {
  for (const k of IDENTITY_KEYS) {
    const ok = arrays.every((a) => {
      const seen = new Set<unknown>();
      for (const e of a) {
        if (!isObj(e)) return false;
        const v = e[k];
        if (typeof v !== 'number' && typeof v !== 'string') return false;
        if (seen.has(v)) return false;
        seen.add(v);
      }
      return true;
    });
    if (ok) return k;
  }
  return undefined;
}

interface Walk {
  policies: Policy[];
  out: DiffEntry[];
}

function join(path: string, seg: string, bracket: boolean): string {
  if (bracket) return `${path}[${seg}]`;
  return path === '' ? seg : `${path}.${seg}`;
}

function ignored(segs: readonly string[]): boolean {
  return IGNORED.some((ig) => ig.length === segs.length && ig.every((s, i) => s === segs[i]));
}

function walk(w: Walk, path: string, segs: string[], vals: unknown[]): void {
  if (ignored(segs)) return;
  if (vals.every((v) => deepEqual(v, vals[0]))) return;
  const present = vals.filter((v) => v !== ABSENT);
  if (present.length === vals.length && present.every(isObj)) {
    const keys = [...new Set(present.flatMap((v) => Object.keys(v)))];
    for (const k of keys) walk(w, join(path, k, false), [...segs, k], vals.map((v) => (k in (v as Obj) ? (v as Obj)[k] : ABSENT)));
    return;
  }
  if (present.length === vals.length && present.every((v) => Array.isArray(v))) {
    const arrays = present as unknown[][];
    const key = identityKey(arrays);
    if (key !== undefined) {
      const ids: unknown[] = [];
      for (const a of arrays) for (const e of a) if (!ids.includes((e as Obj)[key])) ids.push((e as Obj)[key]);
      for (const id of ids) {
        const seg = `${key}=${String(id)}`;
        walk(w, join(path, seg, true), [...segs, seg], arrays.map((a) => a.find((e) => (e as Obj)[key] === id) ?? ABSENT));
      }
      return;
    }
    if (arrays.every((a) => a.every(isObj))) {
      const n = Math.max(...arrays.map((a) => a.length));
      for (let i = 0; i < n; i++) walk(w, join(path, String(i), true), [...segs, String(i)], arrays.map((a) => (i < a.length ? a[i] : ABSENT)));
      return;
    }
  }
  w.out.push({ path, values: Object.fromEntries(w.policies.map((p, i) => [p, vals[i]])) });
}

/** For a `batchSets` row: the policy that batches more (later in POLICIES) has `true`, the other `false`. */
function batchDirectionOk(row: AllowedDifference, a: Policy, va: unknown, b: Policy, vb: unknown): boolean {
  if (row.batchSets !== true) return true;
  return POLICIES.indexOf(a) > POLICIES.indexOf(b) ? va === true && vb === false : vb === true && va === false;
}

function allowedReason(d: DiffEntry, rows: readonly AllowedDifference[]): string | undefined {
  const matching = rows.filter((r) => pathMatches(r.path, d.path));
  if (matching.length === 0) return undefined;
  const ps = Object.keys(d.values) as Policy[];
  const reasons = new Set<string>();
  for (let i = 0; i < ps.length; i++) {
    for (let j = i + 1; j < ps.length; j++) {
      const a = ps[i]!;
      const b = ps[j]!;
      if (deepEqual(d.values[a], d.values[b])) continue;
      const row = matching.find((r) => (r.policies.includes(a) || r.policies.includes(b)) && batchDirectionOk(r, a, d.values[a], b, d.values[b]));
      if (row === undefined) return undefined;
      reasons.add(row.reason);
    }
  }
  return [...reasons].join('; ');
}

export interface DiffOptions {
  allowedDifferences?: readonly AllowedDifference[];
  /** Keep at most this many entries (not-allowed ones first). Default 50. */
  maxDiffs?: number;
}

export interface StateDiff {
  /** No difference outside the allowed table. */
  equivalent: boolean;
  diffs: DiffEntry[];
  totalDiffs: number;
  notAllowed: number;
  truncated: boolean;
}

/** Diff final state dumps by policy (ignoring ledger and config.policy). */
export function diffStates(states: Partial<Record<Policy, unknown>>, options: DiffOptions = {}): StateDiff {
  const policies = POLICIES.filter((p) => p in states);
  const w: Walk = { policies, out: [] };
  walk(w, '', [], policies.map((p) => states[p]));
  const rows = options.allowedDifferences ?? [];
  for (const d of w.out) {
    const why = allowedReason(d, rows);
    if (why !== undefined) d.allowed = why;
  }
  const notAllowed = w.out.filter((d) => d.allowed === undefined);
  const ordered = [...notAllowed, ...w.out.filter((d) => d.allowed !== undefined)];
  const max = options.maxDiffs ?? 50;
  return { equivalent: notAllowed.length === 0, diffs: ordered.slice(0, max), totalDiffs: w.out.length, notAllowed: notAllowed.length, truncated: ordered.length > max };
}

export interface CompareOptions extends DiffOptions {
  engineFactory?: EngineFactory;
  arch?: ArchName;
  limits?: { maxSteps?: number; maxMemory?: number };
}

/** How one policy's run went. */
export interface PolicyRun {
  events: LedgerDelta;
  invariantsOk: boolean;
  expectationsOk: boolean;
  ok: boolean;
  error?: RunError;
  failures: string[];
}

export interface CompareResult extends StateDiff {
  scenario: string;
  perPolicy: Record<Policy, PolicyRun>;
}

/** Run a scenario under all three policies and diff the end states. */
export function compare(scenario: Scenario, options: CompareOptions = {}): CompareResult {
  const states: Partial<Record<Policy, unknown>> = {};
  const perPolicy = {} as Record<Policy, PolicyRun>;
  for (const policy of POLICIES) {
    const r = runScenario(scenario, {
      policy,
      ...(options.arch ? { arch: options.arch } : {}),
      ...(options.engineFactory ? { engineFactory: options.engineFactory } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
    });
    states[policy] = r.finalState ?? ABSENT;
    perPolicy[policy] = {
      events: r.events,
      invariantsOk: r.steps.every((s) => s.invariants.ok),
      expectationsOk: r.steps.every((s) => s.expectations.every((x) => x.ok)),
      ok: r.ok,
      ...(r.error ? { error: r.error } : {}),
      failures: r.failures,
    };
  }
  return { scenario: scenario.name, ...diffStates(states, options), perPolicy };
}

/** A readable report: the verdict, then each difference with its value per policy. */
export function formatCompare(r: CompareResult | (StateDiff & { scenario?: string })): string {
  const lines: string[] = [];
  const name = r.scenario === undefined ? '' : `${r.scenario}: `;
  const allowed = r.totalDiffs - r.notAllowed;
  if (r.equivalent) lines.push(`${name}equivalent${allowed > 0 ? ` (${allowed} allowed difference(s))` : ''}`);
  else lines.push(`${name}NOT equivalent: ${r.notAllowed} difference(s)${allowed > 0 ? `, ${allowed} allowed` : ''}`);
  for (const d of r.diffs) {
    lines.push(`  ${d.path === '' ? '(whole state)' : d.path}`);
    lines.push(`    ${Object.entries(d.values).map(([p, v]) => `${p}: ${show(v)}`).join('   ')}`);
    if (d.allowed !== undefined) lines.push(`    allowed: ${d.allowed}`);
  }
  if (r.truncated) lines.push(`  … and ${r.totalDiffs - r.diffs.length} more`);
  return lines.join('\n');
}
