import { FoliolabError } from './errors.js';
import { EVENT_NAMES, type EventName } from './events.js';

/*
 * First per-arch price tables: nanoseconds per ledger event, one number per
 * event, each with its source or the reasoning behind it. Modeled time is
 * Σ count × price (DESIGN.md §Cost ledger and cost model).
 *
 * Status: sourced estimates, NOT calibrated. Careful calibration against the
 * published A1 results (anchors.md) is later work; when it happens it must
 * change as few prices as possible and then predict the other anchors
 * unchanged. Until then every number here is either a public measurement, an
 * arithmetic consequence of one, or a textbook latency, and says which.
 *
 * Conventions that keep the events from being counted twice:
 * - Marker events (CONTPTE_FOLD/UNFOLD, TLB_PENDING_ADD, TLB_FLUSH_RANGE,
 *   TLB_BATCH_FLUSH, SWAP_CLUSTER_OP, RMAP_CALL, PVMW_CALL …) are charged in
 *   addition to the PTE, TLB, lock and atomic events their kernel function
 *   performs, so their price is only the function's own software overhead.
 * - LOCK is the acquire RMW of an uncontended spinlock / rwsem read; UNLOCK is
 *   the release store. The reclaim benchmark (A1) is single-threaded, so every
 *   atomic is uncontended and its line is exclusive in this CPU's cache.
 * - Cache misses are not events, except FOLIO_LOOKUP (a cold struct page).
 *   The first touch of each PTE-table line is paid equally by every policy
 *   and is left in the unevented per-folio cost below.
 *
 * Clock bases used to turn cycles into ns: arm64 = an Apple M3-class P-core at
 * ~4 GHz (0.25 ns/cycle; the A1 arm64 numbers come from a Linux VM on an
 * Apple M3), with Neoverse-class (~3 GHz) noted where it differs materially;
 * x86 = a bare-metal server core at ~3.3 GHz (0.3 ns/cycle).
 */

/** Price-table families: the two arm64 profiles share one table. */
export type PriceArch = 'arm64' | 'x86';

/** Nanoseconds for every event (0 = free, or never charged on this arch). */
export type FullPriceTable = Readonly<Record<EventName, number>>;

