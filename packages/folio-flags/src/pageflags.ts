/**
 * Page-flag bit layout (include/linux/page-flags.h, ≈v6.15/16, 64-bit, MMU,
 * MEMORY_FAILURE; spec folio-rmap-swap.md §1.1). Positions drift between
 * kernel versions, so code uses the symbolic names below, never raw numbers.
 *
 * The model keeps one 32-bit flags word per page: the kernel bits all sit in
 * 0..21, the order of a large folio sits in bits 0..7 of page[1], and bits
 * 24..31 are model-only bookkeeping that the kernel keeps elsewhere.
 */

/** `enum pageflags`: kernel bit numbers (the base names, before aliasing). */
export const PG = Object.freeze({
  locked: 0,
  writeback: 1,
  referenced: 2,
  uptodate: 3,
  dirty: 4,
  lru: 5,
  head: 6,
  waiters: 7,
  active: 8,
  workingset: 9,
  owner_priv_1: 10,
  owner_2: 11,
  arch_1: 12,
  reserved: 13,
  private: 14,
  private_2: 15,
  reclaim: 16,
  swapbacked: 17,
  unevictable: 18,
  dropbehind: 19,
  mlocked: 20,
  hwpoison: 21,
} as const);

/** Number of kernel page-flag bits in the version read (NR_PAGEFLAGS). */
export const NR_PAGEFLAGS = 22;

/**
 * The alias table: one bit, several meanings (`PG_x = PG_y` in enum pageflags).
 *
 * PG_isolated is deliberately absent. In the version read it no longer is a
 * page flag (movable-ops isolation moved out of page->flags); it used to alias
 * PG_reclaim as a PF_ANY flag, and page-flags.h requires that second-page
 * flags never collide with a PF_ANY bit — PG_partially_mapped is PG_reclaim's
 * bit on page[1], so a PF_ANY PG_isolated there would share its bit.
 */
export const PG_ALIASES = Object.freeze([
  { alias: 'anon_exclusive', base: 'owner_2', why: 'anon meaning of PG_owner_2' },
  { alias: 'mappedtodisk', base: 'owner_2', why: 'filesystem meaning of PG_owner_2' },
  { alias: 'swapcache', base: 'owner_priv_1', why: 'counts only together with PG_swapbacked' },
  { alias: 'checked', base: 'owner_priv_1', why: 'filesystem use' },
  { alias: 'readahead', base: 'reclaim', why: 'file folios' },
  { alias: 'fscache', base: 'private_2', why: 'filesystem use' },
  { alias: 'has_hwpoisoned', base: 'active', why: 'second page: some subpage has PG_hwpoison' },
  { alias: 'large_rmappable', base: 'workingset', why: 'second page: anon or file-backed rmappable' },
  { alias: 'partially_mapped', base: 'reclaim', why: 'second page: found partially mapped' },
] as const);

/** Bit number of a base or aliased flag name: `pgBit('swapcache') === PG.owner_priv_1`. */
export function pgBit(name: string): number {
  if (Object.hasOwn(PG, name)) return PG[name as keyof typeof PG];
  for (const a of PG_ALIASES) if (a.alias === name) return PG[a.base];
  return -1;
}

/** `page[1]` bits 0..7 hold the folio order (PAGE_FLAGS_SECOND includes 0xff). */
export const FOLIO_ORDER_MASK = 0xff;

// ---------------------------------------------------------------------------
// Model-only bits 24..31. The kernel keeps this state outside page->flags
// (page_type for buddy pages, page->private for the buddy order, the
// allocator's own knowledge for "allocated"); the model keeps it here so the
// memmap stays two typed arrays. Never set on a page the kernel code could see
// as a tail of an allocated folio, and never touched by flag operations.
// ---------------------------------------------------------------------------

/** Model-only: this PFN is the head of an allocated folio (any order, 0 included). */
export const MODEL_ALLOCATED = 1 << 31;
/** Model-only: this PFN is the head of a free buddy block (the kernel's PageBuddy). */
export const MODEL_BUDDY = 1 << 30;
/** Model-only: scratch bit used while compacting a free stack; clear at rest. */
export const MODEL_SEEN = 1 << 29;
/** Model-only: shift and mask of the free-block order (the kernel's buddy_order in page->private). */
export const MODEL_BUDDY_ORDER_SHIFT = 24;
export const MODEL_BUDDY_ORDER_MASK = 0xf << MODEL_BUDDY_ORDER_SHIFT;
/** All model-only bits. */
export const MODEL_BITS = 0xff << 24;

/** Where a flag lives in a folio (PF_HEAD/PF_NO_TAIL, PF_ANY, FOLIO_SECOND_PAGE). */
export type FlagPlacement = 'head' | 'any' | 'second';

/** A flag descriptor: what the generic flag operations take. */
export interface FlagDesc {
  readonly name: FlagName;
  /** The kernel enum name, e.g. `PG_partially_mapped`. */
  readonly kernelName: string;
  readonly bit: number;
  readonly mask: number;
  readonly placement: FlagPlacement;
}

