import { describe, expect, it } from 'vitest';
import { ChromeTraceSink, EV, EVENT_NAMES, FoliolabError, Ledger, eventName, measure, modeledNs, nonZero } from './index.js';

describe('ledger', () => {
  it('counts charged events by id and reports them by name', () => {
    const l = new Ledger();
    l.charge(EV.PTE_READ);
    l.charge(EV.PTE_READ, 16);
    l.charge(EV.TLBI_VA, 2);
    expect(nonZero(l.snapshot())).toEqual({ PTE_READ: 17, TLBI_VA: 2 });
  });

  it('ids and names agree and are unique', () => {
    expect(new Set(EVENT_NAMES).size).toBe(EVENT_NAMES.length);
    for (const n of EVENT_NAMES) expect(eventName(EV[n])).toBe(n);
    expect(() => eventName(EVENT_NAMES.length)).toThrow(RangeError);
  });

  it('measure returns the delta of what fn charged, not the running total', () => {
    const l = new Ledger();
    l.charge(EV.PTE_XCHG, 5);
    const { result, counts } = measure(l, () => {
      l.charge(EV.PTE_XCHG, 3);
      return 42;
    });
    expect(result).toBe(42);
    expect(counts.PTE_XCHG).toBe(3);
    expect(l.get(EV.PTE_XCHG)).toBe(8);
  });

  it('locks count LOCK/UNLOCK and reject double lock and unlock of a free lock', () => {
    const l = new Ledger();
    const ptl = l.lockId('ptl:0', 'ptl');
    expect(l.lockId('ptl:0')).toBe(ptl);
    l.lock(ptl);
    expect(l.locks.heldCount).toBe(1);
    expect(l.locks.heldNames()).toEqual(['ptl:0']);
    expect(() => l.lock(ptl)).toThrow(FoliolabError);
    l.unlock(ptl);
    expect(() => l.unlock(ptl)).toThrow(/not held/);
    expect(nonZero(l.snapshot())).toEqual({ LOCK: 1, UNLOCK: 1 });
    expect(l.locks.acquisitions()).toEqual({ 'ptl:0': 1 });
  });

  it('grows the lock table past its initial capacity', () => {
    const l = new Ledger();
    for (let i = 0; i < 200; i++) l.lock(l.lockId(`l${i}`));
    expect(l.locks.heldCount).toBe(200);
  });

  it('modeled time is the sum of count × price', () => {
    const l = new Ledger();
    l.charge(EV.PTE_READ, 10);
    l.charge(EV.TLBI_VA, 2);
    expect(modeledNs(l.snapshot(), { PTE_READ: 1.5, TLBI_VA: 40 })).toBe(95);
  });
});

describe('trace', () => {
  it('writes trace-event JSON with actor and lock tracks', () => {
    const l = new Ledger();
    const sink = new ChromeTraceSink();
    l.setTrace(sink);
    const ptl = l.lockId('ptl:7', 'ptl');
    l.begin('ptep_get_and_clear');
    l.lock(ptl);
    l.charge(EV.PTE_XCHG);
    l.unlock(ptl);
    l.end();
    const json = JSON.parse(JSON.stringify(sink.toJSON())) as { traceEvents: { ph: string; name: string; tid: number; ts: number }[] };
    const phases = json.traceEvents.filter((e) => e.ph !== 'M').map((e) => e.ph);
    expect(phases).toEqual(['B', 'B', 'X', 'E', 'E']);
    const names = json.traceEvents.filter((e) => e.ph === 'M').map((e) => (e as unknown as { args: { name: string } }).args.name);
    expect(names).toEqual(['cpu0', 'lock ptl:7']);
    const x = json.traceEvents.find((e) => e.ph === 'X')!;
    expect(x.name).toBe('PTE_XCHG');
    // the unlock happens after the XCHG's slice ends
    const unlock = json.traceEvents.filter((e) => e.ph === 'E')[0]!;
    expect(unlock.ts).toBe(1);
  });

  it('costs nothing when off: no sink, no records', () => {
    const l = new Ledger();
    expect(l.tracing).toBe(false);
    l.begin('x');
    l.charge(EV.PTE_READ);
    l.end();
    expect(l.get(EV.PTE_READ)).toBe(1);
  });
});
