import type { Folio, Memmap } from '@foliolab/folio-flags';
import { FoliolabError, type Ledger } from '@foliolab/ledger';
import type { AnonVma } from './anon-vma.js';
import { DeferredSplitQueue } from './split-queue.js';
import { RmapStats } from './stats.js';

/**
 * How mapcounts are kept (unmap-engine §1 "Mapcount modes"):
 * - `legacy`: CONFIG_PAGE_MAPCOUNT without MM_ID (pre-6.15): per-page
 *   `_mapcount`, `_nr_pages_mapped` (+ENTIRELY_MAPPED) and a plain atomic
 *   `_large_mapcount`.
 * - `mm_id`: CONFIG_MM_ID with CONFIG_NO_PAGE_MAPCOUNT (6.15 MM_ID series +
 *   David Hildenbrand's 2026 direction): no per-page mapcount of large
 *   folios, `_large_mapcount` and the two `_mm_id` slots updated under the
 *   `_mm_ids` bit spinlock.
 * - `page_mapcount_mm_id`: both, the 7.2.13 default — mm/Kconfig:
 *   TRANSPARENT_HUGEPAGE selects MM_ID, PAGE_MAPCOUNT is def_bool
 *   !NO_PAGE_MAPCOUNT (EXPERIMENTAL, off in Debian's config). The per-page
 *   `_mapcount` and `_nr_pages_mapped` of `legacy`, and
 *   folio_{add,sub}_large_mapcount take the `_mm_ids` bit lock and keep the
 *   slots as in `mm_id` (include/linux/rmap.h, CONFIG_MM_ID);
 *   folio_maybe_mapped_shared reads the SHARED bit (include/linux/mm.h).
 * Order-0 folios use page[0]'s `_mapcount` in every mode.
 */
export type MapcountMode = 'legacy' | 'mm_id' | 'page_mapcount_mm_id';

/** Options of an RmapState. */
export interface RmapConfig {
  readonly mapcountMode: MapcountMode;
  /**
   * /sys/kernel/mm/transparent_hugepage/shrink_underused (split_underused_thp),
   * default true. Read by deferred_split_folio's early return and the scan.
   * Can be changed later through `RmapState.splitUnderusedThp`.
   */
  readonly splitUnderusedThp?: boolean;
  /** CONFIG_HAVE_GUP_FAST (default true): try_share issues its two barriers. */
  readonly haveGupFast?: boolean;
  /**
   * PFN range [start, end) of ZONE_DEVICE device-private memory. A folio
   * whose head lies in it is folio_is_device_private(): try_share clears
   * without barriers or pin check, try_dup never treats it as maybe-pinned,
   * removal never queues it for deferred split. Default: none.
   */
  readonly devicePrivatePfns?: { readonly start: number; readonly end: number } | null;
}

const registry = new WeakMap<Memmap, RmapState>();

/**
 * The rmap layer's state for one memmap: configuration, stats, the node's
 * deferred split queue, the anon_vma registry and the per-folio `_mm_ids`
 * bit-lock ids. Creating one attaches it to the memmap; the rmap operations
 * find it from any folio of that memmap (`rmapOf(folio.mm)`), so their
 * signatures stay kernel-shaped.
 */
export class RmapState {
  readonly memmap: Memmap;
  readonly ledger: Ledger;
  readonly mapcountMode: MapcountMode;
  /** mapcountMode === 'legacy': per-page mapcounts, no MM_ID (read on hot paths). */
  readonly legacy: boolean;
  /** CONFIG_PAGE_MAPCOUNT: large folios keep per-page `_mapcount` and `_nr_pages_mapped` ('legacy', 'page_mapcount_mm_id'). */
  readonly pageMapcount: boolean;
  /** CONFIG_MM_ID: `_large_mapcount` updates take the `_mm_ids` bit lock and keep the per-mm slots ('mm_id', 'page_mapcount_mm_id'). */
  readonly mmId: boolean;
  readonly haveGupFast: boolean;
  readonly devicePrivateStart: number;
  readonly devicePrivateEnd: number;
  /** split_underused_thp, a runtime knob. */
  splitUnderusedThp: boolean;
  readonly stats = new RmapStats();
  /** The node's deferred split queue (queue index 0). */
  readonly splitQueue: DeferredSplitQueue;
  /** @internal anon_vma id → AnonVma. */
  readonly anonVmas = new Map<number, AnonVma>();
  /**
   * @internal The same registry as an array indexed by id (ids are dense,
   * from 1): the rmap's hot paths resolve `folio->mapping` with an indexed
   * load instead of a Map lookup. Only anonVmaAlloc adds to either.
   */
  readonly anonVmaById: (AnonVma | undefined)[] = [undefined];
  /** @internal Next anon_vma id. */
  nextAnonVmaId = 1;
  private readonly mmIdsLocks = new Map<number, number>();

