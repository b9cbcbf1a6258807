import { EVENT_NAMES } from './events.js';
import type { Ledger } from './ledger.js';

/** Receives ledger activity when tracing is on. */
export interface TraceSink {
  attach(ledger: Ledger): void;
  onCharge(ev: number, n: number, actor: number): void;
  onLock(lockId: number, acquire: boolean, actor: number): void;
  onBegin(name: string, actor: number): void;
  onEnd(actor: number): void;
}

/** One Chrome trace-event record (the JSON Object Format). */
export interface TraceEvent {
  name: string;
  cat: string;
  ph: 'B' | 'E' | 'X' | 'i' | 'M' | 'C';
  ts: number;
  pid: number;
  tid: number;
  dur?: number;
  s?: 'g' | 'p' | 't';
  args?: Record<string, unknown>;
}

const LOCK_TID_BASE = 1000;

/**
 * Writes Chrome/Perfetto trace-event JSON: one track (tid) per actor and one
 * per lock; operations are B/E slices, each event a slice whose length is its
 * modeled price (or 1 µs per occurrence without a price table), and lock hold
 * times are slices on the lock's track.
 *
 * Timestamps are modeled time, not wall time: the clock advances by the price
 * of each charged event, so the trace shows where modeled time goes.
 */
export class ChromeTraceSink implements TraceSink {
  readonly events: TraceEvent[] = [];
  private ledger: Ledger | null = null;
  private clockUs = 0;
  private namedTids = new Set<number>();

  /** `pricesNs[ev]` in nanoseconds; absent → 1 µs per event occurrence. */
  constructor(private readonly pricesNs: ArrayLike<number> | null = null) {}

  attach(ledger: Ledger): void {
    this.ledger = ledger;
  }

  private tid(t: number, name: string): number {
    if (!this.namedTids.has(t)) {
      this.namedTids.add(t);
      this.events.push({ name: 'thread_name', cat: '__metadata', ph: 'M', ts: 0, pid: 1, tid: t, args: { name } });
    }
    return t;
  }

  onCharge(ev: number, n: number, actor: number): void {
    const dur = this.pricesNs ? ((this.pricesNs[ev] ?? 0) * n) / 1000 : n;
    const tid = this.tid(actor, `cpu${actor}`);
    this.events.push({ name: EVENT_NAMES[ev] ?? `ev${ev}`, cat: 'event', ph: 'X', ts: this.clockUs, dur, pid: 1, tid, args: { n } });
    this.clockUs += dur;
  }

  onLock(lockId: number, acquire: boolean, actor: number): void {
    const name = this.ledger?.locks.name(lockId) ?? `lock${lockId}`;
    const tid = this.tid(LOCK_TID_BASE + lockId, `lock ${name}`);
    this.events.push({ name: acquire ? `held by cpu${actor}` : '', cat: 'lock', ph: acquire ? 'B' : 'E', ts: this.clockUs, pid: 1, tid });
  }

  onBegin(name: string, actor: number): void {
    this.events.push({ name, cat: 'op', ph: 'B', ts: this.clockUs, pid: 1, tid: this.tid(actor, `cpu${actor}`) });
  }

  onEnd(actor: number): void {
    this.events.push({ name: '', cat: 'op', ph: 'E', ts: this.clockUs, pid: 1, tid: this.tid(actor, `cpu${actor}`) });
  }

  /** The trace as a JSON-serialisable object (`{ traceEvents, displayTimeUnit }`). */
  toJSON(): { traceEvents: TraceEvent[]; displayTimeUnit: 'ns' } {
    return { traceEvents: this.events, displayTimeUnit: 'ns' };
  }
}
