import { FoliolabError, Ledger } from '@foliolab/ledger';
import { BuddyAllocator, MAX_FOLIO_ORDER, MAX_ORDER_NR_PAGES } from './buddy.js';
import {
  F_DEFERRED_NEXT,
  F_DEFERRED_PREV,
  F_ENTIRE_MAPCOUNT,
  F_LARGE_MAPCOUNT,
  F_MAPPING,
  F_NR_PAGES_MAPPED,
  F_OWNER,
  F_PINCOUNT,
  FIELDS_IN_TAILS_MIN_ORDER,
  FOLIO_FIELD_INIT,
  NR_FOLIO_FIELD_SLOTS,
  PAGE_MAPPING_ANON,
} from './fields.js';
import { Folio } from './folio.js';
import { FOLIO_ORDER_MASK, MODEL_ALLOCATED, PG } from './pageflags.js';
import { SpillPool } from './spill.js';

/** Options of a Memmap. */
export interface MemmapOptions {
  /** Pages of simulated memory: a positive multiple of 512 (one max-order block). */
  readonly nrPages: number;
  /**
   * Allocate the per-page `_mapcount` array (struct page._mapcount; −1 = unmapped). An Int16Array: at
   * most PAGE_MAPCOUNT_MAX (32767) stored, i.e. 32768 PTE mappings of one page (see PAGE_MAPCOUNT_MAX).
   */
  readonly perPageMapcount?: boolean;
  /** Allocate the per-page data-token array. */
  readonly dataTokens?: boolean;
  /** Ledger the flag operations charge; a fresh one by default. */
  readonly ledger?: Ledger;
}

/** What the page-table layer needs from the memmap (folio_pte_batch & co). */
export interface FolioLookup {
  /** Head PFN of the folio containing `pfn` (page_folio()). */
  folioHead(pfn: number): number;
  /** folio_nr_pages() of the folio containing `pfn`. */
  folioNrPages(pfn: number): number;
}

/** Typed-array bytes held by a memmap, by array. */
export interface MemmapBytes {
  readonly flags: number;
  readonly aux: number;
  readonly spill: number;
  readonly freeLists: number;
  readonly mapcount: number;
  readonly token: number;
  /** Everything above. */
  readonly total: number;
  /** (flags + aux + spill) per page: the memmap proper, the ≤ 8 B/page budget. */
  readonly memmapPerPage: number;
  /** total per page. */
  readonly totalPerPage: number;
}

/** Largest memmap accepted: 2^26 pages (256 GiB simulated, 512 MiB of flags + aux). */
export const MEMMAP_MAX_PAGES = 1 << 26;

/**
 * Largest value the per-page `_mapcount` array stores (an Int16Array: 2 B/page instead of 4). The
 * kernel's `_mapcount` is an atomic_t; the model's per-page count only counts the PTE mappings of one
 * page, which is bounded by the number of processes mapping it, so 32768 mappings of one page is a
 * model limit, not a kernel one. Every increment checks it first and throws
 * FoliolabError('EOVERFLOW') naming the PFN, changing nothing; within the limit only the cost changes.
 */
export const PAGE_MAPCOUNT_MAX = 0x7fff;

const PG_HEAD_MASK = 1 << PG.head;
/** FOLIO_FIELD_INIT as a typed array, read by allocFolio's reset loop. */
const FIELD_INIT = Int32Array.from(FOLIO_FIELD_INIT);
const PG_HWPOISON_MASK = 1 << PG.hwpoison;
/** PAGE_FLAGS_CHECK_AT_FREE (mm/page_alloc.c), the bits of it this model has. mlocked is cleared, not bad. */
export const PAGE_FLAGS_CHECK_AT_FREE =
  (1 << PG.lru) |
  (1 << PG.locked) |
  (1 << PG.private) |
  (1 << PG.private_2) |
  (1 << PG.writeback) |
  (1 << PG.reserved) |
  (1 << PG.active) |
  (1 << PG.unevictable);

