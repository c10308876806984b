import { delay } from 'abort-controller-x';
import { isRetryable } from './errors.js';

/** How a client retries calls that failed with UNAVAILABLE. */
export interface RetryOptions {
  /** Attempts in total, the first included (default 6). 1 disables retries. */
  maxAttempts?: number;
  /** Backoff before the second attempt, in ms (default 100); it doubles with each attempt. */
  initialBackoffMs?: number;
  /** Upper bound of one backoff, in ms (default 5000). */
  maxBackoffMs?: number;
}

/** Defaults: six attempts spread over roughly six seconds covers a hub restart. */
export const DEFAULT_RETRY: Required<RetryOptions> = { maxAttempts: 6, initialBackoffMs: 100, maxBackoffMs: 5000 };

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
 */
export async function withRetry<T>(
  call: (attempt: number) => Promise<T>,
  options: Required<RetryOptions>,
  signal: AbortSignal = new AbortController().signal,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(attempt);
    } catch (error) {
      if (!isRetryable(error) || attempt >= options.maxAttempts || signal.aborted) throw error;
      await delay(signal, backoffMs(attempt, options));
    }
  }
}
