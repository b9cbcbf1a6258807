import { F_INDEX, F_MAPPING, PAGE_MAPPING_FLAGS, PAGE_MAPPING_KSM, folioTestAnon, mappingId, type Folio } from '@foliolab/folio-flags';
import { EV, FoliolabError } from '@foliolab/ledger';
import type { RmapState } from './state.js';
import { EFAULT, PAGE_SIZE, vmaPages, type RmapVma } from './types.js';
import { fail, stateOfFolio } from './validate.js';

/*
 * anon_vma, anon_vma_chain and rmap_walk_anon (mm/rmap.c, include/linux/rmap.h).
 *
 * Each anon_vma keeps an interval tree of the chains (avc) linking it to
 * VMAs, keyed by the VMA's pgoff range [vm_pgoff, vm_pgoff + pages − 1].
 * The kernel's tree (INTERVAL_TREE_DEFINE over an rbtree) inserts an equal
 * key to the right, and anon_vma_interval_tree_foreach visits overlapping
 * nodes in-order. The model's reading: a walk visits VMAs in ascending start
 * pgoff, ties in insertion order. The model keeps each tree as an array
 * sorted that way (insert after equal keys); a walk scans it until a start
 * pgoff passes the folio's last pgoff.
 */

interface AnonVmaChain {
  readonly vma: RmapVma;
  readonly anonVma: AnonVma;
  /** avc_start_pgoff / avc_last_pgoff captured at link time. */
  readonly start: number;
  readonly last: number;
}

/** An anon_vma: id (what folio->mapping stores), root, and its interval tree of VMA chains. */
export class AnonVma {
  /** The oldest anon_vma of the family (self for a root); its rwsem guards the whole family. */
  readonly root: AnonVma;
  /** @internal The interval tree, in-order. */
  readonly chains: AnonVmaChain[] = [];
  /** @internal Ledger lock id of the root's rwsem (kind 'anon_vma'). */
  readonly lockId: number;

  /** @internal Use anonVmaAlloc. */
  constructor(
    readonly rmap: RmapState,
    readonly id: number,
    readonly parent: AnonVma | null,
  ) {
    this.root = parent === null ? this : parent.root;
    this.lockId = this.root === this ? rmap.ledger.lockId(`anon_vma:${id}`, 'anon_vma') : this.root.lockId;
  }

  /** Chains (VMAs) in this anon_vma's interval tree. */
  get size(): number {
    return this.chains.length;
  }

  /** The linked VMAs, in tree (walk) order. */
  vmas(): RmapVma[] {
    return this.chains.map((c) => c.vma);
  }
}

/** vma → the anon_vmas it is chained to (vma->anon_vma_chain), in link order. */
const vmaChains = new WeakMap<RmapVma, AnonVma[]>();

/**
 * anon_vma_alloc() (mm/rmap.c): a new anon_vma registered with `rmap`. With
 * `parent` (anon_vma_fork) it joins the parent's family: same root, same lock.
 */
export function anonVmaAlloc(rmap: RmapState, parent: AnonVma | null = null): AnonVma {
  if (parent !== null && rmap.anonVmas.get(parent.id) !== parent) {
    throw new FoliolabError('EINVAL', `anonVmaAlloc: parent anon_vma ${parent.id} is not registered with this rmap`, { parent: parent.id });
  }
  const av = new AnonVma(rmap, rmap.nextAnonVmaId++, parent);
  rmap.anonVmas.set(av.id, av);
  rmap.anonVmaById[av.id] = av;
  return av;
}

function checkTreeUnlocked(fn: string, av: AnonVma): void {
  if (av.rmap.ledger.locks.isHeld(av.lockId)) {
    throw new FoliolabError('EBUSY', `${fn}: anon_vma ${av.id}'s root lock is held (an rmap walk is running)`, { anonVma: av.id });
  }
}

function vmaLast(vma: RmapVma): number {
  return vma.vmPgoff + vmaPages(vma) - 1;
}

/**
 * anon_vma_chain_link(vma, avc, anon_vma) (mm/rmap.c): insert `vma` into
 * `anonVma`'s interval tree. The kernel holds the anon_vma write lock here;
 * the model does not charge it (not on the spec's cost list).
 */
