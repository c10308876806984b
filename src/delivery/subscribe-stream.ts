import { HubError, Reason } from '../core/errors.js';
import type { ChangeFeed, ChangeReader, History, HistoryStore } from '../store/ports.js';
import type { Fanout } from './fanout.js';
import { FrameBatch, encodeCaughtUpFrame, encodeHeartbeatFrame, encodeResetFrame } from '../core/frames.js';
import { ResetReason } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { Subscription } from './subscription.js';
import { ChangeKind } from '../core/records.js';

export interface SubscribeDeps {
  changes: ChangeReader;
  /** This node's feed: its head is the newest sequence this node's fan-out has published. */
  feed: Pick<ChangeFeed, 'head'>;
  fanout: Fanout;
  /** The history cursors belong to. */
  history: Pick<HistoryStore, 'current' | 'rotate'>;
  heartbeatIntervalMs: number;
  subscriberBufferLimit: number;
  subscriberBufferBytes: number;
  maxStreamsPerReceiver: number;
  /** The clock items live by (HubServices.now). */
  now: () => number;
  /** The merchants a receiver blocks now (read once per stream, after its backlog). */
  blockedMerchants?: (receiverId: string) => Promise<string[]>;
  /** Merchants suspended now, kept current by this node's feed (see AccountFilters in context.ts). */
  suspendedMerchants?: ReadonlySet<string>;
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
  /** Sequence of the last frame; the next page reads after it. */
  lastSeq: number;
}

/**
 * Reads up to `rows` changes after cursor, at or below head (rows above it are committed but
 * not yet published by this node's feed: they reach the stream live), and at most
 * BACKLOG_PAGE_BYTES of them (at least one). Only the frames outlive this call.
 */
async function readBacklogPage(
  deps: SubscribeDeps,
  receiverId: string,
  cursor: number,
  head: number,
  rows: number,
  snapshotFrom: number | undefined,
): Promise<BacklogPage> {
  const page = await deps.changes.receiverChanges({
    receiverId,
    afterSeq: cursor,
    upToSeq: head,
    nowMs: deps.now(),
    limit: rows,
    maxBytes: BACKLOG_PAGE_BYTES,
    snapshotFrom,
  });
  return { frames: page.map((change) => change.frame), lastSeq: page.length > 0 ? page[page.length - 1]!.seq : cursor };
}

/**
 * A cursor beyond this node's published head is ahead only if it is beyond what the store
 * holds (returns true): on a cluster a receiver may come from a node whose feed is a few ms
 * ahead of this one's, and then waits for this feed to catch up (bounded: the feed polls
 * every second).
 */