/**
 * Physical memory as struct-of-arrays over PFNs (the kernel's vmemmap of
 * struct page, spec §1.1). No object per page:
 *
 * - `flags[pfn]`: the page's flags word (kernel bits 0..21, order in page[1]
 *   bits 0..7, model-only bits 24..31; see pageflags.ts).
 * - `aux[pfn]`: `_refcount` at a folio head; head-only folio fields overlaid
 *   on the tail slots of folios of order ≥ 4 (fields.ts).
 * - `mapcount[pfn]` (optional): struct page `_mapcount`, −1 = unmapped; an
 *   Int16Array, so at most PAGE_MAPCOUNT_MAX (a model limit, see there).
 * - `token[pfn]` (optional): data token of the page's contents.
 *
 * Folios come from a buddy allocator of orders 0..9.
 */
export class Memmap implements FolioLookup {
  readonly nrPages: number;
  readonly flags: Uint32Array;
  readonly aux: Int32Array;
  readonly mapcount: Int16Array | null;
  /**
   * @internal The `mapcount` buffer seen as pairs of pages (null without `mapcount`): two unmapped
   * pages (−1, −1) read as −1, so the free check tests an aligned pair per load.
   */
  readonly mapcountPairs: Int32Array | null;
  readonly token: Uint32Array | null;
  readonly ledger: Ledger;
  /** @internal The buddy allocator. */
  readonly buddy: BuddyAllocator;
  /** @internal Field rows of folios of order 0..3. */
  readonly spill = new SpillPool();
  /** @internal head PFN → spill row, one entry per small folio. */
  readonly spillRows = new Map<number, number>();
  private offline = 0;
  private allocated = 0;

  constructor(opts: MemmapOptions) {
    const n = opts.nrPages;
    if (!Number.isInteger(n) || n <= 0 || n % MAX_ORDER_NR_PAGES !== 0 || n > MEMMAP_MAX_PAGES) {
      throw new FoliolabError(
        'EINVAL',
        `Memmap: nrPages ${n} must be a positive multiple of ${MAX_ORDER_NR_PAGES} and at most ${MEMMAP_MAX_PAGES}`,
        { nrPages: n },
      );
    }
    this.nrPages = n;
    this.flags = new Uint32Array(n);
    this.aux = new Int32Array(n);
    this.mapcount = opts.perPageMapcount === true ? new Int16Array(n).fill(-1) : null;
    this.mapcountPairs = this.mapcount === null ? null : new Int32Array(this.mapcount.buffer);
    this.token = opts.dataTokens === true ? new Uint32Array(n) : null;
    this.ledger = opts.ledger ?? new Ledger();
    this.buddy = new BuddyAllocator(this.flags);
  }

  /**
   * Allocate a folio of 2^order pages (models folio_alloc() → prep_new_page()
   * + prep_compound_page(), v6.15): refcount 1, PG_head and the order in
   * page[1] for order ≥ 1, fields reset as prep_compound_head() does, per-page
   * `_mapcount` −1. Returns null when no block is free (an expected outcome).
   * Tokens are left alone: the data layer owns them.
   */
  allocFolio(order: number): Folio | null {
    if (!Number.isInteger(order) || order < 0 || order > MAX_FOLIO_ORDER) {
      throw new FoliolabError('ERANGE', `allocFolio: order ${order} is outside 0..${MAX_FOLIO_ORDER}`, { order });
    }
    const head = this.buddy.alloc(order);
    if (head < 0) return null;
    const flags = this.flags;
    flags[head] = order > 0 ? MODEL_ALLOCATED | PG_HEAD_MASK : MODEL_ALLOCATED;
    if (order > 0) flags[head + 1] = (flags[head + 1]! & ~FOLIO_ORDER_MASK) | order; // folio_set_order()
    this.aux[head] = 1; // set_page_refcounted()
    let fa = this.aux;
    let fb = head;
    if (order < FIELDS_IN_TAILS_MIN_ORDER) {
      const row = this.spill.alloc();
      fa = this.spill.chunkOf(row);
      fb = this.spill.baseOf(row);
      fa[fb + F_OWNER] = head;
      this.spillRows.set(head, row);
    }
    for (let i = 1; i < NR_FOLIO_FIELD_SLOTS; i++) fa[fb + i] = FIELD_INIT[i]!;
    const mc = this.mapcount;
    // A plain loop: TypedArray.prototype.fill's call overhead exceeds the stores for ≤ 16 pages.
    if (mc !== null) for (let p = head, end = head + (1 << order); p < end; p++) mc[p] = -1;
    this.allocated++;
    return new Folio(this, head, order, fa, fb);
  }

