import { EVENT_NAMES } from '@foliolab/ledger';
import { ADDR_PATTERN, NAME_PATTERN, SIZE_PATTERN } from '../sizes.js';
import { ARCH_NAMES, INJECT_NAMES, MAPCOUNT_MODES, MTHP_SIZES, POLICIES, STEP_KINDS } from '../types.js';

/*
 * JSON Schema (2020-12) of the scenario format. Every object is closed
 * (`additionalProperties: false`), so an unknown key is an error. The
 * `title` of a $def names the kind of value for error messages (validate.ts).
 * What a schema cannot say — names bound before use, `len` a multiple of 4K,
 * paths into the state dump — is checked by semantic.ts.
 */

type Json = Record<string, unknown>;

/** A closed object schema. */
function obj(properties: Json, required: string[] = [], extra: Json = {}): Json {
  return { type: 'object', properties, required, additionalProperties: false, ...extra };
}

const ref = (name: string): Json => ({ $ref: `#/$defs/${name}` });
const str = (description?: string): Json => (description === undefined ? { type: 'string' } : { type: 'string', description });
const bool: Json = { type: 'boolean' };
const enumOf = (values: readonly string[]): Json => ({ type: 'string', enum: [...values] });
const arrayOf = (items: Json, minItems = 1): Json => ({ type: 'array', items, minItems });

const process = ref('processName');
const addr = ref('addr');
const size = ref('size');
const bindName = ref('name');
const prot = enumOf(['r', 'rw', 'none']);
const range = { process, addr, len: size };

/** Arguments of each step kind: the 1:1 mirror of the engine methods (ENGINE-API.md). */
const STEP_ARGS: Record<(typeof STEP_KINDS)[number], Json> = {
  mmap: obj({ process, addr, len: size, prot, locked: bool, droppable: bool, as: bindName }, ['process', 'len']),
  write: obj({ process, addr, len: size, token: { type: 'integer', minimum: 0 } }, ['process', 'addr']),
  read: obj({ process, addr, len: size }, ['process', 'addr']),
  fork: obj({ process, child: bindName }, ['process', 'child']),
  exit: obj({ process }, ['process']),
  munmap: obj(range, ['process', 'addr', 'len']),
  mremap: obj({ process, addr, oldLen: size, newLen: size, fixed: addr, as: bindName }, ['process', 'addr', 'oldLen', 'newLen']),
  mprotect: obj({ ...range, prot }, ['process', 'addr', 'len', 'prot']),
  madvise: obj({ ...range, advice: enumOf(['dontneed', 'free', 'pageout', 'cold', 'dontfork', 'dofork']) }, ['process', 'addr', 'len', 'advice']),
  pageout: obj(range, ['process', 'addr', 'len']),
  reclaim: obj({ kind: enumOf(['proactive', 'node']), process, addr, len: size, nrToReclaim: { type: 'integer', minimum: 1 } }),
  pin: obj({ process, addr, len: size, kind: enumOf(['pin', 'get']), write: bool, as: bindName }, ['process', 'addr']),
  unpin: obj({ handle: bindName }, ['handle']),
  uffdwp: obj({ ...range, op: enumOf(['register', 'protect', 'unprotect', 'unregister']) }, ['process', 'addr', 'len', 'op']),
  poison: obj({ process, addr, ttuHwpoison: bool, split: bool }, ['process', 'addr']),
  mlock: obj(range, ['process', 'addr', 'len']),
  munlock: obj(range, ['process', 'addr', 'len']),
  deviceExclusive: obj({ process, addr }, ['process', 'addr']),
  inject: obj(Object.fromEntries(INJECT_NAMES.map((n) => [n, ref('injectValue')])), [], { minProperties: 1 }),
  expect: obj(
    {
      state: {
        type: 'object',
        description: 'path into the foliolab.state/v1 dump → value (equals) or matcher',
        additionalProperties: { if: { type: 'object' }, then: ref('matcher') },
      },
      events: obj(
        Object.fromEntries(EVENT_NAMES.map((n) => [n, ref('eventCount')])),
        [],
        { description: 'event → count in the ledger delta of the previous non-expect step' },
      ),
      invariants: { const: 'ok' },
    },
    [],
    { minProperties: 1 },
  ),
};

