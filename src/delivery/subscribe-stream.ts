import { Status } from 'nice-grpc';
import { HubError, Reason } from '../errors.js';
import type { HubStore } from '../store/types.js';
import type { CommitQueue } from './commit-queue.js';
import type { Fanout } from './fanout.js';
import { encodeCaughtUpFrame, encodeHeartbeatFrame } from './frames.js';
import { Subscription } from './subscription.js';

export interface SubscribeDeps {
  store: HubStore;
  fanout: Fanout;
  commits: CommitQueue;
  heartbeatIntervalMs: number;
  subscriberBufferLimit: number;
  maxStreamsPerReceiver: number;
  /** The clock items live by (HubServices.now). */
  now: () => number;
}

/** Rows read per backlog query: large enough for fast catch-up, small enough not to stall the loop. */
const BACKLOG_PAGE = 2048;

/**
 * A receiver's stream of encoded SubscribeResponse frames: the backlog after the cursor (the
 * current state when the cursor is 0), then CaughtUp, then live changes.
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
  deps.fanout.attach(subscription);
  try {
    let cursor = afterSeq;
    // A snapshot (cursor 0) skips tombstones the receiver has no use for: those committed
    // before it started are for items it will never be sent. A withdrawal committed while
    // the snapshot is being read may be for an item of a page already sent, so from the
    // starting head on, tombstones are read like on a resume.
    const tombstonesAfter = afterSeq === 0 ? deps.commits.headSequence : afterSeq;
    for (;;) {
      // Head and page are read in the same tick. Rows above head are committed (the commit
      // worker's transaction is visible to this connection) but not yet published: they
      // reach this stream live, so the backlog stops at head.
      const head = deps.commits.headSequence;
      const page = deps.store.readChanges(receiverId, cursor, deps.now(), BACKLOG_PAGE, tombstonesAfter);
      let published = page.length;
      while (published > 0 && page[published - 1]!.seq > head) published--;
      for (let i = 0; i < published; i++) yield page[i]!.frame;
      if (page.length < BACKLOG_PAGE || published < page.length) {
        // Everything up to head that this receiver can see has been sent.
        cursor = Math.max(cursor, head);
        break;
      }
      cursor = page[page.length - 1]!.seq;
    }
    yield encodeCaughtUpFrame(cursor);

    for (;;) {
      const changes = await subscription.take(signal, deps.heartbeatIntervalMs);
      if (changes.length === 0) {
        yield encodeHeartbeatFrame(cursor, deps.heartbeatIntervalMs);
        continue;
      }
      const nowMs = deps.now();
      for (const change of changes) {
        if (change.seq <= cursor) continue;
        cursor = change.seq;
        if (change.validUntilMs > nowMs) yield change.frame;
      }
    }
  } finally {
    deps.fanout.detach(subscription);
  }
}
