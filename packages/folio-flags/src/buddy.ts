import { MODEL_BUDDY, MODEL_BUDDY_ORDER_MASK, MODEL_BUDDY_ORDER_SHIFT, MODEL_SEEN } from './pageflags.js';

/** Largest folio order the allocator hands out (a 2 MiB PMD-sized folio with 4 KiB pages). */
export const MAX_FOLIO_ORDER = 9;
/** Pages in a max-order block; a memmap is a whole number of these. */
export const MAX_ORDER_NR_PAGES = 1 << MAX_FOLIO_ORDER;

const NR_ORDERS = MAX_FOLIO_ORDER + 1;
const MARK_MASK = MODEL_BUDDY | MODEL_BUDDY_ORDER_MASK;

/**
 * A binary buddy allocator over the memmap's flags words (models the zone
 * free lists of mm/page_alloc.c, without migratetypes, PCP lists or zones).
 *
 * A free block is marked on its head page only: MODEL_BUDDY plus its order in
 * the model bits (the kernel's PageBuddy + buddy_order()). Each order has a
 * free stack (growable Int32Array). Removal when a buddy is merged away is
 * lazy: the mark is cleared and the stale stack entry is skipped when popped
 * (validated against the mark). Stacks are compacted when stale entries
 * outnumber live ones, so they stay O(free blocks).
 *
 * Deterministic: on a fresh memmap the lowest PFN comes first, splits keep the
 * lower half and push the upper half. Internal to the package.
 */
export class BuddyAllocator {
  private readonly stacks: Int32Array[] = [];
  private readonly lens = new Int32Array(NR_ORDERS);
  /** Live (marked) free blocks per order. */
  readonly nrFree = new Int32Array(NR_ORDERS);

  constructor(private readonly flags: Uint32Array) {
    for (let o = 0; o < NR_ORDERS; o++) this.stacks.push(new Int32Array(o === MAX_FOLIO_ORDER ? 16 : 8));
    // Push in descending PFN order so that PFN 0 is on top.
    for (let pfn = flags.length - MAX_ORDER_NR_PAGES; pfn >= 0; pfn -= MAX_ORDER_NR_PAGES) {
      this.markFree(pfn, MAX_FOLIO_ORDER);
    }
  }

  /** Take a naturally aligned block of 2^order pages; −1 when none is free. */
  alloc(order: number): number {
    let o = order;
    let pfn = -1;
    for (; o < NR_ORDERS; o++) {
      pfn = this.pop(o);
      if (pfn >= 0) break;
    }
    if (pfn < 0) return -1;
    // expand(): keep the lower half, free the upper half at each level.
    while (o > order) {
      o--;
      this.markFree(pfn + (1 << o), o);
    }
    return pfn;
  }

  /** Return a block; merges with free buddies (__free_one_page). Flags of the block must be clear. */
  free(pfn: number, order: number): void {
    const flags = this.flags;
    let o = order;
    let p = pfn;
    while (o < MAX_FOLIO_ORDER) {
      const buddy = p ^ (1 << o);
      if ((flags[buddy]! & MARK_MASK) !== (MODEL_BUDDY | (o << MODEL_BUDDY_ORDER_SHIFT))) break;
      flags[buddy] = flags[buddy]! & ~MARK_MASK; // lazy removal from its stack
      this.nrFree[o]!--;
      p &= ~(1 << o);
      o++;
    }
    this.markFree(p, o);
  }

  /** Whether `pfn` heads a free block of `order`. */
  isFreeHead(pfn: number, order: number): boolean {
    return (this.flags[pfn]! & MARK_MASK) === (MODEL_BUDDY | (order << MODEL_BUDDY_ORDER_SHIFT));
  }

  /** Free pages in all free blocks. */
  get nrFreePages(): number {
    let n = 0;
    for (let o = 0; o < NR_ORDERS; o++) n += this.nrFree[o]! << o;
    return n;
  }

  /** Bytes of typed arrays held by the free stacks. */
  get bytes(): number {
    let b = this.lens.byteLength + this.nrFree.byteLength;
    for (const s of this.stacks) b += s.byteLength;
    return b;
  }

  /** Every live free block of `order` appears in its stack (for the invariant checker). */
  stackHolds(order: number, pfn: number): boolean {
    const s = this.stacks[order]!;
    for (let i = this.lens[order]! - 1; i >= 0; i--) if (s[i] === pfn) return true;
    return false;
  }

  private markFree(pfn: number, order: number): void {
    this.flags[pfn] = (this.flags[pfn]! & ~MARK_MASK) | MODEL_BUDDY | (order << MODEL_BUDDY_ORDER_SHIFT);
    this.nrFree[order]!++;
    this.push(order, pfn);
  }

  private push(order: number, pfn: number): void {
    let s = this.stacks[order]!;
    const len = this.lens[order]!;
    if (len === s.length) {
      if (len > 2 * this.nrFree[order]! + 16) {
        this.compact(order);
        this.push(order, pfn);
        return;
      }
      const bigger = new Int32Array(s.length * 2);
      bigger.set(s);
      this.stacks[order] = s = bigger;
    }
    s[len] = pfn;
    this.lens[order] = len + 1;
  }

  /** Pop the top live entry of `order`, clearing its mark; −1 when none. */
  private pop(order: number): number {
    const s = this.stacks[order]!;
    let len = this.lens[order]!;
    while (len > 0) {
      const pfn = s[--len]!;
      if (this.isFreeHead(pfn, order)) {
        this.lens[order] = len;
        this.flags[pfn] = this.flags[pfn]! & ~MARK_MASK;
        this.nrFree[order]!--;
        return pfn;
      }
    }
    this.lens[order] = 0;
    return -1;
  }

  /**
   * Drop stale entries and duplicates, keeping the topmost copy of each live
   * block so that pop order is unchanged.
   */
  private compact(order: number): void {
    const s = this.stacks[order]!;
    const len = this.lens[order]!;
    const flags = this.flags;
    let w = len;
    for (let r = len - 1; r >= 0; r--) {
      const pfn = s[r]!;
      if (!this.isFreeHead(pfn, order) || (flags[pfn]! & MODEL_SEEN) !== 0) continue;
      flags[pfn] = flags[pfn]! | MODEL_SEEN;
      s[--w] = pfn; // compacts towards the top, preserving order
    }
    const kept = len - w;
    s.copyWithin(0, w, len);
    for (let i = 0; i < kept; i++) flags[s[i]!] = flags[s[i]!]! & ~MODEL_SEEN;
    this.lens[order] = kept;
  }
}
