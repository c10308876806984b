import { invalidArgument } from '../core/errors.js';
import type { ServiceInfo } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { ACCOUNT_ID_PATTERN } from '../core/ids.js';
import { type WireTimestamp, wireValidUntil } from './wire-timestamps.js';

/** Limits on push content; each violation names its field. */
export const LIMITS = {
  titleChars: 200,
  bodyBytes: 4096,
  keyChars: 128,
  dataEntries: 32,
  dataBytes: 4096,
  requestIdChars: 128,
  displayNameChars: 200,
  currencyChars: 3,
  /** 9999-12-31T23:59:59Z, the largest Timestamp every JSON, Python and Go client can represent. */
  maxTimestampSeconds: 253_402_300_799n,
} as const;

const chars = (s: string) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};
const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/** Lone surrogates cannot be encoded as UTF-8; decoded invalid UTF-8 shows up as U+FFFD. */
export function checkText(field: string, value: string): void {
  if (!value.isWellFormed()) throw invalidArgument(field, 'must be valid UTF-8');
  if (value.includes('\uFFFD')) throw invalidArgument(field, 'must be valid UTF-8 (contains U+FFFD)');
}

export function checkRequestId(field: string, requestId: string): void {
  checkText(field, requestId);
  if (chars(requestId) > LIMITS.requestIdChars) throw invalidArgument(field, `at most ${LIMITS.requestIdChars} characters`);
}

/** Checks a replacement key given to find an item (Withdraw): text, at most keyChars. */
export function checkItemKey(field: string, key: string): void {
  checkText(field, key);
  if (chars(key) > LIMITS.keyChars) throw invalidArgument(field, `at most ${LIMITS.keyChars} characters`);
}

/**
 * Parses a ListItems page token: the base64url of the last sequence of the previous page.
 * Anything that does not re-encode to itself is rejected, so junk never turns into a position.
 */
export function parsePageToken(field: string, token: string): number {
  if (token === '') return 0;
  const text = /^[A-Za-z0-9_-]{1,24}$/.test(token) ? Buffer.from(token, 'base64url').toString('latin1') : '';
  const after = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(after) || Buffer.from(String(after)).toString('base64url') !== token) {
    throw invalidArgument(field, 'not a token from a previous page');
  }
  return after;
}

/** Checks a receiver id's shape; existence is the caller's NOT_FOUND. */
export function checkReceiverId(field: string, receiverId: string): void {
  if (receiverId === '') throw invalidArgument(field, 'required');
  if (!ACCOUNT_ID_PATTERN.test(receiverId) || !receiverId.startsWith('R')) {
    throw invalidArgument(field, 'not a receiver id (R<2-digit region>-<16 digits>)');
  }
}

/** Checks a merchant id's shape; existence is the caller's NOT_FOUND. */
export function checkMerchantId(field: string, merchantId: string): void {
  if (merchantId === '') throw invalidArgument(field, 'required');
  if (!ACCOUNT_ID_PATTERN.test(merchantId) || !merchantId.startsWith('M')) {
    throw invalidArgument(field, 'not a merchant id (M<2-digit region>-<16 digits>)');
  }
}

/**
 * A Register request id works like a password until it ages out (a repeat returns the
 * account with a fresh password), so it must be random and long enough not to be guessed.
 */
export function checkRegisterRequestId(field: string, requestId: string): void {
  if (requestId === '') return;
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(requestId)) throw invalidArgument(field, '16 to 128 characters of A-Z, a-z, 0-9, "-" and "_" (draw it at random)');
}

/**
 * Validates push content and returns it with valid_until filled in (default lifetime when
 * absent). Nothing invalid reaches the store.
 */
