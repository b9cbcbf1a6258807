export { EVENT_NAMES, EV, NR_EVENTS, eventName } from './events.js';
export type { EventName } from './events.js';
export { Ledger, measure, nonZero, diffCounts } from './ledger.js';
export type { EventCounts } from './ledger.js';
export { LockTable } from './locks.js';
export type { LockKind } from './locks.js';
export { ChromeTraceSink } from './trace.js';
export type { TraceSink, TraceEvent } from './trace.js';
export { modeledNs, priceArray } from './prices.js';
export type { PriceTable } from './prices.js';
export { FoliolabError, check } from './errors.js';
export {
  modeledNsFor,
  PRICE_ARCH_NAMES,
  priceArchOf,
  PRICES_ARM64,
  PRICES_X86,
  pricesFor,
  UNEVENTED_RECLAIM,
  uneventedReclaimNs,
} from './prices-arch.js';
export type { FullPriceTable, PriceArch, UneventedReclaimCost } from './prices-arch.js';
