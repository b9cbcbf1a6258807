import { F_OWNER, FIELDS_IN_TAILS_MIN_ORDER } from './fields.js';
import type { Memmap } from './memmap.js';
import {
  FOLIO_ORDER_MASK,
  MODEL_ALLOCATED,
  MODEL_BITS,
  MODEL_BUDDY,
  MODEL_BUDDY_ORDER_MASK,
  MODEL_BUDDY_ORDER_SHIFT,
  PG,
} from './pageflags.js';

const PG_HEAD_MASK = 1 << PG.head;
const PG_HWPOISON_MASK = 1 << PG.hwpoison;

/**
 * Memmap invariants, for tests and fuzzing; returns the violations (empty =
 * consistent). Every PFN is exactly one of: inside an allocated, naturally
 * aligned folio; inside a free buddy block listed on its order's stack; an
 * offline hwpoisoned page. Model bits appear only on folio and block heads,
 * tails carry no PG_head, page[1] holds the order, each small folio owns one
 * spill row, and the allocator's counts match the walk.
 */
export function checkMemmap(mm: Memmap): string[] {
  const out: string[] = [];
  const flags = mm.flags;
  let free = 0;
  let offline = 0;
  let folios = 0;
  let small = 0;
  let p = 0;
  while (p < mm.nrPages && out.length < 20) {
    const w = flags[p]!;
    if ((w & MODEL_ALLOCATED) !== 0) {
      const order = mm.orderAt(p);
      const nr = 1 << order;
      folios++;
      if (p % nr !== 0) out.push(`folio ${p} of order ${order} is misaligned`);
      if (order > 0 && (flags[p + 1]! & FOLIO_ORDER_MASK) !== order) out.push(`folio ${p}: page[1] order bits wrong`);
      if (order < FIELDS_IN_TAILS_MIN_ORDER) {
        small++;
        const row = mm.spillRows.get(p);
        if (row === undefined) out.push(`small folio ${p} has no spill row`);
        else if (mm.spill.chunkOf(row)[mm.spill.baseOf(row) + F_OWNER] !== p) out.push(`spill row of ${p} owned by another`);
      }
      for (let t = p + 1; t < p + nr; t++) {
        if ((flags[t]! & (MODEL_BITS | PG_HEAD_MASK)) !== 0) out.push(`tail ${t} of folio ${p} has head or model bits`);
      }
      p += nr;
    } else if ((w & MODEL_BUDDY) !== 0) {
      const order = (w & MODEL_BUDDY_ORDER_MASK) >>> MODEL_BUDDY_ORDER_SHIFT;
      const nr = 1 << order;
      if (p % nr !== 0) out.push(`free block ${p} of order ${order} is misaligned`);
      if ((w & ~(MODEL_BUDDY | MODEL_BUDDY_ORDER_MASK)) !== 0) out.push(`free block ${p} has flags 0x${w.toString(16)}`);
      if (!mm.buddy.stackHolds(order, p)) out.push(`free block ${p} of order ${order} is not on its free stack`);
      for (let t = p + 1; t < p + nr; t++) if (flags[t] !== 0) out.push(`free page ${t} has flags 0x${flags[t]!.toString(16)}`);
      free += nr;
      p += nr;
    } else if (w === PG_HWPOISON_MASK) {
      offline++;
      p++;
    } else {
      out.push(`pfn ${p} (flags 0x${w.toString(16)}) is neither in a folio, free, nor offline`);
      p++;
    }
  }
  if (out.length > 0) return out;
  if (free !== mm.nrFreePages) out.push(`free pages: walk ${free}, allocator ${mm.nrFreePages}`);
  if (offline !== mm.nrOfflinePages) out.push(`offline pages: walk ${offline}, memmap ${mm.nrOfflinePages}`);
  if (folios !== mm.nrFolios) out.push(`folios: walk ${folios}, memmap ${mm.nrFolios}`);
  if (small !== mm.spillRows.size || small !== mm.spill.rowsInUse) {
    out.push(`small folios: walk ${small}, spill map ${mm.spillRows.size}, rows ${mm.spill.rowsInUse}`);
  }
  return out;
}