export function checkServiceInfo(
  field: string,
  info: ServiceInfo | undefined,
  nowMs: number,
  defaultLifetimeMs: number,
): ServiceInfo {
  if (!info) throw invalidArgument(field, 'required');
  checkText(`${field}.key`, info.key);
  checkText(`${field}.title`, info.title);
  checkText(`${field}.body`, info.body);
  if (chars(info.key) > LIMITS.keyChars) throw invalidArgument(`${field}.key`, `at most ${LIMITS.keyChars} characters`);
  // An item must show something: one without a title is a blank entry on every receiver.
  // Body, offer and data stay optional (a title alone is a complete message).
  if (info.title.trim() === '') throw invalidArgument(`${field}.title`, 'required');
  if (chars(info.title) > LIMITS.titleChars) throw invalidArgument(`${field}.title`, `at most ${LIMITS.titleChars} characters`);
  if (utf8Bytes(info.body) > LIMITS.bodyBytes) throw invalidArgument(`${field}.body`, `at most ${LIMITS.bodyBytes} bytes (UTF-8)`);

  const entries = Object.entries(info.data);
  if (entries.length > LIMITS.dataEntries) throw invalidArgument(`${field}.data`, `at most ${LIMITS.dataEntries} entries`);
  let dataBytes = 0;
  for (const [k, v] of entries) {
    checkText(`${field}.data`, k);
    checkText(`${field}.data[${k}]`, v);
    dataBytes += utf8Bytes(k) + utf8Bytes(v);
  }
  if (dataBytes > LIMITS.dataBytes) throw invalidArgument(`${field}.data`, `at most ${LIMITS.dataBytes} bytes of keys and values`);

  const offer = info.offer;
  if (offer?.$case === 'discount' && offer.value.percentOff > 100) {
    throw invalidArgument(`${field}.discount.percent_off`, 'must be 0 to 100');
  }
  if (offer?.$case === 'voucher') {
    const v = offer.value;
    checkText(`${field}.voucher.code`, v.code);
    if (chars(v.code) > LIMITS.keyChars) throw invalidArgument(`${field}.voucher.code`, `at most ${LIMITS.keyChars} characters`);
    if (v.amountOff < 0n) throw invalidArgument(`${field}.voucher.amount_off`, 'must not be negative');
    if (v.minSpend < 0n) throw invalidArgument(`${field}.voucher.min_spend`, 'must not be negative');
    if (!/^([A-Z]{3})?$/.test(v.currency)) throw invalidArgument(`${field}.voucher.currency`, 'must be an ISO 4217 code like "EUR"');
  }

  let validUntil = info.validUntil;
  const wire = wireValidUntil(info);
  if (wire) {
    checkTimestamp(`${field}.valid_until`, wire);
    // The decoder's Date adds nanos/1e6 as a float, which rounds .999999999 up into the next
    // second; the value as sent, truncated to the millisecond, is what the item lives by.
    validUntil = new Date(Number(wire.seconds) * 1000 + Math.floor(wire.nanos / 1_000_000));
  }
  if (validUntil === undefined) {
    validUntil = new Date(nowMs + defaultLifetimeMs);
  } else if (Number.isNaN(validUntil.getTime())) {
    throw invalidArgument(`${field}.valid_until`, 'out of range (0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z)');
  } else if (validUntil.getTime() > Number(LIMITS.maxTimestampSeconds) * 1000 + 999) {
    throw invalidArgument(`${field}.valid_until`, 'after 9999-12-31T23:59:59Z');
  } else if (validUntil.getTime() <= nowMs) {
    throw invalidArgument(`${field}.valid_until`, 'must be in the future');
  }
  return { ...info, validUntil };
}

/** A Timestamp as sent: nanos in [0, 999999999] and not after 9999-12-31T23:59:59.999999999Z. */
function checkTimestamp(field: string, t: WireTimestamp): void {
  if (!Number.isInteger(t.nanos) || t.nanos < 0 || t.nanos > 999_999_999) {
    throw invalidArgument(field, `nanos must be 0 to 999999999, got ${t.nanos}`);
  }
  if (t.seconds > LIMITS.maxTimestampSeconds) throw invalidArgument(field, 'after 9999-12-31T23:59:59Z');
}
