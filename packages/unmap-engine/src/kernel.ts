import { Memmap, folioMarkUptodate, type Folio } from '@foliolab/folio-flags';
import { EV, FoliolabError, Ledger } from '@foliolab/ledger';
import { Machine, PageTables, TlbUnmapBatch, archProfile } from '@foliolab/pagetable-arm64-contpte';
import { createRmap, type RmapState } from '@foliolab/rmap';
import { SwapDevice } from '@foliolab/swap';
import { MTHP_ORDER, MTHP_SIZES, type InjectName, type ResolvedConfig } from './config.js';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, PAGE_SIZE } from './consts.js';
import type { Proc } from './proc.js';
import type { ReferencedControl } from './referenced.js';
import type { TtuControl } from './ttu.js';
import { Lruvec } from './lru.js';
import { EngineStats } from './stats.js';

/** One GUP reference set taken by `Engine.pin`. */
export interface PinHandle {
  readonly id: number;
  readonly pid: number;
  readonly kind: 'pin' | 'get';
  readonly write: boolean;
  /** PFN of every pinned page (one reference each). */
  readonly pfns: Int32Array;
}

/**
 * The simulated kernel: every piece of state the engine's operations share.
 * The Engine class is the validated public face; the files of this package
 * are functions over a Kernel.
 */
export class Kernel {
  readonly config: ResolvedConfig;
  readonly ledger: Ledger;
  readonly machine: Machine;
  readonly memmap: Memmap;
  readonly rmap: RmapState;
  /** The swap device (null when `swap` is 0). */
  readonly si: SwapDevice | null;
  /** current->tlb_ubc: the reclaim TLB batch. */
  readonly tlb: TlbUnmapBatch;
  readonly procs = new Map<number, Proc>();
  nextPid = 1;
  nextMmId = 1;
  /** PFN of the shared zero page (my_zero_pfn): an order-0 folio the engine never frees. */
  readonly zeroPfn: number;
  /** Next fresh data token (0 is "zero page"). */
  nextToken = 1;
  /** zap, fork, mprotect, mremap: batched (mainline and batched) or one PTE at a time (per-pte). */
  readonly batchPtes: boolean;
  /** try_to_unmap of lazyfree/file folios batched (folio_unmap_pte_batch). */
  readonly batchLazy: boolean;
  /** try_to_unmap of anon swap-backed folios batched (Dev Jain v4). */
  readonly batchAnon: boolean;
  /** After a partial anon batch, page_vma_mapped_walk_jump (batched policy with pvmwSkip 'jump'). */
  readonly jumpSkip: boolean;
  /** mTHP orders allowed by the per-size settings, highest first (PMD order excluded: not PTE-mapped). */
  readonly anonOrders: readonly number[];
  /** Injection switch of arch_unmap_one (the swap switches live in the swap device). */
  archUnmapOneFail: number | boolean;
  readonly stats: EngineStats;
  readonly pins = new Map<number, PinHandle>();
  nextPin = 1;
  /**
   * The access in progress (write/read/populate/GUP), so a large allocation
   * cannot starve the pages after it: the range end, the current page, and
   * the worst-case allocations the pages after the current one still need.
   * accessEnd 0 = no access in progress.
   */
  accessEnd = 0;
  accessCur = 0;
  needAfter = 0;
  /** The scenario memcg's lruvec: the five LRU lists (links live in the folios' F_SPARE0/1) and reclaim's state. */
  readonly lruvec = new Lruvec();
  /**
   * folio->mlock_count of the folios on the unevictable list, by head PFN
   * (absent = 0; folio-ops.ts). The kernel keeps it where the list links
   * would be (the unevictable list is never linked); the model links that
   * list, so the count lives here, dropped when the folio is freed.
   */
  readonly mlockCount = new Map<number, number>();
  /** Public operations run so far (limits.maxSteps). */
  steps = 0;
  /** The deferred split shrinker's nr_deferred for the scenario's memcg and node (split.ts shrinkDeferredSplit). */
  deferredSplitNrDeferred = 0;
  private lastFolio: Folio | null = null;
  /** try_to_unmap's rmap_walk_control (ttu.ts), created on first use. */
  ttuControl: TtuControl | null = null;
  /** folio_referenced's rmap_walk_control (referenced.ts), created on first use. */
  referencedControl: ReferencedControl | null = null;