const stepProperties: Json = { name: str('shown in reports'), when: ref('when') };
for (const k of STEP_KINDS) stepProperties[k] = STEP_ARGS[k];

/** The scenario JSON Schema (draft 2020-12), as data. */
export const SCENARIO_SCHEMA: Readonly<Json> = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://foliolab.dev/schema/scenario.json',
  title: 'foliolab scenario',
  description: 'A config, the processes that exist at the start, and steps run in order against the unmap engine.',
  ...obj(
    {
      name: { type: 'string', minLength: 1 },
      description: str(),
      spec: str('where the scenario comes from, e.g. "unmap-engine §7.2"'),
      notModeled: str('what of the spec scenario this file cannot express yet, and why'),
      config: ref('config'),
      processes: arrayOf(obj({ name: ref('name') }, ['name'])),
      steps: arrayOf(ref('step')),
    },
    ['name', 'processes', 'steps'],
  ),
  $defs: {
    size: { title: 'size', type: ['integer', 'string'], minimum: 0, pattern: SIZE_PATTERN },
    addr: { title: 'address', type: ['integer', 'string'], minimum: 0, pattern: ADDR_PATTERN },
    name: { title: 'name', type: 'string', pattern: NAME_PATTERN },
    processName: { title: 'process name', type: 'string', pattern: NAME_PATTERN },
    injectValue: { title: 'injection', type: ['integer', 'boolean'], minimum: 0 },
    config: obj({
      arch: enumOf(ARCH_NAMES),
      archOptions: obj({
        hasTlbiRange: bool,
        kpti: bool,
        bbml2NoAbort: bool,
        gatherVariant: enumOf(['old17', 'earlyExit']),
        x86OtherCpus: { type: 'integer', minimum: 0 },
        archUnmapOne: bool,
      }),
      policy: enumOf(POLICIES),
      mthp: obj(Object.fromEntries(MTHP_SIZES.map((s) => [s, enumOf(['never', 'always'])]))),
      mapcountMode: enumOf(MAPCOUNT_MODES),
      memory: size,
      swap: size,
      swapSynchronousIo: bool,
      inject: obj(Object.fromEntries(INJECT_NAMES.map((n) => [n, ref('injectValue')]))),
      limits: obj({ maxSteps: { type: 'integer', minimum: 1 }, maxMemory: size }),
    }),
    when: obj(
      { policy: arrayOf(enumOf(POLICIES)), arch: arrayOf(enumOf(ARCH_NAMES)), mapcountMode: arrayOf(enumOf(MAPCOUNT_MODES)) },
      [],
      { minProperties: 1 },
    ),
    step: {
      title: 'step',
      ...obj(stepProperties),
      oneOf: STEP_KINDS.map((k) => ({ required: [k] })),
    },
    matcher: obj(
      {
        equals: {},
        not: {},
        contains: {},
        containsAll: { type: 'array', minItems: 1 },
        containsNone: { type: 'array', minItems: 1 },
        lengthOf: { type: 'integer', minimum: 0 },
        gte: { type: 'number' },
        lte: { type: 'number' },
        all: {},
        consecutive: { const: true },
        multipleOf: { type: 'integer', minimum: 1 },
      },
      [],
      { title: 'matcher', minProperties: 1 },
    ),
    eventCount: {
      title: 'event count',
      if: { type: 'object' },
      then: obj(
        {
          equals: { type: 'integer', minimum: 0 },
          not: { type: 'integer', minimum: 0 },
          gte: { type: 'integer', minimum: 0 },
          lte: { type: 'integer', minimum: 0 },
        },
        [],
        { minProperties: 1 },
      ),
      else: { type: 'integer', minimum: 0 },
    },
  },
};
