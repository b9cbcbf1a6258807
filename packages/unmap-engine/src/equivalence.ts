import type { Policy } from './config.js';

/*
 * Policy equivalence (DESIGN.md §Policies): the end states of one scenario
 * under per-pte, mainline and batched must be equal except for the
 * differences listed here, each with its reason. `diffStates` compares two
 * dumps (minus `ledger`, `config.policy` and `invariants`) and reports the
 * differences not covered by ALLOWED_DIFFERENCES for the policies compared.
 */

/** One legitimate end-state difference between policies. */
export interface AllowedDifference {
  /** JSON path pattern into the dump; `*` matches one key or index. */
  readonly path: string;
  /** A difference between two policies is allowed when either is listed. */
  readonly policies: readonly Policy[];
  /**
   * Set on a bit that only a batch's OR can add (young, dirty): the difference is allowed only one way —
   * the policy later in BATCHING_ORDER (the one that batches more) has the bit (`true`) and the other
   * has not (`false`). A batch ORs the bit over its PTEs and can set it where one-PTE-at-a-time leaves
   * it clear; it never clears a bit that the one-PTE path keeps. A difference the other way round is
   * an engine bug (e.g. a batch that copies its first PTE's clear dirty bit onto a dirty PTE).
   */
  readonly batchSets?: true;
  readonly reason: string;
}

/** The policies from the one that batches least to the one that batches most. */
export const BATCHING_ORDER: readonly Policy[] = Object.freeze(['per-pte', 'mainline', 'batched'] as const);

const ALL: readonly Policy[] = BATCHING_ORDER;

/**
 * The one table of allowed differences (ENGINE-API.md "Policies and allowed differences"). Each row names
 * the kernel function (Linux 7.2.13 unless marked [I], Dev Jain's series) that makes the policies differ.
 */
export const ALLOWED_DIFFERENCES: readonly AllowedDifference[] = Object.freeze([
  {
    path: 'processes.*.ptes.*.cont',
    policies: ALL,
    reason:
      'arm64 contpte is an arch-private representation: a single-PTE clear, wrprotect or restore on a CONT block unfolds it (contpte_try_unfold), ' +
      'while a batch over a whole aligned block keeps it (contpte_try_unfold_partial) and set_ptes(nr) re-folds aligned chunks; ' +
      'ptep_get returns the same values either way. per-pte and mainline (anon swap-backed: one PTE per walk step) unfold where batched does not.',
  },
  {
    path: 'processes.*.ptes.*.dirty',
    policies: ['per-pte'],
    batchSets: true,
    reason:
      'a batch replicates the OR of its dirty bits where one PTE at a time keeps each PTE\'s own (mainline and batched alike): ' +
      'mm/rmap.c:try_to_unmap_one restores an aborted lazyfree batch with set_ptes(pteval, nr), pteval = get_and_clear_ptes\'s OR; ' +
      'mm/mprotect.c:change_present_ptes commits modify_prot_start_ptes\'s OR (include/linux/pgtable.h, arch/arm64/mm/mmu.c) with ' +
      'modify_prot_commit_ptes over the batch (folio_pte_batch_flags there ignores dirty); mm/mremap.c:move_ptes moves a batch with ' +
      'get_and_clear_ptes + set_ptes.',
  },
  {
    path: 'processes.*.ptes.*.dirty',
    policies: ['batched'],
    batchSets: true,
    reason:
      '[I] Dev Jain v4 (unmap-engine §3.3 step 6): an aborted anon batch restores its not-yet-converted PTEs with the merged pteval, where ' +
      'mainline restores only its one PTE; and batched unmaps a lazyfree folio in a uffd-wp VMA as one batch (v1 5/9), where mainline\'s ' +
      'folio_unmap_pte_batch returns 1 (mm/rmap.c, 7.2.13), so only batched restores the merged dirty bit over the batch there.',
  },
  {
    path: 'processes.*.ptes.*.young',
    policies: ['per-pte'],
    batchSets: true,
    reason: 'as for dirty (per-pte row): the restore of an aborted lazyfree batch, mprotect and mremap batches set the OR of the batch\'s young bits on every PTE.',
  },
  {
    path: 'processes.*.ptes.*.young',
    policies: ['batched'],
    batchSets: true,
    reason: 'as for dirty (batched row, [I]): the anon rollback and the uffd-wp lazyfree batch restore the merged young bit over the batch.',
  },
  {
    path: 'folios.*.flags.dirty',
    policies: ['per-pte'],
    batchSets: true,
    reason:
      'mm/rmap.c:try_to_unmap_one calls folio_mark_dirty when the cleared pteval is dirty; a lazyfree batch\'s pteval is the OR over the ' +
      'batch, so an aborted batch has set PG_dirty where a per-PTE walk that stops at its first (clean) PTE has not. The data stays dirty ' +
      'either way: the restored or untouched PTEs keep their dirty bits.',
  },
  {
    path: 'folios.*.flags.dirty',
    policies: ['batched'],
    batchSets: true,
    reason:
      '[I] as above for the batched anon path: the batch\'s merged pteval marks the folio dirty before a rollback (a pinned exclusive page), ' +
      'where mainline\'s one-PTE step sees only its own PTE\'s dirty bit.',
  },
  {
    path: 'stats.mthp.*.split_deferred',
    policies: ['per-pte', 'mainline'],
    reason:
      'removing the rmap of a fully mapped large folio one PTE at a time makes it look partially mapped after the first removal and queues it ' +
      'for deferred split (seed 001, Ryan Roberts 2023); one folio_remove_rmap_ptes(nr) sees the final state and queues nothing. Swap-cache ' +
      'folios are exempt (deferred_split_folio returns early), so this shows in per-PTE zap and per-PTE lazyfree unmap. Mainline unmaps a ' +
      'lazyfree folio one PTE at a time too in a uffd-wp VMA (folio_unmap_pte_batch returns 1 there), so it queues as per-pte does.',
  },
  {
    path: 'stats.mthp.*.nr_anon_partially_mapped',
    policies: ['per-pte', 'mainline'],
    reason: 'the spurious per-PTE enqueue above sets PG_partially_mapped; it stays set while something other than a mapping keeps the folio alive (a GUP reference).',
  },
  {
    path: 'folios.*.deferredSplit',
    policies: ['per-pte', 'mainline'],
    reason: 'a folio spuriously queued by a per-PTE unmap stays on the deferred list until it is freed or split.',
  },
  {
    path: 'folios.*.partiallyMapped',
    policies: ['per-pte', 'mainline'],
    reason: 'PG_partially_mapped of a spuriously queued folio (see split_deferred).',
  },
  {
    path: 'folios.*.flags.partially_mapped',
    policies: ['per-pte', 'mainline'],
    reason: 'PG_partially_mapped of a spuriously queued folio (see split_deferred).',
  },
  {
    path: 'stats.vmstat.split_queue_len',
    policies: ['per-pte', 'mainline'],
    reason: 'length of the deferred split queue holding spuriously queued folios (see split_deferred).',
  },
]);

