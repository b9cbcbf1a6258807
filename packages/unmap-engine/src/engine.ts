import { FoliolabError, type Ledger } from '@foliolab/ledger';
import { FLAG } from '@foliolab/folio-flags';
import { pageTableBytes } from '@foliolab/pagetable-arm64-contpte';
import { swapMemoryBytes } from '@foliolab/swap';
import { ptePfn, ptePresent, pteUffdWp, softleafIsHwpoison, softleafIsMarker, softleafIsSwap, pteSwpUffdWp, pteMarkerBits, PTE_MARKER_UFFD_WP, softleafIsDeviceExclusive } from '@foliolab/pagetable-arm64-contpte';
import { INJECT_NAMES, resolveConfig, type EngineConfig, type InjectName, type ResolvedConfig } from './config.js';
import { PAGE_SIZE, VM_LOCKED, VM_READ, VM_UFFD_WP, VM_WRITE, VM_DROPPABLE, hex } from './consts.js';
import { allocNeed, doRead, doWrite, type ReadResult } from './data.js';
import { dumpState, type StateV1 } from './dump.js';
import { wireFreePath } from './folio-ops.js';
import { doFork, forkCopyNeed } from './fork.js';
import { doMakeDeviceExclusive, doPin, doUnpin } from './gup.js';
import { allFolios } from './census.js';
import { checkInvariants, type InvariantReport } from './invariants.js';
import { Kernel } from './kernel.js';
import { doMadvise, type Advice } from './madvise.js';
import { doMlock, doMunlock } from './mlock.js';
import { doMmap, doMunmap, exitMmap, getUnmappedArea, pgoffWindowOk, protFlags, type Prot } from './mmap.js';
import { doMprotect } from './mprotect.js';
import { doMremap } from './mremap.js';
import { doPoison, type PoisonOptions, type PoisonResult } from './poison.js';
import { Proc } from './proc.js';
import { isSpecial, pteIdx } from './pte-util.js';
import { swapWritebackEnd, type ReclaimResult } from './reclaim.js';
import { userProactiveReclaim } from './vmscan.js';
import { doUffdwp, type UffdOp, type UffdRegisterOptions } from './uffd.js';
import { rangeCovered, vmaLookup, vmasInRange } from './vma.js';

/*
 * The public face of the engine (docs/ENGINE-API.md). Every operation
 * validates its input completely first and throws FoliolabError naming the
 * operation and the reason — then nothing has changed — and only then
 * mutates. Expected kernel outcomes (−EBUSY, injected −ENOMEM, aborted
 * unmaps) are not exceptions: they show in the state and stats.
 */

const VA_LIMIT = 2 ** 48;

/** Options of `mmap`. */
export interface MmapOptions {
  addr?: number;
  len: number;
  prot?: Prot;
  anon?: true;
  shared?: false;
  locked?: boolean;
  droppable?: boolean;
}

/** Options of `reclaim`. */
export interface ReclaimOptions {
  kind: 'proactive' | 'node';
  pid?: number;
  addr?: number;
  len?: number;
  nrToReclaim?: number;
}

/** Options of `pin`. */
export interface PinOptions {
  kind?: 'pin' | 'get';
  write?: boolean;
}

