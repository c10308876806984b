import { createHash } from 'node:crypto';
import type { ServiceInfo } from '../../sdk/src/gen/pushhub/v1/pushhub.js';

/**
 * A canonical text of a decoded request value: object keys sorted (so map entries compare
 * regardless of wire order), bigints and dates tagged, undefined fields left out. Decoded
 * messages carry every field (defaults included), so equal requests give equal text.
 */
function canonical(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Date) return `D${value.getTime()}`;
  if (value instanceof Uint8Array) return `B${Buffer.from(value).toString('base64')}`;
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * sha256 (hex) of what a write asks for, without its request_id: the kind of write and its
 * target and content as the merchant sent them (before defaults such as valid_until are
 * filled in, so a retry gives the same digest). Kept with the request id, it tells a retry
 * from a different request reusing the id (AIP-155).
 */
export function requestDigest(kind: 'push' | 'withdraw', request: object): string {
  const { requestId: _omitted, ...rest } = request as { requestId?: string };
  return createHash('sha256').update(kind).update('\n').update(canonical(rest)).digest('hex');
}

const str = JSON.stringify;

/** canonical(data): its keys in sorted order; `{}` (the usual case) without sorting anything. */
function dataText(data: Record<string, string>): string {
  const keys = Object.keys(data);
  if (keys.length === 0) return '{}';
  keys.sort();
  let text = '{';
  for (let i = 0; i < keys.length; i++) text += `${i === 0 ? '' : ','}${str(keys[i])}:${str(data[keys[i]!])}`;
  return `${text}}`;
}

/**
 * requestDigest('push', { receiverId, info }) without the generic walk: the same canonical
 * text (keys in sorted order, the same tags), written field by field in that fixed order, so
 * digests stored before stay valid. The generic walk (Object.entries, sort, join per object)
 * cost 4.4 µs and 5.8 KB per pushed entry, 37 % of all PushStream allocation (docs/performance.md).
 * test/hub/request-ids.test.ts checks both give the same text for every ServiceInfo shape.
 */
export function pushCanonicalText(receiverId: string, info: ServiceInfo | undefined): string {
  if (info === undefined) return `{"receiverId":${str(receiverId)}}`;
  let text = `{"info":{"body":${str(info.body)},"data":${dataText(info.data)},"key":${str(info.key)}`;
  // Offers are rarer and their messages grow: the generic walk keeps them exact.
  if (info.offer !== undefined) text += `,"offer":${canonical(info.offer)}`;
  text += `,"title":${str(info.title)}`;
  if (info.validUntil !== undefined) text += `,"validUntil":${canonical(info.validUntil)}`;
  return `${text}},"receiverId":${str(receiverId)}}`;
}

/** The digest of a push (see requestDigest), from pushCanonicalText. */
export function pushDigest(receiverId: string, info: ServiceInfo | undefined): string {
  return createHash('sha256').update(`push\n${pushCanonicalText(receiverId, info)}`).digest('hex');
}

/** The generic text, for the test that keeps pushCanonicalText equal to it. */
export const canonicalText = (value: object): string => canonical(value);
