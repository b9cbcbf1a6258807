import type { InvariantReport } from './engine-like.js';
import { parsePath, resolvePath, type PathContext } from './path.js';
import { evalAddr, parseAddrExpr } from './sizes.js';
import type { EventMatcher, ExpectArgs, Matcher } from './types.js';

/*
 * `expect` steps: matchers on values of the state dump, exact (or bounded)
 * event counts on the ledger delta of the previous step, and the invariant
 * report. A value given without a matcher means `equals`.
 *
 *   equals X      deep equality; a hex address in the dump also equals a number or `buf+4K`
 *   not X         not equal — or, when X is a matcher, the matcher fails
 *   contains X    a list holds X (deep), or a string holds the substring X
 *   containsAll L a list holds every element of the list L
 *   containsNone L a list holds no element of the list L
 *   lengthOf N    a list or string has N elements
 *   gte N, lte N  numeric bounds
 *   all X         every element of a list equals X (or, when X is a matcher, satisfies it)
 *   consecutive   a list of numbers, each one more than the one before
 *   multipleOf N  a number divisible by N
 */

export const MATCHER_KEYS = ['equals', 'not', 'contains', 'containsAll', 'containsNone', 'lengthOf', 'gte', 'lte', 'all', 'consecutive', 'multipleOf'] as const;

/** One checked expectation. */
export interface ExpectationResult {
  ok: boolean;
  /** `processes[parent].rss.anon`, `events.PTE_READ`, `invariants`, `read.lost`. */
  path: string;
  expected: unknown;
  actual: unknown;
  /** "path: expected X, got Y" (or "path: ok"). */
  message: string;
  /** Where the assertion is written, for scenarios loaded from a file. */
  location?: { file: string; line: number; col: number };
}

/** Whether `v` is a matcher object (a mapping whose keys are all matcher names). */
export function isMatcher(v: unknown): v is Matcher {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => (MATCHER_KEYS as readonly string[]).includes(k));
}

const HEX = /^0x[0-9a-f]+$/i;

function addrValue(expected: unknown, ctx: PathContext): number | undefined {
  if (typeof expected === 'number') return expected;
  if (typeof expected !== 'string') return undefined;
  try {
    return evalAddr(parseAddrExpr(expected), (n) => ctx.names?.get(n));
  } catch {
    return undefined;
  }
}

/** Deep equality, with hex addresses in `actual` comparing equal to numbers or address expressions. */
export function deepEqual(actual: unknown, expected: unknown, ctx: PathContext = {}): boolean {
  if (Object.is(actual, expected)) return true;
  if (typeof actual === 'string' && HEX.test(actual) && expected !== actual) {
    const e = addrValue(expected, ctx);
    return e !== undefined && parseInt(actual, 16) === e;
  }
  if (Array.isArray(actual) && Array.isArray(expected)) {
    return actual.length === expected.length && actual.every((a, i) => deepEqual(a, expected[i], ctx));
  }
  if (actual !== null && expected !== null && typeof actual === 'object' && typeof expected === 'object' && !Array.isArray(actual) && !Array.isArray(expected)) {
    const ak = Object.keys(actual);
    const ek = Object.keys(expected);
    return ak.length === ek.length && ek.every((k) => deepEqual((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k], ctx));
  }
  return false;
}

/** Compact JSON for messages (undefined → "(missing)"), cut at 160 characters. */
export function show(v: unknown): string {
  if (v === undefined) return '(missing)';
  const s = JSON.stringify(v);
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}

