import { EVENT_NAMES, measure, modeledNsFor, nonZero, priceArchOf, uneventedReclaimNs, type EventName } from '@foliolab/ledger';
import {
  ARCH_NAMES,
  DEFAULT_LIMITS,
  formatAddr,
  formatSize,
  MTHP_SIZES,
  parseSize,
  POLICIES,
  type ArchName,
  type EngineConfig,
  type EngineFactory,
  type InvariantViolation,
  type MthpSize,
  type Policy,
} from '@foliolab/scenario';
import { CliError } from './errors.js';
import { A1_FOLIO, A1_SIZE, PUBLISHED, publishedRatio } from './published.js';

/*
 * The headline experiment (issue 6, anchors A1): map a range of anonymous
 * memory with mTHP of one size, write it with zeros (memset(0), as the
 * published benchmark does), then time one madvise(MADV_PAGEOUT) over it —
 * per arch profile and policy. The events of the pageout call alone are
 * counted, priced with the arch's table, and the batched/mainline ratio is
 * set beside the published one.
 */

export const PAGEOUT_SCHEMA_ID = 'foliolab.pageout/v1';
/** Where the range is mapped: 2M-aligned, like any large anonymous mmap. */
export const PAGEOUT_ADDR = 0x4000_0000;
/**
 * Simulated memory beyond the range. The benchmark's 256 MiB is a fraction of
 * the machine's RAM, and the engine's write path keeps an allocation reserve
 * for the worst case (one page per 4K written) that mTHP allocations must
 * leave free: with only a little headroom, mTHP faults fall back to order 0
 * (anon_fault_fallback) and the experiment would page out small folios. So
 * the simulated machine gets the range twice over plus this much.
 */
export const PAGEOUT_HEADROOM = 32 * 2 ** 20;

/** Simulated memory (and swap) for a range of `sizeBytes`: 2 × the range, 2M-aligned, plus headroom. */
export function pageoutMemory(sizeBytes: number): number {
  return Math.ceil((2 * sizeBytes) / MB2) * MB2 + PAGEOUT_HEADROOM;
}
const MB2 = 2 * 2 ** 20;
const FOLIO_SIZES = ['4K', ...MTHP_SIZES] as const;

export interface PageoutPlan {
  readonly sizeBytes: number;
  readonly folioBytes: number;
  readonly folio: '4K' | MthpSize;
  readonly archs: readonly ArchName[];
  readonly policies: readonly Policy[];
  readonly memory: number;
  readonly maxMemory: number;
  readonly tlbiRange: boolean;
  readonly verify: boolean;
}

export interface PageoutRawOptions {
  size?: string;
  folio?: string;
  arch?: string;
  policy?: string;
  maxMemory?: string;
  tlbiRange?: boolean;
  verify?: boolean;
}

function bytesOf(flag: string, v: string): number {
  try {
    return parseSize(v);
  } catch (e) {
    throw new CliError(`pageout: ${flag} ${JSON.stringify(v)}: ${(e as Error).message.replace(/^parseSize: /, '')}`);
  }
}

/** `arm64|x86|all` or a comma list of profile names → arch profiles. */
export function parseArchList(v: string, command = 'pageout'): ArchName[] {
  const out: ArchName[] = [];
  for (const raw of v.split(',').map((s) => s.trim())) {
    const names: readonly ArchName[] | undefined =
      raw === 'all' ? ARCH_NAMES : raw === 'arm64' ? ['arm64-contpte'] : ARCH_NAMES.includes(raw as ArchName) ? [raw as ArchName] : undefined;
    if (names === undefined) throw new CliError(`${command}: --arch ${JSON.stringify(raw)} is not one of arm64, x86, all, ${ARCH_NAMES.join(', ')}`);
    for (const n of names) if (!out.includes(n)) out.push(n);
  }
  return out;
}

