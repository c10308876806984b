import { Status } from 'nice-grpc';
import { HubError, Reason } from '../core/errors.js';
import type { HubStore } from '../core/records.js';
import type { CommitQueue } from './commit-queue.js';
import type { Fanout } from './fanout.js';
import { FrameBatch, encodeCaughtUpFrame, encodeHeartbeatFrame } from '../core/frames.js';
import { Subscription } from './subscription.js';

export interface SubscribeDeps {
  store: HubStore;
  fanout: Fanout;
  commits: CommitQueue;
  heartbeatIntervalMs: number;
  subscriberBufferLimit: number;
  subscriberBufferBytes: number;
  maxStreamsPerReceiver: number;
  /** The clock items live by (HubServices.now). */
  now: () => number;
}

// --- Backlog paging (bytes, not rows) ---------------------------------------------------
/** Most rows read per backlog query: large enough for fast catch-up, small enough not to stall the loop. */
const BACKLOG_PAGE_ROWS = 2048;
/**
 * Most frame bytes one backlog page holds (256 KiB). A stream whose client stops reading is
 * suspended with its page in memory: 2,048 maximum-size rows would be ~25 MB per stream.
 */
const BACKLOG_PAGE_BYTES = 256 * 1024;
/** Rows asked for before frame sizes are known, and the fewest ever asked for. */
const BACKLOG_MIN_ROWS = 16;

interface BacklogPage {
  frames: Uint8Array[];
  /** Sequence of the last frame kept; the next page reads after it. */
  lastSeq: number;
  /** Every change up to head has been read. */
  done: boolean;
}

/**
 * Reads up to `rows` changes after cursor and keeps at most BACKLOG_PAGE_BYTES of them (at
 * least one) that are at or below head. Only the kept frames outlive this call.
 */
function readBacklogPage(deps: SubscribeDeps, receiverId: string, cursor: number, head: number, rows: number, tombstonesAfter: number): BacklogPage {
  const page = deps.store.readChanges(receiverId, cursor, deps.now(), rows, tombstonesAfter);
  const frames: Uint8Array[] = [];
  let bytes = 0;
  let lastSeq = cursor;
  for (const change of page) {
    // Rows above head are committed but not yet published: they reach the stream live.
    if (change.seq > head) return { frames, lastSeq, done: true };
    if (frames.length > 0 && bytes + change.frame.byteLength > BACKLOG_PAGE_BYTES) return { frames, lastSeq, done: false };
    frames.push(change.frame);
    bytes += change.frame.byteLength;
    lastSeq = change.seq;
  }
  return { frames, lastSeq, done: page.length < rows };
}

/** Rows for the next page: what fits BACKLOG_PAGE_BYTES at the last page's mean frame size. */
function nextPageRows(page: BacklogPage): number {
  if (page.frames.length === 0) return BACKLOG_MIN_ROWS;
  const mean = page.frames.reduce((sum, frame) => sum + frame.byteLength, 0) / page.frames.length;
  return Math.max(BACKLOG_MIN_ROWS, Math.min(BACKLOG_PAGE_ROWS, Math.floor(BACKLOG_PAGE_BYTES / Math.max(1, mean))));
}
// --- end backlog paging ------------------------------------------------------------------

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
  const subscription = new Subscription(receiverId, deps.subscriberBufferLimit, deps.subscriberBufferBytes);
  // One listener per stream, not per wait: a cancelled stream fails its queue, which ends
  // the wait below with the signal's reason.
  const onAbort = () => subscription.fail((signal.reason as Error | undefined) ?? new Error('aborted'));
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();
  deps.fanout.attach(subscription);
  const batch = new FrameBatch();
  try {
    let cursor = afterSeq;
    // A snapshot (cursor 0) skips tombstones the receiver has no use for: those committed
    // before it started are for items it will never be sent. A withdrawal committed while
    // the snapshot is being read may be for an item of a page already sent, so from the
    // starting head on, tombstones are read like on a resume.
    const tombstonesAfter = afterSeq === 0 ? deps.commits.headSequence : afterSeq;
    let rows = BACKLOG_MIN_ROWS;
    for (;;) {
      // Head and page are read in the same tick. Rows above head are committed (the commit
      // worker's transaction is visible to this connection) but not yet published: they
      // reach this stream live, so the backlog stops at head.
      const head = deps.commits.headSequence;
      const page = readBacklogPage(deps, receiverId, cursor, head, rows, tombstonesAfter);
      for (const frame of page.frames) {
        const full = batch.add(frame);
        if (full) {
          yield full;
          subscription.wrote();
        }
      }
      if (page.done) {
        // Everything up to head that this receiver can see has been sent.
        cursor = Math.max(cursor, head);
        break;
      }
      const rest = batch.take();
      if (rest) {
        yield rest;
        subscription.wrote();
      }
      cursor = page.lastSeq;
      rows = nextPageRows(page);
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
      const nowMs = deps.now();
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
