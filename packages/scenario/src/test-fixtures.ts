import { EV, FoliolabError, Ledger } from '@foliolab/ledger';
import type { EngineLike, FolioDump, InvariantReport, ProcessDump, PteDump, ReadResult, StateV1 } from './engine-like.js';
import type { EngineConfig } from './types.js';

/*
 * Test-only fake of the engine (customised to record side effects, in the
 * sense of tools/testing/vma): it records every call, keeps a toy address
 * space (one order-0 folio per written page), charges a few events, and can
 * be told to report an invariant violation or differ by policy. It models no
 * kernel behaviour; it only exercises the runner's wiring.
 */

export type Call = [string, ...unknown[]];

interface Proc {
  pid: number;
  name: string;
  parent: number | null;
  exited: boolean;
  vmas: { start: number; end: number }[];
  ptes: Map<number, PteDump>;
}

const PAGE = 4096;
const hex = (n: number): string => `0x${n.toString(16)}`;

export class FakeEngine implements EngineLike {
  readonly ledger = new Ledger();
  readonly calls: Call[] = [];
  readonly procs = new Map<number, Proc>();
  readonly inject: Record<string, number | boolean> = {};
  /** Report this violation from checkInvariants once `poison` has been called. */
  violateOnPoison = true;
  private poisoned = false;
  private nextPid = 1;
  private nextPfn = 0x1000;
  private nextAddr = 0x7f00_0000_0000;
  private nextHandle = 1;
  private readonly pins = new Set<number>();
  private swapOffset = 0;
  private readonly slots = new Map<number, number>();
  /** Reads return these lost pages (to test data-loss reporting). */
  lostOnRead: ReadResult['lost'] = [];

  constructor(readonly config: EngineConfig) {}

  private proc(fn: string, pid: number): Proc {
    const p = this.procs.get(pid);
    if (p === undefined || p.exited) throw new FoliolabError('ENOENT', `${fn}: no process ${pid}`);
    return p;
  }

  private inVma(fn: string, p: Proc, addr: number, len: number): void {
    if (!p.vmas.some((v) => addr >= v.start && addr + len <= v.end)) throw new FoliolabError('EINVAL', `${fn}: range ${hex(addr)}+${len} is outside any VMA of pid ${p.pid}`);
  }

  createProcess(name?: string): number {
    const pid = this.nextPid++;
    this.calls.push(['createProcess', name]);
    this.procs.set(pid, { pid, name: name ?? `p${pid}`, parent: null, exited: false, vmas: [], ptes: new Map() });
    return pid;
  }

  fork(pid: number): number {
    this.calls.push(['fork', pid]);
    const p = this.proc('fork', pid);
    const child = this.nextPid++;
    this.procs.set(child, { pid: child, name: `p${child}`, parent: pid, exited: false, vmas: p.vmas.map((v) => ({ ...v })), ptes: new Map([...p.ptes].map(([a, e]) => [a, { ...e, write: false }])) });
    return child;
  }

  exit(pid: number): void {
    this.calls.push(['exit', pid]);
    this.proc('exit', pid).exited = true;
  }

  mmap(pid: number, o: { addr?: number; len: number }): number {
    this.calls.push(['mmap', pid, o]);
    const p = this.proc('mmap', pid);
    const addr = o.addr ?? this.nextAddr;
    this.nextAddr = Math.max(this.nextAddr, addr + o.len + PAGE);
    p.vmas.push({ start: addr, end: addr + o.len });
    return addr;
  }

  munmap(pid: number, addr: number, len: number): void {
    this.calls.push(['munmap', pid, addr, len]);
    const p = this.proc('munmap', pid);
    this.inVma('munmap', p, addr, len);
    for (let a = addr; a < addr + len; a += PAGE) p.ptes.delete(a);
  }

  mremap(pid: number, addr: number, oldLen: number, newLen: number, o?: { fixed?: number }): number {
    this.calls.push(['mremap', pid, addr, oldLen, newLen, o]);
    const p = this.proc('mremap', pid);
    this.inVma('mremap', p, addr, oldLen);
    const to = o?.fixed ?? addr;
    const v = p.vmas.find((x) => x.start === addr)!;
    v.start = to;
    v.end = to + newLen;
    return to;
  }

  mprotect(pid: number, addr: number, len: number, prot: string): void {
    this.calls.push(['mprotect', pid, addr, len, prot]);
  }

  madvise(pid: number, addr: number, len: number, advice: string): void {
    this.calls.push(['madvise', pid, addr, len, advice]);
    const p = this.proc('madvise', pid);
    this.inVma('madvise', p, addr, len);
    if (advice !== 'pageout') return;
    for (let a = addr; a < addr + len; a += PAGE) {
      const e = p.ptes.get(a);
      if (e?.kind !== 'present') continue;
      const offset = this.swapOffset++;
      this.slots.set(offset, 1);
      p.ptes.set(a, { addr: hex(a), kind: 'swap', type: 0, offset, exclusive: true, uffdWp: false });
      this.ledger.charge(EV.PTE_XCHG);
      this.ledger.charge(EV.RMAP_CALL, this.config.policy === 'batched' ? 0 : 1);
    }
    if (this.config.policy === 'batched') this.ledger.charge(EV.RMAP_CALL);
  }