export function anonVmaChainLink(vma: RmapVma, anonVma: AnonVma): void {
  const fn = 'anonVmaChainLink';
  checkTreeUnlocked(fn, anonVma);
  if (vma === null || typeof vma !== 'object' || !(vma.vmEnd > vma.vmStart) || (vma.vmEnd - vma.vmStart) % PAGE_SIZE !== 0) {
    throw new FoliolabError('EINVAL', `${fn}: VMA [${vma?.vmStart}, ${vma?.vmEnd}) is not a non-empty page-aligned range`, {});
  }
  if (!Number.isInteger(vma.vmPgoff) || vma.vmPgoff < 0) {
    throw new FoliolabError('EINVAL', `${fn}: vmPgoff ${vma.vmPgoff} must be a non-negative integer`, {});
  }
  const list = vmaChains.get(vma) ?? [];
  if (list.includes(anonVma)) {
    throw new FoliolabError('EEXIST', `${fn}: the VMA is already linked to anon_vma ${anonVma.id}`, { anonVma: anonVma.id });
  }
  const start = vma.vmPgoff;
  const chains = anonVma.chains;
  // Upper bound: after every chain with start ≤ this start (equal keys go right).
  let lo = 0;
  let hi = chains.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (chains[mid]!.start <= start) lo = mid + 1;
    else hi = mid;
  }
  chains.splice(lo, 0, { vma, anonVma, start, last: vmaLast(vma) });
  list.push(anonVma);
  vmaChains.set(vma, list);
}

/** Remove `vma`'s chain from `anonVma`'s tree (the per-avc step of unlink_anon_vmas). */
export function anonVmaChainUnlink(vma: RmapVma, anonVma: AnonVma): void {
  const fn = 'anonVmaChainUnlink';
  checkTreeUnlocked(fn, anonVma);
  const list = vmaChains.get(vma);
  const at = list?.indexOf(anonVma) ?? -1;
  if (list === undefined || at < 0) {
    throw new FoliolabError('ENOENT', `${fn}: the VMA is not linked to anon_vma ${anonVma.id}`, { anonVma: anonVma.id });
  }
  const i = anonVma.chains.findIndex((c) => c.vma === vma);
  anonVma.chains.splice(i, 1);
  list.splice(at, 1);
}

/** The anon_vmas `vma` is chained to (vma->anon_vma_chain), in link order. */
export function vmaAnonVmas(vma: RmapVma): AnonVma[] {
  return [...(vmaChains.get(vma) ?? [])];
}

/** unlink_anon_vmas(vma) (mm/rmap.c): drop every chain of `vma`; leaves `vma.anonVma` to the caller. */
export function unlinkAnonVmas(vma: RmapVma): void {
  for (const av of vmaAnonVmas(vma)) anonVmaChainUnlink(vma, av);
}

/** anon_vma_clone(dst, src) (mm/rmap.c): link `dst` to every anon_vma `src` is chained to. */
export function anonVmaClone(dst: RmapVma, src: RmapVma): void {
  for (const av of vmaAnonVmas(src)) anonVmaChainLink(dst, av);
}

/** anon_vma_prepare(vma) (mm/rmap.c): give an anon VMA its own anon_vma on first fault. */
export function anonVmaPrepare(rmap: RmapState, vma: RmapVma): AnonVma {
  if (vma.anonVma !== null) return vma.anonVma;
  const av = anonVmaAlloc(rmap);
  anonVmaChainLink(vma, av);
  vma.anonVma = av;
  return av;
}

/**
 * vma_address(vma, pgoff, nr_pages) (mm/internal.h; pvmw spec §1): the user
 * address of `pgoff` in `vma`, or the VMA start if the range [pgoff,
 * pgoff + nr − 1] begins before the VMA but reaches into it; −EFAULT if it
 * lies outside.
 */
export function vmaAddress(vma: RmapVma, pgoff: number, nr: number): number {
  if (pgoff >= vma.vmPgoff) {
    const address = vma.vmStart + (pgoff - vma.vmPgoff) * PAGE_SIZE;
    return address < vma.vmStart || address >= vma.vmEnd ? -EFAULT : address;
  }
  if (pgoff + nr - 1 >= vma.vmPgoff) return vma.vmStart;
  return -EFAULT;
}

