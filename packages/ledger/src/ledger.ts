import { EVENT_NAMES, EV, NR_EVENTS, type EventName } from './events.js';
import { LockTable, type LockKind } from './locks.js';
import type { TraceSink } from './trace.js';

/** Event counts by name; every event is present (0 when it did not happen). */
export type EventCounts = Record<EventName, number>;

/**
 * The cost ledger: one counter per event id, a lock table, and an optional
 * trace sink. `charge` is the only hot-path entry: an array add plus one
 * null test, so a ledger without a sink costs nothing more.
 */
export class Ledger {
  readonly counts = new Float64Array(NR_EVENTS);
  readonly locks = new LockTable();
  /** The CPU-like actor work is charged to (a trace track). */
  actor = 0;
  private sink: TraceSink | null = null;

  /** Count `n` occurrences of event `ev`. */
  charge(ev: number, n = 1): void {
    this.counts[ev]! += n;
    if (this.sink !== null) this.sink.onCharge(ev, n, this.actor);
  }

  /** Take lock `id`: one LOCK event. */
  lock(id: number): void {
    this.locks.acquire(id);
    this.counts[EV.LOCK]! += 1;
    if (this.sink !== null) this.sink.onLock(id, true, this.actor);
  }

  /** Release lock `id`: one UNLOCK event. */
  unlock(id: number): void {
    this.locks.release(id);
    this.counts[EV.UNLOCK]! += 1;
    if (this.sink !== null) this.sink.onLock(id, false, this.actor);
  }

  /** Register (or look up) a named lock. */
  lockId(name: string, kind: LockKind = 'other'): number {
    return this.locks.id(name, kind);
  }

  /** Open a named span (an operation) on the trace; free without a sink. */
  begin(name: string): void {
    if (this.sink !== null) this.sink.onBegin(name, this.actor);
  }

  end(): void {
    if (this.sink !== null) this.sink.onEnd(this.actor);
  }

  get tracing(): boolean {
    return this.sink !== null;
  }

  setTrace(sink: TraceSink | null): void {
    this.sink = sink;
    sink?.attach(this);
  }

  get(ev: number): number {
    return this.counts[ev]!;
  }

  /** A copy of all counts, by name. */
  snapshot(): EventCounts {
    return countsOf(this.counts);
  }

  reset(): void {
    this.counts.fill(0);
    this.locks.resetCounts();
  }
}

function countsOf(arr: Float64Array): EventCounts {
  const out = {} as EventCounts;
  for (let i = 0; i < NR_EVENTS; i++) out[EVENT_NAMES[i]!] = arr[i]!;
  return out;
}

/** Run `fn` and return what it charged to `ledger` (the delta), with its result. */
export function measure<T>(ledger: Ledger, fn: () => T): { result: T; counts: EventCounts } {
  const before = ledger.counts.slice();
  const result = fn();
  const delta = new Float64Array(NR_EVENTS);
  for (let i = 0; i < NR_EVENTS; i++) delta[i] = ledger.counts[i]! - before[i]!;
  return { result, counts: countsOf(delta) };
}

/** Only the non-zero entries of `counts`, for printing and compact assertions. */
export function nonZero(counts: EventCounts): Partial<EventCounts> {
  const out: Partial<EventCounts> = {};
  for (const n of EVENT_NAMES) if (counts[n] !== 0) out[n] = counts[n];
  return out;
}

/** a − b, event by event. */
export function diffCounts(a: EventCounts, b: EventCounts): EventCounts {
  const out = {} as EventCounts;
  for (const n of EVENT_NAMES) out[n] = a[n] - b[n];
  return out;
}