  /**
   * Free a folio whose refcount dropped to 0 (models free_pages_prepare() +
   * __free_one_page(), v6.15). Rejects, changing nothing: a stale handle, a
   * non-zero refcount or pincount, any mapping (mapcounts), a folio still on a
   * deferred-split list, PAGE_FLAGS_CHECK_AT_FREE flags on the head, a non-anon
   * mapping. Clears every page's flags (the legal non-atomic stores of the
   * freeing path) except PG_hwpoison: poisoned pages are taken offline, never
   * returned to the allocator; the healthy pages of such a folio are freed one
   * by one (as the has_hwpoisoned free path does).
   */
  freeFolio(folio: Folio): void {
    this.checkFreeable(folio);
    const { head, nr, fa, fb } = folio;
    const flags = this.flags;
    const end = head + nr;
    // One branch-free pass: each word keeps only its PG_hwpoison bit; `poison` says whether any had it.
    let poison = 0;
    for (let p = head; p < end; p++) {
      const w = flags[p]! & PG_HWPOISON_MASK;
      flags[p] = w;
      poison |= w;
    }
    let poisoned = 0;
    if (poison !== 0) for (let p = head; p < end; p++) if (flags[p] !== 0) poisoned++;
    if (folio.order < FIELDS_IN_TAILS_MIN_ORDER) {
      fa[fb + F_OWNER] = -1;
      this.spill.free(this.spillRows.get(head)!);
      this.spillRows.delete(head);
      this.aux[head] = 0;
    } else {
      const aux = this.aux;
      for (let p = head; p < head + NR_FOLIO_FIELD_SLOTS; p++) aux[p] = 0;
    }
    this.allocated--;
    if (poisoned === 0) {
      this.buddy.free(head, folio.order);
      return;
    }
    for (let p = head; p < head + nr; p++) if (flags[p] === 0) this.buddy.free(p, 0);
    this.offline += poisoned;
  }

  /** The folio containing `pfn`, or null if `pfn` is free or offline (models page_folio() on an allocated page). */
  folioOf(pfn: number): Folio | null {
    this.checkPfn('folioOf', pfn);
    const head = this.probeHead(pfn);
    return head < 0 ? null : this.handle(head);
  }

  /**
   * The folio whose head is `head` (pfn_folio() on a head, e.g. a PFN read
   * back from a deferred-list link). Throws ERANGE outside the memmap and
   * EINVAL when `head` is not the head of an allocated folio (a tail, a
   * misaligned PFN, a free or offline page), naming the containing folio.
   */
  folioAt(head: number): Folio {
    this.checkPfn('folioAt', head);
    if ((this.flags[head]! & MODEL_ALLOCATED) !== 0) return this.handle(head);
    const h = this.probeHead(head);
    const where = h < 0 ? 'is not in an allocated folio' : `is page ${head - h} of folio ${h} (order ${this.orderAt(h)})`;
    throw new FoliolabError('EINVAL', `folioAt: pfn ${head} is not a folio head: it ${where}`, { pfn: head, head: h });
  }

