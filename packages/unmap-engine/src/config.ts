import { FoliolabError } from '@foliolab/ledger';
import type { MapcountMode } from '@foliolab/rmap';

/*
 * Engine configuration (docs/ENGINE-API.md `EngineConfig`): the arch profile,
 * the policy, per-size mTHP settings, the mapcount mode, memory and swap
 * sizes, named fault-injection switches and limits. `resolveConfig` validates
 * everything and fills the defaults; the engine never reads a raw config.
 */

/** The three unmap policies of DESIGN.md §Policies. */
export type Policy = 'per-pte' | 'mainline' | 'batched';
/** Arch profiles of the page-table package. */
export type ArchName = 'arm64-contpte' | 'arm64-nocont' | 'x86';
/** /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/enabled (inherit/madvise not modelled). */
export type MthpSetting = 'never' | 'always';
/** mTHP sizes (anon never uses order 1, so 8K is absent). */
export type MthpSize = '16K' | '32K' | '64K' | '128K' | '256K' | '512K' | '1M' | '2M';
/** Named fault-injection points. */
export type InjectName = 'swapDupEnomem' | 'archUnmapOneFail' | 'swapAllocFail';
/** How try_to_unmap_one resumes the walk after a partial batch (pagetable-contpte-pvmw §5). */
export type PvmwSkip = 'none' | 'jump';

/** Arch switches (the page-table package's profile options plus the sparc64-style hook). */
export interface ArchOptions {
  hasTlbiRange?: boolean;
  kpti?: boolean;
  bbml2NoAbort?: boolean;
  gatherVariant?: 'old17' | 'earlyExit';
  x86OtherCpus?: number;
  /**
   * The arch defines arch_unmap_one() (sparc64 ADI). try_to_unmap_one calls
   * it for every anon swap-backed PTE, and the batched series then does not
   * batch anon swap-backed folios (unmap-engine §3.2 patch 8).
   */
  archUnmapOne?: boolean;
}

export interface EngineLimits {
  /** Public operations an engine accepts before refusing (E2BIG). */
  maxSteps?: number;
  /** Largest `memory` accepted. */
  maxMemory?: number;
}

export interface EngineConfig {
  arch?: ArchName;
  archOptions?: ArchOptions;
  policy?: Policy;
  mthp?: Partial<Record<MthpSize, MthpSetting>>;
  /**
   * How mapcounts are kept (@foliolab/rmap MapcountMode): 'legacy' (per-page
   * mapcounts, no MM_ID: before 6.15), 'mm_id' (CONFIG_NO_PAGE_MAPCOUNT), or
   * 'page_mapcount_mm_id' (both: what 7.2.13 runs, THP selects MM_ID).
   */
  mapcountMode?: MapcountMode;
  /** Simulated RAM bytes, multiple of 2M (default 64M). */
  memory?: number;
  /** Swap device bytes, multiple of 2M (default = memory; 0 = no swap). */
  swap?: number;
  /** SWP_SYNCHRONOUS_IO (zram-like): large swap-in allowed (default true). */
  swapSynchronousIo?: boolean;
  inject?: Partial<Record<InjectName, number | boolean>>;
  limits?: EngineLimits;
  /**
   * `batched` only: how the pvmw resumes after a partial anon batch. Default
   * 'jump' (Dev Jain v1 5/9 page_vma_mapped_walk_jump); 'none' is what v3 9/9
   * describes (seed 002: check_pte skips the new swap PTEs). `mainline` and
   * `per-pte` always use 'none' (no skip exists in mainline).
   */
  pvmwSkip?: PvmwSkip;
  /**
   * Track TLB visibility per PTE in the page-table package (1 byte per PTE
   * while a change awaits its TLBI + DSB). Default false: it costs time and
   * memory and no engine invariant reads it.
   */
  trackTlb?: boolean;
}

