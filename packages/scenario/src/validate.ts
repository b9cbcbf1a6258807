import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { closest, didYouMean, displayPath, type DataPath, type RawDiagnostic } from './diagnostics.js';
import { SCENARIO_SCHEMA } from './schema/scenario-schema.js';
import { STATE_SCHEMA } from './schema/state-schema.js';
import { STEP_KINDS } from './types.js';

/*
 * JSON Schema validation with ajv, and the translation of ajv's errors into
 * messages a person can act on: the key named, "did you mean" for near
 * misses, sizes and addresses explained. Positions are added later from the
 * data path (loader.ts).
 */

let scenarioValidator: ValidateFunction | null = null;
let stateValidator: ValidateFunction | null = null;

function makeAjv(): Ajv2020 {
  return new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true, verbose: true });
}

function compiled(which: 'scenario' | 'state'): ValidateFunction {
  if (which === 'scenario') return (scenarioValidator ??= makeAjv().compile(SCENARIO_SCHEMA));
  return (stateValidator ??= makeAjv().compile(STATE_SCHEMA));
}

/** Split an ajv instancePath ("/steps/3/mmap") into a data path, using the data to tell indices from keys. */
function dataPath(root: unknown, instancePath: string): (string | number)[] {
  if (instancePath === '') return [];
  const out: (string | number)[] = [];
  let node: unknown = root;
  for (const raw of instancePath.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      const i = Number(seg);
      out.push(i);
      node = node[i];
    } else {
      out.push(seg);
      node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined;
    }
  }
  return out;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${v}`;
  return typeof v;
}

const TITLE_HINT: Readonly<Record<string, string>> = {
  size: 'a size (bytes, or a string like 4K, 64K, 2M, 1G or 0x10000)',
  address: 'an address (a number, a hex string, or a bound name with offsets like buf+32K)',
  name: 'a name (letters, digits and _, starting with a letter)',
  'process name': 'a process name (letters, digits and _, starting with a letter)',
  injection: 'an injection value (N = fail the Nth call from now, true = every call, false/0 = off)',
  'event count': 'an event count (an integer ≥ 0, or { gte, lte, equals, not })',
};

function titleOf(e: ErrorObject): string | undefined {
  const ps = e.parentSchema as { title?: unknown } | undefined;
  return typeof ps?.title === 'string' ? ps.title : undefined;
}

function where(path: DataPath): string {
  return path.length === 0 ? 'the scenario' : `\`${displayPath(path)}\``;
}

function expectedType(e: ErrorObject): string {
  const t = (e.params as { type?: string | string[] }).type;
  const list = Array.isArray(t) ? t : String(t).split(',');
  return list.map((x) => (x === 'integer' ? 'an integer' : x === 'object' ? 'a mapping' : x === 'array' ? 'a list' : `a ${x}`)).join(' or ');
}

