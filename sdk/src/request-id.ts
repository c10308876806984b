import { randomBytes } from 'node:crypto';

/** Random bytes drawn in blocks: one randomBytes call serves many request ids. */
const POOL_BYTES = 10 * 512;
let pool = Buffer.alloc(0);
let offset = 0;
const id = Buffer.alloc(16);

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix time in ms, then 74 random bits. The hub keeps request
 * ids in a primary key; ids that start with the time are appended at the end of it instead of
 * touching a random page per push, so each commit writes fewer pages. 74 random bits per ms
 * keep ids unique across merchants and processes.
 */
export function newRequestId(nowMs = Date.now()): string {
  if (offset + 10 > pool.length) {
    pool = randomBytes(POOL_BYTES);
    offset = 0;
  }
  id.writeUIntBE(nowMs, 0, 6);
  pool.copy(id, 6, offset, offset + 10);
  offset += 10;
  id[6] = 0x70 | (id[6]! & 0x0f); // version 7
  id[8] = 0x80 | (id[8]! & 0x3f); // RFC 9562 variant
  const hex = id.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
