import { PushHubError, Status } from './errors.js';
import {
  Audience as WireAudience,
  type Item as WireItem,
  type ServiceInfo as WireServiceInfo,
  type Withdrawal as WireWithdrawal,
} from './gen/pushhub/v1/pushhub.js';
import type { Audience, Item, Offer, ServiceInfo, ServiceInfoInput, ValidUntilInput, Withdrawal } from './types.js';

/**
 * The SDK's one boundary between the wire (generated types: bigint, Date, enums) and the
 * plain values applications see (numbers, ISO strings, string unions; see types.ts), and
 * the checks of application input before anything is sent. Not exported from the package.
 */

/** The reason of an input the SDK refuses before sending: the hub's reason for the same fault. */
export const INVALID_ARGUMENT_REASON = 'INVALID_ARGUMENT';
/** The reason of a hub integer the SDK cannot return exactly as a number. */
export const UNSAFE_INTEGER_REASON = 'UNSAFE_INTEGER';

/** An input the SDK refuses: INVALID_ARGUMENT, the message starting with the field. */
export function invalidArgument(field: string, problem: string, path = ''): PushHubError {
  return new PushHubError(Status.INVALID_ARGUMENT, INVALID_ARGUMENT_REASON, `${field} ${problem}`, path);
}

const describe = (value: unknown): string => {
  if (value === null) return 'null';
  if (typeof value === 'bigint') return `the bigint ${value}n`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number') return String(value);
  if (value instanceof Date) return 'an invalid Date';
  return `a value of type ${Array.isArray(value) ? 'array' : typeof value}`;
};

/** A 64-bit integer from the hub as a number; beyond the safe range it fails the call. */
export function toSafeNumber(value: bigint, field: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new PushHubError(
      Status.OUT_OF_RANGE,
      UNSAFE_INTEGER_REASON,
      `${field} ${value} is beyond Number.MAX_SAFE_INTEGER (2^53 - 1), the largest integer the SDK returns exactly`,
    );
  }
  return Number(value);
}

/** A Date (from the wire) as an ISO-8601 UTC string; '' for none. */
export const isoString = (date: Date | undefined): string => (date === undefined ? '' : date.toISOString());

const AUDIENCE_NAMES: Record<number, Audience> = { [WireAudience.AUDIENCE_SPECIFIC]: 'specific', [WireAudience.AUDIENCE_PUBLIC]: 'public' };

/** The wire's audience enum as the SDK's name (the hub sends only these two). */
export const audienceName = (audience: WireAudience): Audience => AUDIENCE_NAMES[audience] ?? 'specific';

/** The SDK's audience name as the wire enum. */
export const wireAudience = (audience: Audience): WireAudience =>
  audience === 'public' ? WireAudience.AUDIENCE_PUBLIC : WireAudience.AUDIENCE_SPECIFIC;

/** A ServiceInfo from the wire as plain data. */
export function serviceInfoFromWire(info: WireServiceInfo | undefined, field = 'info'): ServiceInfo {
  if (info === undefined) return { key: '', title: '', body: '', validUntil: '', data: {} };
  const plain: ServiceInfo = { key: info.key, title: info.title, body: info.body, validUntil: isoString(info.validUntil), data: info.data };
  const offer = info.offer;
  if (offer !== undefined) plain.offer = offerFromWire(offer, `${field}.offer.value`);
  return plain;
}

function offerFromWire(offer: NonNullable<WireServiceInfo['offer']>, field: string): Offer {
  switch (offer.$case) {
    case 'discount':
      return { $case: 'discount', value: { percentOff: offer.value.percentOff } };
    case 'points':
      return {
        $case: 'points',
        value: { balance: toSafeNumber(offer.value.balance, `${field}.balance`), earned: toSafeNumber(offer.value.earned, `${field}.earned`) },
      };
    case 'voucher':
      return {
        $case: 'voucher',
        value: {
          code: offer.value.code,
          amountOff: toSafeNumber(offer.value.amountOff, `${field}.amountOff`),
          currency: offer.value.currency,
          minSpend: toSafeNumber(offer.value.minSpend, `${field}.minSpend`),
        },
      };
  }
}

/** An Item from the wire as plain data. */
export function itemFromWire(item: WireItem): Item {
  return {
    itemId: item.itemId,
    sequence: toSafeNumber(item.sequence, 'item.sequence'),
    merchantId: item.merchantId,
    audience: audienceName(item.audience),
    receiverId: item.receiverId,
    pushedAt: isoString(item.pushedAt),
    info: serviceInfoFromWire(item.info, 'item.info'),
  };
}

/** A Withdrawal from the wire as plain data. */
export function withdrawalFromWire(withdrawal: WireWithdrawal): Withdrawal {
  return {
    itemId: withdrawal.itemId,
    sequence: toSafeNumber(withdrawal.sequence, 'withdrawal.sequence'),
    merchantId: withdrawal.merchantId,
    audience: audienceName(withdrawal.audience),
    key: withdrawal.key,
    replaced: withdrawal.replaced,
    cause: WITHDRAWAL_CAUSE_NAMES[withdrawal.cause] ?? 'unspecified',
  };
}