/** arm64: Apple M3-class core in a Linux VM (A1's arm64 machine) / Neoverse-class server core. */
export const PRICES_ARM64: FullPriceTable = Object.freeze({
  // ── page-table entries and tables ──────────────────────────────────────
  // L1D hit: 3-cycle load-to-use on Apple's big cores (AnandTech's M1/Firestorm
  // analysis, 2020), 4 cycles on Neoverse N1/V1 (Arm software optimization
  // guides). The reclaim loop re-reads PTEs of the table it just locked, so the
  // reads batching removes (anchors "ptep_get … does 16 pte accesses") hit L1.
  PTE_READ: 1,
  // Plain 64-bit store to an L1-resident table line: retires into the store
  // buffer; ~1 ns of issue cost (the barrier that orders it is DSB_ISHST).
  PTE_WRITE: 1,
  // __ptep_get_and_clear is an LSE SWP on a line this CPU owns: an uncontended
  // atomic, ~15–20 cycles (same basis as ATOMIC_RMW).
  PTE_XCHG: 5,
  // One LSE CAS attempt in __ptep_set_wrprotect / test_and_clear_young loops:
  // same cost class as the SWP.
  PTE_CMPXCHG: 5,
  // One PMD load (pvmw's lockless read and its post-lock recheck): L1/L2 hit,
  // the PMD table line is shared by 512 PTEs' worth of walk.
  PMD_READ: 2,
  // One PMD store (pmd_populate / pmd_clear); ordering barriers are charged separately.
  PMD_WRITE: 2,
  // pte_alloc_one: a buddy/pcp page allocation (~100 ns) plus clear_page of
  // 4 KiB (~150 ns at ~30 GB/s cache-resident) plus ptlock/ptdesc init and
  // accounting. Reasoned estimate, not measured; never on the pageout path.
  PGTABLE_ALLOC: 300,
  // contpte_convert() bookkeeping only (loop setup, the range checks); its
  // 16 XCHG/16 WRITE/TLBI/DSB are charged as their own events.
  CONTPTE_FOLD: 5,
  CONTPTE_UNFOLD: 5,

  // ── arm64 TLB maintenance and barriers ─────────────────────────────────
  // Broadcast TLBI VALE1IS in a VM. Two public figures bound it:
  // (1) Dev Jain, "arm64/mm: Elide TLB flush in certain pte protection
  //     transitions": eliding ONE single-page flush (DSB ISHST + TLBI + DSB
  //     ISH) cut an mprotect none→rw from 3.2 µs to 2.85 µs, so the trio costs
  //     ≈ 350 ns;
  // (2) contpte v5/v6 on an Apple M2 VM (anchors A8): contpte-basic FORK
  //     order-9 +469.4% and MUNMAP order-9 +233.6%, i.e. one unfold per 64K
  //     block (16 TLBI + 2 DSB + 32 PTE ops) adds 2.3–4.7× a block's baseline
  //     per-PTE work (60–100 ns per PTE) → 150–270 ns per TLBI.
  // 200 ns is the middle of (2) and leaves ≈ 150 ns of (1) for the two DSBs.
  // On a big bare-metal Neoverse mesh (Ampere Altra, 80 cores) the same A8
  // arithmetic on +1948.7% / +1104.8% gives ~1 µs per TLBI: use ≈ 5× there.
  TLBI_VA: 200,
  // One TLBI RVALE1IS covering up to 32<<(5s+1) pages: no public per-op
  // figure; priced at 1.25× a single-page TLBI (same DVM round trip, more
  // entries to match in each remote TLB). Estimate.
  TLBI_RANGE: 250,
  // TLBI ASIDE1IS: one broadcast op like TLBI_VA plus invalidating every
  // entry of the ASID; the refill cost it causes later is not modeled. Estimate.
  TLBI_ASID: 300,
  // DSB ISHST: drain this CPU's store buffer so the table walkers see the PTE
  // stores; no remote wait. ~100 cycles. From (1) above: 350 − 200 (TLBI) =
  // 150 ns for DSB ISHST + DSB ISH together, split 30 / 120.
  DSB_ISHST: 30,
  // DSB ISH after broadcast TLBIs: waits for every PE of the inner-shareable
  // domain to acknowledge them (the "sync" of the DVM protocol). 120 ns, see
  // DSB_ISHST. A DSB ISH with nothing outstanding is cheaper; the model does
  // not distinguish (every DSB_ISH the ptep layer charges follows TLBIs).
  DSB_ISH: 120,
  // ISB: pipeline flush, ~30–40 cycles.
  ISB: 10,

  // ── x86 contrast: never charged on the arm64 profiles ──────────────────
  X86_INVLPG: 0,
  X86_FLUSH_ALL: 0,
  X86_IPI: 0,

  // ── reclaim TLB batching ───────────────────────────────────────────────
  // set_tlb_ubc_flush_pending(): flag stores and the pte_accessible test; the
  // TLBI + DSB ISHST of arch_tlbbatch_add_pending and the mm->tlb_flush_batched
  // increment (ATOMIC_TLBBATCH) are their own events.
  TLB_PENDING_ADD: 5,
  // try_to_unmap_flush(): call and flag checks; its DSB ISH is charged separately.
  TLB_BATCH_FLUSH: 5,
  // flush_tlb_range() call overhead; its TLBIs and DSBs are charged separately.
  TLB_FLUSH_RANGE: 5,

  // ── locks ─────────────────────────────────────────────────────────────
  // Uncontended spin_lock / down_read: one acquire atomic (LSE CASA / LDADDA)
  // on an owned line, like ATOMIC_RMW.
  LOCK: 5,
  // spin_unlock / up_read: a store-release (STLR) or release atomic, ~2 ns.
  UNLOCK: 2,

  // ── atomics and barriers on struct page / folio words ──────────────────
  // Uncontended LSE atomic (LDSET/LDCLR/LDADD) on a line this CPU owns:
  // ~15–20 cycles. Single-threaded reclaim: no contention (A1 workload).
  ATOMIC_RMW: 5,
  // Non-atomic __set/__clear: a load and a store to an owned line.
  PLAIN_RMW: 2,
  // folio_test_X(): one L1 load.
  FLAG_LOAD: 1,
  // folio_ref_* on the head page: same uncontended LSE atomic.
  ATOMIC_REF: 5,
  // _mapcount / _large_mapcount / _nr_pages_mapped / _entire_mapcount RMW: same.
  ATOMIC_MAPCOUNT: 5,
  // atomic_read (e.g. _pincount): a plain load.
  ATOMIC_READ: 1,
  // atomic_inc(&mm->tlb_flush_batched): same uncontended atomic.
  ATOMIC_TLBBATCH: 5,
  // smp_mb() = DMB ISH: waits for this CPU's outstanding accesses, ~40 cycles.
  MB_FULL: 10,
  // smp_rmb() = DMB ISHLD: orders loads only, cheaper than a full DMB.
  MB_RMB: 5,
  // smp_mb__after_atomic(): arm64 does not override the asm-generic default,
  // which is smp_mb() = DMB ISH (arm64's value-less atomics are relaxed).
  MB_AFTER_ATOMIC: 10,
  // this_cpu_add / percpu_counter_add_batch: preempt bookkeeping plus a
  // per-CPU LL/SC or LSE STADD (arch/arm64/include/asm/percpu.h), ~12–16 cycles.
  PCPU_COUNTER: 4,
  // One iteration of a batched helper's per-page loop: a few instructions
  // and a predicted branch.
  LOOP_ITER: 1,

  // ── walkers and rmap ───────────────────────────────────────────────────
  // page_vma_mapped_walk() call plus the loop body of try_to_unmap_one that no
  // other event counts (flag tests, pte_present/pte_pfn decoding, the
  // folio_pte_batch call site): ~30–40 instructions at IPC ~3–4 → ~8 ns. Its
  // PTE/PMD reads and the PTL are charged separately.
  PVMW_CALL: 8,
  // step_forward(): address arithmetic and a bounds test.
  PVMW_STEP: 2,
  // The walk restarting (map_pte again): call overhead only.
  PVMW_RESTART: 5,
  // A page-table crossing marker; the relock is charged as LOCK/UNLOCK.
  PGTABLE_CROSSED: 2,
  // folio_remove_rmap_ptes()/friends: call, folio_test_anon etc.; the
  // mapcount atomics and stat updates are their own events.
  RMAP_CALL: 5,
  // One rmap_one callback per VMA in the rmap walk: vma_address(), pvmw
  // setup, mmu_notifier_range_init: ~60 instructions.
  RMAP_ONE: 15,
  // deferred_split_folio() entry and its early-return tests.
  DEFERRED_SPLIT_CALL: 3,
  // The enqueue's list_add and flag updates; the lock and stats are charged separately.
  DEFERRED_SPLIT_ENQUEUE: 10,
  // Cold struct page access in vm_normal_folio() (anchors "Cold vmemmap … may
  // cost a main-memory fetch (R2)"): a DRAM round trip. Apple M1 measured
  // ~96–100 ns full random latency (AnandTech, 2020); a VM adds stage-2 walk
  // cost on a TLB miss, hence 110.
  FOLIO_LOOKUP: 110,
  // mmu_notifier_invalidate_range_start/end with no subscriber (the test of
  // mm->notifier_subscriptions); with KVM or an IOMMU it is far more.
  MMU_NOTIFIER: 2,

  // ── swap ──────────────────────────────────────────────────────────────
  // One cluster round trip besides its LOCK/UNLOCK: cluster_info lookup and
  // the cluster-list bookkeeping.
  SWAP_CLUSTER_OP: 5,
  // One swap_map byte / swap-table word update under the cluster lock: an L1 store.
  SWAP_SLOT_UPDATE: 2,
  // A GFP_ATOMIC continuation/table page allocation: ~a pcp page allocation
  // plus clearing (see PGTABLE_ALLOC). Rare.
  SWAP_ALLOC_ATOMIC: 300,
} satisfies Record<EventName, number>);