  /**
   * Head PFN of the folio containing `pfn` (page_folio()). A free or offline
   * page is its own order-0 "folio", as page_folio() of a non-compound page is.
   */
  folioHead(pfn: number): number {
    this.checkPfn('folioHead', pfn);
    const head = this.probeHead(pfn);
    return head < 0 ? pfn : head;
  }

  /** folio_nr_pages() of the folio containing `pfn` (1 for a free or offline page). */
  folioNrPages(pfn: number): number {
    this.checkPfn('folioNrPages', pfn);
    const head = this.probeHead(pfn);
    return head < 0 ? 1 : 1 << this.orderAt(head);
  }

  /** Whether `folio` still describes an allocated folio (not freed or reused differently). */
  folioIsLive(folio: Folio): boolean {
    const { head } = folio;
    if (folio.mm !== this || (this.flags[head]! & MODEL_ALLOCATED) === 0) return false;
    if (this.orderAt(head) !== folio.order) return false;
    return folio.order >= FIELDS_IN_TAILS_MIN_ORDER || folio.fa[folio.fb + F_OWNER] === head;
  }

  /** Pages in free buddy blocks. */
  get nrFreePages(): number {
    return this.buddy.nrFreePages;
  }

  /** Hardware-poisoned pages taken out of the allocator when their folio was freed. */
  get nrOfflinePages(): number {
    return this.offline;
  }

  /** Allocated folios. */
  get nrFolios(): number {
    return this.allocated;
  }

  /** Bytes of typed arrays this memmap holds, by array. */
  memmapBytes(): MemmapBytes {
    const flags = this.flags.byteLength;
    const aux = this.aux.byteLength;
    const spill = this.spill.bytes;
    const freeLists = this.buddy.bytes;
    const mapcount = this.mapcount?.byteLength ?? 0;
    const token = this.token?.byteLength ?? 0;
    const total = flags + aux + spill + freeLists + mapcount + token;
    return {
      flags,
      aux,
      spill,
      freeLists,
      mapcount,
      token,
      total,
      memmapPerPage: (flags + aux + spill) / this.nrPages,
      totalPerPage: total / this.nrPages,
    };
  }

  /** Simulator bytes per page of the memmap proper: (flags + aux + spill pool) / nrPages. */
  memmapBytesPerPage(): number {
    return this.memmapBytes().memmapPerPage;
  }

  /** @internal folio_order() of an allocated head. */
  orderAt(head: number): number {
    return (this.flags[head]! & PG_HEAD_MASK) !== 0 ? this.flags[head + 1]! & FOLIO_ORDER_MASK : 0;
  }

  /**
   * @internal Throw unless `folio` is a live handle of this memmap. Small enough to inline at every
   * flag operation; the message is only built on the throw path.
   */
  assertLive(fn: string, folio: Folio): void {
    if (!(folio instanceof Folio) || folio.mm !== this) notLive(fn, folio);
    const { head, order } = folio;
    const flags = this.flags;
    const w = flags[head]!;
    if (
      (w & MODEL_ALLOCATED) === 0 ||
      ((w & PG_HEAD_MASK) !== 0 ? flags[head + 1]! & FOLIO_ORDER_MASK : 0) !== order ||
      (order < FIELDS_IN_TAILS_MIN_ORDER && folio.fa[folio.fb + F_OWNER] !== head)
    ) {
      notLive(fn, folio);
    }
  }

  /** @internal Head of the allocated folio containing `pfn`, or −1. Tails store no head pointer: probe aligned candidates. */
  probeHead(pfn: number): number {
    const flags = this.flags;
    for (let o = 0; o <= MAX_FOLIO_ORDER; o++) {
      const c = pfn & ~((1 << o) - 1);
      if ((flags[c]! & MODEL_ALLOCATED) !== 0 && pfn < c + (1 << this.orderAt(c))) return c;
    }
    return -1;
  }