function stepKindMessage(path: DataPath, data: unknown): string {
  const keys = data !== null && typeof data === 'object' ? Object.keys(data) : [];
  const kinds = keys.filter((k) => (STEP_KINDS as readonly string[]).includes(k));
  if (kinds.length > 1) return `${displayPath(path)}: a step does one thing, but this one has ${kinds.length} kinds (${kinds.map((k) => `\`${k}\``).join(', ')})`;
  return `${displayPath(path)}: the step has no kind; expected one of ${STEP_KINDS.join(', ')}`;
}

/** One ajv error → one message (or null when another error says it better). */
function translate(root: unknown, e: ErrorObject, unknownKeyAt: Set<string>): RawDiagnostic | null {
  const path = dataPath(root, e.instancePath);
  const title = titleOf(e);
  const hint = title !== undefined ? TITLE_HINT[title] : undefined;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const props = Object.keys((e.parentSchema as { properties?: object }).properties ?? {});
      const isStep = title === 'step';
      const guess = didYouMean(key, props);
      const choices = isStep ? [...STEP_KINDS, 'name', 'when'] : props;
      const list = guess === '' && (isStep || props.length <= 12) ? ` (expected one of: ${choices.join(', ')})` : '';
      const what = isStep ? 'unknown step kind or key' : 'unknown key';
      return { path: [...path, key], at: 'key', message: `${what} \`${key}\` in ${where(path)}${guess}${list}` };
    }
    case 'required': {
      if (e.schemaPath.includes('/oneOf/')) return null; // the oneOf error explains it
      const key = (e.params as { missingProperty: string }).missingProperty;
      return { path, at: 'value', message: `${where(path)} is missing the required key \`${key}\`` };
    }
    case 'oneOf':
      if (title === 'step') {
        if (unknownKeyAt.has(JSON.stringify(path))) return null; // "unknown step kind" already said it
        return { path, at: 'value', message: stepKindMessage(path, e.data) };
      }
      return { path, at: 'value', message: `${displayPath(path)}: ${e.message ?? 'invalid'}` };
    case 'type':
      return { path, at: 'value', message: `${displayPath(path)}: expected ${hint ?? expectedType(e)}, got ${typeName(e.data)}` };
    case 'pattern': {
      const v = JSON.stringify(e.data);
      if (title === 'size') return { path, at: 'value', message: `${displayPath(path)}: bad size ${v}: expected bytes, or a number with a K, M, G or T suffix (e.g. 64K) or hex (0x10000)` };
      if (title === 'address') return { path, at: 'value', message: `${displayPath(path)}: bad address ${v}: expected a number, hex (0x40000000) or a bound name with offsets (buf+32K)` };
      return { path, at: 'value', message: `${displayPath(path)}: bad ${title ?? 'value'} ${v}: expected ${hint ?? `a match of ${String((e.params as { pattern: string }).pattern)}`}` };
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues.map(String);
      const guess = typeof e.data === 'string' ? closest(e.data, allowed) : undefined;
      const dym = guess === undefined ? '' : `; did you mean \`${guess}\`?`;
      return { path, at: 'value', message: `${displayPath(path)}: ${JSON.stringify(e.data)} is not one of ${allowed.join(', ')}${dym}` };
    }
    case 'const':
      return { path, at: 'value', message: `${displayPath(path)}: expected ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}, got ${JSON.stringify(e.data)}` };
    case 'minimum':
      return { path, at: 'value', message: `${displayPath(path)}: expected ${hint ?? `a number ≥ ${String((e.params as { limit: number }).limit)}`}, got ${JSON.stringify(e.data)}` };
    case 'minItems':
      return { path, at: 'value', message: `${displayPath(path)}: needs at least ${String((e.params as { limit: number }).limit)} item(s)` };
    case 'minProperties':
      return { path, at: 'value', message: `${displayPath(path)}: must not be empty` };
    case 'minLength':
      return { path, at: 'value', message: `${displayPath(path)}: must not be empty` };
    case 'if':
      return null; // the failing `then`/`else` branch reports
    default:
      return { path, at: 'value', message: `${displayPath(path)}: ${e.message ?? e.keyword}` };
  }
}

function run(which: 'scenario' | 'state', data: unknown): RawDiagnostic[] {
  const v = compiled(which);
  if (v(data)) return [];
  const errors = v.errors ?? [];
  const unknownKeyAt = new Set(errors.filter((e) => e.keyword === 'additionalProperties').map((e) => JSON.stringify(dataPath(data, e.instancePath))));
  const out: RawDiagnostic[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const d = translate(data, e, unknownKeyAt);
    if (d === null) continue;
    const k = `${JSON.stringify(d.path)} ${d.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(d);
  }
  return out;
}

/** Validate scenario data against SCENARIO_SCHEMA; messages name the key (no positions yet). */
export function schemaDiagnostics(data: unknown): RawDiagnostic[] {
  return run('scenario', data);
}

/** Validate a state dump against STATE_SCHEMA: a list of "path: problem" strings, empty when valid. */
export function validateStateDump(dump: unknown): string[] {
  return run('state', dump).map((d) => d.message);
}