async function cursorAhead(deps: SubscribeDeps, afterSeq: number, signal: AbortSignal): Promise<boolean> {
  if (afterSeq <= deps.feed.head) return false;
  const stored = await deps.changes.headSequence();
  if (afterSeq > stored) return true;
  const deadline = Date.now() + 5_000;
  while (afterSeq > deps.feed.head && !signal.aborted) {
    if (Date.now() > deadline) throw new HubError(Reason.ShuttingDown, 'subscribe: this node is behind the store; retry on another node');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}

/**
 * A cursor-ahead rotation is not repeated within this long of the previous one: one is all a
 * database that went back in time needs (every receiver of the old history resets), and a
 * receiver that sends made-up cursors cannot make every receiver reload its state more than
 * once per this interval. The receiver itself is reset either way.
 */
export const CURSOR_AHEAD_ROTATION_INTERVAL_MS = 10 * 60_000;

/** Why the state a receiver holds (its cursor and history) cannot be resumed from, if so. */
function resetReasonFor(history: History, clientHistoryId: string): ResetReason | undefined {
  // An empty history id is a client without one (a new client, or one older than history
  // ids): its cursor is taken as of the current history.
  if (clientHistoryId === '' || clientHistoryId === history.id) return undefined;
  if (history.start === 'restored') return ResetReason.RESET_REASON_RESTORED;
  if (history.start === 'cursor-ahead') return ResetReason.RESET_REASON_CURSOR_AHEAD;
  return ResetReason.RESET_REASON_UNKNOWN_HISTORY;
}

/**
 * Decides where a stream starts: the cursor in the current history, or a Reset (then the
 * receiver's full state, as for cursor 0). A cursor beyond the head means the database went
 * back in time: the history is rotated (durably, for every node), so every other receiver of
 * the old history resets too.
 */
async function resolveStart(
  deps: SubscribeDeps,
  afterSeq: number,
  clientHistoryId: string,
  signal: AbortSignal,
): Promise<{ history: History; reset?: ResetReason }> {
  let history = deps.history.current();
  const reset = resetReasonFor(history, clientHistoryId);
  if (reset !== undefined) return { history, reset };
  if (afterSeq === 0 || !(await cursorAhead(deps, afterSeq, signal))) return { history };
  const nowMs = Date.now();
  if (history.start !== 'cursor-ahead' || nowMs - history.startedAtMs >= CURSOR_AHEAD_ROTATION_INTERVAL_MS) {
    history = await deps.history.rotate(history.id, 'cursor-ahead', nowMs);
  }
  return { history, reset: ResetReason.RESET_REASON_CURSOR_AHEAD };
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
 * read; each backlog page is read up to the head this node's feed has published (the feed
 * publishes in sequence order, every change once), so every change is either in the backlog
 * (seq <= cursor) or queued live (seq > cursor). Live changes at or below the cursor are
 * dropped.
 */
export async function* streamChanges(
  receiverId: string,
  afterSeq: number,
  clientHistoryId: string,
  signal: AbortSignal,
  deps: SubscribeDeps,
): AsyncGenerator<Uint8Array> {
  if (deps.fanout.streamsOf(receiverId) >= deps.maxStreamsPerReceiver) {
    throw new HubError(Reason.TooManyStreams,
      `subscribe: this receiver already has ${deps.maxStreamsPerReceiver} open streams (max streams per receiver)`,
    );
  }
  const start = await resolveStart(deps, afterSeq, clientHistoryId, signal);
  const historyId = start.history.id;
  // A reset starts over from the receiver's full state, in the current history.
  if (start.reset !== undefined) afterSeq = 0;
  const subscription = new Subscription(receiverId, deps.subscriberBufferLimit, deps.subscriberBufferBytes);
  // One listener per stream, not per wait: a cancelled stream fails its queue, which ends
  // the wait below with the signal's reason.
  const onAbort = () => subscription.fail((signal.reason as Error | undefined) ?? new Error('aborted'));
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();
  deps.fanout.attach(subscription);
  // A new history that started before the attach did not fail this stream: fail it here.
  if (deps.history.current().id !== historyId) {
    subscription.fail(new HubError(Reason.HistoryChanged, 'subscribe: the hub started a new history; reconnect (your state will be reset)'));
  }
  const batch = new FrameBatch();
  if (start.reset !== undefined) batch.add(encodeResetFrame(start.reset, historyId));
  try {
    let cursor = afterSeq;
    // A snapshot (cursor 0) skips tombstones the receiver has no use for: those committed
    // before it started are for items it will never be sent. A withdrawal committed while
    // the snapshot is being read may be for an item of a page already sent, so from the
    // starting head on, tombstones are read like on a resume.
    const snapshotFrom = afterSeq === 0 ? deps.feed.head : undefined;
    let rows = BACKLOG_MIN_ROWS;
    for (;;) {
      // The page is bounded by the head this node has published: rows above it are
      // committed but not yet fanned out here, and reach this stream live.
      const head = deps.feed.head;
      const page = await readBacklogPage(deps, receiverId, cursor, head, rows, snapshotFrom);
      for (const frame of page.frames) {
        const full = batch.add(frame);
        if (full) {
          yield full;
          subscription.wrote();
        }
      }
      if (page.frames.length === 0) {
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
    // Live items of merchants this receiver blocks (or that are suspended) are dropped here;
    // the backlog's read left them out already. Read after the backlog: a block committed
    // since is in this set or still queued as a marker, which updates the set in order.
    const blocked = new Set(deps.blockedMerchants ? await deps.blockedMerchants(receiverId) : []);
    const suspended = deps.suspendedMerchants;
    const last = batch.add(encodeCaughtUpFrame(cursor, historyId));
    if (last) yield last;
    yield batch.take()!;

    for (;;) {
      const changes = subscription.poll();
      if (changes === undefined) {
        await subscription.wait();
        continue;
      }
      if (changes.length === 0) {
        yield encodeHeartbeatFrame(cursor, deps.heartbeatIntervalMs, historyId);
        continue;
      }
      const nowMs = deps.now();
      for (const change of changes) {
        if (change.seq <= cursor) continue;
        cursor = change.seq;
        if (change.kind !== ChangeKind.Item && change.kind !== ChangeKind.Withdrawal && !passesBars(change, receiverId, blocked, suspended)) continue;
        if (change.kind === ChangeKind.Item && (blocked.size > 0 || suspended?.size) && isBarred(change.merchantId, blocked, suspended)) continue;
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

const isBarred = (merchantId: string, blocked: ReadonlySet<string>, suspended: ReadonlySet<string> | undefined) =>
  blocked.has(merchantId) || (suspended?.has(merchantId) ?? false);

/**
 * Copies pass unless their merchant is barred; markers never pass (their frames are empty),
 * and a marker of this receiver updates its set of blocked merchants, in sequence order.
 */
function passesBars(
  change: { kind: number; receiverId: string; merchantId: string },
  receiverId: string,
  blocked: Set<string>,
  suspended: ReadonlySet<string> | undefined,
): boolean {
  if (change.kind === ChangeKind.Copy) return !isBarred(change.merchantId, blocked, suspended);
  if (change.receiverId === receiverId) {
    if (change.kind === ChangeKind.Barred) blocked.add(change.merchantId);
    else if (change.kind === ChangeKind.Unbarred) blocked.delete(change.merchantId);
  }
  return false;
}