/** A plain Item as the wire type (for the receiver store, which keeps items in wire bytes). */
export function itemToWire(item: Item): WireItem {
  const info = item.info.validUntil === '' ? { ...item.info, validUntil: undefined } : item.info;
  return {
    itemId: item.itemId,
    sequence: BigInt(item.sequence),
    merchantId: item.merchantId,
    audience: wireAudience(item.audience),
    receiverId: item.receiverId,
    pushedAt: item.pushedAt === '' ? undefined : new Date(item.pushedAt),
    info: serviceInfoToWire(info, 'item.info'),
  };
}

// ---- input checks ----------------------------------------------------------------------

const isAbsent = (value: unknown): value is undefined | null => value === undefined || value === null;

/** A string argument; absent reads as '' unless `required`. */
export function checkString(value: unknown, field: string, path = '', required = false): string {
  if (isAbsent(value) && !required) return '';
  if (typeof value !== 'string') throw invalidArgument(field, `must be a string, got ${describe(value)}`, path);
  return value;
}

/** An integer argument within the safe range (and >= `min`); absent reads as `fallback`. */
export function checkInteger(value: unknown, field: string, path = '', { min = Number.MIN_SAFE_INTEGER, fallback = 0 } = {}): number {
  if (isAbsent(value)) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw invalidArgument(field, `must be an integer number up to Number.MAX_SAFE_INTEGER, got ${describe(value)}`, path);
  }
  if (value < min) throw invalidArgument(field, `must be at least ${min}, got ${value}`, path);
  return value;
}

/** A sequence or cursor argument: a non-negative safe integer. */
export const checkSequence = (value: unknown, field: string, path = ''): number => checkInteger(value, field, path, { min: 0 });

/** Date-only, or date-time with seconds optional, fraction optional, and a required zone. */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/i;
/** The Date range: ±100,000,000 days around 1970. */
const MAX_DATE_MS = 8.64e15;

/** A validUntil in any accepted form (see ValidUntilInput) as a Date; absent stays absent. */
export function checkValidUntil(value: unknown, field: string, path = ''): Date | undefined {
  if (isAbsent(value)) return undefined;
  let date: Date | undefined;
  if (value instanceof Date) date = value;
  else if (typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= MAX_DATE_MS) date = new Date(Math.trunc(value));
  else if (typeof value === 'string' && ISO_8601.test(value)) date = new Date(value);
  if (date === undefined || Number.isNaN(date.getTime())) {
    throw invalidArgument(
      field,
      `must be a Date, an ISO-8601 string with a time zone (e.g. "2030-01-01T00:00:00Z") or epoch milliseconds, got ${describe(value)}`,
      path,
    );
  }
  return date;
}

function checkObject(value: unknown, field: string, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Date) {
    throw invalidArgument(field, `must be an object, got ${describe(value)}`, path);
  }
  return value as Record<string, unknown>;
}

function checkData(value: unknown, field: string, path: string): Record<string, string> {
  if (isAbsent(value)) return {};
  const data = checkObject(value, field, path);
  for (const [key, entry] of Object.entries(data)) {
    if (typeof entry !== 'string') throw invalidArgument(`${field}.${key}`, `must be a string, got ${describe(entry)}`, path);
  }
  return data as Record<string, string>;
}

function checkOffer(value: unknown, field: string, path: string): WireServiceInfo['offer'] {
  if (isAbsent(value)) return undefined;
  const offer = checkObject(value, field, path);
  const inner = isAbsent(offer.value) ? {} : checkObject(offer.value, `${field}.value`, path);
  const at = (name: string) => `${field}.value.${name}`;
  switch (offer.$case) {
    case 'discount':
      return { $case: 'discount', value: { percentOff: checkInteger(inner.percentOff, at('percentOff'), path, { min: 0 }) } };
    case 'points':
      return {
        $case: 'points',
        value: { balance: BigInt(checkInteger(inner.balance, at('balance'), path)), earned: BigInt(checkInteger(inner.earned, at('earned'), path)) },
      };
    case 'voucher':
      return {
        $case: 'voucher',
        value: {
          code: checkString(inner.code, at('code'), path),
          amountOff: BigInt(checkInteger(inner.amountOff, at('amountOff'), path)),
          currency: checkString(inner.currency, at('currency'), path),
          minSpend: BigInt(checkInteger(inner.minSpend, at('minSpend'), path)),
        },
      };
    default:
      throw invalidArgument(`${field}.$case`, `must be 'discount', 'points' or 'voucher', got ${describe(offer.$case)}`, path);
  }
}

/**
 * Checks a push's content and converts it to the wire type. Types only: the hub checks
 * lengths and ranges, and names the field the same way.
 */
export function serviceInfoToWire(input: ServiceInfoInput | undefined, field = 'info', path = ''): WireServiceInfo {
  const info = isAbsent(input) ? {} : checkObject(input, field, path);
  return {
    key: checkString(info.key, `${field}.key`, path),
    title: checkString(info.title, `${field}.title`, path),
    body: checkString(info.body, `${field}.body`, path),
    validUntil: checkValidUntil(info.validUntil as ValidUntilInput | undefined, `${field}.validUntil`, path),
    offer: checkOffer(info.offer, `${field}.offer`, path),
    data: checkData(info.data, `${field}.data`, path),
  };
}

/** Wire causes by number, as plain names. */
export const WITHDRAWAL_CAUSE_NAMES: Partial<Record<number, Withdrawal['cause']>> = {
  1: 'withdrawn',
  2: 'replaced',
  3: 'blocked',
  4: 'suspended',
  5: 'account-deleted',
};