/** x86-64: a bare-metal server core (A1's x86 machine: "bare metal x86"). */
export const PRICES_X86: FullPriceTable = Object.freeze({
  // ── page-table entries and tables ──────────────────────────────────────
  // L1D hit: 5 cycles on Intel Golden Cove, 4 on AMD Zen 4 (vendor
  // optimization manuals); ~1.2 ns at 3.3–4 GHz.
  PTE_READ: 1.2,
  // Plain store (set_pte is a WRITE_ONCE on x86-64).
  PTE_WRITE: 1,
  // ptep_get_and_clear is XCHG with memory (implicitly LOCKed), ~18–20 cycles
  // on Intel (Agner Fog's instruction tables list ~18 for LOCK'd RMW on
  // Skylake-class cores), fewer on Zen. The `full` local clear is cheaper; the
  // ledger does not separate them.
  PTE_XCHG: 6,
  // LOCK CMPXCHG: same class as XCHG.
  PTE_CMPXCHG: 6,
  PMD_READ: 2,
  PMD_WRITE: 2,
  // Same reasoning as arm64: pcp allocation + clear_page (rep stosb) + init.
  PGTABLE_ALLOC: 300,
  // No contpte on x86: never charged.
  CONTPTE_FOLD: 0,
  CONTPTE_UNFOLD: 0,

  // ── arm64-only TLB maintenance and barriers: never charged on x86 ──────
  TLBI_VA: 0,
  TLBI_RANGE: 0,
  TLBI_ASID: 0,
  DSB_ISHST: 0,
  DSB_ISH: 0,
  ISB: 0,

  // ── x86 TLB ───────────────────────────────────────────────────────────
  // One INVLPG: a serializing instruction in the low hundreds of cycles on
  // recent cores; ~200 cycles ≈ 60 ns. Estimate. Cross-check: the kernel's own
  // break-even, tlb_single_page_flush_ceiling = 33 (arch/x86/mm/tlb.c,
  // Documentation/arch/x86/tlb.rst), says 33 INVLPGs ≈ one full flush plus
  // the refills it causes, which is X86_FLUSH_ALL below.
  X86_INVLPG: 60,
  // A full (CR3-reload / INVPCID-all-context) flush priced with the refills it
  // causes, at the kernel's break-even of 33 × INVLPG (see X86_INVLPG).
  X86_FLUSH_ALL: 2000,
  // One remote TLB-shootdown IPI round trip: microseconds on bare metal (e.g.
  // Amit, Tai, Wei, "Don't shoot down TLB shootdowns!", EuroSys 2020, measure
  // shootdowns in the µs range). Single-threaded reclaim sends none.
  X86_IPI: 2000,

  // ── reclaim TLB batching ───────────────────────────────────────────────
  // set_tlb_ubc_flush_pending() on x86: cpumask_or of mm_cpumask into the
  // batch and the tlb_gen bump (arch_tlbbatch_add_pending); no instruction.
  TLB_PENDING_ADD: 8,
  TLB_BATCH_FLUSH: 5,
  // flush_tlb_range() → flush_tlb_mm_range(): get_cpu, flush_tlb_info setup,
  // the cpumask test for remote CPUs, the local flush_tlb_func() call;
  // ~50 instructions. The INVLPGs/IPIs are their own events.
  TLB_FLUSH_RANGE: 15,

  // ── locks ─────────────────────────────────────────────────────────────
  // Uncontended queued spin_lock: one LOCK CMPXCHG (~18–20 cycles).
  LOCK: 6,
  // Queued spin_unlock is a plain byte store on x86 (TSO).
  UNLOCK: 1,

  // ── atomics and barriers ──────────────────────────────────────────────
  // LOCK-prefixed RMW on an owned line: ~18–20 cycles (Agner Fog).
  ATOMIC_RMW: 6,
  PLAIN_RMW: 2,
  FLAG_LOAD: 1,
  ATOMIC_REF: 6,
  ATOMIC_MAPCOUNT: 6,
  ATOMIC_READ: 1,
  ATOMIC_TLBBATCH: 6,
  // smp_mb() is `lock; addl $0,-4(%rsp)` since Linux 4.10 (commit 450cbdd0125c,
  // "locking/x86: Use LOCK ADD for smp_mb() instead of MFENCE"): one LOCK'd RMW.
  MB_FULL: 6,
  // smp_rmb() and smp_mb__after_atomic() are compiler barriers on x86-64
  // (arch/x86/include/asm/barrier.h: loads are ordered, LOCK'd ops serialize).
  MB_RMB: 0,
  MB_AFTER_ATOMIC: 0,
  // this_cpu_add is one `add %gs:…` instruction; percpu_counter_add_batch adds
  // a preempt_disable and a compare: ~2 ns.
  PCPU_COUNTER: 2,
  LOOP_ITER: 1,

  // ── walkers and rmap ───────────────────────────────────────────────────
  // As on arm64 (~30–40 instructions of walk and try_to_unmap_one loop body),
  // at the lower clock and IPC of a server core.
  PVMW_CALL: 10,
  PVMW_STEP: 2,
  PVMW_RESTART: 6,
  PGTABLE_CROSSED: 2,
  RMAP_CALL: 6,
  RMAP_ONE: 20,
  DEFERRED_SPLIT_CALL: 3,
  DEFERRED_SPLIT_ENQUEUE: 10,
  // DRAM round trip on a server part: ~90–120 ns loaded latency. Anchors R2.
  FOLIO_LOOKUP: 100,
  MMU_NOTIFIER: 2,

  // ── swap ──────────────────────────────────────────────────────────────
  SWAP_CLUSTER_OP: 6,
  SWAP_SLOT_UPDATE: 2,
  SWAP_ALLOC_ATOMIC: 300,
} satisfies Record<EventName, number>);

