import { delay } from 'abort-controller-x';
import { isRetryable, rateLimitWaitMs } from './errors.js';
import { RatePacer } from './rate-pacer.js';

/** How a client retries calls that failed with UNAVAILABLE. */
export interface RetryOptions {
  /** Attempts in total, the first included (default 6). 1 disables retries. */
  maxAttempts?: number;
  /** Backoff before the second attempt, in ms (default 100); it doubles with each attempt. */
  initialBackoffMs?: number;
  /** Upper bound of one backoff, in ms (default 5000). */
  maxBackoffMs?: number;
}

/**
 * Defaults: 10 attempts, backoff from 200 ms doubling up to 2 s. With the jitter below (each
 * backoff between half and all of its ceiling) the nine waits add up to at least 6.5 s and at
 * most 13 s, so a call keeps trying through a hub restart of up to ~6 s; at most 2 s pass
 * between the hub being back and the next attempt. test/sdk/retry.test.ts holds them to it.
 */
export const DEFAULT_RETRY: Required<RetryOptions> = { maxAttempts: 10, initialBackoffMs: 200, maxBackoffMs: 2000 };

/** The shortest and longest total of the backoffs `options` can wait before giving up, in ms. */
export function retrySpanMs(options: Required<RetryOptions>): { min: number; max: number } {
  let max = 0;
  for (let attempt = 1; attempt < options.maxAttempts; attempt++) max += Math.min(options.maxBackoffMs, options.initialBackoffMs * 2 ** (attempt - 1));
  return { min: max / 2, max };
}

/**
 * Backoff before attempt `attempt + 1` (attempt counts from 1): exponential with full jitter,
 * so clients cut off by the same hub restart do not all come back in the same instant.
 */
export function backoffMs(attempt: number, options: Required<RetryOptions>): number {
  const ceiling = Math.min(options.maxBackoffMs, options.initialBackoffMs * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/**
 * Runs `call` until it succeeds, fails with a non-retryable error, or runs out of attempts.
 * Only UNAVAILABLE is retried: the call never reached the hub or its answer was lost, and a
 * push carries the same request id on every attempt, so the hub applies it at most once.
 * With `pacing`, a push refused with PUSH_RATE_EXCEEDED is sent again when the hub's hint
 * says (spread by the pacer), as long as that is before the deadline; such waits do not
 * count as attempts.
 */
export async function withRetry<T>(
  call: (attempt: number) => Promise<T>,
  options: Required<RetryOptions>,
  signal: AbortSignal = new AbortController().signal,
  pacing?: Pacing,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      if (pacing) await RatePacer.wait(pacing.pacer.turn(), signal);
      return await call(attempt);
    } catch (error) {
      if (signal.aborted) throw error;
      // PUSH_RATE_EXCEEDED: nothing was stored; wait as the hub says, until the call's deadline.
      const waitMs = pacing ? rateLimitWaitMs(error) : 0;
      if (waitMs > 0) {
        const wait = pacing!.pacer.reserve(waitMs);
        if (Date.now() + wait > pacing!.deadlineAtMs) throw error;
        await delay(signal, wait);
        attempt--; // a paced retry is not a failed attempt
        continue;
      }
      if (!isRetryable(error) || attempt >= options.maxAttempts) throw error;
      await delay(signal, backoffMs(attempt, options));
    }
  }
}

/** How withRetry paces pushes the hub refused for their rate (merchant calls only). */
export interface Pacing {
  /** The merchant client's pacer, shared by its calls and push streams. */
  pacer: RatePacer;
  /** Retries after PUSH_RATE_EXCEEDED stop when they would start after this time (ms since the epoch). */
  deadlineAtMs: number;
}