/** `per-pte|mainline|batched|all` or a comma list → policies (in the canonical order). */
export function parsePolicyList(v: string, command = 'pageout'): Policy[] {
  const set = new Set<Policy>();
  for (const raw of v.split(',').map((s) => s.trim())) {
    if (raw === 'all') POLICIES.forEach((p) => set.add(p));
    else if (POLICIES.includes(raw as Policy)) set.add(raw as Policy);
    else throw new CliError(`${command}: --policy ${JSON.stringify(raw)} is not one of ${POLICIES.join(', ')}, all`);
  }
  return POLICIES.filter((p) => set.has(p));
}

/** Validate the pageout flags into a plan; CliError (exit 2) naming the flag otherwise. */
export function planPageout(o: PageoutRawOptions): PageoutPlan {
  const sizeBytes = bytesOf('--size', o.size ?? '256M');
  const folioBytes = bytesOf('--folio', o.folio ?? '64K');
  const folio = FOLIO_SIZES.find((s) => parseSize(s) === folioBytes);
  if (folio === undefined) {
    throw new CliError(`pageout: --folio ${o.folio ?? '64K'} is not a folio size anonymous memory uses; one of ${FOLIO_SIZES.join(', ')} (no 8K: anon never uses order 1)`);
  }
  if (sizeBytes === 0 || sizeBytes % folioBytes !== 0) {
    throw new CliError(`pageout: --size ${o.size ?? '256M'} must be a non-zero multiple of the folio size ${folio}`);
  }
  const maxMemory = o.maxMemory === undefined ? DEFAULT_LIMITS.maxMemory : bytesOf('--max-memory', o.maxMemory);
  const memory = pageoutMemory(sizeBytes);
  if (memory > maxMemory) {
    throw new CliError(
      `pageout: --size ${formatSize(sizeBytes)} needs ${formatSize(memory)} of simulated memory (twice the range plus ${formatSize(PAGEOUT_HEADROOM)}), ` +
        `more than the limit of ${formatSize(maxMemory)}; raise it with --max-memory`,
    );
  }
  return {
    sizeBytes,
    folioBytes,
    folio,
    archs: parseArchList(o.arch ?? 'all'),
    policies: parsePolicyList(o.policy ?? 'all'),
    memory,
    maxMemory,
    tlbiRange: o.tlbiRange === true,
    verify: o.verify === true,
  };
}

export interface PageoutRun {
  arch: ArchName;
  policy: Policy;
  /** Non-zero events of the madvise(MADV_PAGEOUT) call alone. */
  events: Partial<Record<EventName, number>>;
  /** Σ count × price (ledger PRICES_ARM64 / PRICES_X86). */
  modeledNs: number;
  /** Unevented per-folio reclaim work (zero scan, shrink_folio_list): an estimate, not in modeledNs. */
  uneventedNs: number;
  /** Wall time of the simulated pageout call. */
  wallMs: number;
  /** Wall time of the setup (mmap + write faults), not part of the experiment. */
  setupWallMs: number;
  invariants: { ok: boolean; violations: InvariantViolation[] };
  /** Pages whose data did not read back (only with --verify). */
  lost?: number;
  /** Folios of the requested size mapped when the pageout started (should be nrFolios). */
  folios?: number;
}

export interface PageoutRatio {
  arch: ArchName;
  /** batched.modeledNs / mainline.modeledNs. */
  modeled: number;
  /** The same with the unevented estimate added to both. */
  modeledWithUnevented: number;
  published: { ratio: number; vanillaNs: number; patchedNs: number; machine: string; source: string; sameWorkload: boolean } | null;
}

export interface PageoutReport {
  schema: typeof PAGEOUT_SCHEMA_ID;
  config: {
    size: string;
    folio: string;
    sizeBytes: number;
    folioBytes: number;
    nrFolios: number;
    nrPtes: number;
    addr: string;
    memory: number;
    swap: number;
    archs: ArchName[];
    policies: Policy[];
    tlbiRange: boolean;
    verify: boolean;
    prices: Record<string, string>;
  };
  runs: PageoutRun[];
  ratios: PageoutRatio[];
  ok: boolean;
}

