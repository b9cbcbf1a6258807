import { F_PINCOUNT, MODEL_ALLOCATED, type Folio } from '@foliolab/folio-flags';
import type { PteTable } from '@foliolab/pagetable-arm64-contpte';
import type { Kernel } from './kernel.js';

/*
 * Read-only enumeration helpers shared by the dump and the invariant
 * checker: every allocated folio in PFN order, every PTE table of an mm in
 * address order. Not hot paths; they allocate freely.
 */

/** Every allocated folio except the zero page, in PFN order. */
export function allFolios(k: Kernel): Folio[] {
  const mm = k.memmap;
  const out: Folio[] = [];
  const flags = mm.flags;
  for (let pfn = 0; pfn < mm.nrPages; ) {
    if ((flags[pfn]! & MODEL_ALLOCATED) !== 0) {
      const f = mm.folioAt(pfn);
      if (pfn !== k.zeroPfn) out.push(f);
      pfn += f.nr;
    } else {
      pfn++;
    }
  }
  return out;
}

/** The PTE tables of an mm, by base address. */
export function tablesByVa(k: Kernel, pid: number): PteTable[] {
  const p = k.procs.get(pid)!;
  return [...p.pt.pteTables].sort((a, b) => a.baseVa - b.baseVa);
}

/** GUP references of each folio head: FOLL_GET refs and FOLL_PIN pins, from the pin handles. */
export function gupRefs(k: Kernel): { gets: Map<number, number>; pins: Map<number, number> } {
  const gets = new Map<number, number>();
  const pins = new Map<number, number>();
  for (const h of k.pins.values()) {
    for (const pfn of h.pfns) {
      if (pfn < 0) continue;
      const head = k.memmap.folioHead(pfn);
      const m = h.kind === 'get' ? gets : pins;
      m.set(head, (m.get(head) ?? 0) + 1);
    }
  }
  return { gets, pins };
}

/** The pincount a folio reports (large: _pincount; small: ⌊refcount / 1024⌋). */
export function pincountOf(k: Kernel, f: Folio): number {
  return f.order > 0 ? f.fa[f.fb + F_PINCOUNT]! : Math.floor(k.memmap.aux[f.head]! / 1024);
}