function fail(code: string, op: string, why: string, details: Record<string, unknown> = {}): never {
  throw new FoliolabError(code, `${op}: ${why}`, details);
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

/** What `memoryBytes()` returns. */
export interface MemoryBytes {
  memmap: number;
  pageTables: number;
  swap: number;
  total: number;
  parts: Record<string, number>;
  mappedPages: number;
  perMappedPage: number;
}

/**
 * A small private engine, built once per process, that keeps V8's hidden
 * classes of every engine object alive. Without it, a program that builds
 * engines one after another (the CLI's pageout and compare, the scenario
 * runner, a benchmark) lets each engine die before the next one exists; V8
 * then collects those classes and throws away every piece of optimised code
 * and every inline cache that used them ("weak objects" deopts), so each new
 * engine runs mostly unoptimised. Measured with tinybench, MADV_PAGEOUT of
 * 256 MiB of 64K folios, one fresh engine per sample and none alive between
 * samples: batched 28.4 → 8.0 ms, per-pte 60.4 → 26 ms. It changes no
 * result: the engines share no state but the classes (keeper.test.ts).
 */
let keeper: Engine | null = null;
let buildingKeeper = false;

const KEEPER_ADDR = 0x4000_0000;

function keepClassesAlive(): void {
  if (keeper !== null || buildingKeeper) return;
  buildingKeeper = true;
  try {
    // 2M of RAM and swap; one write and one pageout of a 64K folio exercise the
    // classes the hot paths use (process, VMA, page tables, walk, folios, swap tables).
    const e = new Engine({ memory: 2 * 2 ** 20, swap: 2 * 2 ** 20, mthp: { '64K': 'always' } });
    const pid = e.createProcess('keeper');
    e.mmap(pid, { addr: KEEPER_ADDR, len: 64 * 1024, prot: 'rw' });
    e.write(pid, KEEPER_ADDR, 64 * 1024);
    e.madvise(pid, KEEPER_ADDR, 64 * 1024, 'pageout');
    keeper = e;
  } finally {
    buildingKeeper = false;
  }
}

export class Engine {
  readonly config: ResolvedConfig;
  readonly ledger: Ledger;
  /** @internal The simulated kernel (exposed for white-box tests). */
  readonly kernel: Kernel;

  constructor(config: EngineConfig = {}) {
    this.config = resolveConfig(config);
    this.kernel = new Kernel(this.config);
    wireFreePath(this.kernel);
    this.ledger = this.kernel.ledger;
    keepClassesAlive();
  }

  // --- validation helpers ------------------------------------------------------

  /**
   * Run the mutation phase of an operation (validation is done): count the
   * step, and turn any exception into EINVARIANT — after validation a throw
   * means the model broke, and must never pass for a rejected input.
   */
  private run<T>(op: string, fn: () => T): T {
    const k = this.kernel;
    if (k.steps >= this.config.limits.maxSteps) fail('E2BIG', op, `the step limit ${this.config.limits.maxSteps} is reached`);
    k.steps++;
    try {
      k.lruvec.statFlush(); // the memcg statistics reclaim reads are as flushed before the step (lru.ts)
      const r = fn();
      swapWritebackEnd(k); // asynchronous swap writes complete once the operation returns (reclaim.ts)
      return r;
    } catch (e) {
      if (e instanceof FoliolabError && e.code === 'EINVARIANT') throw e;
      const msg = e instanceof Error ? e.message : String(e);
      throw new FoliolabError('EINVARIANT', `${op}: failure after validation (state may be inconsistent): ${msg}`, { cause: e });
    }
  }

  private proc(op: string, pid: unknown): Proc {
    if (!isInt(pid)) fail('EINVAL', op, `pid ${String(pid)} is not an integer`);
    const p = this.kernel.procs.get(pid);
    if (p === undefined) fail('ENOENT', op, `no process with pid ${pid}`, { pid });
    if (p.exited) fail('ENOENT', op, `process ${pid} has exited`, { pid });
    return p;
  }

  /** [start, end): addr page-aligned (when `aligned`), len > 0, end = PAGE_ALIGN(addr + len) below 2^48. */
  private range(op: string, addr: unknown, len: unknown, aligned = true): [number, number] {
    if (!isInt(addr) || addr < 0) fail('EINVAL', op, `addr ${String(addr)} is not a non-negative integer`);
    if (!isInt(len) || len <= 0) fail('EINVAL', op, `len ${String(len)} must be a positive integer`);
    if (aligned && addr % PAGE_SIZE !== 0) fail('EINVAL', op, `addr ${hex(addr)} is not 4K aligned`, { addr });
    const start = addr - (addr % PAGE_SIZE);
    const end = Math.ceil((addr + len) / PAGE_SIZE) * PAGE_SIZE;
    if (end > VA_LIMIT) fail('ERANGE', op, `[${hex(start)}, ${hex(end)}) leaves the 48-bit address space`);
    return [start, end];
  }

  private covered(op: string, p: Proc, start: number, end: number): void {
    if (!rangeCovered(p, start, end)) fail('ENOMEM', op, `[${hex(start)}, ${hex(end)}) of pid ${p.pid} is not entirely mapped`, { start, end });
  }

  private capacity(op: string, need: number): void {
    const free = this.kernel.memmap.nrFreePages;
    if (need > free) fail('ENOMEM', op, `needs up to ${need} free pages, simulated memory has ${free}`, { need, free });
  }

  /** Every page of [start, end) with the VMA permission `flag`, and (for writes) no uffd-wp or hwpoison trap. */
  private checkAccess(op: string, p: Proc, start: number, end: number, write: boolean): void {
    for (const v of vmasInRange(p, start, end)) {
      const need = write ? VM_WRITE : VM_READ;
      if ((v.flags & need) === 0) fail('EFAULT', op, `[${hex(v.vmStart)}, ${hex(v.vmEnd)}) is not ${write ? 'writable' : 'readable'} (SIGSEGV)`);
    }
    for (let a = start; a < end; a += PAGE_SIZE) {
      const t = p.pt.pteTableOf(a);
      if (t === null) continue;
      const i = pteIdx(a);
      const lo = t.lo[i]!;
      const hi = t.hi[i]!;
      if ((lo | hi) === 0) continue;
      if (softleafIsHwpoison(lo, hi) && write) fail('EFAULT', op, `${hex(a)} is hwpoisoned (SIGBUS)`, { addr: a });
      if (!write) continue;
      const v = vmaLookup(p, a)!;
      if ((v.flags & VM_UFFD_WP) === 0 || v.uffdAsync) continue;
      const wp =
        (ptePresent(lo, hi) && pteUffdWp(lo, hi)) ||
        (softleafIsSwap(lo, hi) && pteSwpUffdWp(lo, hi)) ||
        (softleafIsMarker(lo, hi) && (pteMarkerBits(lo, hi) & PTE_MARKER_UFFD_WP) !== 0);
      if (wp) fail('EFAULT', op, `${hex(a)} is userfaultfd write-protected (the model has no handler; unprotect first or register with async)`, { addr: a });
    }
  }

  // --- processes ---------------------------------------------------------------

  /** Create a process with an empty mm; returns its pid. */
  createProcess(name?: string): number {
    const op = 'createProcess';
    if (name !== undefined && (typeof name !== 'string' || name.length === 0)) fail('EINVAL', op, 'name must be a non-empty string');
    return this.run(op, () => {
      const k = this.kernel;
      const pid = k.nextPid++;
      const nm = name ?? `p${pid}`;
      k.procs.set(pid, new Proc(pid, nm, null, k.nextMmId++, k.newPageTables(`${nm}.${pid}`)));
      return pid;
    });
  }

  /** fork(2) (dup_mmap): returns the child pid. */
  fork(pid: number): number {
    const op = 'fork';
    const p = this.proc(op, pid);
    const k = this.kernel;
    this.capacity(op, forkCopyNeed(k, p));
    return this.run(op, () => {
      const cpid = k.nextPid++;
      const child = new Proc(cpid, `p${cpid}`, pid, k.nextMmId++, k.newPageTables(`p${cpid}.${cpid}`));
      k.procs.set(cpid, child);
      doFork(k, p, child);
      return cpid;
    });
  }

  /** exit(2): exit_mmap; the pid stays in the dump as exited. GUP references outlive it. */
  exit(pid: number): void {
    const op = 'exit';
    const p = this.proc(op, pid);
    return this.run(op, () => {
      exitMmap(this.kernel, p);
      p.exited = true;
      p.onMmlist = false;
    });
  }

  // --- address space -------------------------------------------------------------

  /** mmap(MAP_PRIVATE | MAP_ANONYMOUS); `addr` is MAP_FIXED_NOREPLACE. Returns the address. */
  mmap(pid: number, o: MmapOptions): number {
    const op = 'mmap';
    const p = this.proc(op, pid);
    if (o === null || typeof o !== 'object') fail('EINVAL', op, 'options must be an object');
    const prot = o.prot ?? 'rw';
    if (prot !== 'r' && prot !== 'rw' && prot !== 'none') fail('EINVAL', op, `prot ${String(prot)} must be 'r', 'rw' or 'none'`);
    if (o.anon !== undefined && o.anon !== true) fail('EINVAL', op, 'only anonymous mappings are modelled (anon: true)');
    if (o.shared !== undefined && o.shared !== false) fail('EINVAL', op, 'only private mappings are modelled (shared: false)');
    const locked = o.locked ?? false;
    const droppable = o.droppable ?? false;
    if (typeof locked !== 'boolean' || typeof droppable !== 'boolean') fail('EINVAL', op, 'locked and droppable must be booleans');
    if (locked && droppable) fail('EINVAL', op, 'MAP_DROPPABLE cannot be combined with MAP_LOCKED');
    if (!isInt(o.len) || o.len <= 0) fail('EINVAL', op, `len ${String(o.len)} must be a positive integer`);
    const len = Math.ceil(o.len / PAGE_SIZE) * PAGE_SIZE;
    let addr: number | null = null;
    if (o.addr !== undefined) {
      [addr] = this.range(op, o.addr, len);
      if (vmasInRange(p, addr, addr + len).length > 0) fail('EEXIST', op, `[${hex(addr)}, ${hex(addr + len)}) overlaps an existing mapping (MAP_FIXED_NOREPLACE)`);
      if (addr < PAGE_SIZE) fail('EPERM', op, 'address 0 is below mmap_min_addr');
      if (!pgoffWindowOk(addr, len)) fail('EINVAL', op, `[${hex(addr)}, ${hex(addr + len)}) crosses an 8 TiB boundary (model limit: vm_pgoff is kept in 31 bits)`);
    } else if (getUnmappedArea(p, len) < 0) {
      fail('ENOMEM', op, `no free range of ${len} bytes`);
    }
    if (locked && prot === 'rw') this.capacity(op, len / PAGE_SIZE);
    return this.run(op, () => {
      const k = this.kernel;
      const at = doMmap(p, { addr, len, prot, locked, droppable });
      if (locked) doMlock(k, p, at, at + len);
      return at;
    });
  }

  /** munmap(2). The range must touch at least one mapping. */
  munmap(pid: number, addr: number, len: number): void {
    const op = 'munmap';
    const p = this.proc(op, pid);
    const [start, end] = this.range(op, addr, len);
    if (vmasInRange(p, start, end).length === 0) fail('EINVAL', op, `[${hex(start)}, ${hex(end)}) contains no mapping of pid ${pid}`);
    return this.run(op, () => {
      doMunmap(this.kernel, p, start, end);
    });
  }

  /** mremap(2) with MREMAP_MAYMOVE (and MREMAP_FIXED when `fixed`); returns the new address. */
  mremap(pid: number, addr: number, oldLen: number, newLen: number, o: { fixed?: number } = {}): number {
    const op = 'mremap';
    const p = this.proc(op, pid);
    const [start, oldEnd] = this.range(op, addr, oldLen);
    if (!isInt(newLen) || newLen <= 0) fail('EINVAL', op, `newLen ${String(newLen)} must be a positive integer`);
    const nl = Math.ceil(newLen / PAGE_SIZE) * PAGE_SIZE;
    const ol = oldEnd - start;
    const v = vmaLookup(p, start);
    if (v === null) fail('EFAULT', op, `${hex(start)} is not mapped`);
    if (o.fixed !== undefined && nl === ol) {
      // remap_move (7.2.13 mm/mremap.c): a move of the same length may span several VMAs, but no uffd-armed one
      // unless it is alone (vma_multi_allowed). Departure: 7.2.13 remap_move moves the VMAs before a refused one
      // that is not the first, then returns −EFAULT (a first uffd-armed VMA with more after it: −EFAULT before any
      // move); the engine refuses the whole call, since a rejected call must leave no half-applied state.
      const vmas = vmasInRange(p, start, oldEnd);
      if (vmas.length > 1 && vmas.some((x) => (x.flags & VM_UFFD_WP) !== 0)) fail('EFAULT', op, `[${hex(start)}, ${hex(oldEnd)}) spans several VMAs, one of them uffd-armed`);
    } else if ((o.fixed !== undefined || nl > ol) && start + Math.min(ol, nl) > v.vmEnd) {
      // check_prep_vma, for a move or an expansion: [addr, addr + old_len) inside one VMA (a shrink checks
      // new_len: its unmapped tail may cross VMAs; a plain shrink or same-size call is not checked at all)
      fail('EFAULT', op, `[${hex(start)}, ${hex(start + Math.min(ol, nl))}) is not inside one VMA`);
    }
    if ((v.flags & VM_DROPPABLE) !== 0 && nl > ol) fail('EINVAL', op, 'growing a droppable mapping is not modelled');
    let fixed: number | null = null;
    if (o.fixed !== undefined) {
      const [f] = this.range(op, o.fixed, nl);
      if (f < start + ol && start < f + nl) fail('EINVAL', op, 'the old and new ranges overlap');
      fixed = f;
    } else if (nl > ol && !(start + ol === v.vmEnd && vmasInRange(p, v.vmEnd, start + nl).length === 0) && getUnmappedArea(p, nl) < 0) {
      fail('ENOMEM', op, `no free range of ${nl} bytes to move to`);
    }
    return this.run(op, () => {
      return doMremap(this.kernel, p, { addr: start, oldLen: ol, newLen: nl, fixed });
    });
  }

  /** mprotect(2): VMA split/merge, then change_protection (batched unless per-pte). */
  mprotect(pid: number, addr: number, len: number, prot: 'r' | 'rw' | 'none'): void {
    const op = 'mprotect';
    const p = this.proc(op, pid);
    const [start, end] = this.range(op, addr, len);
    if (prot !== 'r' && prot !== 'rw' && prot !== 'none') fail('EINVAL', op, `prot ${String(prot)} must be 'r', 'rw' or 'none'`);
    this.covered(op, p, start, end);
    if (prot === 'rw') {
      // a private VM_LOCKED VMA becoming writable is populated with write faults (mprotect_fixup)
      let need = 0;
      for (const v of vmasInRange(p, start, end)) {
        if ((v.flags & (VM_LOCKED | VM_WRITE)) === VM_LOCKED) need += allocNeed(this.kernel, p, Math.max(start, v.vmStart), Math.min(end, v.vmEnd), true);
      }
      this.capacity(op, need);
    }
    return this.run(op, () => {
      doMprotect(this.kernel, p, start, end, protFlags(prot));
    });
  }

  /** madvise(2). */
  madvise(pid: number, addr: number, len: number, advice: Advice): ReclaimResult | null {
    const op = 'madvise';
    const p = this.proc(op, pid);
    const advices: Advice[] = ['dontneed', 'free', 'pageout', 'cold', 'dontfork', 'dofork'];
    if (!advices.includes(advice)) fail('EINVAL', op, `advice ${String(advice)} is not one of ${advices.join(', ')}`);
    const [start, end] = this.range(op, addr, len);
    this.covered(op, p, start, end);
    for (const v of vmasInRange(p, start, end)) {
      if ((advice === 'pageout' || advice === 'cold' || advice === 'dontneed' || advice === 'free') && (v.flags & VM_LOCKED) !== 0) {
        fail('EINVAL', op, `${advice} on the VM_LOCKED range [${hex(v.vmStart)}, ${hex(v.vmEnd)})`);
      }
    }
    return this.run(op, () => {
      return doMadvise(this.kernel, p, start, end, advice);
    });
  }

  /** mlock(2): VM_LOCKED, mlock present folios, populate. */
  mlock(pid: number, addr: number, len: number): void {
    const op = 'mlock';
    const p = this.proc(op, pid);
    const [start, end] = this.range(op, addr, len);
    this.covered(op, p, start, end);
    let need = 0;
    for (const v of vmasInRange(p, start, end)) {
      if ((v.flags & VM_READ) !== 0) need += allocNeed(this.kernel, p, Math.max(start, v.vmStart), Math.min(end, v.vmEnd), (v.flags & VM_WRITE) !== 0);
    }
    this.capacity(op, need);
    return this.run(op, () => {
      doMlock(this.kernel, p, start, end);
    });
  }

  /** munlock(2). */
  munlock(pid: number, addr: number, len: number): void {
    const op = 'munlock';
    const p = this.proc(op, pid);
    const [start, end] = this.range(op, addr, len);
    this.covered(op, p, start, end);
    return this.run(op, () => {
      doMunlock(this.kernel, p, start, end);
    });
  }

  // --- data ------------------------------------------------------------------------

  /** The CPU writes [addr, addr + len): one token per page (`token`, or a fresh one per page; 0 = zeros). */
  write(pid: number, addr: number, len: number, token?: number): void {
    const op = 'write';
    const p = this.proc(op, pid);
    const [start, end] = this.range(op, addr, len, false);
    if (token !== undefined && (!isInt(token) || token < 0 || token > 0xffffffff)) fail('EINVAL', op, `token ${String(token)} must be a 32-bit unsigned integer`);
    this.covered(op, p, start, end);
    this.checkAccess(op, p, start, end, true);
    this.capacity(op, allocNeed(this.kernel, p, start, end, true));
    return this.run(op, () => {
      doWrite(this.kernel, p, start, end, token);
    });
  }

  /** The CPU reads [addr, addr + len); reports pages whose data did not survive. */
  read(pid: number, addr: number, len: number): ReadResult {
    const op = 'read';
    const p = this.proc(op, pid);
    const [start, end] = this.range(op, addr, len, false);
    this.covered(op, p, start, end);
    this.checkAccess(op, p, start, end, false);
    this.capacity(op, allocNeed(this.kernel, p, start, end, false));
    return this.run(op, () => {
      const r = doRead(this.kernel, p, start, end);
      return r;
    });
  }

  // --- reclaim ---------------------------------------------------------------------

  /**
   * Proactive (memory.reclaim of the memory cgroup that holds every folio) or
   * node reclaim over the LRU (vmscan.ts), asked for `nrToReclaim` pages —
   * by default every page the live folios hold (of the folios mapped in the
   * range, when one is given: a model-only restriction the kernel has no
   * equivalent of, which the oracle does not translate). `reclaimed` below
   * the pages asked for is the kernel's −EAGAIN.
   */
  reclaim(o: ReclaimOptions): ReclaimResult {
    const op = 'reclaim';
    if (o === null || typeof o !== 'object' || (o.kind !== 'proactive' && o.kind !== 'node')) fail('EINVAL', op, "kind must be 'proactive' or 'node'");
    const nr = o.nrToReclaim;
    if (nr !== undefined && nr !== Number.POSITIVE_INFINITY && (!isInt(nr) || nr <= 0)) fail('EINVAL', op, `nrToReclaim ${String(nr)} must be a positive integer`);
    let heads: Set<number> | null = null;
    if (o.pid !== undefined || o.addr !== undefined || o.len !== undefined) {
      const p = this.proc(op, o.pid);
      let start = 0;
      let end = VA_LIMIT;
      if (o.addr !== undefined || o.len !== undefined) {
        [start, end] = this.range(op, o.addr, o.len);
        this.covered(op, p, start, end);
      }
      heads = this.mappedHeads(p, start, end);
    }
    return this.run(op, () => {
      const k = this.kernel;
      let want = nr ?? 0;
      if (nr === undefined) {
        if (heads === null) for (const f of allFolios(k)) want += f.nr;
        else for (const h of heads) want += k.memmap.folioAt(h).nr;
      }
      return userProactiveReclaim(k, want, o.kind === 'node', heads);
    });
  }

  private mappedHeads(p: Proc, start: number, end: number): Set<number> {
    const k = this.kernel;
    const out = new Set<number>();
    for (const v of vmasInRange(p, start, end)) {
      for (let a = Math.max(start, v.vmStart); a < Math.min(end, v.vmEnd); a += PAGE_SIZE) {
        const t = p.pt.pteTableOf(a);
        if (t === null) continue;
        const i = pteIdx(a);
        const lo = t.lo[i]!;
        const hi = t.hi[i]!;
        if (ptePresent(lo, hi) && !isSpecial(hi)) out.add(k.memmap.folioHead(ptePfn(lo, hi)));
      }
    }
    return out;
  }

  // --- GUP, uffd, poison, device-exclusive -----------------------------------------------

  /** pin_user_pages (kind 'pin', default) or get_user_pages ('get'); returns a handle for `unpin`. */
  pin(pid: number, addr: number, len: number, o: PinOptions = {}): number {
    const op = 'pin';
    const p = this.proc(op, pid);
    const kind = o.kind ?? 'pin';
    const write = o.write ?? false;
    if (kind !== 'pin' && kind !== 'get') fail('EINVAL', op, `kind ${String(kind)} must be 'pin' or 'get'`);
    if (typeof write !== 'boolean') fail('EINVAL', op, 'write must be a boolean');
    const [start, end] = this.range(op, addr, len, false);
    this.covered(op, p, start, end);
    this.checkAccess(op, p, start, end, write);
    if (!write) {
      for (let a = start; a < end; a += PAGE_SIZE) {
        const t = p.pt.pteTableOf(a);
        if (t !== null && softleafIsHwpoison(t.lo[pteIdx(a)]!, t.hi[pteIdx(a)]!)) fail('EFAULT', op, `${hex(a)} is hwpoisoned`);
      }
    }
    this.capacity(op, allocNeed(this.kernel, p, start, end, true));
    return this.run(op, () => {
      const h = doPin(this.kernel, p, start, end, kind, write);
      return h.id;
    });
  }

  /** unpin_user_pages / put_page for a handle from `pin`. */
  unpin(handle: number): void {
    const op = 'unpin';
    if (!isInt(handle)) fail('EINVAL', op, `handle ${String(handle)} is not an integer`);
    const h = this.kernel.pins.get(handle);
    if (h === undefined) fail('ENOENT', op, `no pin handle ${handle} (never pinned, or already unpinned)`);
    return this.run(op, () => {
      doUnpin(this.kernel, h);
    });
  }

  /** userfaultfd write-protect: register (options: async, unpopulated), protect, unprotect, unregister. */
  uffdwp(pid: number, addr: number, len: number, uop: UffdOp, o: UffdRegisterOptions = {}): void {
    const op = 'uffdwp';
    const p = this.proc(op, pid);
    const ops: UffdOp[] = ['register', 'protect', 'unprotect', 'unregister'];
    if (!ops.includes(uop)) fail('EINVAL', op, `op ${String(uop)} is not one of ${ops.join(', ')}`);
    const [start, end] = this.range(op, addr, len);
    this.covered(op, p, start, end);
    if (uop === 'protect' || uop === 'unprotect') {
      for (const v of vmasInRange(p, start, end)) {
        if ((v.flags & VM_UFFD_WP) === 0) fail('ENOENT', op, `[${hex(v.vmStart)}, ${hex(v.vmEnd)}) is not registered for uffd-wp`);
      }
    }
    return this.run(op, () => {
      doUffdwp(this.kernel, p, start, end, uop, o);
    });
  }

  /** memory_failure() on the page mapped at `addr` (see PoisonOptions). */
  poison(pid: number, addr: number, o: PoisonOptions = {}): PoisonResult {
    const op = 'poison';
    const p = this.proc(op, pid);
    const [start] = this.range(op, addr, 1, false);
    const t = p.pt.pteTableOf(start);
    const i = pteIdx(start);
    const vma = vmaLookup(p, start);
    const k = this.kernel;
    // madvise_inject_error's get_user_pages_fast(addr, 1, 0): a readable VMA (check_vma_flags), a present page
    // or a swap entry the slow path faults in; the zero page, none and other entries are refused.
    const swapped = t !== null && softleafIsSwap(t.lo[i]!, t.hi[i]!);
    if (vma === null || t === null || !((ptePresent(t.lo[i]!, t.hi[i]!) && !isSpecial(t.hi[i]!)) || swapped)) {
      fail('EINVAL', op, `no page is mapped at ${hex(start)} of pid ${pid}`);
    }
    if ((vma.flags & VM_READ) === 0) fail('EFAULT', op, `${hex(start)} is in a PROT_NONE mapping (GUP refuses it)`);
    if (swapped) {
      if (o.split !== undefined || o.ttuHwpoison !== undefined) fail('EINVAL', op, 'the split and ttuHwpoison options need a present page');
      this.capacity(op, allocNeed(k, p, start, start + PAGE_SIZE, false));
    } else {
      const f = k.folioOf(ptePfn(t.lo[i]!, t.hi[i]!));
      const scMask = FLAG.swapcache.mask | FLAG.swapbacked.mask;
      const sc = (k.memmap.flags[f.head]! & scMask) === scMask;
      if ((o.split === false && f.order > 0 && !sc) || (o.ttuHwpoison === false && !sc)) {
        fail('EINVAL', op, 'without a split (or without TTU_HWPOISON) only a swap-cache folio can be unmapped (the kernel would WARN)');
      }
    }
    return this.run(op, () => doPoison(k, p, start, o));
  }

  /** make_device_exclusive() of the page at `addr` (a writable private VMA). */
  makeDeviceExclusive(pid: number, addr: number): void {
    const op = 'makeDeviceExclusive';
    const p = this.proc(op, pid);
    const [start, end] = this.range(op, addr, 1, false);
    this.covered(op, p, start, end);
    this.checkAccess(op, p, start, end, true);
    const t = p.pt.pteTableOf(start);
    if (t !== null && softleafIsDeviceExclusive(t.lo[pteIdx(start)]!, t.hi[pteIdx(start)]!)) {
      fail('EBUSY', op, `${hex(start)} is already device-exclusive`);
    }
    this.capacity(op, allocNeed(this.kernel, p, start, end, true));
    return this.run(op, () => {
      doMakeDeviceExclusive(this.kernel, p, start);
    });
  }

  // --- observation -------------------------------------------------------------------------

  /**
   * Simulator bytes held by the engine's state, by part, and per mapped 4K
   * page (present anon PTEs in all mms): the memmap (flags, aux/refcount,
   * per-page _mapcount, data tokens, spill rows of small folios, buddy
   * stacks), page tables (8 B per slot of every table page, TLB tracking
   * bytes when on), the swap device's per-slot and per-cluster arrays (sized
   * by `swap`, not by what is mapped). The engine adds no per-page state.
   */
  memoryBytes(): MemoryBytes {
    const k = this.kernel;
    const mb = k.memmap.memmapBytes();
    let pageTables = 0;
    let mapped = 0;
    for (const p of k.procs.values()) {
      pageTables += pageTableBytes(p.pt);
      mapped += p.rss[1]!;
    }
    const si = k.si;
    const swap =
      si === null
        ? 0
        : swapMemoryBytes(si).total;
    const parts = { flags: mb.flags, aux: mb.aux, mapcount: mb.mapcount, token: mb.token, spill: mb.spill, buddy: mb.freeLists, pageTables, swap };
    const total = mb.total + pageTables + swap;
    return { memmap: mb.total, pageTables, swap, total, parts, mappedPages: mapped, perMappedPage: mapped === 0 ? 0 : total / mapped };
  }

  /** The foliolab.state/v1 dump. */
  dump(o: { invariants?: boolean } = {}): StateV1 {
    // invariants: false reports ok without running the checker (a caller that checks separately)
    return dumpState(this.kernel, o.invariants !== false);
  }

  /** Every invariant of the specs, from a page-table census. */
  checkInvariants(): InvariantReport {
    return checkInvariants(this.kernel);
  }

  /** Re-arm a fault-injection switch (number = fail the Nth call from now, true = always, false/0 = off). */
  setInject(name: InjectName, value: number | boolean): void {
    const op = 'setInject';
    if (!INJECT_NAMES.includes(name)) fail('EINVAL', op, `unknown switch ${String(name)}; known: ${INJECT_NAMES.join(', ')}`);
    if (!(typeof value === 'boolean' || (isInt(value) && value >= 0))) fail('EINVAL', op, `value ${String(value)} must be a boolean or a non-negative integer`);
    if (name === 'archUnmapOneFail' && value !== false && value !== 0 && !this.config.archOptions.archUnmapOne) {
      fail('EINVAL', op, 'archUnmapOneFail needs archOptions.archUnmapOne: true');
    }
    this.kernel.setInject(name, value);
  }
}