function engineConfig(plan: PageoutPlan, arch: ArchName, policy: Policy): EngineConfig {
  const c: EngineConfig = {
    arch,
    policy,
    memory: plan.memory,
    swap: plan.memory,
    mthp: plan.folio === '4K' ? {} : { [plan.folio]: 'always' },
    limits: { maxMemory: plan.maxMemory },
  };
  if (plan.tlbiRange && arch !== 'x86') c.archOptions = { hasTlbiRange: true };
  return c;
}

/** One arch × policy: build, map, memset(0), then measure the pageout alone. */
export function runOnePageout(factory: EngineFactory, plan: PageoutPlan, arch: ArchName, policy: Policy): PageoutRun {
  const t0 = performance.now();
  const engine = factory(engineConfig(plan, arch, policy));
  const pid = engine.createProcess('bench');
  const addr = engine.mmap(pid, { addr: PAGEOUT_ADDR, len: plan.sizeBytes, prot: 'rw' });
  engine.write(pid, addr, plan.sizeBytes, 0); // token 0: zero-filled pages, like the benchmark's memset(0)
  // The experiment is only what it says if the faults produced folios of the requested size (an engine
  // may fall back to smaller ones): count them, it costs one state dump.
  const order = Math.log2(plan.folioBytes / 4096);
  const folios = engine.dump().folios.filter((f) => f.order === order).length;
  const t1 = performance.now();
  const m = measure(engine.ledger, () => engine.madvise(pid, addr, plan.sizeBytes, 'pageout'));
  const t2 = performance.now();
  const report = engine.checkInvariants();
  const events = nonZero(m.counts);
  const run: PageoutRun = {
    arch,
    policy,
    events,
    modeledNs: modeledNsFor(events, arch),
    uneventedNs: uneventedReclaimNs(arch, plan.sizeBytes / plan.folioBytes, plan.folioBytes),
    wallMs: t2 - t1,
    setupWallMs: t1 - t0,
    invariants: { ok: report.ok, violations: report.violations },
  };
  run.folios = folios;
  if (plan.verify) run.lost = engine.read(pid, addr, plan.sizeBytes).lost.length;
  return run;
}

/** A run passed its checks: invariants hold, every folio had the requested size and (with --verify) no data was lost. */
export function runOk(r: PageoutRun, plan: Pick<PageoutPlan, 'sizeBytes' | 'folioBytes'>): boolean {
  return r.invariants.ok && (r.lost ?? 0) === 0 && (r.folios === undefined || r.folios === plan.sizeBytes / plan.folioBytes);
}

function ratiosOf(plan: PageoutPlan, runs: readonly PageoutRun[]): PageoutRatio[] {
  const out: PageoutRatio[] = [];
  for (const arch of plan.archs) {
    const m = runs.find((r) => r.arch === arch && r.policy === 'mainline');
    const b = runs.find((r) => r.arch === arch && r.policy === 'batched');
    if (m === undefined || b === undefined || m.modeledNs === 0) continue;
    const p = plan.folioBytes === A1_FOLIO ? PUBLISHED[arch] : undefined;
    out.push({
      arch,
      modeled: b.modeledNs / m.modeledNs,
      modeledWithUnevented: (b.modeledNs + b.uneventedNs) / (m.modeledNs + m.uneventedNs),
      published: p === undefined ? null : { ratio: publishedRatio(p), ...p, sameWorkload: plan.sizeBytes === A1_SIZE },
    });
  }
  return out;
}

