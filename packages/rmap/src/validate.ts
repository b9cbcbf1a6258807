import {
  ENTIRELY_MAPPED,
  F_ENTIRE_MAPCOUNT,
  F_LARGE_MAPCOUNT,
  F_MAPPING,
  FLAG,
  MM_ID_MASK,
  PAGE_MAPCOUNT_MAX,
  PAGE_MAPPING_FLAGS,
  PAGE_MAPPING_KSM,
  folioTestAnon,
  mappingId,
  type Folio,
  type FolioSubrange,
} from '@foliolab/folio-flags';
import { FoliolabError } from '@foliolab/ledger';
import type { AnonVma } from './anon-vma.js';
import { rmapOf, type RmapState } from './state.js';
import { HPAGE_PMD_ORDER, type RmapVma } from './types.js';

/*
 * Boundary checks shared by the rmap operations (models the VM_WARN/BUG
 * checks of __folio_rmap_sanity_checks() and friends, made fatal). They read
 * the memmap directly and charge nothing: they are the model's guard rails,
 * not kernel work.
 */

export const AE_MASK = FLAG.anon_exclusive.mask;

/** Throw FoliolabError(code) naming `fn` and `what`. */
export function fail(fn: string, code: string, what: string, details: Record<string, unknown> = {}): never {
  throw new FoliolabError(code, `${fn}: ${what}`, details);
}

/** The RmapState of a live folio. */
export function stateOfFolio(fn: string, folio: Folio): RmapState {
  folio.mm.assertLive(fn, folio);
  return rmapOf(folio.mm);
}

/** The RmapState of a subrange whose folio is still live. */
export function stateOfSub(fn: string, sub: FolioSubrange): RmapState {
  if (sub === null || typeof sub !== 'object' || sub.folio === undefined) fail(fn, 'EINVAL', 'expected a FolioSubrange');
  return stateOfFolio(fn, sub.folio);
}

/** A VMA whose mm has a usable MM_ID. */
export function checkVma(fn: string, vma: RmapVma, role = 'vma'): void {
  if (vma === null || typeof vma !== 'object' || vma.mm === null || typeof vma.mm !== 'object') {
    fail(fn, 'EINVAL', `${role} is not an RmapVma`);
  }
  const id = vma.mm.mmId;
  if (!Number.isInteger(id) || id < 1 || id > MM_ID_MASK) {
    fail(fn, 'EINVAL', `${role}.mm.mmId ${id} is not in 1..${MM_ID_MASK} (0 is MM_ID_DUMMY)`, { mmId: id });
  }
}

/** Anon folio whose anon_vma is alive (the 2025 sanity check). Returns it (null for a KSM folio). */
export function checkAnon(fn: string, st: RmapState, folio: Folio): AnonVma | null {
  const mapping = folio.fa[folio.fb + F_MAPPING]!;
  if (!folioTestAnon(folio)) {
    fail(fn, 'EINVAL', `folio ${folio.head} is not anonymous (mapping ${mapping})`, { head: folio.head, mapping });
  }
  if ((mapping & PAGE_MAPPING_FLAGS) === PAGE_MAPPING_KSM) return null;
  const av = st.anonVmaById[mappingId(mapping)];
  if (av === undefined) {
    fail(fn, 'EINVAL', `anon folio ${folio.head} has no live anon_vma (id ${mappingId(mapping)})`, { head: folio.head, mapping });
  }
  return av;
}

/** Not anonymous (file rmap entry points). */
export function checkFile(fn: string, folio: Folio): void {
  if (folioTestAnon(folio)) fail(fn, 'EINVAL', `folio ${folio.head} is anonymous; use the anon variant`, { head: folio.head });
}

/** PMD-level ops need a PMD-sized folio (order HPAGE_PMD_ORDER). */
export function checkPmdSized(fn: string, folio: Folio): void {
  if (folio.order !== HPAGE_PMD_ORDER) {
    fail(fn, 'EINVAL', `folio ${folio.head} of order ${folio.order} is not PMD-sized (order ${HPAGE_PMD_ORDER})`, {
      head: folio.head,
      order: folio.order,
    });
  }
}