  constructor(memmap: Memmap, config: RmapConfig) {
    const mode = config?.mapcountMode;
    if (mode !== 'legacy' && mode !== 'mm_id' && mode !== 'page_mapcount_mm_id') {
      throw new FoliolabError('EINVAL', `RmapState: mapcountMode ${String(mode)} must be 'legacy', 'mm_id' or 'page_mapcount_mm_id'`, { mode });
    }
    if (memmap.mapcount === null) {
      throw new FoliolabError(
        'EINVAL',
        'RmapState: the memmap has no per-page _mapcount array; create it with perPageMapcount: true (order-0 folios use it in both modes)',
        {},
      );
    }
    if (registry.has(memmap)) {
      throw new FoliolabError('EEXIST', 'RmapState: this memmap already has an RmapState attached', {});
    }
    const dp = config.devicePrivatePfns ?? null;
    if (dp !== null && !(Number.isInteger(dp.start) && Number.isInteger(dp.end) && dp.start >= 0 && dp.end >= dp.start)) {
      throw new FoliolabError('EINVAL', `RmapState: devicePrivatePfns [${dp.start}, ${dp.end}) is not a PFN range`, { ...dp });
    }
    this.memmap = memmap;
    this.ledger = memmap.ledger;
    this.mapcountMode = mode;
    this.legacy = mode === 'legacy';
    this.pageMapcount = mode !== 'mm_id';
    this.mmId = mode !== 'legacy';
    this.haveGupFast = config.haveGupFast ?? true;
    this.splitUnderusedThp = config.splitUnderusedThp ?? true;
    this.devicePrivateStart = dp?.start ?? 0;
    this.devicePrivateEnd = dp?.end ?? 0;
    this.splitQueue = new DeferredSplitQueue(memmap, 0, 'split_queue', this.ledger);
    registry.set(memmap, this);
  }

  /** get_deferred_split_queue(folio): the node queue (a memcg-aware model would look up the folio's memcg here). */
  splitQueueOf(_folio: Folio): DeferredSplitQueue {
    return this.splitQueue;
  }

  /** @internal Ledger lock id of `folio->_mm_ids`' bit spinlock for the folio at `head` (kind 'mm_id'). */
  mmIdsLock(head: number): number {
    let id = this.mmIdsLocks.get(head);
    if (id === undefined) {
      id = this.ledger.lockId(`mm_ids:${head}`, 'mm_id');
      this.mmIdsLocks.set(head, id);
    }
    return id;
  }

  /** folio_is_device_private(). */
  isDevicePrivate(folio: Folio): boolean {
    return folio.head >= this.devicePrivateStart && folio.head < this.devicePrivateEnd;
  }
}

/** Attach rmap state to `memmap` (see RmapState). */
export function createRmap(memmap: Memmap, config: RmapConfig): RmapState {
  return new RmapState(memmap, config);
}

/**
 * The last memmap rmapOf resolved and its state: every rmap operation starts
 * here, and a program almost always works on one memmap at a time, so one
 * identity compare replaces the WeakMap lookup. A memmap's state never
 * changes once attached, so the pair cannot go stale. (It keeps the last
 * memmap reachable until another one is looked up.)
 */
let lastMemmap: Memmap | null = null;
let lastState: RmapState | null = null;

/** The RmapState attached to `memmap`; throws when there is none. */
export function rmapOf(memmap: Memmap): RmapState {
  if (memmap === lastMemmap && lastState !== null) return lastState;
  const st = registry.get(memmap);
  if (st === undefined) {
    throw new FoliolabError('EINVAL', 'rmapOf: no RmapState is attached to this memmap; call createRmap(memmap, config) first', {});
  }
  lastMemmap = memmap;
  lastState = st;
  return st;
}
