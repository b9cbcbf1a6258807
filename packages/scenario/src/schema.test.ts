import { EVENT_NAMES } from '@foliolab/ledger';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { SCENARIO_SCHEMA, STATE_SCHEMA, STEP_KINDS, specScenarioFiles, validateStateDump } from './index.js';

type Json = Record<string, unknown>;

/** Every sub-schema of a schema (objects only), with its JSON pointer. */
function* subschemas(node: unknown, ptr = '#'): Generator<[string, Json]> {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) yield* subschemas(node[i], `${ptr}/${i}`);
    return;
  }
  yield [ptr, node as Json];
  for (const [k, v] of Object.entries(node)) if (k !== 'enum' && k !== 'const' && k !== 'required') yield* subschemas(v, `${ptr}/${k}`);
}

describe('the JSON Schemas are data, valid 2020-12, and strict', () => {
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true });

  it('both are plain JSON and valid against the 2020-12 meta-schema', () => {
    for (const s of [SCENARIO_SCHEMA, STATE_SCHEMA]) {
      expect(JSON.parse(JSON.stringify(s))).toEqual(s);
      expect(ajv.validateSchema(s)).toBe(true);
      expect(() => new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true }).compile(s)).not.toThrow();
    }
  });

  it('the scenario schema is closed: every object with properties has additionalProperties: false', () => {
    const open = [...subschemas(SCENARIO_SCHEMA)].filter(([, s]) => s.properties !== undefined && s.additionalProperties !== false).map(([p]) => p);
    expect(open).toEqual([]);
  });

  it('lists every step kind and every ledger event', () => {
    const step = (SCENARIO_SCHEMA.$defs as Json).step as Json;
    expect(Object.keys(step.properties as Json).filter((k) => k !== 'name' && k !== 'when')).toEqual([...STEP_KINDS]);
    const events = (((step.properties as Json).expect as Json).properties as Json).events as Json;
    expect(Object.keys(events.properties as Json)).toEqual([...EVENT_NAMES]);
  });

  it('every spec scenario file validates against the schema with plain ajv', () => {
    const validate = ajv.compile(SCENARIO_SCHEMA);
    for (const f of specScenarioFiles()) {
      const ok = validate(parse(readFileSync(f, 'utf8')));
      expect({ f, ok, errors: validate.errors ?? null }).toEqual({ f, ok: true, errors: null });
    }
  });
});

describe('STATE_SCHEMA describes foliolab.state/v1 (ENGINE-API.md)', () => {
  const dump = {
    schema: 'foliolab.state/v1',
    config: { arch: 'arm64-contpte', policy: 'mainline', mapcountMode: 'legacy', memory: 67108864 },
    processes: [
      {
        pid: 1,
        name: 'p1',
        parent: null,
        exited: false,
        rss: { anon: 16, file: 0, shmem: 0, swapents: 0 },
        hasPinned: false,
        onMmlist: false,
        vmas: [{ start: '0x40000000', end: '0x40010000', pgoff: 262144, flags: ['read', 'write', 'anon', 'private'], anonVma: 1 }],
        ptes: [
          { addr: '0x40000000', kind: 'present', pfn: 4096, write: true, dirty: true, young: true, cont: true, uffdWp: false },
          { addr: '0x40001000', kind: 'swap', type: 0, offset: 16, exclusive: true, uffdWp: false },
        ],
      },
    ],
    folios: [{ pfn: 4096, order: 4, refcount: 17, mapcount: 16, entireMapcount: 0, pincount: 0, flags: ['anon', 'swapbacked', 'dirty', 'lru'], anonExclusive: '1111111111111111', swap: { type: 0, offset: 16 }, deferredSplit: false, partiallyMapped: false, pageMapcounts: [1] }],
    swap: { slots: [{ offset: 16, count: 1, cached: 4096 }], swapCache: [{ pfn: 4096, offset: 16, nr: 16 }] },
    stats: { vmstat: { pswpout: 16 }, mthp: { '64K': { anon_fault_alloc: 1, swpout: 1, split_deferred: 0 } } },
    ledger: { PTE_READ: 71 },
    invariants: { ok: true, violations: [] },
    someFutureKey: 'allowed: keys may be added',
  };

  it('accepts the contract’s example shape (plus added keys)', () => {
    expect(validateStateDump(dump)).toEqual([]);
  });

  it('rejects renamed keys and wrong types, naming the place', () => {
    const bad = structuredClone(dump) as unknown as Json & { processes: Json[]; folios: Json[] };
    bad.schema = 'foliolab.state/v2';
    delete bad.processes[0]!.rss;
    (bad.processes[0]!.ptes as Json[])[0]!.kind = 'valid';
    bad.folios[0]!.anonExclusive = '11x1';
    expect(validateStateDump(bad)).toEqual([
      'schema: expected "foliolab.state/v1", got "foliolab.state/v2"',
      '`processes[0]` is missing the required key `rss`',
      'processes[0].ptes[0].kind: "valid" is not one of present, swap, marker, migration, deviceExclusive, devicePrivate, hwpoison',
      'folios[0].anonExclusive: bad value "11x1": expected a match of ^[01]*$',
    ]);
  });
});