/** The RMAP flags word. */
export function checkFlags(fn: string, flags: number): void {
  if (flags !== 0 && flags !== 1) fail(fn, 'EINVAL', `flags ${flags} must be RMAP_NONE (0) or RMAP_EXCLUSIVE (1)`, { flags });
}

/** PTE mappings of a large folio: total minus PMD mappings. */
export function ptesMapped(folio: Folio): number {
  const { fa, fb } = folio;
  return fa[fb + F_LARGE_MAPCOUNT]! + 1 - (fa[fb + F_ENTIRE_MAPCOUNT]! + 1);
}

/**
 * The VM_WARN of __folio_add_anon_rmap: after adding, no page may be
 * PageAnonExclusive while mapped twice — its own `_mapcount` > 0 (PAGE_MAPCOUNT
 * only, and order-0 folios in both modes), or the folio's entire mapcount > 1.
 * `addPte` pages get +1 on their own mapcount, `addPmd` adds a PMD mapping;
 * `exclusiveFrom..exclusiveTo` pages become exclusive.
 */
export function checkExclusiveAfterAdd(
  fn: string,
  st: RmapState,
  folio: Folio,
  first: number,
  nr: number,
  addPmd: boolean,
  setExclusive: boolean,
): void {
  const mm = folio.mm;
  const mc = mm.mapcount!;
  const flags = mm.flags;
  const large = folio.order > 0;
  const entireAfter = large ? folio.fa[folio.fb + F_ENTIRE_MAPCOUNT]! + 1 + (addPmd ? 1 : 0) : 0;
  const perPage = st.pageMapcount || !large;
  for (let p = folio.head + first; p < folio.head + first + nr; p++) {
    const willBeExclusive = (flags[p]! & AE_MASK) !== 0 || (setExclusive && (!addPmd || p === folio.head));
    if (!willBeExclusive) continue;
    const pageAfter = mc[p]! + (addPmd ? 0 : 1);
    if (entireAfter > 1 || (perPage && pageAfter > 0)) {
      fail(fn, 'EINVAL', `page ${p - folio.head} of folio ${folio.head} would be PageAnonExclusive and mapped more than once`, {
        head: folio.head,
        page: p - folio.head,
        pageMapcount: perPage ? pageAfter : undefined,
        entireMapcount: entireAfter,
      });
    }
  }
}

/**
 * The per-page `_mapcount` is an Int16Array (PAGE_MAPCOUNT_MAX, a model
 * limit: the kernel's is an atomic_t). An operation that would add a PTE
 * mapping to page `pfn` already at the limit is rejected before it changes
 * anything.
 */
export function pageMapcountOverflow(fn: string, folio: Folio, pfn: number): never {
  const have = folio.mm.mapcount![pfn]! + 1;
  fail(
    fn,
    'EOVERFLOW',
    `pfn ${pfn} (page ${pfn - folio.head} of folio ${folio.head}) already has ${have} PTE mappings, the model's per-page limit (PAGE_MAPCOUNT_MAX ${PAGE_MAPCOUNT_MAX} + 1)`,
    { head: folio.head, pfn, mapcount: have },
  );
}

/**
 * Throw EOVERFLOW unless every per-page `_mapcount` of [firstPfn, firstPfn +
 * nr) can take one more PTE mapping (order-0 folios in both modes, every
 * folio in legacy mode: the callers decide when the per-page counts move).
 */
export function checkPageMapcountRoom(fn: string, folio: Folio, firstPfn: number, nr: number): void {
  const mc = folio.mm.mapcount!;
  for (let p = firstPfn; p < firstPfn + nr; p++) if (mc[p]! >= PAGE_MAPCOUNT_MAX) pageMapcountOverflow(fn, folio, p);
}

/** Whether ENTIRELY_MAPPED is set in a `_nr_pages_mapped` value. */
export function entirelyMapped(nrPagesMapped: number): boolean {
  return nrPagesMapped >= ENTIRELY_MAPPED;
}