/** One difference between two dumps. */
export interface StateDifference {
  readonly path: string;
  readonly a: unknown;
  readonly b: unknown;
}

/** Whether `path` (dot-separated) matches `pattern` (`*` = one segment). */
export function pathMatches(pattern: string, path: string): boolean {
  const ps = pattern.split('.');
  const xs = path.split('.');
  if (ps.length !== xs.length) return false;
  for (let i = 0; i < ps.length; i++) if (ps[i] !== '*' && ps[i] !== xs[i]) return false;
  return true;
}

/**
 * Whether `row` allows policies `pa` and `pb` to differ at `path`: the path matches and one of the two
 * policies is listed; for a `batchSets` row, when `values` are given, also the direction — the policy that
 * batches more has `true`, the other `false`.
 */
function rowAllows(row: AllowedDifference, path: string, pa: Policy, pb: Policy, values?: DifferingValues): boolean {
  if (!pathMatches(row.path, path)) return false;
  if (!row.policies.includes(pa) && !row.policies.includes(pb)) return false;
  if (row.batchSets !== true || values === undefined) return true;
  const aBatchesMore = BATCHING_ORDER.indexOf(pa) > BATCHING_ORDER.indexOf(pb);
  return aBatchesMore ? values.a === true && values.b === false : values.b === true && values.a === false;
}

/** The two values that differ: `a` under the first policy, `b` under the second. */
export interface DifferingValues {
  readonly a: unknown;
  readonly b: unknown;
}

/**
 * Whether a difference at `path` between policies `pa` and `pb` is allowed. With `values`, a `batchSets`
 * row allows it only in its direction; without, only path and policies are checked.
 */
export function isAllowedDifference(path: string, pa: Policy, pb: Policy, values?: DifferingValues): boolean {
  if (pa === pb) return false;
  for (const row of ALLOWED_DIFFERENCES) if (rowAllows(row, path, pa, pb, values)) return true;
  return false;
}

const IGNORED_TOP = new Set(['ledger', 'invariants']);

function walk(a: unknown, b: unknown, path: string, out: StateDifference[]): void {
  if (a === b) return;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) {
    out.push({ path, a, b });
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const prim = (x: unknown): boolean => typeof x !== 'object' || x === null;
    if (a.every(prim) && b.every(prim)) {
      if (JSON.stringify(a) === JSON.stringify(b)) return;
      if (path.endsWith('.flags')) {
        // A flag list differs flag by flag (`folios.3.flags.dirty`: set in a, clear in b), so a row can allow one flag.
        const fa = a as unknown[];
        const fb = b as unknown[];
        for (const f of new Set([...fa, ...fb])) {
          const inA = fa.includes(f);
          const inB = fb.includes(f);
          if (inA !== inB) out.push({ path: `${path}.${String(f)}`, a: inA, b: inB });
        }
        return;
      }
      out.push({ path, a, b });
      return;
    }
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) walk(a[i], b[i], path === '' ? `${i}` : `${path}.${i}`, out);
    return;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const key of keys) {
    if (path === '' && IGNORED_TOP.has(key)) continue;
    if (path === 'config' && key === 'policy') continue;
    walk(ao[key], bo[key], path === '' ? key : `${path}.${key}`, out);
  }
}

/**
 * Differences between two state dumps (ledger, invariants and config.policy
 * ignored). With `policies`, differences ALLOWED_DIFFERENCES permits between
 * those two policies are dropped.
 */
export function diffStates(a: unknown, b: unknown, policies?: readonly [Policy, Policy]): StateDifference[] {
  const out: StateDifference[] = [];
  walk(a, b, '', out);
  if (policies === undefined) return out;
  return out.filter((d) => !isAllowedDifference(d.path, policies[0], policies[1], d));
}