/**
 * Reclaim work with no ledger event that A1 says both kernels pay equally
 * for every folio of the MADV_PAGEOUT benchmark, and that (by inference [I])
 * makes up most of the x86 time. [I] stays: that share is a timing claim,
 * which no source can settle; what the work consists of is checked against
 * 7.2.13 below. Not part of `modeledNsFor`: there is no event to count, so
 * the engine cannot charge it. Kept here, with its reasoning, so that
 * reports can show what the denominators are missing; calibrating it
 * against A1 is later work.
 *
 * - `zeroScanNsPerKiB`: the zero-filled check reads the whole folio (every
 *   page is zero, so no early exit: 7.2.13 mm/page_io.c:is_folio_zero_filled
 *   reads each page's last word, then the page from its start); after a
 *   256 MiB memset the data is in DRAM, so this is streaming bandwidth of
 *   ONE core: ~60 GB/s for an Apple M-class P-core (AnandTech measured
 *   ~58 GB/s single-core on M1), ~12 GB/s for a server x86 core (typical
 *   single-thread STREAM on Xeon/EPYC).
 * - `perFolioNs`: LRU isolation and putback (lruvec lock and list moves),
 *   folio_referenced(), memcg swap charge and uncharge, freeing to the pcp
 *   lists, vmstat: roughly 3 000 cycles of kernel code in total. Estimate,
 *   uncalibrated. (In 7.2.13 the swap cache and the zero mark are words of
 *   the cluster's swap table, mm/swap_table.h and
 *   mm/page_io.c:swap_zeromap_folio_set — no xarray; their stores are the
 *   evented SWAP_SLOT_UPDATE / SWAP_CLUSTER_OP work, not part of this.)
 */