  /** @internal A handle for the allocated folio at `head`. */
  handle(head: number): Folio {
    const order = this.orderAt(head);
    if (order >= FIELDS_IN_TAILS_MIN_ORDER) return new Folio(this, head, order, this.aux, head);
    const row = this.spillRows.get(head)!;
    return new Folio(this, head, order, this.spill.chunkOf(row), this.spill.baseOf(row));
  }

  /** @internal Throw unless `pfn` is an integer PFN of this memmap. */
  checkPfn(fn: string, pfn: number): void {
    // (pfn | 0) === pfn: an integer in int32 range (nrPages ≤ 2^26), without Number.isInteger's call.
    if ((pfn | 0) !== pfn || pfn < 0 || pfn >= this.nrPages) {
      throw new FoliolabError('ERANGE', `${fn}: pfn ${pfn} is outside 0..${this.nrPages - 1}`, {
        pfn,
        nrPages: this.nrPages,
      });
    }
  }

  /**
   * Whether every page of the folio at `head` has `_mapcount` −1. A large folio's head is even and its
   * size is even, so its pages are whole aligned pairs: half the loads.
   */
  private pagesUnmapped(head: number, nr: number): boolean {
    if (nr === 1) return this.mapcount![head] === -1;
    const pairs = this.mapcountPairs!;
    for (let i = head >> 1, end = (head + nr) >> 1; i < end; i++) if (pairs[i] !== -1) return false;
    return true;
  }

  private checkFreeable(folio: Folio): void {
    this.assertLive('freeFolio', folio);
    const { head, nr, fa, fb } = folio;
    // Every reason is tested with plain reads first; cannotFree builds the error only when one holds.
    const ref = this.aux[head]!;
    if (ref !== 0) cannotFree(folio, 'EBUSY', `has refcount ${ref}, not 0`, { refcount: ref });
    const large = fa[fb + F_LARGE_MAPCOUNT]!;
    const entire = fa[fb + F_ENTIRE_MAPCOUNT]!;
    const mapped = fa[fb + F_NR_PAGES_MAPPED]!;
    if (large !== -1 || entire !== -1 || mapped !== 0) {
      cannotFree(folio, 'EBUSY', 'is still mapped', { largeMapcount: large, entireMapcount: entire, nrPagesMapped: mapped });
    }
    const mc = this.mapcount;
    if (mc !== null && !this.pagesUnmapped(head, nr)) {
      for (let p = head; p < head + nr; p++) {
        if (mc[p] !== -1) cannotFree(folio, 'EBUSY', `has page ${p} still mapped (_mapcount ${mc[p]})`, { pfn: p, mapcount: mc[p] });
      }
    }
    const pins = fa[fb + F_PINCOUNT]!;
    if (pins !== 0) cannotFree(folio, 'EBUSY', `has pincount ${pins}`, { pincount: pins });
    if (fa[fb + F_DEFERRED_PREV] !== -1 || fa[fb + F_DEFERRED_NEXT] !== -1) {
      cannotFree(folio, 'EBUSY', 'is still on a deferred split list', {});
    }
    const badFlags = this.flags[head]! & PAGE_FLAGS_CHECK_AT_FREE;
    if (badFlags !== 0) cannotFree(folio, 'EINVAL', `has PAGE_FLAGS_CHECK_AT_FREE flags 0x${badFlags.toString(16)}`, { flags: badFlags });
    const mapping = fa[fb + F_MAPPING]!;
    if (mapping !== 0 && (mapping & PAGE_MAPPING_ANON) === 0) cannotFree(folio, 'EINVAL', `still has file mapping ${mapping}`, { mapping });
  }
}

function notLive(fn: string, folio: Folio): never {
  throw new FoliolabError('EINVAL', `${fn}: folio ${String(folio?.head)} is not an allocated folio of this memmap`, {
    head: folio?.head,
  });
}

function cannotFree(folio: Folio, code: string, reason: string, details: Record<string, unknown>): never {
  const { head } = folio;
  throw new FoliolabError(code, `freeFolio: folio ${head} (order ${folio.order}) ${reason}`, { head, ...details });
}
