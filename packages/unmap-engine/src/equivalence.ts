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
  /** The policies whose values may differ from the others' at this path. */
  readonly policies: readonly Policy[];
  readonly reason: string;
}

const ALL: readonly Policy[] = Object.freeze(['per-pte', 'mainline', 'batched'] as const);

/** The one table of allowed differences (ENGINE-API.md "Policies and allowed differences"). */
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
    policies: ALL,
    reason:
      'batched PTE operations merge young/dirty over the batch: get_and_clear_ptes returns the OR and an aborted lazyfree batch is restored with ' +
      'set_ptes(merged pteval, nr) (mainline and batched; per-pte restores only its one PTE); [I] the batched anon rollback restores the not-yet-' +
      'converted PTEs with the merged values (unmap-engine §3.3 step 6); mprotect/mremap batches (modify_prot_start_ptes / get_and_clear_ptes + ' +
      'set_ptes) replicate the merged bits; fork batches copy the first PTE\'s dirty bit to the whole child batch (FPB ignores dirty).',
  },
  {
    path: 'processes.*.ptes.*.young',
    policies: ALL,
    reason: 'as for dirty: young is OR-merged over a batch and replicated by set_ptes (restore, mprotect, mremap); a contpte unfold also replicates A/D.',
  },
  {
    path: 'folios.*.flags.dirty',
    policies: ALL,
    reason:
      'try_to_unmap_one calls folio_mark_dirty when the cleared pteval is dirty, and a batch\'s pteval is the OR over the batch. When the batch ' +
      'is then aborted and its PTEs restored (a pinned exclusive page in the batched anon path, a re-dirtied or referenced lazyfree folio), ' +
      'PG_dirty is already set. A per-PTE walk that stops at its first PTE sets it only if that PTE was dirty. The data stays dirty either ' +
      'way: the restored or untouched PTEs keep their dirty bits.',
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

/** Whether a difference at `path` between policies `pa` and `pb` is allowed. */
export function isAllowedDifference(path: string, pa: Policy, pb: Policy): boolean {
  if (pa === pb) return false;
  for (const row of ALLOWED_DIFFERENCES) {
    if (!pathMatches(row.path, path)) continue;
    if (row.policies.includes(pa) || row.policies.includes(pb)) return true;
  }
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
  return out.filter((d) => !isAllowedDifference(d.path, policies[0], policies[1]));
}
