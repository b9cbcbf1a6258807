import { ChromeTraceSink, priceArray, pricesFor, type Ledger } from '@foliolab/ledger';
import type {
  Advice,
  EngineConfig,
  EngineFactory,
  EngineLike,
  InjectName,
  InvariantReport,
  MmapOptions,
  Prot,
  ReadResult,
  ReclaimOptions,
  StateV1,
} from '@foliolab/scenario';

/*
 * `run --trace`: the runner has no trace hook, so the engine factory is
 * wrapped. The wrapper sets a ChromeTraceSink on the engine's ledger (every
 * charged event becomes a slice whose length is its modeled price, every lock
 * hold a slice on the lock's track) and opens one span per engine operation,
 * named like the step ("madvise(pageout)"), on the CPU track.
 */

/** An EngineLike that opens a trace span around every operation of `inner`. */
export class TracedEngine implements EngineLike {
  constructor(readonly inner: EngineLike) {}

  get ledger(): Ledger {
    return this.inner.ledger;
  }

  private span<T>(name: string, fn: () => T): T {
    const l = this.inner.ledger;
    l.begin(name);
    try {
      return fn();
    } finally {
      l.end();
    }
  }

  createProcess(name?: string): number {
    return this.span('createProcess', () => this.inner.createProcess(name));
  }
  fork(pid: number): number {
    return this.span('fork', () => this.inner.fork(pid));
  }
  exit(pid: number): void {
    this.span('exit', () => this.inner.exit(pid));
  }
  mmap(pid: number, o: MmapOptions): number {
    return this.span('mmap', () => this.inner.mmap(pid, o));
  }
  munmap(pid: number, addr: number, len: number): void {
    this.span('munmap', () => this.inner.munmap(pid, addr, len));
  }
  mremap(pid: number, addr: number, oldLen: number, newLen: number, o?: { fixed?: number }): number {
    return this.span('mremap', () => this.inner.mremap(pid, addr, oldLen, newLen, o));
  }
  mprotect(pid: number, addr: number, len: number, prot: Prot): void {
    this.span(`mprotect(${prot})`, () => this.inner.mprotect(pid, addr, len, prot));
  }
  madvise(pid: number, addr: number, len: number, advice: Advice): void {
    this.span(`madvise(${advice})`, () => this.inner.madvise(pid, addr, len, advice));
  }
  mlock(pid: number, addr: number, len: number): void {
    this.span('mlock', () => this.inner.mlock(pid, addr, len));
  }
  munlock(pid: number, addr: number, len: number): void {
    this.span('munlock', () => this.inner.munlock(pid, addr, len));
  }
  write(pid: number, addr: number, len: number, token?: number): void {
    this.span('write', () => this.inner.write(pid, addr, len, token));
  }
  read(pid: number, addr: number, len: number): ReadResult {
    return this.span('read', () => this.inner.read(pid, addr, len));
  }
  reclaim(o: ReclaimOptions): unknown {
    return this.span(`reclaim(${o.kind})`, () => this.inner.reclaim(o));
  }
  pin(pid: number, addr: number, len: number, o?: { kind?: 'pin' | 'get'; write?: boolean }): number {
    return this.span('pin', () => this.inner.pin(pid, addr, len, o));
  }
  unpin(handle: number): void {
    this.span('unpin', () => this.inner.unpin(handle));
  }
  uffdwp(pid: number, addr: number, len: number, op: 'register' | 'protect' | 'unprotect' | 'unregister'): void {
    this.span(`uffdwp(${op})`, () => this.inner.uffdwp(pid, addr, len, op));
  }
  poison(pid: number, addr: number, o?: { ttuHwpoison?: boolean }): void {
    this.span('poison', () => this.inner.poison(pid, addr, o));
  }
  makeDeviceExclusive(pid: number, addr: number): void {
    this.span('makeDeviceExclusive', () => this.inner.makeDeviceExclusive(pid, addr));
  }
  setInject(name: InjectName, value: number | boolean): void {
    this.inner.setInject(name, value);
  }
  dump(): StateV1 {
    return this.inner.dump();
  }
  checkInvariants(): InvariantReport {
    return this.inner.checkInvariants();
  }
}

/** A factory whose engines trace into `sink` (priced with the arch's table; one sink per run). */
export function tracingFactory(base: EngineFactory, onSink: (sink: ChromeTraceSink) => void): EngineFactory {
  return (config: EngineConfig) => {
    const engine = base(config);
    const sink = new ChromeTraceSink(priceArray(pricesFor(config.arch ?? 'arm64-contpte')));
    engine.ledger.setTrace(sink);
    onSink(sink);
    return new TracedEngine(engine);
  };
}
