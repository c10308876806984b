import { Status } from 'nice-grpc';
import { HubError, Reason } from '../errors.js';
import type { ChangeRecord } from '../store/types.js';

/**
 * One open Subscribe stream's live queue. Fan-out only appends (never waits), so a receiver
 * that stops reading can slow nobody else; past `limit` queued changes or `maxBytes` queued
 * frame bytes the stream is failed with RESOURCE_EXHAUSTED and the receiver resumes from its
 * cursor. The byte bound is what keeps memory in check: 10,000 maximum-size items would be
 * over 100 MB for one stream.
 */
export class Subscription {
  private queue: ChangeRecord[] = [];
  private queuedBytes = 0;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

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
      this.fail(new HubError(Status.RESOURCE_EXHAUSTED, Reason.SubscriberTooSlow, `subscribe: ${over}; resume from your last sequence`));
      return;
    }
    this.queue.push(change);
    this.queuedBytes += bytes;
    this.wake?.();
  }

  fail(error: Error): void {
    this.failure ??= error;
    this.queue = [];
    this.queuedBytes = 0;
    this.wake?.();
  }

  /**
   * Waits for queued changes and takes them all; resolves to an empty array when nothing
   * arrived within timeoutMs. Rejects when the stream failed or the signal aborted, so a
   * cancelled stream never leaves a pending wait behind.
   */
  take(signal: AbortSignal, timeoutMs: number): Promise<ChangeRecord[]> {
    const ready = this.drain();
    if (ready) return ready;
    return new Promise<ChangeRecord[]>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.wake = undefined;
      };
      const onAbort = () => {
        finish();
        reject(signal.reason ?? new Error('aborted'));
      };
      const timer = setTimeout(() => {
        finish();
        resolve([]);
      }, timeoutMs);
      this.wake = () => {
        finish();
        this.drain()!.then(resolve, reject);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private drain(): Promise<ChangeRecord[]> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    if (this.queue.length === 0) return undefined;
    const taken = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    return Promise.resolve(taken);
  }
}