/** Check one value against a matcher or a plain value; returns null when it holds, else why not. */
export function matchValue(actual: unknown, expected: unknown, ctx: PathContext = {}): string | null {
  if (!isMatcher(expected)) return deepEqual(actual, expected, ctx) ? null : `expected ${show(expected)}, got ${show(actual)}`;
  const m = expected;
  const why: string[] = [];
  if ('equals' in m && !deepEqual(actual, m.equals, ctx)) why.push(`expected ${show(m.equals)}, got ${show(actual)}`);
  if ('not' in m) {
    const inner = isMatcher(m.not) ? matchValue(actual, m.not, ctx) === null : deepEqual(actual, m.not, ctx);
    if (inner) why.push(`expected not ${show(m.not)}, got ${show(actual)}`);
  }
  if ('contains' in m) {
    const ok = Array.isArray(actual)
      ? actual.some((a) => deepEqual(a, m.contains, ctx))
      : typeof actual === 'string' && typeof m.contains === 'string' && actual.includes(m.contains);
    if (!ok) why.push(`expected to contain ${show(m.contains)}, got ${show(actual)}`);
  }
  if (m.containsAll !== undefined) {
    const missing = Array.isArray(actual) ? m.containsAll.filter((x) => !actual.some((a) => deepEqual(a, x, ctx))) : m.containsAll;
    if (missing.length > 0) why.push(`expected to contain ${show(m.containsAll)}, missing ${show(missing)} in ${show(actual)}`);
  }
  if (m.containsNone !== undefined) {
    const found = Array.isArray(actual) ? m.containsNone.filter((x) => actual.some((a) => deepEqual(a, x, ctx))) : [];
    if (!Array.isArray(actual)) why.push(`expected a list, got ${show(actual)}`);
    else if (found.length > 0) why.push(`expected none of ${show(m.containsNone)}, found ${show(found)} in ${show(actual)}`);
  }
  if (m.lengthOf !== undefined) {
    const len = Array.isArray(actual) || typeof actual === 'string' ? actual.length : undefined;
    if (len !== m.lengthOf) why.push(`expected length ${m.lengthOf}, got ${len === undefined ? `no length (${show(actual)})` : `${len}: ${show(actual)}`}`);
  }
  if (m.gte !== undefined && !(typeof actual === 'number' && actual >= m.gte)) why.push(`expected ≥ ${m.gte}, got ${show(actual)}`);
  if (m.lte !== undefined && !(typeof actual === 'number' && actual <= m.lte)) why.push(`expected ≤ ${m.lte}, got ${show(actual)}`);
  if ('all' in m) {
    if (!Array.isArray(actual)) why.push(`expected a list, got ${show(actual)}`);
    else {
      const bad = actual.findIndex((a) => matchValue(a, m.all, ctx) !== null);
      if (bad >= 0) why.push(`expected every element to be ${show(m.all)}, element ${bad} is ${show(actual[bad])}: ${show(actual)}`);
    }
  }
  if (m.consecutive === true) {
    const ok = Array.isArray(actual) && actual.every((a, i) => typeof a === 'number' && (i === 0 || a === (actual[i - 1] as number) + 1));
    if (!ok) why.push(`expected consecutive numbers, got ${show(actual)}`);
  }
  if (m.multipleOf !== undefined && !(typeof actual === 'number' && actual % m.multipleOf === 0)) why.push(`expected a multiple of ${m.multipleOf}, got ${show(actual)}`);
  return why.length === 0 ? null : why.join('; ');
}

function result(path: string, expected: unknown, actual: unknown, why: string | null): ExpectationResult {
  return { ok: why === null, path, expected, actual, message: `${path}: ${why ?? 'ok'}` };
}

/** Check an event count against an exact count or an EventMatcher. */
function matchEvent(actual: number, expected: number | EventMatcher): string | null {
  return matchValue(actual, expected);
}

/** What an `expect` step is checked against. */
export interface ExpectEnv {
  /** The state dump now (needed only for `state`). */
  dump?: unknown;
  ctx?: PathContext;
  /** Non-zero events of the previous non-expect step (absent event = 0). */
  delta?: Readonly<Record<string, number>>;
  invariants?: InvariantReport;
}

/** Evaluate every assertion of an `expect` step, in the order written. */
export function evaluateExpect(args: ExpectArgs, env: ExpectEnv): ExpectationResult[] {
  const out: ExpectationResult[] = [];
  const ctx = env.ctx ?? {};
  for (const [text, expected] of Object.entries(args.state ?? {})) {
    let r;
    try {
      r = resolvePath(env.dump, parsePath(text), ctx);
    } catch (e) {
      out.push(result(text, expected, undefined, (e as Error).message));
      continue;
    }
    const why = r.missing ?? matchValue(r.value, expected, ctx);
    out.push(result(text, expected, r.value, why));
  }
  for (const [name, expected] of Object.entries(args.events ?? {})) {
    const actual = env.delta?.[name] ?? 0;
    out.push(result(`events.${name}`, expected, actual, matchEvent(actual, expected)));
  }
  if (args.invariants === 'ok') {
    const inv = env.invariants;
    const ok = inv?.ok === true;
    const list = (inv?.violations ?? []).map((v) => `${v.rule} at ${v.where}: ${v.detail}`);
    const why = ok ? null : inv === undefined ? 'no invariant report' : `expected ok, got ${list.length} violation(s): ${list.join('; ')}`;
    out.push(result('invariants', 'ok', inv?.ok, why));
  }
  return out;
}