/** Run the experiment; `onRun(i, n, arch, policy)` is called before each run (progress). */
export function runPageout(
  factory: EngineFactory,
  plan: PageoutPlan,
  onRun: (i: number, n: number, arch: ArchName, policy: Policy) => void = () => {},
): PageoutReport {
  const runs: PageoutRun[] = [];
  const n = plan.archs.length * plan.policies.length;
  for (const arch of plan.archs) {
    for (const policy of plan.policies) {
      onRun(runs.length, n, arch, policy);
      runs.push(runOnePageout(factory, plan, arch, policy));
    }
  }
  const prices: Record<string, string> = {};
  for (const a of plan.archs) prices[a] = priceArchOf(a) === 'x86' ? 'PRICES_X86' : 'PRICES_ARM64';
  return {
    schema: PAGEOUT_SCHEMA_ID,
    config: {
      size: formatSize(plan.sizeBytes),
      folio: plan.folio,
      sizeBytes: plan.sizeBytes,
      folioBytes: plan.folioBytes,
      nrFolios: plan.sizeBytes / plan.folioBytes,
      nrPtes: plan.sizeBytes / 4096,
      addr: formatAddr(PAGEOUT_ADDR),
      memory: plan.memory,
      swap: plan.memory,
      archs: [...plan.archs],
      policies: [...plan.policies],
      tlbiRange: plan.tlbiRange,
      verify: plan.verify,
      prices,
    },
    runs,
    ratios: ratiosOf(plan, runs),
    ok: runs.every((r) => runOk(r, plan)),
  };
}

/** Events whose counts differ between the runs (all non-zero events when there is one run), in ledger order. */
export function differingEvents(runs: readonly Pick<PageoutRun, 'events'>[]): EventName[] {
  return EVENT_NAMES.filter((e) => {
    const vals = runs.map((r) => r.events[e] ?? 0);
    if (vals.every((v) => v === 0)) return false;
    return runs.length === 1 || vals.some((v) => v !== vals[0]);
  });
}

/** JSON Schema of the `pageout --json` output (issue 6: keep the shape; add fields, never rename). */
export const PAGEOUT_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://foliolab.dev/schema/pageout-v1.json',
  title: 'foliolab pageout --json (foliolab.pageout/v1)',
  type: 'object',
  required: ['schema', 'config', 'runs'],
  properties: {
    schema: { const: PAGEOUT_SCHEMA_ID },
    config: {
      type: 'object',
      required: ['size', 'folio', 'sizeBytes', 'folioBytes', 'archs', 'policies'],
      properties: {
        size: { type: 'string' },
        folio: { type: 'string' },
        sizeBytes: { type: 'integer', minimum: 1 },
        folioBytes: { type: 'integer', minimum: 4096 },
        nrFolios: { type: 'integer', minimum: 1 },
        nrPtes: { type: 'integer', minimum: 1 },
        archs: { type: 'array', items: { enum: [...ARCH_NAMES] } },
        policies: { type: 'array', items: { enum: [...POLICIES] } },
      },
    },
    runs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['arch', 'policy', 'events', 'modeledNs', 'wallMs', 'invariants'],
        properties: {
          arch: { enum: [...ARCH_NAMES] },
          policy: { enum: [...POLICIES] },
          events: { type: 'object', propertyNames: { enum: [...EVENT_NAMES] }, additionalProperties: { type: 'number', minimum: 0 } },
          modeledNs: { type: 'number', minimum: 0 },
          uneventedNs: { type: 'number', minimum: 0 },
          wallMs: { type: 'number', minimum: 0 },
          setupWallMs: { type: 'number', minimum: 0 },
          invariants: {
            type: 'object',
            required: ['ok', 'violations'],
            properties: {
              ok: { type: 'boolean' },
              violations: {
                type: 'array',
                items: { type: 'object', required: ['rule', 'where', 'detail'], properties: { rule: { type: 'string' }, where: { type: 'string' }, detail: { type: 'string' } } },
              },
            },
          },
          lost: { type: 'integer', minimum: 0 },
          folios: { type: 'integer', minimum: 0 },
        },
      },
    },
    ratios: {
      type: 'array',
      items: {
        type: 'object',
        required: ['arch', 'modeled', 'published'],
        properties: {
          arch: { enum: [...ARCH_NAMES] },
          modeled: { type: 'number' },
          modeledWithUnevented: { type: 'number' },
          published: { anyOf: [{ type: 'null' }, { type: 'object', required: ['ratio'], properties: { ratio: { type: 'number' } } }] },
        },
      },
    },
    ok: { type: 'boolean' },
  },
} as const;
