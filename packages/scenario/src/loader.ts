import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { ScenarioError, type DataPath, type Diagnostic, type RawDiagnostic } from './diagnostics.js';
import { semanticDiagnostics } from './semantic.js';
import { parseSize } from './sizes.js';
import type { EngineConfig, Scenario } from './types.js';
import { schemaDiagnostics } from './validate.js';

/*
 * Loading: YAML (or JSON, which is YAML) → a document with positions →
 * JSON Schema → semantic checks → a Scenario. Every problem becomes a
 * `file:line:col: message` diagnostic; all of them are collected and thrown
 * together as one ScenarioError.
 */

/** A 1-based position in a scenario file. */
export interface SourceLocation {
  file: string;
  line: number;
  col: number;
}

/** Where the parts of a loaded scenario came from. */
export interface ScenarioSource {
  file: string;
  /** Position of a data path (the key itself with at = 'key'); line 0 when unknown. */
  locate: (path: DataPath, at?: 'key' | 'value') => SourceLocation;
}

const sources = new WeakMap<Scenario, ScenarioSource>();

/** The file positions of a scenario returned by the loader (undefined for scenarios built in code). */
export function scenarioSource(s: Scenario): ScenarioSource | undefined {
  return sources.get(s);
}

type Pos = { range?: [number, number, number] | null } | null | undefined;
const start = (n: unknown): number | undefined => (n as Pos)?.range?.[0];

function keyText(k: unknown): string {
  return isScalar(k) ? String(k.value) : String(k);
}

function yamlLocator(file: string, doc: Document, lc: LineCounter): ScenarioSource['locate'] {
  return (path, at = 'value') => {
    let node: unknown = doc.contents;
    let pos = start(node) ?? 0;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      if (isMap(node)) {
        const pair = node.items.find((p) => keyText(p.key) === String(seg));
        if (pair === undefined) break;
        if (i === path.length - 1 && at === 'key') {
          pos = start(pair.key) ?? pos;
          break;
        }
        node = pair.value;
        pos = start(pair.value) ?? start(pair.key) ?? pos;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (item === undefined) break;
        node = item;
        pos = start(item) ?? pos;
      } else break;
    }
    const lp = lc.linePos(pos);
    return { file, line: lp.line, col: lp.col };
  };
}

function noPositions(file: string): ScenarioSource['locate'] {
  return () => ({ file, line: 0, col: 0 });
}

function place(raw: RawDiagnostic[], locate: ScenarioSource['locate']): Diagnostic[] {
  return raw
    .map((d) => ({ ...locate(d.path, d.at), message: d.message }))
    .sort((a, b) => a.line - b.line || a.col - b.col);
}

function normalizeConfig(c: EngineConfig | undefined): EngineConfig | undefined {
  if (c === undefined) return undefined;
  const out: EngineConfig = { ...c };
  if (c.memory !== undefined) out.memory = parseSize(c.memory);
  if (c.swap !== undefined) out.swap = parseSize(c.swap);
  if (c.limits?.maxMemory !== undefined) out.limits = { ...c.limits, maxMemory: parseSize(c.limits.maxMemory) };
  return out;
}

/** Schema + semantic diagnostics of scenario data (no throw); the schema's word wins on a shared place. */
function diagnose(data: unknown): RawDiagnostic[] {
  const schema = schemaDiagnostics(data);
  const taken = new Set(schema.map((d) => JSON.stringify(d.path)));
  return [...schema, ...semanticDiagnostics(data).filter((d) => !taken.has(JSON.stringify(d.path)))];
}

function finish(data: unknown, source: ScenarioSource): Scenario {
  const diags = diagnose(data);
  if (diags.length > 0) throw new ScenarioError(place(diags, source.locate));
  const raw = data as Scenario;
  const s: Scenario = { ...raw };
  const config = normalizeConfig(raw.config);
  if (config !== undefined) s.config = config;
  sources.set(s, source);
  return s;
}

/** Parse and validate a scenario from YAML or JSON text; throws ScenarioError with every problem found. */
export function parseScenario(text: string, file = '<scenario>'): Scenario {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ScenarioError(
      doc.errors.map((e) => {
        const lp = lc.linePos(e.pos[0]);
        const msg = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        return { file, line: lp.line, col: lp.col, message: `YAML syntax: ${msg}` };
      }),
    );
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  if (data === null || data === undefined) throw new ScenarioError([{ file, line: 1, col: 1, message: 'the file is empty: a scenario needs `name`, `processes` and `steps`' }]);
  return finish(data, { file, locate: yamlLocator(file, doc, lc) });
}

/** Read, parse and validate a scenario file (.yaml, .yml or .json). */
export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ScenarioError([{ file: path, line: 0, col: 0, message: `cannot read the file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }]);
  }
  return parseScenario(text, path);
}

/** Validate a scenario built in code (diagnostics carry the data path, no line numbers). */
export function validateScenario(data: unknown, file = '<scenario>'): Scenario {
  const known = data !== null && typeof data === 'object' ? sources.get(data as Scenario) : undefined;
  return finish(data, known ?? { file, locate: noPositions(file) });
}

/** All diagnostics of scenario data, [] when valid (never throws). */
export function checkScenario(data: unknown, file = '<scenario>'): Diagnostic[] {
  return place(diagnose(data), noPositions(file));
}
