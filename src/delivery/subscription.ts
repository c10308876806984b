import { HubError, Reason } from '../core/errors.js';
import type { ChangeRecord } from '../core/records.js';

/** What `poll` hands out when a heartbeat is due and nothing is queued. */
const HEARTBEAT: readonly ChangeRecord[] = Object.freeze([]);

/**
 * One open Subscribe stream's live queue. Fan-out only appends (never waits), so a receiver
 * that stops reading can slow nobody else; past `limit` queued changes or `maxBytes` queued
 * frame bytes the stream is failed with RESOURCE_EXHAUSTED and the receiver resumes from its
 * cursor. The byte bound is what keeps memory in check: 10,000 maximum-size items would be
 * over 100 MB for one stream.
 *
 * An idle stream holds no timer of its own: the fan-out's one heartbeat ticker calls
 * `tick()` on every stream, and a stream that was not written for two ticks is due a
 * heartbeat (see Fanout).
 */
export class Subscription {
  private queue: ChangeRecord[] = [];
  /** The array poll() handed out last; the queue's next array (see poll). */
  private spare: ChangeRecord[] = [];
  private queuedBytes = 0;
  private failure: Error | undefined;
  /**
   * Called when `poll` has something to hand out (or will throw): the stream's writer
   * (SubscribeStream), which defers its write to a microtask so one commit's changes go out
   * together. A callback, not a promise per wait: no allocation per event.
   */
  onWake: (() => void) | undefined;
  private quietTicks = 0;
  private heartbeatDue = false;

  constructor(
    readonly receiverId: string,
    private readonly limit: number,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {}

  offer(change: ChangeRecord): void {
    if (this.failure) return;
    const bytes = change.frame.byteLength;
    if (this.queue.length >= this.limit || this.queuedBytes + bytes > this.maxBytes) {
      const over = this.queue.length >= this.limit ? `more than ${this.limit} undelivered events` : `more than ${this.maxBytes} bytes of undelivered events`;
      this.fail(new HubError(Reason.SubscriberTooSlow, `subscribe: ${over}; resume from your last sequence`));
      return;
    }
    this.queue.push(change);
    this.queuedBytes += bytes;
    if (this.queue.length === 1) this.wakeUp();
  }

  fail(error: Error): void {
    this.failure ??= error;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.wakeUp();
  }

  /** Called by the shared heartbeat ticker; a stream quiet for two ticks is due a heartbeat. */
  tick(): void {
    if (++this.quietTicks < 2 || this.heartbeatDue) return;
    this.heartbeatDue = true;
    this.wakeUp();
  }

  /** The stream was just written (a backlog page): the quiet spell starts again. */
  wrote(): void {
    this.quietTicks = 0;
  }

  /**
   * Takes everything queued: the changes, an empty array when only a heartbeat is due, or
   * undefined when there is nothing (then `wait`). Throws when the stream failed (too slow,
   * shutdown, cancelled). The array returned is valid until the next poll.
   */
  poll(): readonly ChangeRecord[] | undefined {
    if (this.failure) throw this.failure;
    if (this.queue.length === 0 && !this.heartbeatDue) return undefined;
    this.quietTicks = 0;
    this.heartbeatDue = false;
    if (this.queue.length === 0) return HEARTBEAT;
    // Two arrays in turn, no new one per poll: the caller is done with the array it took
    // last time when it polls again.
    const taken = this.queue;
    const spare = this.spare;
    spare.length = 0;
    this.queue = spare;
    this.spare = taken;
    this.queuedBytes = 0;
    return taken;
  }

  /** Throws the failure when the stream failed (cancelled, too slow, shutdown). */
  check(): void {
    if (this.failure) throw this.failure;
  }

  /** Whether the stream failed (poll throws). */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  private wakeUp(): void {
    this.onWake?.();
  }
}