/** folio_anon_vma(folio): the anon_vma `folio->mapping` names, or null (not anon, KSM, unknown id). */
export function folioAnonVma(folio: Folio): AnonVma | null {
  return anonVmaOf(stateOfFolio('folioAnonVma', folio), folio);
}

/** folio_anon_vma() of a folio the caller validated. */
function anonVmaOf(st: RmapState, folio: Folio): AnonVma | null {
  const mapping = folio.fa[folio.fb + F_MAPPING]!;
  if (!folioTestAnon(folio) || (mapping & PAGE_MAPPING_FLAGS) === PAGE_MAPPING_KSM) return null;
  return st.anonVmaById[mappingId(mapping)] ?? null;
}

/** The rmap_walk_control of an anon walk. */
export interface RmapWalkControl {
  /** rmap_one: visit `folio` in `vma` at `address` (vma_address of the folio); false stops the walk. */
  rmapOne(folio: Folio, vma: RmapVma, address: number): boolean;
  /** done: checked after each rmap_one; true stops the walk (try_to_unmap: "no longer mapped"). */
  done?(folio: Folio): boolean;
  /** invalid_vma: true skips the VMA without calling rmap_one. */
  invalidVma?(vma: RmapVma): boolean;
  /** rmap_walk_locked(): the caller already holds the anon_vma lock (no LOCK/UNLOCK here). */
  locked?: boolean;
  /**
   * false: rmap_one is not charged RMAP_ONE. The event counts the callbacks
   * that unmap or check references (try_to_unmap_one, try_to_migrate_one,
   * folio_referenced_one, page_mkclean_one — the calls the kernel oracle
   * traces), not remove_migration_pte (7.2.13 mm/migrate.c), which restores.
   */
  chargeRmapOne?: boolean;
}

/**
 * rmap_walk_anon(folio, rwc, locked) (mm/rmap.c, v6.15; rwc.locked for
 * rmap_walk_locked): take the root anon_vma rwsem for read (one LOCK/UNLOCK)
 * unless locked, visit every VMA of the folio's
 * anon_vma whose pgoff range overlaps [index, index + nr − 1] in tree order,
 * one RMAP_ONE per rmap_one call (unless rwc.chargeRmapOne is false), stopping
 * when it returns false or `done` says so. VMAs that no longer map the folio
 * are visited too. Returns the number of rmap_one calls. A folio without an
 * anon_vma is not walked.
 */
export function rmapWalkAnon(folio: Folio, rwc: RmapWalkControl): number {
  const fn = 'rmapWalkAnon';
  const st = stateOfFolio(fn, folio);
  if (rwc === null || typeof rwc !== 'object' || typeof rwc.rmapOne !== 'function') fail(fn, 'EINVAL', 'rwc.rmapOne must be a function');
  if (!folioTestAnon(folio)) fail(fn, 'EINVAL', `folio ${folio.head} is not anonymous`, { head: folio.head });
  const av = anonVmaOf(st, folio);
  if (av === null) return 0;
  const ledger = st.ledger;
  const pgoffStart = folio.fa[folio.fb + F_INDEX]!;
  const pgoffEnd = pgoffStart + folio.nr - 1;
  let calls = 0;
  const locked = rwc.locked === true;
  const chargeOne = rwc.chargeRmapOne !== false;
  ledger.begin('rmap_walk_anon');
  if (!locked) ledger.lock(av.lockId);
  try {
    const chains = av.chains;
    for (let i = 0; i < chains.length; i++) {
      const c = chains[i]!;
      if (c.start > pgoffEnd) break;
      if (c.last < pgoffStart) continue;
      const vma = c.vma;
      if (vma.vmPgoff !== c.start || vmaLast(vma) !== c.last) {
        fail(fn, 'EINVAL', 'a linked VMA changed its pgoff range; unlink and link it again around the change', {
          anonVma: av.id,
        });
      }
      const address = vmaAddress(vma, pgoffStart, folio.nr);
      if (rwc.invalidVma?.(vma) === true) continue;
      if (chargeOne) ledger.charge(EV.RMAP_ONE);
      calls++;
      if (!rwc.rmapOne(folio, vma, address)) break;
      if (rwc.done?.(folio) === true) break;
    }
  } finally {
    if (!locked) ledger.unlock(av.lockId);
    ledger.end();
  }
  return calls;
}
