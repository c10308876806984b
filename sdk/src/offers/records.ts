/**
 * One purchase (or refund) by one receiver: what the merchant knows about its customer's
 * consumption. Money is in minor units (cents).
 */
export interface ConsumptionRecord {
  /** The receiver (customer device) the purchase belongs to, e.g. "R00-0192837465019283". */
  receiverId: string;
  /** When it happened. */
  time: Date;
  /** Where: the merchant's store id. */
  place: string;
  /** Amount in minor units; negative for a refund. */
  amount: number;
  /** ISO 4217 code, e.g. "EUR". */
  currency: string;
  /** Optional product category, for points multipliers. */
  category?: string;
  /** A voucher code redeemed in this purchase: that voucher is no longer offered. */
  voucherCode?: string;
}

/** Thrown for a record that cannot be used; `field` names the offending field. */
export class RecordValidationError extends Error {
  /** The offending field, e.g. "amount". */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'RecordValidationError';
    this.field = field;
  }
}

/** The largest amount accepted, in minor units: far above any till, far below 2^53. */
export const MAX_RECORD_AMOUNT = 1e12;

const OPTIONAL_TEXT_CHARS = 128;

/**
 * Builds a record from loosely typed fields (a CSV row or a parsed JSON line), checking each:
 * `time` as an ISO 8601 string with a zone ("2025-03-01T12:30:00Z" or "+01:00") or epoch ms,
 * `amount` an integer (number or digit string). Throws {@link RecordValidationError}.
 */
export function toConsumptionRecord(fields: Record<string, unknown>): ConsumptionRecord {
  const receiverId = requireText(fields, 'receiverId');
  const place = requireText(fields, 'place');
  const currency = requireText(fields, 'currency');
  if (!/^[A-Z]{3}$/.test(currency)) throw new RecordValidationError('currency', `must be an ISO 4217 code like "EUR", got "${currency}"`);
  const record: ConsumptionRecord = { receiverId, time: parseTime(fields.time), place, amount: parseAmount(fields.amount), currency };
  const category = optionalText(fields, 'category');
  if (category !== undefined) record.category = category;
  const voucherCode = optionalText(fields, 'voucherCode');
  if (voucherCode !== undefined) record.voucherCode = voucherCode;
  return record;
}

/**
 * Checks a record built in code (computeOffers calls it for every record), so a NaN or a
 * fractional amount fails loudly instead of producing odd offers.
 */
export function checkConsumptionRecord(record: ConsumptionRecord): void {
  if (typeof record.receiverId !== 'string' || record.receiverId === '') throw new RecordValidationError('receiverId', 'required');
  if (!(record.time instanceof Date) || Number.isNaN(record.time.getTime())) throw new RecordValidationError('time', 'must be a valid Date');
  if (typeof record.place !== 'string' || record.place === '') throw new RecordValidationError('place', 'required');
  if (!Number.isSafeInteger(record.amount) || Math.abs(record.amount) > MAX_RECORD_AMOUNT) {
    throw new RecordValidationError('amount', `must be an integer (minor units) of at most ${MAX_RECORD_AMOUNT} in magnitude`);
  }
  if (typeof record.currency !== 'string' || !/^[A-Z]{3}$/.test(record.currency)) throw new RecordValidationError('currency', 'must be an ISO 4217 code like "EUR"');
}

function requireText(fields: Record<string, unknown>, name: string): string {
  const value = fields[name];
  if (typeof value !== 'string' || value.trim() === '') throw new RecordValidationError(name, 'required');
  if (value.length > OPTIONAL_TEXT_CHARS) throw new RecordValidationError(name, `at most ${OPTIONAL_TEXT_CHARS} characters`);
  return value.trim();
}

function optionalText(fields: Record<string, unknown>, name: string): string | undefined {
  const value = fields[name];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new RecordValidationError(name, 'must be a string');
  if (value.length > OPTIONAL_TEXT_CHARS) throw new RecordValidationError(name, `at most ${OPTIONAL_TEXT_CHARS} characters`);
  return value.trim() || undefined;
}

/** A zone is required: a local time without one would mean different instants on different machines. */
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

function parseTime(value: unknown): Date {
  let time: Date | undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value)) time = new Date(value);
  else if (typeof value === 'string' && /^\d{1,16}$/.test(value)) time = new Date(Number(value));
  else if (typeof value === 'string' && ISO_WITH_ZONE.test(value)) time = new Date(value);
  if (!time || Number.isNaN(time.getTime())) {
    throw new RecordValidationError('time', `must be ISO 8601 with a zone (e.g. "2025-03-01T12:30:00Z") or epoch milliseconds, got ${JSON.stringify(value)}`);
  }
  return time;
}

function parseAmount(value: unknown): number {
  const n = typeof value === 'string' && /^-?\d{1,13}$/.test(value.trim()) ? Number(value.trim()) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || Math.abs(n) > MAX_RECORD_AMOUNT) {
    throw new RecordValidationError('amount', `must be an integer in minor units (e.g. 1250 for 12.50), got ${JSON.stringify(value)}`);
  }
  return n;
}
