/*
 * JSON Schema (2020-12) of the `foliolab.state/v1` state dump, written from
 * docs/ENGINE-API.md. The contract says keys are never renamed and new keys
 * may be added, so objects here are open (additional properties allowed) but
 * every key the contract names is required with its type.
 */

type Json = Record<string, unknown>;

const int: Json = { type: 'integer' };
const nat: Json = { type: 'integer', minimum: 0 };
const bool: Json = { type: 'boolean' };
const hex: Json = { type: 'string', pattern: '^0x[0-9a-f]+$' };
const counters: Json = { type: 'object', additionalProperties: { type: 'number' } };

function obj(properties: Json, required: string[] = Object.keys(properties)): Json {
  return { type: 'object', properties, required };
}

const PTE_KINDS = ['present', 'swap', 'marker', 'migration', 'deviceExclusive', 'devicePrivate', 'hwpoison'];

/** The state-dump JSON Schema (draft 2020-12), as data. */
export const STATE_SCHEMA: Readonly<Json> = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://foliolab.dev/schema/state-v1.json',
  title: 'foliolab.state/v1',
  description: 'The stable, versioned state dump of the unmap engine. Keys are never renamed; new keys may be added.',
  ...obj({
    schema: { const: 'foliolab.state/v1' },
    config: obj({ arch: { type: 'string' }, policy: { type: 'string' }, mapcountMode: { type: 'string' } }),
    processes: { type: 'array', items: { $ref: '#/$defs/process' } },
    folios: { type: 'array', items: { $ref: '#/$defs/folio' } },
    swap: obj({
      slots: {
        type: 'array',
        description: 'non-free slots only',
        items: obj({ offset: nat, count: nat, cached: { type: ['integer', 'null'] } }),
      },
      swapCache: { type: 'array', items: obj({ pfn: nat, offset: nat, nr: { type: 'integer', minimum: 1 } }) },
    }),
    stats: obj({
      vmstat: counters,
      mthp: { type: 'object', description: 'by folio size (16K … 2M)', additionalProperties: counters },
    }),
    ledger: { ...counters, description: 'non-zero events, cumulative' },
    invariants: { $ref: '#/$defs/invariants' },
  }),
  $defs: {
    rss: obj({ anon: nat, file: nat, shmem: nat, swapents: nat }),
    vma: obj({
      start: hex,
      end: hex,
      pgoff: nat,
      flags: { type: 'array', items: { type: 'string' } },
      anonVma: { type: ['integer', 'null'] },
    }),
    pte: {
      ...obj(
        {
          addr: hex,
          kind: { enum: PTE_KINDS },
          pfn: nat,
          write: bool,
          dirty: bool,
          young: bool,
          cont: bool,
          uffdWp: bool,
          type: nat,
          offset: nat,
          exclusive: bool,
        },
        ['addr', 'kind'],
      ),
      description: 'only non-none PTEs are dumped, ascending address',
    },
    process: obj({
      pid: { type: 'integer', minimum: 1 },
      name: { type: 'string' },
      parent: { type: ['integer', 'null'] },
      exited: bool,
      rss: { $ref: '#/$defs/rss' },
      hasPinned: bool,
      onMmlist: bool,
      vmas: { type: 'array', items: { $ref: '#/$defs/vma' } },
      ptes: { type: 'array', items: { $ref: '#/$defs/pte' } },
    }),
    folio: obj(
      {
        pfn: nat,
        order: nat,
        refcount: int,
        mapcount: int,
        entireMapcount: int,
        pincount: nat,
        flags: { type: 'array', items: { type: 'string' } },
        anonExclusive: { type: 'string', pattern: '^[01]*$', description: 'one char per page' },
        swap: { oneOf: [{ type: 'null' }, obj({ type: nat, offset: nat })] },
        deferredSplit: bool,
        partiallyMapped: bool,
        pageMapcounts: { type: 'array', items: int, description: 'legacy mapcount mode only' },
      },
      ['pfn', 'order', 'refcount', 'mapcount', 'entireMapcount', 'pincount', 'flags', 'anonExclusive', 'swap', 'deferredSplit', 'partiallyMapped'],
    ),
    invariants: obj({
      ok: bool,
      violations: { type: 'array', items: obj({ rule: { type: 'string' }, where: { type: 'string' }, detail: { type: 'string' } }) },
    }),
  },
};
