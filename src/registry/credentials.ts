import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import * as scryptModule from 'scrypt-kdf';

// scrypt-kdf 4 is ESM with a default export only, though its .d.ts declares named exports.
const scrypt = (scryptModule as unknown as { default: typeof scryptModule }).default;

/** scrypt-kdf hash of a password at cost 2^logN (r=8, p=1). */
export async function hashPassword(password: string, logN: number): Promise<Buffer> {
  return Buffer.from(await scrypt.kdf(Buffer.from(password, 'utf8'), { logN, r: 8, p: 1 }));
}

/** The cost (log2 N) a scrypt-kdf hash was made with: byte 7 of its header. */
export const scryptCostOf = (hash: Buffer): number => hash[7]!;

/**
 * Compares two secrets (e.g. a registration token) in time that depends on neither: both
 * are hashed to 32 bytes first, so not even the length leaks.
 */
export function secretsEqual(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

export async function verifyPassword(hash: Buffer, password: string): Promise<boolean> {
  return scrypt.verify(hash, Buffer.from(password, 'utf8'));
}

/**
 * Remembers credential pairs that scrypt has verified, so a push costs one HMAC instead of
 * one scrypt (~60 ms). Only successes are stored, and only as HMAC(processKey, id:password):
 * a memory dump does not reveal passwords, and a wrong password can never match.
 */
export class VerifiedCredentialCache {
  private readonly key = randomBytes(32);
  /** Per id: the verified digest and the stored hash it was verified against. */
  private readonly verified = new Map<string, { digest: Buffer; passwordHash: Buffer }>();

  constructor(private readonly maxEntries = 100_000) {}

  digest(id: string, password: string): Buffer {
    return createHmac('sha256', this.key).update(id).update('\0').update(password).digest();
  }

  /** The stored hash this pair was verified against, or undefined when the pair is not remembered. */
  lookup(id: string, digest: Buffer): Buffer | undefined {
    const known = this.verified.get(id);
    return known !== undefined && timingSafeEqual(known.digest, digest) ? known.passwordHash : undefined;
  }

  /**
   * Remembers a verified pair; returns the remembered copy of passwordHash (hand that on, so
   * the caller's buffer can be collected). Both live in one copy in Node's shared Buffer pool:
   * an entry per connected account costs two small views, not two ArrayBuffers with their
   * native backing stores (~1 KiB per account at 10,000 idle receivers).
   */
  remember(id: string, digest: Buffer, passwordHash: Buffer): Buffer {
    if (this.verified.size >= this.maxEntries && !this.verified.has(id)) {
      // Evict the oldest entry (Map keeps insertion order); it only costs a re-verification.
      this.verified.delete(this.verified.keys().next().value!);
    }
    const both = Buffer.concat([digest, passwordHash]);
    const entry = { digest: both.subarray(0, digest.length), passwordHash: both.subarray(digest.length) };
    this.verified.set(id, entry);
    return entry.passwordHash;
  }

  forget(id: string): void {
    this.verified.delete(id);
  }
}