  mlock(pid: number, addr: number, len: number): void {
    this.calls.push(['mlock', pid, addr, len]);
  }

  munlock(pid: number, addr: number, len: number): void {
    this.calls.push(['munlock', pid, addr, len]);
  }

  write(pid: number, addr: number, len: number, token?: number): void {
    this.calls.push(['write', pid, addr, len, token]);
    const p = this.proc('write', pid);
    this.inVma('write', p, addr, len);
    for (let a = addr; a < addr + len; a += PAGE) {
      if (p.ptes.get(a)?.kind === 'present') continue;
      p.ptes.set(a, { addr: hex(a), kind: 'present', pfn: this.nextPfn++, write: true, dirty: this.config.policy !== 'batched', young: true, cont: false, uffdWp: false });
      this.ledger.charge(EV.PTE_WRITE);
    }
  }

  read(pid: number, addr: number, len: number): ReadResult {
    this.calls.push(['read', pid, addr, len]);
    this.proc('read', pid);
    return { pages: len / PAGE, lost: this.lostOnRead };
  }

  reclaim(o: unknown): unknown {
    this.calls.push(['reclaim', o]);
    return { nrReclaimed: 0 };
  }

  pin(pid: number, addr: number, len: number, o?: unknown): number {
    this.calls.push(['pin', pid, addr, len, o]);
    this.proc('pin', pid);
    const h = this.nextHandle++;
    this.pins.add(h);
    return h;
  }

  unpin(handle: number): void {
    this.calls.push(['unpin', handle]);
    if (!this.pins.delete(handle)) throw new FoliolabError('ENOENT', `unpin: handle ${handle} is not pinned`);
  }

  uffdwp(pid: number, addr: number, len: number, op: string): void {
    this.calls.push(['uffdwp', pid, addr, len, op]);
  }

  poison(pid: number, addr: number, o?: unknown): void {
    this.calls.push(['poison', pid, addr, o]);
    this.poisoned = true;
  }

  makeDeviceExclusive(pid: number, addr: number): void {
    this.calls.push(['makeDeviceExclusive', pid, addr]);
  }

  setInject(name: string, value: number | boolean): void {
    this.calls.push(['setInject', name, value]);
    this.inject[name] = value;
  }

  checkInvariants(): InvariantReport {
    if (this.poisoned && this.violateOnPoison) return { ok: false, violations: [{ rule: 'rss-census', where: 'pid 1', detail: 'MM_ANONPAGES 16 but 15 present PTEs' }] };
    return { ok: true, violations: [] };
  }

  dump(): StateV1 {
    const processes: ProcessDump[] = [...this.procs.values()].map((p) => ({
      pid: p.pid,
      name: p.name,
      parent: p.parent,
      exited: p.exited,
      rss: { anon: [...p.ptes.values()].filter((e) => e.kind === 'present').length, file: 0, shmem: 0, swapents: [...p.ptes.values()].filter((e) => e.kind === 'swap').length },
      hasPinned: this.pins.size > 0,
      onMmlist: false,
      vmas: p.vmas.map((v) => ({ start: hex(v.start), end: hex(v.end), pgoff: 0, flags: ['read', 'write', 'anon', 'private'], anonVma: 1 })),
      ptes: [...p.ptes.entries()].sort((a, b) => a[0] - b[0]).map(([, e]) => e),
    }));
    const folios: FolioDump[] = [];
    for (const p of this.procs.values()) {
      for (const e of p.ptes.values()) {
        if (e.kind !== 'present' || folios.some((f) => f.pfn === e.pfn)) continue;
        folios.push({ pfn: e.pfn!, order: 0, refcount: 1, mapcount: 1, entireMapcount: 0, pincount: 0, flags: ['anon', 'swapbacked'], anonExclusive: '1', swap: null, deferredSplit: false, partiallyMapped: false });
      }
    }
    return {
      schema: 'foliolab.state/v1',
      config: { arch: this.config.arch, policy: this.config.policy, mapcountMode: this.config.mapcountMode ?? 'legacy' },
      processes,
      folios: folios.sort((a, b) => a.pfn - b.pfn),
      swap: { slots: [...this.slots].map(([offset, count]) => ({ offset, count, cached: null })), swapCache: [] },
      stats: { vmstat: {}, mthp: { '64K': { anon_fault_alloc: 0 } } },
      ledger: {},
      invariants: this.checkInvariants(),
    };
  }
}

/** A factory that keeps every engine it built, for assertions. */
export function fakeFactory(): { factory: (c: EngineConfig) => FakeEngine; built: FakeEngine[] } {
  const built: FakeEngine[] = [];
  return {
    built,
    factory: (c) => {
      const e = new FakeEngine(c);
      built.push(e);
      return e;
    },
  };
}
