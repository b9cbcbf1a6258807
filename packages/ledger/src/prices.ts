import { EVENT_NAMES, NR_EVENTS, type EventName } from './events.js';
import type { EventCounts } from './ledger.js';

/** Nanoseconds per event occurrence, by event name (missing events cost 0). */
export type PriceTable = Partial<Record<EventName, number>>;

/** Modeled time = Σ count × price. */
export function modeledNs(counts: EventCounts, prices: PriceTable): number {
  let ns = 0;
  for (const n of EVENT_NAMES) ns += counts[n] * (prices[n] ?? 0);
  return ns;
}

/** A price table as a dense array indexed by event id (for the trace sink). */
export function priceArray(prices: PriceTable): Float64Array {
  const a = new Float64Array(NR_EVENTS);
  EVENT_NAMES.forEach((n, i) => (a[i] = prices[n] ?? 0));
  return a;
}
