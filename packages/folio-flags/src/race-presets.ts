import { FoliolabError, Ledger } from '@foliolab/ledger';
import { folioSetFlag, pageSetFlag } from './flags.js';
import { Memmap } from './memmap.js';
import { FLAG, type FlagName } from './pageflags.js';
import { exploreFlagRace, type RaceOp, type RaceReport } from './race.js';

/** Names of the built-in races. */
export type RacePresetName =
  | 'partially-mapped'
  | 'partially-mapped-fixed'
  | 'partially-mapped-hwpoison'
  | 'partially-mapped-hwpoison-fixed'
  | 'hwpoison'
  | 'hwpoison-fixed';

/** A built-in race: the folio it runs on and the CPU programs. Plain data. */
export interface RacePreset {
  readonly name: RacePresetName;
  readonly title: string;
  readonly description: string;
  /** Where the race comes from. */
  readonly source: string;
  /** Folio order (4 = a 64 KiB mTHP). */
  readonly order: number;
  /** Flags set before the race: `page` is the page index (ignored for head and second-page flags). */
  readonly initial: readonly { readonly flag: FlagName; readonly page: number }[];
  readonly cpus: readonly (readonly RaceOp[])[];
}

const SOURCE_DAVID =
  'David Hildenbrand, Re: [PATCH v5 4/6] mm: Introduce a pageflag for partially mapped folios, 12 Dec 2024 (seed 004); spec §1.2';
const SOURCE_FIX = 'Usama Arif, [PATCH v2] mm: convert partially_mapped set/clear operations to be atomic, 12 Dec 2024 (Fixes 8422acdc97ed)';

/** A mapped, exclusive anon 64K mTHP on the LRU: every page PageAnonExclusive, page[1] large_rmappable. */
const ANON_MTHP_ORDER = 4;
const ANON_MTHP_INITIAL: RacePreset['initial'] = [
  { flag: 'swapbacked', page: 0 },
  { flag: 'uptodate', page: 0 },
  { flag: 'lru', page: 0 },
  { flag: 'large_rmappable', page: 1 },
  ...Array.from({ length: 1 << ANON_MTHP_ORDER }, (_, page) => ({ flag: 'anon_exclusive' as const, page })),
];

/** deferred_split_folio() before the fix: __folio_set_partially_mapped (non-atomic). */
const CPU_DEFERRED_SPLIT_PREFIX: readonly RaceOp[] = [
  { kind: '__set', flag: 'partially_mapped', label: '__folio_set_partially_mapped (deferred_split_folio, pre-fix)' },
];
/** deferred_split_folio() after the fix: folio_set_partially_mapped (atomic). */
const CPU_DEFERRED_SPLIT_FIXED: readonly RaceOp[] = [
  { kind: 'set', flag: 'partially_mapped', label: 'folio_set_partially_mapped (deferred_split_folio)' },
];
/** Swapout/migration: folio_try_share_anon_rmap_pte() on subpage 1. */
const CPU_TRY_SHARE: readonly RaceOp[] = [
  { kind: 'clear', flag: 'anon_exclusive', page: 1, label: 'ClearPageAnonExclusive(page[1]) (folio_try_share_anon_rmap_pte)' },
];
/** memory_failure() on subpage 1, before unmapping, without locks. */
const CPU_MEMORY_FAILURE: readonly RaceOp[] = [
  { kind: 'test_set', flag: 'hwpoison', page: 1, label: 'TestSetPageHWPoison(page[1]) (memory_failure)' },
  { kind: 'set', flag: 'has_hwpoisoned', label: 'folio_set_has_hwpoisoned (memory_failure)' },
];