  constructor(config: ResolvedConfig) {
    this.config = config;
    this.ledger = new Ledger();
    const { archUnmapOne: _a, ...profileOptions } = config.archOptions;
    this.machine = new Machine({ profile: archProfile(config.arch, profileOptions), ledger: this.ledger });
    this.memmap = new Memmap({ nrPages: config.memory / PAGE_SIZE, perPageMapcount: true, dataTokens: true, ledger: this.ledger });
    this.rmap = createRmap(this.memmap, { mapcountMode: config.mapcountMode });
    this.si =
      config.swap === 0
        ? null
        : new SwapDevice({
            memmap: this.memmap,
            nrSlots: config.swap / PAGE_SIZE,
            synchronousIo: config.swapSynchronousIo,
            releaseFolio: (f: Folio): void => this.releaseFolio(f),
          });
    this.tlb = new TlbUnmapBatch(this.machine);
    const p = config.policy;
    this.batchPtes = p !== 'per-pte';
    this.batchLazy = p !== 'per-pte';
    this.batchAnon = p === 'batched' && !config.archOptions.archUnmapOne;
    this.jumpSkip = p === 'batched' && config.pvmwSkip === 'jump';
    const orders: number[] = [];
    for (const s of MTHP_SIZES) if (config.mthp[s] === 'always' && MTHP_ORDER[s] < 9) orders.push(MTHP_ORDER[s]);
    this.anonOrders = Object.freeze(orders.sort((a, b) => b - a));
    this.archUnmapOneFail = config.inject.archUnmapOneFail;
    if (this.si !== null) {
      this.si.faults.dupEnomem = config.inject.swapDupEnomem;
      this.si.faults.allocEnomem = config.inject.swapAllocFail;
    }
    this.stats = new EngineStats(this.ledger);
    const zero = this.memmap.allocFolio(0);
    if (zero === null) throw new FoliolabError('ENOMEM', 'Engine: no page for the zero page');
    folioMarkUptodate(zero);
    this.zeroPfn = zero.head;
    this.ledger.reset();
  }

  /** Set a fault-injection switch (`Engine.setInject`). */
  setInject(name: InjectName, value: number | boolean): void {
    if (name === 'archUnmapOneFail') this.archUnmapOneFail = value;
    else if (this.si !== null) {
      if (name === 'swapDupEnomem') this.si.faults.dupEnomem = value;
      else this.si.faults.allocEnomem = value;
    }
  }

  /** Whether an arch_unmap_one() call fails now (counts the switch down). */
  archUnmapOneFires(): boolean {
    const v = this.archUnmapOneFail;
    if (v === true) return true;
    if (typeof v !== 'number' || v <= 0) return false;
    this.archUnmapOneFail = v - 1;
    return v === 1;
  }

  /** New PageTables for a fresh mm. */
  newPageTables(name: string): PageTables {
    return new PageTables(this.machine, { folios: this.memmap, name, trackTlb: this.config.trackTlb });
  }

  /** The folio containing `pfn` (page_folio of a mapped page); reuses the last handle while it stays live. */
  folioOf(pfn: number): Folio {
    const f = this.lastFolio;
    if (f !== null && pfn >= f.head && pfn < f.head + f.nr && this.memmap.folioIsLive(f)) return f;
    const g = this.memmap.folioOf(pfn);
    if (g === null) throw new FoliolabError('EINVARIANT', `folioOf: pfn ${pfn} is mapped but not in an allocated folio`, { pfn });
    this.lastFolio = g;
    return g;
  }

  /** Forget the cached folio handle (after a split changes folio boundaries). */
  forgetFolio(): void {
    this.lastFolio = null;
  }

  /** add_mm_counter(mm, member, value): one per-CPU counter update. */
  addMmCounter(p: Proc, member: number, value: number): void {
    this.ledger.charge(EV.PCPU_COUNTER);
    p.rss[member]! += value;
  }

  /** update_hiwater_rss(mm). */
  updateHiwaterRss(p: Proc): void {
    // p.rssPages, read without the getter: this runs once per unmapped PTE.
    const r = p.rss;
    const rss = r[MM_FILEPAGES]! + r[MM_ANONPAGES]! + r[MM_SHMEMPAGES]!;
    if (rss > p.hiwaterRss) p.hiwaterRss = rss;
  }

  /** A fresh data token (never 0). */
  freshToken(): number {
    const t = this.nextToken;
    this.nextToken = t >= 0xffffffff ? 1 : t + 1;
    return t;
  }

  /** Set by folio-ops.ts: the free path for a folio whose refcount reached 0. */
  releaseFolio: (f: Folio) => void = () => {
    throw new FoliolabError('EINVARIANT', 'releaseFolio: not wired');
  };
}
