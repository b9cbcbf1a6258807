import { FoliolabError, Ledger } from '@foliolab/ledger';

/** The three arch profiles (DESIGN.md "Cost ledger and cost model"). */
export type ArchName = 'arm64-contpte' | 'arm64-nocont' | 'x86';

/** How `ptep_get` gathers A/D over a contpte block (spec §5). */
export type GatherVariant = 'old17' | 'earlyExit';

/** Resolved, frozen semantics switches of one arch profile. */
export interface ArchProfile {
  readonly name: ArchName;
  readonly arch: 'arm64' | 'x86';
  /** CONFIG_ARM64_CONTPTE: transparent contpte fold/unfold and gathered reads. */
  readonly contpte: boolean;
  /** FEAT_TLBIRANGE. Default false (the §8 example's assumption). */
  readonly hasTlbiRange: boolean;
  /** KPTI: every user TLBI is issued twice. */
  readonly kpti: boolean;
  /** BBML2 without abort: contpte_convert skips its TLBI. */
  readonly bbml2NoAbort: boolean;
  /** Hardware sets the access flag (arm64 FEAT_HAFDBS AF; always on x86). */
  readonly hwAF: boolean;
  /** Hardware dirty-state management (arm64 DBM; always on x86). */
  readonly hwDBM: boolean;
  readonly gatherVariant: GatherVariant;
  /** x86: other CPUs in mm_cpumask (drives deferral and IPIs). */
  readonly x86OtherCpus: number;
  /**
   * arm64 ARM64_WORKAROUND_REPEAT_TLBI: every broadcast TLBI completion (7.2.13
   * arch/arm64/include/asm/tlbflush.h:__tlbi_sync_s1ish and _batch) repeats a
   * `TLBI VALE1IS, 0` and a DSB ISH (__repeat_tlbi_sync). Deferral stays on:
   * 7.2.13's arch_tlbbatch_should_defer returns true unconditionally.
   */
  readonly repeatTlbiErratum: boolean;
}

/** Switches a caller may override. */
export interface ArchProfileOptions {
  hasTlbiRange?: boolean;
  kpti?: boolean;
  bbml2NoAbort?: boolean;
  hwAF?: boolean;
  hwDBM?: boolean;
  gatherVariant?: GatherVariant;
  x86OtherCpus?: number;
  repeatTlbiErratum?: boolean;
}

const NAMES: readonly ArchName[] = ['arm64-contpte', 'arm64-nocont', 'x86'];

function bool(name: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new FoliolabError('EINVAL', `archProfile: ${name} must be a boolean, got ${typeof v}`, { [name]: v });
  return v;
}

/** Build a frozen profile: the named arch's defaults plus overrides. */
export function archProfile(name: ArchName, options: ArchProfileOptions = {}): ArchProfile {
  if (!NAMES.includes(name)) throw new FoliolabError('EINVAL', `archProfile: unknown profile ${String(name)}`, { name });
  const x86 = name === 'x86';
  const gv = options.gatherVariant ?? 'earlyExit';
  if (gv !== 'old17' && gv !== 'earlyExit') throw new FoliolabError('EINVAL', `archProfile: gatherVariant ${String(gv)}`, { gatherVariant: gv });
  const cpus = options.x86OtherCpus ?? 0;
  if (!Number.isInteger(cpus) || cpus < 0) throw new FoliolabError('EINVAL', `archProfile: x86OtherCpus ${String(cpus)}`, { x86OtherCpus: cpus });
  return Object.freeze({
    name,
    arch: x86 ? 'x86' : 'arm64',
    contpte: name === 'arm64-contpte',
    hasTlbiRange: bool('hasTlbiRange', options.hasTlbiRange, false),
    kpti: bool('kpti', options.kpti, false),
    bbml2NoAbort: bool('bbml2NoAbort', options.bbml2NoAbort, false),
    hwAF: bool('hwAF', options.hwAF, true),
    hwDBM: bool('hwDBM', options.hwDBM, true),
    gatherVariant: gv,
    x86OtherCpus: cpus,
    repeatTlbiErratum: bool('repeatTlbiErratum', options.repeatTlbiErratum, false),
  });
}

/** Options of `new Machine`. */
export interface MachineOptions {
  /** A profile, or a profile name (then `profileOptions` apply). Default 'arm64-contpte'. */
  profile?: ArchProfile | ArchName;
  profileOptions?: ArchProfileOptions;
  /** The ledger every primitive on this machine charges. Default: a new one. */
  ledger?: Ledger;
}

/**
 * One simulated CPU's view of the system: the arch profile, the ledger, and
 * the barrier generation that completes TLB invalidations. All page tables
 * (mms) that share TLB maintenance share a machine.
 */
export class Machine {
  readonly profile: ArchProfile;
  readonly ledger: Ledger;
  /** Bumped by every DSB_ISH (or x86 synchronous flush): completes every TLBI issued before. */
  dsbGen = 1;
  /** @internal next mm id, for lock names. */
  nextMmId = 0;

  constructor(options: MachineOptions = {}) {
    const p = options.profile ?? 'arm64-contpte';
    this.profile = typeof p === 'string' ? archProfile(p, options.profileOptions) : p;
    this.ledger = options.ledger ?? new Ledger();
  }
}
