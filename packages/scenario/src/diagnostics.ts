import { FoliolabError } from '@foliolab/ledger';

/** One problem in a scenario, at a place in its file (line and col are 1-based; 0 = no position). */
export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  message: string;
}

/** `file:line:col: message` (or `file: message` when there is no position). */
export function formatDiagnostic(d: Diagnostic): string {
  return d.line > 0 ? `${d.file}:${d.line}:${d.col}: ${d.message}` : `${d.file}: ${d.message}`;
}

/**
 * A scenario that cannot be loaded or run as written. `diagnostics` lists
 * every problem found (several when possible), each with its position; the
 * message is those lines, ready to print (never a stack trace).
 */
export class ScenarioError extends FoliolabError {
  readonly diagnostics: readonly Diagnostic[];
  constructor(diagnostics: readonly Diagnostic[]) {
    super('EINVAL', diagnostics.map(formatDiagnostic).join('\n'), { count: diagnostics.length });
    Object.defineProperty(this, 'name', { value: 'ScenarioError' });
    this.diagnostics = diagnostics;
  }
}

/** A path in the scenario data: keys and array indices. */
export type DataPath = readonly (string | number)[];

/** A problem before it has a position: where in the data, and whether it is about the key or the value. */
export interface RawDiagnostic {
  path: DataPath;
  at: 'key' | 'value';
  message: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `steps[3].mmap.len`: how messages name a place in the scenario. */
export function displayPath(path: DataPath): string {
  let s = '';
  for (const seg of path) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else if (IDENT.test(seg)) s += s === '' ? seg : `.${seg}`;
    else s += `[${JSON.stringify(seg)}]`;
  }
  return s === '' ? '(top level)' : s;
}

/** Levenshtein distance (small strings only: keys, names). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = [i];
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[n]!;
}

/** The closest candidate within edit distance 2 (case-insensitive ties go to the first), if any. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const d = Math.min(editDistance(word, c), editDistance(word.toLowerCase(), c.toLowerCase()));
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}

/** " did you mean `X`?" or "" — appended to messages about unknown words. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : `; did you mean \`${c}\`?`;
}
