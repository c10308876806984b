import { Status } from 'nice-grpc';
import { HubError, Reason } from '../errors.js';
import type { HubStore } from '../store/types.js';
import type { CommitQueue } from './commit-queue.js';
import type { Fanout } from './fanout.js';
import { FrameBatch, encodeCaughtUpFrame, encodeHeartbeatFrame } from './frames.js';
import { Subscription } from './subscription.js';

export interface SubscribeDeps {
  store: HubStore;
  fanout: Fanout;
  commits: CommitQueue;
  heartbeatIntervalMs: number;
  subscriberBufferLimit: number;
  maxStreamsPerReceiver: number;
}

/** Rows read per backlog query: large enough for fast catch-up, small enough not to stall the loop. */
const BACKLOG_PAGE = 2048;

/**
 * A receiver's stream of encoded SubscribeResponse frames: the backlog after the cursor (the
 * current state when the cursor is 0), then CaughtUp, then live changes.
 *
 * Each write carries what is ready when the stream can be written (see FrameBatch for the
 * caps): a backlog page (its last batch with the CaughtUp), or everything the live queue
 * holds. Nothing ever waits to fill a batch.
 *
 * Ordering without gaps or duplicates: the live listener is attached before the backlog is
 * read; each backlog page and the published head are read in the same tick, and the backlog
 * stops at that head, so every change is either in the backlog (seq <= cursor) or queued
 * live (seq > cursor). Live changes at or below the cursor are dropped.
 */
export async function* streamChanges(
  receiverId: string,
  afterSeq: number,
  signal: AbortSignal,
  deps: SubscribeDeps,
): AsyncGenerator<Uint8Array> {
  if (deps.fanout.streamsOf(receiverId) >= deps.maxStreamsPerReceiver) {
    throw new HubError(
      Status.RESOURCE_EXHAUSTED,
      Reason.TooManyStreams,
      `subscribe: this receiver already has ${deps.maxStreamsPerReceiver} open streams (max streams per receiver)`,
    );
  }
  if (afterSeq > deps.commits.headSequence) {
    throw new HubError(
      Status.OUT_OF_RANGE,
      Reason.CursorOutOfRange,
      `after_sequence: ${afterSeq} is beyond the newest sequence ${deps.commits.headSequence}`,
    );
  }
  const subscription = new Subscription(receiverId, deps.subscriberBufferLimit);
  // One listener per stream, not per wait: a cancelled stream fails its queue, which ends
  // the wait below with the signal's reason.
  const onAbort = () => subscription.fail((signal.reason as Error | undefined) ?? new Error('aborted'));
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();
  deps.fanout.attach(subscription);
  const batch = new FrameBatch();
  try {
    let cursor = afterSeq;
    const snapshot = afterSeq === 0;
    for (;;) {
      // Head and page are read in the same tick. Rows above head are committed (the commit
      // worker's transaction is visible to this connection) but not yet published: they
      // reach this stream live, so the backlog stops at head.
      const head = deps.commits.headSequence;
      const page = deps.store.readChanges(receiverId, cursor, Date.now(), BACKLOG_PAGE, snapshot);
      let published = page.length;
      while (published > 0 && page[published - 1]!.seq > head) published--;
      for (let i = 0; i < published; i++) {
        const full = batch.add(page[i]!.frame);
        if (full) {
          yield full;
          subscription.wrote();
        }
      }
      if (page.length < BACKLOG_PAGE || published < page.length) {
        // Everything up to head that this receiver can see has been sent.
        cursor = Math.max(cursor, head);
        break;
      }
      const rest = batch.take();
      if (rest) {
        yield rest;
        subscription.wrote();
      }
      cursor = page[page.length - 1]!.seq;
    }
    const last = batch.add(encodeCaughtUpFrame(cursor));
    if (last) yield last;
    yield batch.take()!;

    for (;;) {
      const changes = subscription.poll();
      if (changes === undefined) {
        await subscription.wait();
        continue;
      }
      if (changes.length === 0) {
        yield encodeHeartbeatFrame(cursor, deps.heartbeatIntervalMs);
        continue;
      }
      const nowMs = Date.now();
      for (const change of changes) {
        if (change.seq <= cursor) continue;
        cursor = change.seq;
        if (change.validUntilMs > nowMs) {
          const full = batch.add(change.frame);
          if (full) yield full;
        }
      }
      const rest = batch.take();
      if (rest) yield rest;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    deps.fanout.detach(subscription);
  }
}