/** The resolved configuration (`Engine.config`). */
export interface ResolvedConfig {
  readonly arch: ArchName;
  readonly archOptions: Readonly<Required<Omit<ArchOptions, 'gatherVariant'>>> & { readonly gatherVariant: 'old17' | 'earlyExit' };
  readonly policy: Policy;
  readonly mthp: Readonly<Record<MthpSize, MthpSetting>>;
  readonly mapcountMode: MapcountMode;
  readonly memory: number;
  readonly swap: number;
  readonly swapSynchronousIo: boolean;
  readonly inject: Readonly<Record<InjectName, number | boolean>>;
  readonly limits: Readonly<Required<EngineLimits>>;
  readonly pvmwSkip: PvmwSkip;
  readonly trackTlb: boolean;
}

export const POLICIES: readonly Policy[] = Object.freeze(['per-pte', 'mainline', 'batched'] as const);
export const ARCH_NAMES: readonly ArchName[] = Object.freeze(['arm64-contpte', 'arm64-nocont', 'x86'] as const);
export const MTHP_SIZES: readonly MthpSize[] = Object.freeze(['16K', '32K', '64K', '128K', '256K', '512K', '1M', '2M'] as const);
export const INJECT_NAMES: readonly InjectName[] = Object.freeze(['swapDupEnomem', 'archUnmapOneFail', 'swapAllocFail'] as const);

/** Folio order of an mTHP size. */
export const MTHP_ORDER: Readonly<Record<MthpSize, number>> = Object.freeze({
  '16K': 2,
  '32K': 3,
  '64K': 4,
  '128K': 5,
  '256K': 6,
  '512K': 7,
  '1M': 8,
  '2M': 9,
});

/** mTHP size name of a folio order (2..9), or null. */
export function orderSize(order: number): MthpSize | null {
  for (const s of MTHP_SIZES) if (MTHP_ORDER[s] === order) return s;
  return null;
}

const MB2 = 2 * 1024 * 1024;
const DEFAULT_MEMORY = 64 * 1024 * 1024;
/** Default ceiling on `memory`: 4 GiB simulated. */
const DEFAULT_MAX_MEMORY = 4 * 1024 * 1024 * 1024;

function bad(what: string, details: Record<string, unknown> = {}): never {
  throw new FoliolabError('EINVAL', `Engine config: ${what}`, details);
}

function optBool(name: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') bad(`${name} must be a boolean, got ${typeof v}`, { [name]: v });
  return v;
}

function checkInject(name: string, v: unknown): number | boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  return bad(`inject.${name} must be a boolean or a non-negative integer (N = fail the Nth call from now), got ${String(v)}`, { [name]: v });
}

