import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import type { AccountRole } from '../store/types.js';

const ROLE_LETTER: Record<AccountRole, string> = { merchant: 'M', receiver: 'R' };

/** `<role letter><2-digit region>-<16 CSPRNG digits>`, e.g. M11-4829104729104829. */
export function newAccountId(role: AccountRole, regionCode: string): string {
  // Two unbiased 8-digit draws: randomInt rejects out-of-range samples internally.
  const digits = String(randomInt(0, 1e8)).padStart(8, '0') + String(randomInt(0, 1e8)).padStart(8, '0');
  return `${ROLE_LETTER[role]}${regionCode}-${digits}`;
}

export const ACCOUNT_ID_PATTERN = /^[MR]\d{2}-\d{16}$/;

/** 192 random bits, URL-safe, so it survives shells and `id:password` Basic encoding. */
export const newPassword = (): string => randomBytes(24).toString('base64url');

/** Opaque item id with a visible prefix. */
export const newItemId = (): string => `I${randomUUID().replaceAll('-', '')}`;
