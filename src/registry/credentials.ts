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

interface AttemptEntry {
  failures: number;
  inFlight: number;
  windowStartMs: number;
}

/**
 * Counts failed attempts per key in a fixed window, plus (unless told otherwise) attempts
 * still in flight: an attempt counts against the limit from the moment it starts, so 50
 * concurrent guesses cannot all run scrypt before the first failure is recorded.
 */
export class AttemptCounter {
  private readonly entries = new Map<string, AttemptEntry>();

  constructor(
    readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly maxTracked = 100_000,
    /** Whether attempts in flight count against the limit, or only completed failures. */
    private readonly countInFlight = true,
  ) {}

  private current(key: string, nowMs: number): AttemptEntry | undefined {
    const entry = this.entries.get(key);
    if (entry && nowMs - entry.windowStartMs >= this.windowMs) {
      if (entry.inFlight === 0) {
        this.entries.delete(key);
        return undefined;
      }
      entry.failures = 0;
      entry.windowStartMs = nowMs;
    }
    return entry;
  }

  /** True when failures plus attempts in flight have reached the limit. */
  isThrottled(key: string, nowMs: number): boolean {
    const entry = this.current(key, nowMs);
    return entry !== undefined && entry.failures + (this.countInFlight ? entry.inFlight : 0) >= this.maxFailures;
  }

  begin(key: string, nowMs: number): void {
    let entry = this.current(key, nowMs);
    if (!entry) {
      if (this.entries.size >= this.maxTracked) this.shed(nowMs);
      this.entries.set(key, (entry = { failures: 0, inFlight: 0, windowStartMs: nowMs }));
    }
    entry.inFlight++;
  }

  /** Ends an attempt begun with begin(); a failure counts in the window, a success clears it when asked. */
  end(key: string, outcome: 'failed' | 'succeeded' | 'not-run', nowMs: number, clearOnSuccess: boolean): void {
    const entry = this.current(key, nowMs);
    if (!entry) return;
    entry.inFlight = Math.max(0, entry.inFlight - 1);
    if (outcome === 'failed') entry.failures++;
    if (outcome === 'succeeded' && clearOnSuccess) entry.failures = 0;
    if (entry.failures === 0 && entry.inFlight === 0) this.entries.delete(key);
  }

  /**
   * Bounds memory under a flood of keys. Drops expired and not-yet-throttled entries first, so
   * a flood of junk keys cannot wipe the count of a key under attack; only if every tracked
   * key is throttled are the oldest dropped.
   */
  private shed(nowMs: number): void {
    const target = this.maxTracked / 2;
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= target) return;
      if (nowMs - entry.windowStartMs >= this.windowMs || entry.failures + (this.countInFlight ? entry.inFlight : 0) < this.maxFailures) this.entries.delete(key);
    }
    for (const key of this.entries.keys()) {
      if (this.entries.size <= target) return;
      this.entries.delete(key);
    }
  }
}

/**
 * The login throttle. Failures are counted per (id, source address) and per source address,
 * never per id alone: ids are printed in every delivered item, so a per-id limit would let
 * anyone lock the owner out. An attacker is slowed at their own address; the owner, from
 * another address, still gets in (and a verified pair never reaches the throttle at all).
 */
export class LoginThrottle {
  private readonly perPair: AttemptCounter;
  private readonly perSource: AttemptCounter;

  constructor(maxPerPair: number, maxPerSource: number, windowMs: number, maxTracked = 100_000) {
    this.perPair = new AttemptCounter(maxPerPair, windowMs, maxTracked);
    // Per source only completed failures count: many owners behind one NAT may log in at once,
    // and the scrypt queue's per-source share already bounds what one address has in flight.
    this.perSource = new AttemptCounter(maxPerSource, windowMs, maxTracked, false);
  }

  /** Reserves an attempt, or says which limit refuses it (nothing is reserved then). */
  tryBegin(id: string, source: string, nowMs: number): 'pair' | 'source' | undefined {
    const pair = `${source}\0${id}`;
    if (this.perPair.isThrottled(pair, nowMs)) return 'pair';
    if (this.perSource.isThrottled(source, nowMs)) return 'source';
    this.perPair.begin(pair, nowMs);
    this.perSource.begin(source, nowMs);
    return undefined;
  }

  /**
   * Ends a reserved attempt. A success clears the pair's failures but not the source's: an
   * attacker must not reset their address's count by logging into an account of their own.
   */
  finish(id: string, source: string, outcome: 'failed' | 'succeeded' | 'not-run', nowMs: number): void {
    this.perPair.end(`${source}\0${id}`, outcome, nowMs, true);
    this.perSource.end(source, outcome, nowMs, false);
  }
}
