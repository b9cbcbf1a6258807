/**
 * The scenario format as TypeScript types, and the engine configuration of the
 * engine ↔ scenario contract (docs/ENGINE-API.md). A scenario is data: a
 * config, the processes that exist at the start, and steps that map 1:1 to
 * the engine's methods, plus `expect` steps that assert on the state dump.
 */

/** The three unmap policies of DESIGN.md §Policies. */
export type Policy = 'per-pte' | 'mainline' | 'batched';
export const POLICIES: readonly Policy[] = ['per-pte', 'mainline', 'batched'];

/** Arch profiles (DESIGN.md §Cost ledger and cost model). */
export type ArchName = 'arm64-contpte' | 'arm64-nocont' | 'x86';
export const ARCH_NAMES: readonly ArchName[] = ['arm64-contpte', 'arm64-nocont', 'x86'];

export type MthpSetting = 'never' | 'always';
export type MthpSize = '16K' | '32K' | '64K' | '128K' | '256K' | '512K' | '1M' | '2M';
export const MTHP_SIZES: readonly MthpSize[] = ['16K', '32K', '64K', '128K', '256K', '512K', '1M', '2M'];
export type MapcountMode = 'legacy' | 'mm_id' | 'page_mapcount_mm_id';
export const MAPCOUNT_MODES: readonly MapcountMode[] = ['legacy', 'mm_id', 'page_mapcount_mm_id'];
export type InjectName = 'swapDupEnomem' | 'archUnmapOneFail' | 'swapAllocFail';
export const INJECT_NAMES: readonly InjectName[] = ['swapDupEnomem', 'archUnmapOneFail', 'swapAllocFail'];

/** `EngineConfig` of the contract; sizes are bytes. */
export interface EngineConfig {
  arch?: ArchName;
  archOptions?: {
    hasTlbiRange?: boolean;
    kpti?: boolean;
    bbml2NoAbort?: boolean;
    gatherVariant?: 'old17' | 'earlyExit';
    x86OtherCpus?: number;
    /** The arch has arch_unmap_one() (sparc64 ADI): needed by inject.archUnmapOneFail; no anon batching. */
    archUnmapOne?: boolean;
  };
  policy?: Policy;
  mthp?: Partial<Record<MthpSize, MthpSetting>>;
  mapcountMode?: MapcountMode;
  memory?: number;
  swap?: number;
  swapSynchronousIo?: boolean;
  inject?: Partial<Record<InjectName, number | boolean>>;
  limits?: { maxSteps?: number; maxMemory?: number };
}

/** A size: bytes, or a string like `4K`, `64K`, `2M`, `1G`, `0x1000`. */
export type Size = number | string;
/** An address: a number, a hex string, or an expression over bound names (`buf+32K`). */
export type Addr = number | string;
export type Prot = 'r' | 'rw' | 'none';
export type Advice = 'dontneed' | 'free' | 'pageout' | 'cold' | 'dontfork' | 'dofork';

export interface MmapArgs { process: string; addr?: Addr; len: Size; prot?: Prot; locked?: boolean; droppable?: boolean; as?: string }
export interface WriteArgs { process: string; addr: Addr; len?: Size; token?: number }
export interface ReadArgs { process: string; addr: Addr; len?: Size }
export interface ForkArgs { process: string; child: string }
export interface ExitArgs { process: string }
export interface RangeArgs { process: string; addr: Addr; len: Size }
export interface MremapArgs { process: string; addr: Addr; oldLen: Size; newLen: Size; fixed?: Addr; as?: string }
export interface MprotectArgs extends RangeArgs { prot: Prot }
export interface MadviseArgs extends RangeArgs { advice: Advice }
export interface ReclaimArgs { kind?: 'proactive' | 'node'; process?: string; addr?: Addr; len?: Size; nrToReclaim?: number }
export interface PinArgs { process: string; addr: Addr; len?: Size; kind?: 'pin' | 'get'; write?: boolean; as?: string }
export interface UnpinArgs { handle: string }
export interface UffdwpArgs extends RangeArgs { op: 'register' | 'protect' | 'unprotect' | 'unregister' }
export interface PoisonArgs {
  process: string;
  addr: Addr;
  ttuHwpoison?: boolean;
  /** false: skip memory_failure's try_to_split_thp_page, unmap the large folio as is (§7.25). */
  split?: boolean;
}
export interface DeviceExclusiveArgs { process: string; addr: Addr }
export type InjectArgs = Partial<Record<InjectName, number | boolean>>;

/** A matcher on a value of the state dump (see expect.ts). */
export interface Matcher {
  equals?: unknown;
  not?: unknown;
  contains?: unknown;
  containsAll?: unknown[];
  containsNone?: unknown[];
  lengthOf?: number;
  gte?: number;
  lte?: number;
  all?: unknown;
  consecutive?: boolean;
  multipleOf?: number;
}
/** A matcher on an event count: exact, or bounds. */
export interface EventMatcher { equals?: number; not?: number; gte?: number; lte?: number }

export interface ExpectArgs {
  /** Path into the state dump → a value (equals) or a matcher. */
  state?: Record<string, unknown>;
  /** Event → exact count (or bounds) in the ledger delta of the previous non-expect step. */
  events?: Record<string, number | EventMatcher>;
  /** The invariant report after the previous step is ok. */
  invariants?: 'ok';
}

/** A step runs only when every listed condition holds for the run. */
export interface When { policy?: Policy[]; arch?: ArchName[]; mapcountMode?: MapcountMode[] }

export interface StepCommon { name?: string; when?: When }
export type Step = StepCommon &
  (
    | { mmap: MmapArgs }
    | { write: WriteArgs }
    | { read: ReadArgs }
    | { fork: ForkArgs }
    | { exit: ExitArgs }
    | { munmap: RangeArgs }
    | { mremap: MremapArgs }
    | { mprotect: MprotectArgs }
    | { madvise: MadviseArgs }
    | { pageout: RangeArgs }
    | { reclaim: ReclaimArgs }
    | { pin: PinArgs }
    | { unpin: UnpinArgs }
    | { uffdwp: UffdwpArgs }
    | { poison: PoisonArgs }
    | { mlock: RangeArgs }
    | { munlock: RangeArgs }
    | { deviceExclusive: DeviceExclusiveArgs }
    | { inject: InjectArgs }
    | { expect: ExpectArgs }
  );

/** Step kinds, in the order of DESIGN.md §Scenarios. */
export const STEP_KINDS = [
  'mmap',
  'write',
  'read',
  'fork',
  'exit',
  'munmap',
  'mremap',
  'mprotect',
  'madvise',
  'pageout',
  'reclaim',
  'pin',
  'unpin',
  'uffdwp',
  'poison',
  'mlock',
  'munlock',
  'deviceExclusive',
  'inject',
  'expect',
] as const;
export type StepKind = (typeof STEP_KINDS)[number];

export interface Scenario {
  name: string;
  description?: string;
  /** Where the scenario comes from, e.g. "unmap-engine §7.2". */
  spec?: string;
  /** What of the spec scenario this file cannot express yet, and why. */
  notModeled?: string;
  config?: EngineConfig;
  processes: { name: string }[];
  steps: Step[];
}

/** The kind of a step: its one key out of STEP_KINDS. */
export function stepKind(step: Step): StepKind {
  for (const k of STEP_KINDS) if (k in step) return k;
  throw new TypeError('stepKind: the step has none of the step kinds');
}

/** The arguments object of a step. */
export function stepArgs(step: Step): Record<string, unknown> {
  return (step as unknown as Record<string, Record<string, unknown>>)[stepKind(step)]!;
}
