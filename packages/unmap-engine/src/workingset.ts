import { FLAG, folioSetActive, folioSetFlag, type Folio } from '@foliolab/folio-flags';
import type { Kernel } from './kernel.js';
import { LRU_ACTIVE_ANON, LRU_ACTIVE_FILE, LRU_INACTIVE_FILE } from './lru.js';
import { VM } from './stats.js';
import { lruNoteCost } from './vmscan.js';

/*
 * Workingset detection for anonymous folios, 7.2.13 mm/workingset.c with the
 * classic LRU (the kernel oracle turns MGLRU off, so lru_gen_enabled() is
 * false at run time and the lru_gen_* paths are not taken).
 *
 * Each lruvec counts its nonresident_age: the pages evicted from it and
 * activated on it (workingset_age_nonresident, which adds the same count to
 * every ancestor's lruvec up to the root). When reclaim removes a swap-cache
 * folio (__remove_mapping), workingset_eviction reads the age of the lruvec
 * of the memcg that *caused* the reclaim (sc->target_mem_cgroup: none for
 * MADV_PAGEOUT's reclaim_pages, hence the root's; the scenario's memcg for
 * memory.reclaim), ages it, and packs the age, that memcg's id and
 * PG_workingset into a shadow that __swap_cache_del_folio leaves in the
 * folio's swap-table words. A swap-in allocating a folio for the slot
 * (__swap_cache_alloc) passes the shadow of the faulting slot to
 * workingset_refault: the refault distance is that lruvec's age now minus the
 * age stored, and workingset_test_recent activates the folio when the
 * distance is at most the workingset size, read from the eviction memcg's
 * flushed statistics: NR_ACTIVE_FILE + NR_INACTIVE_FILE, plus NR_ACTIVE_ANON
 * while swap space is left. The activation ages the faulting memcg's lruvec
 * (and its ancestors) and counts WORKINGSET_ACTIVATE_ANON; a folio that was
 * PG_workingset when evicted gets PG_workingset back, its refault counts as
 * IO cost (lru_note_cost_refault) and WORKINGSET_RESTORE_ANON. Every
 * swap-in allocation counts WORKINGSET_REFAULT_ANON: in 7.2.13 a used slot
 * not in the swap cache always holds a shadow-format table word, an empty
 * one (the value 0, no memcg) when the folio left the swap cache without a
 * shadow (swap_cache_del_folio), which workingset_test_recent rejects since
 * no memcg has id 0.
 *
 * The memcgs: the scenario's (the oracle's fresh cgroup, a child of the root
 * whose only charged memory is the scenario's) and the root. The engine's one
 * lruvec holds every folio, so it is both the scenario memcg's lists and, the
 * root's statistics being hierarchical (and nothing else in the oracle's guest
 * on an evictable list: /init is mlocked, the file systems are ramfs), the
 * root's. Only the two ages differ: MADV_PAGEOUT's evictions age the root
 * alone.
 *
 * bucket_order is 0: workingset_init sets it only when totalram_pages needs
 * more bits than the shadow keeps (with 2 GiB, 19 bits against 37 on arm64,
 * 31 on x86). The model's shadow is the swap package's 32-bit token: the age
 * keeps 29 bits (a departure only after 2^29 evictions and activations).
 */

/** mem_cgroup_private_id() of the two memcgs (ids start at 1; 0 is no memcg). */
export const MEMCG_ROOT = 1;
export const MEMCG_SCENARIO = 2;

const WORKINGSET_SHIFT = 1;
const MEMCG_ID_SHIFT = 2;
const EVICTION_SHIFT = WORKINGSET_SHIFT + MEMCG_ID_SHIFT;
/** 2^29: the eviction age bits of the 32-bit token (EVICTION_MASK_ANON + 1 in the model). */
const EVICTION_RANGE = 2 ** (32 - EVICTION_SHIFT);

/** lruvec->nonresident_age of the memcg `memcgId`. */
function nonresidentAge(k: Kernel, memcgId: number): number {
  return memcgId === MEMCG_ROOT ? k.lruvec.rootNonresidentAge : k.lruvec.nonresidentAge;
}

/**
 * workingset_age_nonresident(lruvec of `memcgId`, nr): that lruvec and every
 * ancestor's — the scenario's memcg and the root, or the root alone.
 */
