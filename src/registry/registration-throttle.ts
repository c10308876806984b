import { HubError, Reason } from '../core/errors.js';

/**
 * What a wrong registration token costs from the source's bucket, in registrations: guessing
 * a token is slowed ten times more than registering, so a source that knows no token gets
 * `burst / 10` guesses and then one per `10 / rate` seconds.
 */
export const WRONG_TOKEN_COST = 10;

/**
 * Per-source token bucket for Register: `ratePerSec` sustained, `burst` at once. 0 disables
 * it. Memory is bounded: full buckets carry no information and are dropped first.
 */
export class RegistrationThrottle {
  private readonly buckets = new Map<string, { tokens: number; updatedMs: number }>();

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly maxTracked = 100_000,
  ) {}

  private refill(source: string, nowMs: number) {
    let bucket = this.buckets.get(source);
    if (!bucket) {
      if (this.buckets.size >= this.maxTracked) this.shed(nowMs);
      this.buckets.set(source, (bucket = { tokens: this.burst, updatedMs: nowMs }));
    }
    bucket.tokens = Math.min(this.burst, bucket.tokens + (Math.max(0, nowMs - bucket.updatedMs) / 1000) * this.ratePerSec);
    bucket.updatedMs = nowMs;
    return bucket;
  }

  /** Throws REGISTRATION_THROTTLED unless the source has at least one registration left. */
  check(source: string, nowMs: number): void {
    if (this.ratePerSec <= 0) return;
    const bucket = this.refill(source, nowMs);
    if (bucket.tokens < 1) {
      const waitS = Math.ceil((1 - bucket.tokens) / this.ratePerSec);
      throw new HubError(Reason.RegistrationThrottled,
        `registration: too many registrations or wrong registration tokens from this address; retry in ${waitS} s`,
      );
    }
  }

  /** Charges `cost` registrations (may go negative: a burst of wrong tokens is paid back in time). */
  charge(source: string, cost: number, nowMs: number): void {
    if (this.ratePerSec <= 0) return;
    this.refill(source, nowMs).tokens -= cost;
  }

  private shed(nowMs: number): void {
    for (const [source, bucket] of this.buckets) {
      if (this.buckets.size < this.maxTracked / 2) return;
      if (bucket.tokens + ((nowMs - bucket.updatedMs) / 1000) * this.ratePerSec >= this.burst) this.buckets.delete(source);
    }
    for (const source of this.buckets.keys()) {
      if (this.buckets.size < this.maxTracked / 2) return;
      this.buckets.delete(source);
    }
  }
}
