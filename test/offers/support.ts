import type { ConsumptionRecord } from '../../sdk/src/offers/index.js';

export const DAY = 86_400_000;
export const HOUR = 3_600_000;
/** A Sunday, noon UTC: every test computes offers "now" = this instant. */
export const NOW = new Date('2025-06-01T12:00:00Z');
export const RECEIVER = 'R00-0000000000000001';

/** A record `msAgo` before NOW (EUR, place "main" unless overridden). */
export function rec(msAgo: number, amount: number, extra: Partial<ConsumptionRecord> = {}): ConsumptionRecord {
  return { receiverId: RECEIVER, time: new Date(NOW.getTime() - msAgo), place: 'main', amount, currency: 'EUR', ...extra };
}
