import { randomBytes, randomInt } from 'node:crypto';
import type { AccountRole } from './records.js';

const ROLE_LETTER: Record<AccountRole, string> = { merchant: 'M', receiver: 'R' };

/** `<role letter><2-digit region>-<16 CSPRNG digits>`, e.g. M11-4829104729104829. */
export function newAccountId(role: AccountRole, regionCode: string): string {
  // Two unbiased 8-digit draws: randomInt rejects out-of-range samples internally.
  const digits = String(randomInt(0, 1e8)).padStart(8, '0') + String(randomInt(0, 1e8)).padStart(8, '0');
  return `${ROLE_LETTER[role]}${regionCode}-${digits}`;
}

export const ACCOUNT_ID_PATTERN = /^[MR]\d{2}-\d{16}$/;

/** A history id: 'H' and 24 hex digits (96 random bits), as the migrations draw the first one. */
export const newHistoryId = (): string => `H${randomBytes(12).toString('hex')}`;

/** 192 random bits, URL-safe, so it survives shells and `id:password` Basic encoding. */
export const newPassword = (): string => randomBytes(24).toString('base64url');

/** Random bytes drawn in blocks: one randomBytes call serves many item ids. */
const RANDOM_POOL_BYTES = 8 * 512;
let randomPool = Buffer.alloc(0);
let randomOffset = 0;

function randomHex8(): string {
  if (randomOffset + 8 > randomPool.length) {
    randomPool = randomBytes(RANDOM_POOL_BYTES);
    randomOffset = 0;
  }
  // The top bit of the first random digit is cleared (0-7): a random (v4 UUID) id of an older
  // hub has 8, 9, a or b there, so the two kinds of ids never collide.
  randomPool[randomOffset]! &= 0x7f;
  const hex = randomPool.toString('hex', randomOffset, randomOffset + 8);
  randomOffset += 8;
  return hex;
}

/**
 * Item id with a visible prefix: `I`, the item's sequence as 16 hex digits, then 16 random hex
 * digits (63 bits), so ids stay unguessable while Withdraw-by-id finds the row by its primary
 * key (no index on a random id to update per push).
 */
export const newItemId = (seq: number): string => `I${seq.toString(16).padStart(16, '0')}${randomHex8()}`;

export const ITEM_ID_PATTERN = /^I[0-9a-f]{32}$/;

/**
 * The sequence an item id carries, or undefined for an id made by an older hub (a random v4
 * UUID: its 17th digit is 8, 9, a or b) or one that is not an item id at all.
 */
export function itemIdSequence(itemId: string): number | undefined {
  if (!ITEM_ID_PATTERN.test(itemId) || itemId.charCodeAt(17) >= 0x38 /* '8' */) return undefined;
  const seq = Number.parseInt(itemId.slice(1, 17), 16);
  return Number.isSafeInteger(seq) ? seq : undefined;
}