export interface UneventedReclaimCost {
  readonly zeroScanNsPerKiB: number;
  readonly perFolioNs: number;
}

export const UNEVENTED_RECLAIM: Readonly<Record<PriceArch, UneventedReclaimCost>> = Object.freeze({
  arm64: Object.freeze({ zeroScanNsPerKiB: 1024 / 60, perFolioNs: 750 }),
  x86: Object.freeze({ zeroScanNsPerKiB: 1024 / 12, perFolioNs: 900 }),
});

const TABLES: Readonly<Record<PriceArch, FullPriceTable>> = Object.freeze({ arm64: PRICES_ARM64, x86: PRICES_X86 });

/** Arch names accepted: the price families and the engine's arch profiles. */
export const PRICE_ARCH_NAMES: readonly string[] = Object.freeze(['arm64', 'x86', 'arm64-contpte', 'arm64-nocont']);

/** The price family of an arch profile: 'arm64-contpte' and 'arm64-nocont' → 'arm64'. */
export function priceArchOf(arch: string): PriceArch {
  if (arch === 'arm64' || arch === 'arm64-contpte' || arch === 'arm64-nocont') return 'arm64';
  if (arch === 'x86') return 'x86';
  throw new FoliolabError('EINVAL', `priceArchOf: unknown arch ${JSON.stringify(arch)}; known: ${PRICE_ARCH_NAMES.join(', ')}`, { arch });
}

