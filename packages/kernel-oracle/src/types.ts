/**
 * What the oracle observes after each step, for the scenario's own pages, in a
 * form both the real kernel's answer and the engine's state can be put in:
 * what user space can see (pagemap, kpageflags, kpagecount, smaps, counters,
 * data read back), with PFNs replaced by folio-relative positions.
 */

/** Guest architectures the oracle boots. */
export type OracleArch = 'arm64' | 'x86';
export const ORACLE_ARCHES: readonly OracleArch[] = ['arm64', 'x86'];

/** A page's kind, from the pagemap entry (non-present entries by their swap type). */
export type PageKind = 'present' | 'zero' | 'swap' | 'marker' | 'hwpoison' | 'migration' | 'device';

/**
 * One page. Present pages: the folio (numbered in order of first appearance,
 * processes in slot order, addresses ascending), the page's index in it, the
 * folio's order, the precise page mapcount (/proc/kpagecount with
 * CONFIG_PAGE_MAPCOUNT), pagemap's "exclusively mapped" bit 56 (= that
 * mapcount is 1), the folio's flags (kpageflags names, lower case, sorted)
 * and AnonExclusive of the folio's first page (kpageflags OWNER_2).
 */
export interface PageObs {
  kind: PageKind;
  folio?: number;
  idx?: number;
  order?: number;
  mapcount?: number;
  exclusive?: boolean;
  flags?: string[];
  anonExclusiveHead?: boolean;
  /** This page is PG_hwpoison. */
  poisoned?: boolean;
  type?: number;
  offset?: number;
  uffdWp?: boolean;
  softDirty?: boolean;
  guard?: boolean;
}

/** A run of `n` pages from `addr`: each page after the first is the previous one advanced (idx + 1 or offset + 1). */
export interface PageRun extends PageObs {
  addr: string;
  n: number;
}

export interface VmaObs {
  start: string;
  end: string;
  /** /proc/<pid>/maps permissions, e.g. "rw-p". */
  perms: string;
  /** smaps VmFlags mnemonics the engine models (rd wr ex lo dc uw wf dp), sorted. */
  flags: string[];
  /** smaps Rss and Swap of the VMA, in pages. */
  rss: number;
  swap: number;
}

export interface ProcObs {
  /** Process slot: the scenario's processes in order, then one per fork, in order. */
  slot: number;
  name: string;
  vmas: VmaObs[];
  pages: PageRun[];
}

/** A page a read did not get back: hwpoison (SIGBUS) or other data than was written. */
export interface LostObs {
  addr: string;
  reason: 'hwpoison' | 'mismatch';
}

/** The answer to one step: its outcome, the counters it moved, and the state after it. */
export interface StepObs {
  /** Index into the scenario's `steps`. */
  step: number;
  kind: string;
  /** "ok", an errno name ("ENOMEM"), or a signal ("SIGSEGV") when the access faulted. */
  outcome: string;
  lost: LostObs[];
  /** Counter deltas over the step, by name (mthp.<size>.<stat>, vmstat names). */
  counters: Record<string, number>;
  /** Kernel only, when recorded with --trace: how often each traced kernel function ran during the step. */
  calls?: Record<string, number>;
  /** Engine only: the ledger events the step charged. */
  events?: Record<string, number>;
  processes: ProcObs[];
}

/** Why translation stopped early: the step user space cannot express, and why. */
export interface Stop {
  step: number;
  reason: string;
}

/** A field the kernel answered differently in two boots (history- or timing-dependent): not compared. */
export interface Unstable {
  step: number;
  where: string;
  field: string;
}

/** A recorded kernel answer (`foliolab.oracle-record/v1`), one JSON file per scenario and arch. */
export interface OracleRecord {
  schema: 'foliolab.oracle-record/v1';
  /** The scenario file, relative to the repository root. */
  scenario: string;
  name: string;
  /** sha256 of the scenario file's bytes: a changed scenario makes the record stale. */
  sha256: string;
  arch: OracleArch;
  kernel: { release: string; version: string; machine: string; image: string };
  oracle: { package: string; qemu: string; cpus: number; memory: string; boots: number; facts: Record<string, string>; recorded: string };
  /** Fields the boots disagreed on (the first boot's answer is kept; they are not compared). */
  unstable: Unstable[];
  /** Where and why translation stopped, if before the end; and other notes of the translation. */
  translation: { stop: Stop | null; notes: string[] };
  /** Kernel messages printed while the scenario ran (warnings, splats). */
  kernelLog: string[];
  steps: StepObs[];
}
