import { delay } from 'abort-controller-x';

/**
 * Paces a merchant's pushes after the hub refused some with `PUSH_RATE_EXCEEDED`. The hub's
 * hint (`retryAfterMs`) is when its bucket holds one push again, so refused pushes are given
 * send times one hint apart, in the order they were refused: they come back at about the
 * hub's rate instead of all at once (which would be refused again, and flood its log). While
 * such slots are taken, new pushes queue behind them too, so retries are not starved.
 */
export class RatePacer {
  /** The earliest time the next paced push may go, in ms since the epoch; 0 when not pacing. */
  private nextSlotMs = 0;
  /** The latest hint: the spacing of slots. */
  private spacingMs = 0;

  /** Reserves a send time for a push refused with this hint; returns how long to wait, in ms. */
  reserve(retryAfterMs: number, now = Date.now()): number {
    this.spacingMs = retryAfterMs;
    const slot = Math.max(now + retryAfterMs, this.nextSlotMs);
    this.nextSlotMs = slot + retryAfterMs;
    return slot - now;
  }

  /** How long a new push waits for its turn: 0 unless refused pushes are still queued. */
  turn(now = Date.now()): number {
    if (this.nextSlotMs <= now) return 0;
    const slot = this.nextSlotMs;
    this.nextSlotMs = slot + this.spacingMs;
    return slot - now;
  }

  /** Waits `ms` (if any), or until `signal` aborts. */
  static wait(ms: number, signal?: AbortSignal): Promise<void> {
    return ms > 0 ? delay(signal ?? new AbortController().signal, ms) : Promise.resolve();
  }
}