export function workingsetAgeNonresident(k: Kernel, memcgId: number, nr: number): void {
  const v = k.lruvec;
  if (memcgId === MEMCG_SCENARIO) v.nonresidentAge += nr;
  v.rootNonresidentAge += nr;
}

/** pack_shadow(memcgid, pgdat, eviction, workingset, file = false) as the swap package's token (never 0). */
function packShadow(memcgId: number, eviction: number, workingset: boolean): number {
  return (eviction % EVICTION_RANGE) * 2 ** EVICTION_SHIFT + memcgId * 2 ** WORKINGSET_SHIFT + (workingset ? 1 : 0);
}

/**
 * workingset_eviction(folio, target_memcg) (7.2.13 mm/workingset.c) for a
 * swap-cache folio reclaim is removing: the shadow to leave in its slots.
 * `targetMemcg` is MEMCG_ROOT for a reclaim without a target memcg.
 */
export function workingsetEviction(k: Kernel, f: Folio, targetMemcg: number): number {
  const eviction = nonresidentAge(k, targetMemcg); // >> bucket_order[WORKINGSET_ANON] = 0
  workingsetAgeNonresident(k, targetMemcg, f.nr);
  return packShadow(targetMemcg, eviction, (k.memmap.flags[f.head]! & FLAG.workingset.mask) !== 0);
}

/** The shadow in slot `off`'s swap-table word (0: the empty shadow), before the swap-in binds a folio there. */
export function swapShadowAt(k: Kernel, off: number): number {
  const si = k.si!;
  const sh = si.ciShadow[off >>> si.clusterShift];
  return sh === null || sh === undefined ? 0 : sh[off & (si.clusterSize - 1)]!;
}

/**
 * workingset_test_recent(shadow, file = false, &workingset, flush) (7.2.13):
 * whether the refault distance fits the eviction memcg's workingset. The
 * statistics are the copy flushed before the step (Lruvec.stat): the flush
 * here is mem_cgroup_flush_stats_ratelimited, which flushes only when the
 * periodic flusher is late.
 */
function workingsetTestRecent(k: Kernel, shadow: number): boolean {
  const memcgId = Math.floor(shadow / 2 ** WORKINGSET_SHIFT) % 2 ** MEMCG_ID_SHIFT;
  if (memcgId === 0) return false; // the empty shadow: mem_cgroup_from_private_id(0) is NULL
  const eviction = Math.floor(shadow / 2 ** EVICTION_SHIFT);
  const refault = nonresidentAge(k, memcgId);
  const distance = (((refault - eviction) % EVICTION_RANGE) + EVICTION_RANGE) % EVICTION_RANGE;
  const s = k.lruvec.stat;
  let workingsetSize = s[LRU_ACTIVE_FILE]! + s[LRU_INACTIVE_FILE]!;
  // mem_cgroup_get_nr_swap_pages: the oracle's memcg has no swap.max, so the device's free slots.
  if (k.si !== null && k.si.nrSwapPages > 0) workingsetSize += s[LRU_ACTIVE_ANON]!;
  return distance <= workingsetSize;
}

/**
 * workingset_refault(folio, shadow) (7.2.13 mm/workingset.c) for a fresh
 * swap-in folio of the scenario's memcg, locked, in the swap cache, not yet
 * on the LRU (__swap_cache_alloc calls it before folio_add_lru): count the
 * refault; a recent one is activated (PG_active, so lru_add puts it on the
 * active list) and, if it was in the workingset when evicted, restored.
 */
export function workingsetRefault(k: Kernel, f: Folio, shadow: number): void {
  const nr = f.nr;
  k.stats.count(VM.workingset_refault_anon, nr);
  if (!workingsetTestRecent(k, shadow)) return;
  folioSetActive(f);
  workingsetAgeNonresident(k, MEMCG_SCENARIO, nr);
  k.stats.count(VM.workingset_activate_anon, nr);
  k.lruvec.activateAnon += nr;
  if (shadow % 2 === 1) {
    folioSetFlag(f, FLAG.workingset);
    lruNoteCost(k.lruvec, false, nr, 0); // lru_note_cost_refault
    k.stats.count(VM.workingset_restore_anon, nr);
  }
}

/** workingset_activation(folio) (7.2.13): an activation by folio_mark_accessed ages the folio's lruvec. */
export function workingsetActivation(k: Kernel, f: Folio): void {
  workingsetAgeNonresident(k, MEMCG_SCENARIO, f.nr);
}
