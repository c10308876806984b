import { randomBytes } from 'node:crypto';

/** Random bytes drawn in blocks: one randomBytes call serves many request ids. */
const POOL_BYTES = 10 * 512;
let pool = Buffer.alloc(0);
let offset = 0;
/** The time part of the last id, `tttttttt-tttt-7`, rebuilt once per millisecond. */
let prefixMs = -1;
let prefix = '';
const VARIANT = ['8', '9', 'a', 'b'];

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix time in ms, then 74 random bits. The hub keeps request
 * ids in a primary key; ids that start with the time are appended at the end of it instead of
 * touching a random page per push, so each commit writes fewer pages. 74 random bits per ms
 * keep ids unique across merchants and processes.
 */
export function newRequestId(nowMs = Date.now()): string {
  if (nowMs !== prefixMs) {
    const time = nowMs.toString(16).padStart(12, '0');
    prefix = `${time.slice(0, 8)}-${time.slice(8, 12)}-7`;
    prefixMs = nowMs;
  }
  if (offset + 10 > pool.length) {
    pool = randomBytes(POOL_BYTES);
    offset = 0;
  }
  // 18 hex digits (72 bits) plus 2 bits in the variant digit.
  const hex = pool.toString('hex', offset, offset + 9);
  const variant = VARIANT[pool[offset + 9]! & 3]!;
  offset += 10;
  return `${prefix}${hex.slice(0, 3)}-${variant}${hex.slice(3, 6)}-${hex.slice(6, 18)}`;
}