/** Names of the flags the generic API operates on. */
export type FlagName =
  | 'locked'
  | 'writeback'
  | 'referenced'
  | 'uptodate'
  | 'dirty'
  | 'lru'
  | 'active'
  | 'workingset'
  | 'swapcache'
  | 'reclaim'
  | 'swapbacked'
  | 'unevictable'
  | 'dropbehind'
  | 'mlocked'
  | 'anon_exclusive'
  | 'private'
  | 'hwpoison'
  | 'has_hwpoisoned'
  | 'large_rmappable'
  | 'partially_mapped';

/**
 * @internal Brand of the descriptors in FLAG (a non-enumerable property, so
 * equality and JSON see only the five fields): the flag operations accept a
 * descriptor by testing it, one property load instead of a set lookup.
 */
export const FLAG_DESC_BRAND: unique symbol = Symbol('foliolab.FlagDesc');

function desc(name: FlagName, bit: number, placement: FlagPlacement): FlagDesc {
  const d = { name, kernelName: `PG_${name}`, bit, mask: (1 << bit) | 0, placement };
  Object.defineProperty(d, FLAG_DESC_BRAND, { value: true, enumerable: false });
  return Object.freeze(d);
}

/**
 * Flag descriptors with their placement (spec §1.1). Head flags are folio-wide
 * (a subpage argument is redirected to the head); PF_ANY flags are per page;
 * second-page flags live in page[1] and exist only for large folios.
 * PG_head and PG_waiters are not here: the allocator and lock code own them.
 */
export const FLAG: { readonly [K in FlagName]: FlagDesc } = Object.freeze({
  locked: desc('locked', PG.locked, 'head'),
  writeback: desc('writeback', PG.writeback, 'head'),
  referenced: desc('referenced', PG.referenced, 'head'),
  uptodate: desc('uptodate', PG.uptodate, 'head'),
  dirty: desc('dirty', PG.dirty, 'head'),
  lru: desc('lru', PG.lru, 'head'),
  active: desc('active', PG.active, 'head'),
  workingset: desc('workingset', PG.workingset, 'head'),
  swapcache: desc('swapcache', PG.owner_priv_1, 'head'),
  reclaim: desc('reclaim', PG.reclaim, 'head'),
  swapbacked: desc('swapbacked', PG.swapbacked, 'head'),
  unevictable: desc('unevictable', PG.unevictable, 'head'),
  dropbehind: desc('dropbehind', PG.dropbehind, 'head'),
  mlocked: desc('mlocked', PG.mlocked, 'head'),
  anon_exclusive: desc('anon_exclusive', PG.owner_2, 'any'),
  private: desc('private', PG.private, 'any'),
  hwpoison: desc('hwpoison', PG.hwpoison, 'any'),
  has_hwpoisoned: desc('has_hwpoisoned', PG.active, 'second'),
  large_rmappable: desc('large_rmappable', PG.workingset, 'second'),
  partially_mapped: desc('partially_mapped', PG.reclaim, 'second'),
});

/** All flag descriptors, in bit order within each placement. */
export const FLAGS: readonly FlagDesc[] = Object.freeze(Object.values(FLAG));

/** Bits of all PF_ANY flags (the header rule: second-page flags must avoid them). */
export const PF_ANY_MASK = FLAGS.filter((f) => f.placement === 'any').reduce((m, f) => m | f.mask, 0);
/** Bits of all second-page flags. */
export const PF_SECOND_MASK = FLAGS.filter((f) => f.placement === 'second').reduce((m, f) => m | f.mask, 0);

/** Look a flag up by name; undefined for names that are not in FLAG. */
export function flagByName(name: string): FlagDesc | undefined {
  return Object.hasOwn(FLAG, name) ? FLAG[name as FlagName] : undefined;
}

const HEAD_WORD_NAMES: readonly [number, string][] = [
  ...FLAGS.filter((f) => f.placement !== 'second').map((f): [number, string] => [f.bit, f.name]),
  [PG.head, 'head'],
  [PG.waiters, 'waiters'],
];

/**
 * Names of the flags set in `word`, read as the flags word of subpage
 * `pageIndex` of a folio: page 0 shows head and PF_ANY flags, page 1 shows
 * PF_ANY and second-page flags plus `order=N` (when `large`), other pages
 * show PF_ANY flags. Unnamed set bits appear as `bitN`; model bits are not shown.
 */
export function describeFlagWord(word: number, pageIndex: number, large = true): string[] {
  const out: string[] = [];
  let named = MODEL_BITS;
  const add = (bit: number, name: string): void => {
    if ((word & (1 << bit)) !== 0) out.push(name);
    named |= 1 << bit;
  };
  if (pageIndex === 0) {
    for (const [bit, name] of HEAD_WORD_NAMES) add(bit, name);
  } else {
    for (const f of FLAGS) if (f.placement === 'any') add(f.bit, f.name);
    if (pageIndex === 1 && large) {
      for (const f of FLAGS) if (f.placement === 'second') add(f.bit, f.name);
      out.push(`order=${word & FOLIO_ORDER_MASK}`);
      named |= FOLIO_ORDER_MASK;
    }
  }
  for (let bit = 0; bit < 24; bit++) if ((word & ~named & (1 << bit)) !== 0) out.push(`bit${bit}`);
  return out;
}
