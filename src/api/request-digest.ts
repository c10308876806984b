import { createHash } from 'node:crypto';

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
