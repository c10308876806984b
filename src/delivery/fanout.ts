import { type ChangeRecord, PUBLIC_RECEIVER } from '../core/records.js';
import type { Subscription } from './subscription.js';

/**
 * In-memory routing of committed changes to open streams: a specific change goes to its
 * receiver's streams, a public change to every stream. Called only after commit.
 *
 * Also the one heartbeat ticker of all streams: every half interval it ticks each stream,
 * and a stream not written for two ticks gets a heartbeat. So no stream is ever silent for
 * longer than the interval (clients treat twice the interval as dead), and an idle stream
 * costs no timer of its own, nor a timer per wait.
 */
export class Fanout {
  private readonly byReceiver = new Map<string, Set<Subscription>>();
  private readonly everyone = new Set<Subscription>();
  private ticker: NodeJS.Timeout | undefined;

  /** @param heartbeatIntervalMs the longest a stream may stay silent, in ms. */
  constructor(private readonly heartbeatIntervalMs: number) {}

  /** Set by close: a stream attaching later (its call arrived during shutdown) fails at once. */
  private closedBy: Error | undefined;

  attach(subscription: Subscription): void {
    let own = this.byReceiver.get(subscription.receiverId);
    if (!own) this.byReceiver.set(subscription.receiverId, (own = new Set()));
    own.add(subscription);
    this.everyone.add(subscription);
    if (!this.ticker) {
      this.ticker = setInterval(() => {
        for (const s of this.everyone) s.tick();
      }, Math.max(1, Math.floor(this.heartbeatIntervalMs / 2)));
      this.ticker.unref();
    }
    // Attached first, so the stream ends through its usual detach.
    if (this.closedBy) subscription.fail(this.closedBy);
  }

  detach(subscription: Subscription): void {
    const own = this.byReceiver.get(subscription.receiverId);
    own?.delete(subscription);
    if (own?.size === 0) this.byReceiver.delete(subscription.receiverId);
    this.everyone.delete(subscription);
    if (this.everyone.size === 0 && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
  }

  streamsOf(receiverId: string): number {
    return this.byReceiver.get(receiverId)?.size ?? 0;
  }

  get size(): number {
    return this.everyone.size;
  }

  publish(changes: readonly ChangeRecord[]): void {
    for (const change of changes) {
      const targets = change.receiverId === PUBLIC_RECEIVER ? this.everyone : this.byReceiver.get(change.receiverId);
      if (targets) {
        this.deliveries += targets.size;
        for (const subscription of targets) subscription.offer(change);
      }
    }
  }

  /** Changes handed to open streams since start (read by the metrics at scrape time). */
  deliveries = 0;

  /** Ends every open stream with this error (a new history); new streams still attach. */
  failAll(error: Error): void {
    for (const subscription of this.everyone) subscription.fail(error);
  }

  /** Shutdown: ends every open stream with this error, and every stream that attaches later. */
  close(error: Error): void {
    this.closedBy = error;
    this.failAll(error);
  }
}
