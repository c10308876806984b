// Login attempts counted per (id, source address) and per source address: ids are public
// (every delivered item carries them), so nothing is ever counted per id alone.

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

  /** True when completed failures alone have reached the limit (attempts in flight aside). */
  hasFailedOut(key: string, nowMs: number): boolean {
    const entry = this.current(key, nowMs);
    return entry !== undefined && entry.failures >= this.maxFailures;
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
   * Checks a reserved attempt again when its scrypt run is about to start: whether the pair
   * or the source failed out while it waited in the queue (the attempts that waited beside it
   * failed). Such a run is refused without scrypt work: a flooding address throttled after
   * filling its queue share must not keep the queue busy with the runs it left there.
   */
  throttledSince(id: string, source: string, nowMs: number): 'pair' | 'source' | undefined {
    if (this.perPair.hasFailedOut(`${source}\0${id}`, nowMs)) return 'pair';
    if (this.perSource.hasFailedOut(source, nowMs)) return 'source';
    return undefined;
  }

  /**
   * Ends a reserved attempt. A success clears the pair's failures but not the source's: an
   * attacker must not reset their address's count by logging into an account of their own.
   * A refused attempt (AUTH_BUSY: the source's share of the scrypt queue was full) counts as a
   * failure of the source, not of the pair: the id's owner did nothing.
   */
  finish(id: string, source: string, outcome: 'failed' | 'succeeded' | 'refused' | 'not-run', nowMs: number): void {
    this.perPair.end(`${source}\0${id}`, outcome === 'refused' ? 'not-run' : outcome, nowMs, true);
    this.perSource.end(source, outcome === 'refused' ? 'failed' : outcome, nowMs, false);
  }
}