/** The built-in races. */
export const RACE_PRESETS: readonly RacePreset[] = Object.freeze([
  {
    name: 'partially-mapped',
    title: 'MADV_DONTNEED vs swapout/migration on page[1]: PG_anon_exclusive clear lost',
    description:
      'CPU0 reaches deferred_split_folio() from __folio_remove_rmap and sets PG_partially_mapped non-atomically; ' +
      'CPU1 (another PT lock after a partial mremap or fork) clears PG_anon_exclusive of page[1] atomically. ' +
      'Both bits live in the page[1] word.',
    source: SOURCE_DAVID,
    order: ANON_MTHP_ORDER,
    initial: ANON_MTHP_INITIAL,
    cpus: [CPU_DEFERRED_SPLIT_PREFIX, CPU_TRY_SHARE],
  },
  {
    name: 'partially-mapped-fixed',
    title: 'The same race with the atomic folio_set_partially_mapped',
    description: 'After the fix every set/clear of PG_partially_mapped is atomic: no update can be lost.',
    source: SOURCE_FIX,
    order: ANON_MTHP_ORDER,
    initial: ANON_MTHP_INITIAL,
    cpus: [CPU_DEFERRED_SPLIT_FIXED, CPU_TRY_SHARE],
  },
  {
    name: 'partially-mapped-hwpoison',
    title: 'Three CPUs on the page[1] word: deferred split, try_share, memory_failure',
    description: 'The pre-fix non-atomic set races with ClearPageAnonExclusive and with memory_failure on page[1].',
    source: SOURCE_DAVID,
    order: ANON_MTHP_ORDER,
    initial: ANON_MTHP_INITIAL,
    cpus: [CPU_DEFERRED_SPLIT_PREFIX, CPU_TRY_SHARE, CPU_MEMORY_FAILURE],
  },
  {
    name: 'partially-mapped-hwpoison-fixed',
    title: 'Three CPUs on the page[1] word, after the fix',
    description: 'All three CPUs use atomic bit operations: exactly one final word.',
    source: SOURCE_FIX,
    order: ANON_MTHP_ORDER,
    initial: ANON_MTHP_INITIAL,
    cpus: [CPU_DEFERRED_SPLIT_FIXED, CPU_TRY_SHARE, CPU_MEMORY_FAILURE],
  },
  {
    name: 'hwpoison',
    title: 'memory_failure vs the non-atomic PG_partially_mapped set',
    description:
      'memory_failure() does TestSetPageHWPoison(page[1]) and folio_set_has_hwpoisoned before unmapping, without ' +
      'locks; the pre-fix __folio_set_partially_mapped can overwrite either bit.',
    source: SOURCE_DAVID,
    order: ANON_MTHP_ORDER,
    initial: ANON_MTHP_INITIAL,
    cpus: [CPU_DEFERRED_SPLIT_PREFIX, CPU_MEMORY_FAILURE],
  },
  {
    name: 'hwpoison-fixed',
    title: 'memory_failure vs the atomic folio_set_partially_mapped',
    description: 'After the fix: no lost PG_hwpoison or PG_has_hwpoisoned.',
    source: SOURCE_FIX,
    order: ANON_MTHP_ORDER,
    initial: ANON_MTHP_INITIAL,
    cpus: [CPU_DEFERRED_SPLIT_FIXED, CPU_MEMORY_FAILURE],
  },
] satisfies RacePreset[]);

/** The preset called `name`; FoliolabError('EINVAL') listing the names otherwise. */
export function racePreset(name: string): RacePreset {
  const p = RACE_PRESETS.find((r) => r.name === name);
  if (p === undefined) {
    throw new FoliolabError('EINVAL', `racePreset: unknown race ${name}; known: ${RACE_PRESETS.map((r) => r.name).join(', ')}`, {
      name,
    });
  }
  return p;
}

/**
 * Run a preset: a fresh 512-page memmap, one folio of the preset's order with
 * its initial flags (set on a scratch ledger), then exploreFlagRace.
 */
export function runRacePreset(name: string, opts: { readonly maxInterleavings?: number } = {}): RaceReport {
  const preset = racePreset(name);
  const mm = new Memmap({ nrPages: 512, ledger: new Ledger() });
  const folio = mm.allocFolio(preset.order)!;
  for (const { flag, page } of preset.initial) {
    const desc = FLAG[flag];
    if (desc.placement === 'any') pageSetFlag(mm, folio.head + page, desc);
    else folioSetFlag(folio, desc);
  }
  return exploreFlagRace(folio, preset.cpus, opts);
}
