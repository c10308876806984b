import { HubError, Reason } from '../core/errors.js';

/** Per-merchant token bucket: `ratePerSec` sustained, bursts of two seconds' worth. */
export class PushRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; updatedMs: number }>();

  constructor(private readonly ratePerSec: number) {}

  /** Throws RESOURCE_EXHAUSTED when the merchant is over its push rate; 0 disables the limit. */
  take(merchantId: string, nowMs = Date.now()): void {
    if (this.ratePerSec <= 0) return;
    const capacity = this.ratePerSec * 2;
    let bucket = this.buckets.get(merchantId);
    if (!bucket) this.buckets.set(merchantId, (bucket = { tokens: capacity, updatedMs: nowMs }));
    bucket.tokens = Math.min(capacity, bucket.tokens + ((nowMs - bucket.updatedMs) / 1000) * this.ratePerSec);
    bucket.updatedMs = nowMs;
    if (bucket.tokens < 1) {
      // When the bucket holds one token again: the earliest moment a retry can succeed.
      const retryAfterMs = Math.max(1, Math.ceil(((1 - bucket.tokens) / this.ratePerSec) * 1000));
      throw new HubError(Reason.PushRateExceeded,
        `push rate limit: at most ${this.ratePerSec} pushes/s per merchant; retry in ${retryAfterMs} ms`,
        retryAfterMs,
      );
    }
    bucket.tokens -= 1;
  }
}