/** Validate `c` and fill the defaults; throws FoliolabError('EINVAL') naming the bad field. */
export function resolveConfig(c: EngineConfig = {}): ResolvedConfig {
  if (c === null || typeof c !== 'object') bad('must be an object');
  const known = new Set(['arch', 'archOptions', 'policy', 'mthp', 'mapcountMode', 'memory', 'swap', 'swapSynchronousIo', 'inject', 'limits', 'pvmwSkip', 'trackTlb']);
  for (const key of Object.keys(c)) if (!known.has(key)) bad(`unknown key ${key}`, { key });
  const arch = c.arch ?? 'arm64-contpte';
  if (!ARCH_NAMES.includes(arch)) bad(`arch ${String(arch)} is not one of ${ARCH_NAMES.join(', ')}`, { arch });
  const policy = c.policy ?? 'mainline';
  if (!POLICIES.includes(policy)) bad(`policy ${String(policy)} is not one of ${POLICIES.join(', ')}`, { policy });
  // the default is what 7.2.13 runs: TRANSPARENT_HUGEPAGE selects MM_ID, PAGE_MAPCOUNT stays on (Debian's config)
  const mapcountMode = c.mapcountMode ?? 'page_mapcount_mm_id';
  if (mapcountMode !== 'legacy' && mapcountMode !== 'mm_id' && mapcountMode !== 'page_mapcount_mm_id') {
    bad(`mapcountMode ${String(mapcountMode)} must be 'legacy', 'mm_id' or 'page_mapcount_mm_id'`);
  }
  const ao = c.archOptions ?? {};
  const gv = ao.gatherVariant ?? 'earlyExit';
  if (gv !== 'old17' && gv !== 'earlyExit') bad(`archOptions.gatherVariant ${String(gv)}`);
  const cpus = ao.x86OtherCpus ?? 0;
  if (!Number.isInteger(cpus) || cpus < 0) bad(`archOptions.x86OtherCpus ${String(cpus)} must be a non-negative integer`);
  const archOptions = Object.freeze({
    hasTlbiRange: optBool('archOptions.hasTlbiRange', ao.hasTlbiRange, false),
    kpti: optBool('archOptions.kpti', ao.kpti, false),
    bbml2NoAbort: optBool('archOptions.bbml2NoAbort', ao.bbml2NoAbort, false),
    gatherVariant: gv,
    x86OtherCpus: cpus,
    archUnmapOne: optBool('archOptions.archUnmapOne', ao.archUnmapOne, false),
  });
  const mthp = {} as Record<MthpSize, MthpSetting>;
  for (const s of MTHP_SIZES) mthp[s] = 'never';
  for (const [k, v] of Object.entries(c.mthp ?? {})) {
    if (!MTHP_SIZES.includes(k as MthpSize)) bad(`mthp size ${k} is not one of ${MTHP_SIZES.join(', ')} (anon never uses 8K)`, { size: k });
    if (v !== 'never' && v !== 'always') bad(`mthp.${k} must be 'never' or 'always', got ${String(v)}`);
    if (k === '2M' && v === 'always') {
      bad("mthp.2M 'always' needs PMD-mapped THP (do_huge_pmd_anonymous_page, split_huge_pmd), which this engine does not model; use 1M or smaller");
    }
    mthp[k as MthpSize] = v;
  }
  const limits = c.limits ?? {};
  const maxSteps = limits.maxSteps ?? Number.MAX_SAFE_INTEGER;
  const maxMemory = limits.maxMemory ?? DEFAULT_MAX_MEMORY;
  if (!Number.isInteger(maxSteps) || maxSteps < 1) bad(`limits.maxSteps ${String(maxSteps)} must be a positive integer`);
  if (!Number.isInteger(maxMemory) || maxMemory < MB2) bad(`limits.maxMemory ${String(maxMemory)} must be at least 2M`);
  const memory = c.memory ?? DEFAULT_MEMORY;
  if (!Number.isInteger(memory) || memory <= 0 || memory % MB2 !== 0) bad(`memory ${String(memory)} must be a positive multiple of 2M`, { memory });
  if (memory > maxMemory) bad(`memory ${memory} exceeds limits.maxMemory ${maxMemory}`, { memory, maxMemory });
  const swap = c.swap ?? memory;
  if (!Number.isInteger(swap) || swap < 0 || swap % MB2 !== 0) bad(`swap ${String(swap)} must be 0 or a positive multiple of 2M`, { swap });
  if (swap > 256 * 1024 * 1024 * 1024) bad(`swap ${swap} exceeds the swap model's 2^26 slots`, { swap });
  const inject = {} as Record<InjectName, number | boolean>;
  for (const n of INJECT_NAMES) inject[n] = false;
  for (const [k, v] of Object.entries(c.inject ?? {})) {
    if (!INJECT_NAMES.includes(k as InjectName)) bad(`unknown inject switch ${k}; known: ${INJECT_NAMES.join(', ')}`, { name: k });
    inject[k as InjectName] = checkInject(k, v);
  }
  if (inject.archUnmapOneFail !== false && inject.archUnmapOneFail !== 0 && !archOptions.archUnmapOne) {
    bad('inject.archUnmapOneFail needs archOptions.archUnmapOne: true (only a sparc64-style arch has arch_unmap_one)');
  }
  const pvmwSkip = c.pvmwSkip ?? 'jump';
  if (pvmwSkip !== 'none' && pvmwSkip !== 'jump') bad(`pvmwSkip ${String(pvmwSkip)} must be 'none' or 'jump'`);
  return Object.freeze({
    arch,
    archOptions,
    policy,
    mthp: Object.freeze(mthp),
    mapcountMode,
    memory,
    swap,
    swapSynchronousIo: optBool('swapSynchronousIo', c.swapSynchronousIo, true),
    inject: Object.freeze(inject),
    limits: Object.freeze({ maxSteps, maxMemory }),
    pvmwSkip,
    trackTlb: optBool('trackTlb', c.trackTlb, false),
  });
}