/** The full price table of an arch (or arch profile). */
export function pricesFor(arch: string): FullPriceTable {
  return TABLES[priceArchOf(arch)];
}

/**
 * Modeled time in ns of `counts` (all or only the non-zero events, by name)
 * under `arch`'s price table: Σ count × price. Throws EINVAL on an unknown
 * arch, an unknown event name or a count that is not a finite number ≥ 0.
 */
export function modeledNsFor(counts: Readonly<Partial<Record<string, number>>>, arch: string): number {
  const prices = pricesFor(arch);
  for (const [name, n] of Object.entries(counts)) {
    if (!(name in prices)) throw new FoliolabError('EINVAL', `modeledNsFor: unknown event ${JSON.stringify(name)}`, { name });
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
      throw new FoliolabError('EINVAL', `modeledNsFor: count of ${name} must be a finite number ≥ 0, got ${String(n)}`, { name, count: n });
    }
  }
  let ns = 0;
  for (const name of EVENT_NAMES) ns += (counts[name] ?? 0) * prices[name];
  return ns;
}

/**
 * The unevented per-folio reclaim cost (zero scan + shrink_folio_list
 * bookkeeping, see UNEVENTED_RECLAIM) of reclaiming `nrFolios` folios of
 * `folioBytes` each. An estimate, reported beside modeled time, never in it.
 */
export function uneventedReclaimNs(arch: string, nrFolios: number, folioBytes: number): number {
  const c = UNEVENTED_RECLAIM[priceArchOf(arch)];
  if (!Number.isInteger(nrFolios) || nrFolios < 0 || !Number.isInteger(folioBytes) || folioBytes <= 0) {
    throw new FoliolabError('EINVAL', `uneventedReclaimNs: nrFolios ${nrFolios} and folioBytes ${folioBytes} must be integers ≥ 0 / > 0`, {
      nrFolios,
      folioBytes,
    });
  }
  return nrFolios * (c.perFolioNs + (folioBytes / 1024) * c.zeroScanNsPerKiB);
}
