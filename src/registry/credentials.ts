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
  private readonly verified = new Map<string, Buffer>();

  constructor(private readonly maxEntries = 100_000) {}

  digest(id: string, password: string): Buffer {
    return createHmac('sha256', this.key).update(id).update('\0').update(password).digest();
  }

  matches(id: string, digest: Buffer): boolean {
    const known = this.verified.get(id);
    return known !== undefined && timingSafeEqual(known, digest);
  }

  remember(id: string, digest: Buffer): void {
    if (this.verified.size >= this.maxEntries && !this.verified.has(id)) {
      // Evict the oldest entry (Map keeps insertion order); it only costs a re-verification.
      this.verified.delete(this.verified.keys().next().value!);
    }
    this.verified.set(id, digest);
  }

  forget(id: string): void {
    this.verified.delete(id);
  }
}

/**
 * Counts failed logins per id in a fixed window. Past the limit, further scrypt attempts for
 * that id are refused until the window passes; a pair already verified still gets in, so an
 * attacker cannot lock the real owner out.
 */
export class FailedLoginThrottle {
  private readonly failures = new Map<string, { count: number; windowStartMs: number }>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly maxTracked = 100_000,
  ) {}

  isThrottled(id: string, nowMs: number): boolean {
    const entry = this.failures.get(id);
    if (!entry) return false;
    if (nowMs - entry.windowStartMs >= this.windowMs) {
      this.failures.delete(id);
      return false;
    }
    return entry.count >= this.maxFailures;
  }

  recordFailure(id: string, nowMs: number): void {
    const entry = this.failures.get(id);
    if (!entry || nowMs - entry.windowStartMs >= this.windowMs) {
      if (this.failures.size >= this.maxTracked) this.shed(nowMs);
      this.failures.set(id, { count: 1, windowStartMs: nowMs });
    } else {
      entry.count++;
    }
  }

  /**
   * Bounds memory under a flood of ids. Drops expired and not-yet-throttled entries first, so
   * a flood of junk ids cannot wipe the count of an id under attack; only if every tracked
   * id is throttled are the oldest dropped.
   */
  private shed(nowMs: number): void {
    const target = this.maxTracked / 2;
    for (const [id, entry] of this.failures) {
      if (this.failures.size <= target) return;
      if (nowMs - entry.windowStartMs >= this.windowMs || entry.count < this.maxFailures) this.failures.delete(id);
    }
    for (const id of this.failures.keys()) {
      if (this.failures.size <= target) return;
      this.failures.delete(id);
    }
  }

  recordSuccess(id: string): void {
    this.failures.delete(id);
  }
}
