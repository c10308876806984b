import { HubError, Reason } from '../core/errors.js';
import type { ChangeFeed, ChangeReader, History, HistoryStore } from '../store/ports.js';
import type { Fanout } from './fanout.js';
import { FrameBatch, encodeCaughtUpFrame, encodeHeartbeatFrame, encodeResetFrame, grpcMessage } from '../core/frames.js';
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
async function cursorAhead(deps: SubscribeDeps, afterSeq: number, stream: { readonly failed: boolean }): Promise<boolean> {
  if (afterSeq <= deps.feed.head) return false;
  const stored = await deps.changes.headSequence();
  if (afterSeq > stored) return true;
  const deadline = Date.now() + 5_000;
  while (afterSeq > deps.feed.head && !stream.failed) {
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
export function resetReasonFor(history: History, clientHistoryId: string): ResetReason | undefined {
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
  stream: { readonly failed: boolean },
): Promise<{ history: History; reset?: ResetReason }> {
  let history = deps.history.current();
  const reset = resetReasonFor(history, clientHistoryId);
  if (reset !== undefined) return { history, reset };
  if (afterSeq === 0 || !(await cursorAhead(deps, afterSeq, stream))) return { history };
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
 * Where a Subscribe stream's responses go: whole gRPC messages (FrameBatch), written to the
 * HTTP/2 stream as they are (api/subscribe-call.ts).
 */
export interface MessageSink {
  /** Writes one message; false when the sink is full (then wait for `onDrain` before the next). */
  write(message: Buffer): boolean;
  /** Calls `resume` once when the sink can take more after a write returned false. */
  onDrain(resume: () => void): void;
}

/**
 * A receiver's Subscribe stream: the backlog after the cursor (the current state when the
 * cursor is 0), then CaughtUp, then live changes, written to a MessageSink.
 *
 * Each write carries what is ready when the stream can be written (see FrameBatch for the
 * caps): a backlog page (its last batch with the CaughtUp), or everything the live queue
 * holds. Nothing ever waits to fill a batch.
 *
 * Live changes are written from a callback: the subscription wakes the stream, which writes in
 * a microtask (so one commit's changes go out as one message) unless the sink is full, and then
 * on its drain. Before, each event passed three async generators (this stream's, the call
 * guard's and nice-grpc's), ~5 promises and 8-10 microtasks (issue 17, step 3).
 *
 * Ordering without gaps or duplicates: the live listener is attached before the backlog is
 * read; each backlog page is read up to the head this node's feed has published (the feed
 * publishes in sequence order, every change once), so every change is either in the backlog
 * (seq <= cursor) or queued live (seq > cursor). Live changes at or below the cursor are
 * dropped.
 */
export class SubscribeStream {
  private readonly subscription: Subscription;
  private readonly batch = new FrameBatch();
  private cursor: number;
  private historyId = '';
  private blocked: Set<string> | undefined;
  /** Live mode: the backlog is sent, wakes write. */
  private live = false;
  private scheduled = false;
  private waitingForDrain = false;
  private ended = false;
  /** Rejects `run`'s promise: the stream ended with this failure. */
  private rejectRun: ((error: unknown) => void) | undefined;
  private readonly flush = () => {
    this.scheduled = false;
    this.pump();
  };
  private readonly drained = () => {
    this.waitingForDrain = false;
    this.pump();
  };
  /** Ends a backlog write's wait for the sink's drain early: the stream failed meanwhile. */
  private backlogWake: (() => void) | undefined;

  constructor(
    private readonly receiverId: string,
    private readonly afterSeq: number,
    private readonly clientHistoryId: string,
    private readonly deps: SubscribeDeps,
    private readonly sink: MessageSink,
  ) {
    this.cursor = afterSeq;
    this.subscription = new Subscription(receiverId, deps.subscriberBufferLimit, deps.subscriberBufferBytes);
    this.subscription.onWake = () => {
      if (!this.live) {
        // The backlog loop checks for a failure after each await; one waiting for a drain that
        // may never come (a client that stopped reading, then cancelled) is woken here.
        if (this.subscription.failed) this.backlogWake?.();
        return;
      }
      if (this.scheduled) return;
      this.scheduled = true;
      queueMicrotask(this.flush);
    };
  }

  /** Ends the stream with this error (cancelled, revoked): the promise of `run` rejects with it. */
  fail(error: Error): void {
    this.subscription.fail(error);
  }

  /**
   * Runs the stream until it fails (too slow, shutdown, cancelled, history changed, revoked):
   * the promise rejects with the failure and never resolves. Throws before anything is
   * written when the stream cannot start (too many streams, a node behind the store).
   */
  async run(): Promise<never> {
    const { deps, receiverId, subscription } = this;
    if (deps.fanout.streamsOf(receiverId) >= deps.maxStreamsPerReceiver) {
      throw new HubError(Reason.TooManyStreams,
        `subscribe: this receiver already has ${deps.maxStreamsPerReceiver} open streams (max streams per receiver)`,
      );
    }
    const start = await resolveStart(deps, this.afterSeq, this.clientHistoryId, subscription);
    const historyId = (this.historyId = start.history.id);
    // A reset starts over from the receiver's full state, in the current history.
    if (start.reset !== undefined) this.cursor = 0;
    subscription.check(); // cancelled meanwhile
    deps.fanout.attach(subscription);
    try {
      // A new history that started before the attach did not fail this stream: fail it here.
      if (deps.history.current().id !== historyId) {
        subscription.fail(new HubError(Reason.HistoryChanged, 'subscribe: the hub started a new history; reconnect (your state will be reset)'));
      }
      await this.sendBacklog(start.reset);
    } catch (error) {
      this.end();
      throw error;
    }
    return new Promise<never>((resolve, reject) => {
      void resolve; // never: a live stream ends only by failing
      this.rejectRun = reject;
      this.live = true;
      this.pump();
    });
  }

  /** The backlog after the cursor, page by page, then CaughtUp (in the last page's message). */
  private async sendBacklog(reset: ResetReason | undefined): Promise<void> {
    const { deps, receiverId, subscription, batch } = this;
    if (reset !== undefined) batch.add(encodeResetFrame(reset, this.historyId));
    let cursor = this.cursor;
    // A snapshot (cursor 0) skips tombstones the receiver has no use for: those committed
    // before it started are for items it will never be sent. A withdrawal committed while
    // the snapshot is being read may be for an item of a page already sent, so from the
    // starting head on, tombstones are read like on a resume.
    const snapshotFrom = cursor === 0 ? deps.feed.head : undefined;
    let rows = BACKLOG_MIN_ROWS;
    for (;;) {
      // The page is bounded by the head this node has published: rows above it are
      // committed but not yet fanned out here, and reach this stream live.
      const head = deps.feed.head;
      const page = await readBacklogPage(deps, receiverId, cursor, head, rows, snapshotFrom);
      subscription.check(); // cancelled meanwhile
      for (const frame of page.frames) {
        const full = batch.add(frame);
        if (full) await this.writeBacklog(full);
      }
      if (page.frames.length === 0) {
        // Everything up to head that this receiver can see has been sent.
        cursor = Math.max(cursor, head);
        break;
      }
      const rest = batch.take();
      if (rest) await this.writeBacklog(rest);
      cursor = page.lastSeq;
      rows = nextPageRows(page);
    }
    // Live items of merchants this receiver blocks (or that are suspended) are dropped here;
    // the backlog's read left them out already. Read after the backlog: a block committed
    // since is in this set or still queued as a marker, which updates the set in order.
    this.blocked = new Set(deps.blockedMerchants ? await deps.blockedMerchants(receiverId) : []);
    this.cursor = cursor;
    const last = batch.add(encodeCaughtUpFrame(cursor, this.historyId));
    if (last) await this.writeBacklog(last);
    await this.writeBacklog(batch.take()!);
  }

  private async writeBacklog(message: Buffer): Promise<void> {
    this.subscription.check();
    const more = this.sink.write(message);
    this.subscription.wrote();
    if (!more) {
      await new Promise<void>((resolve) => {
        this.backlogWake = resolve;
        this.sink.onDrain(resolve);
      });
      this.backlogWake = undefined;
    }
  }

  /** Writes everything the live queue holds; ends the stream when it failed. */
  private pump(): void {
    if (this.ended) return;
    const { subscription, batch, deps, receiverId } = this;
    let changes;
    try {
      // A failure ends the stream even while a drain is awaited: a cancelled stream's drain
      // never comes. (Its status then queues behind the unsent data; the stall guard resets
      // a stream that never takes it.)
      if (this.waitingForDrain) {
        subscription.check();
        return;
      }
      changes = subscription.poll();
    } catch (error) {
      this.end();
      this.rejectRun!(error);
      return;
    }
    if (changes === undefined) return;
    let more = true;
    if (changes.length === 0) {
      const heartbeat = encodeHeartbeatFrame(this.cursor, deps.heartbeatIntervalMs, this.historyId);
      more = this.sink.write(grpcMessage([heartbeat], heartbeat.byteLength));
    } else {
      const nowMs = deps.now();
      const blocked = this.blocked!;
      const suspended = deps.suspendedMerchants;
      let cursor = this.cursor;
      for (const change of changes) {
        if (change.seq <= cursor) continue;
        cursor = change.seq;
        if (change.kind !== ChangeKind.Item && change.kind !== ChangeKind.Withdrawal && !passesBars(change, receiverId, blocked, suspended)) continue;
        if (change.kind === ChangeKind.Item && (blocked.size > 0 || suspended?.size) && isBarred(change.merchantId, blocked, suspended)) continue;
        if (change.validUntilMs > nowMs) {
          const full = batch.add(change.frame, change);
          if (full) more = this.sink.write(full) && more;
        }
      }
      this.cursor = cursor;
      const rest = batch.take();
      if (rest) more = this.sink.write(rest) && more;
    }
    if (!more) {
      // Changes that arrive meanwhile stay queued (bounded: the subscription fails the stream
      // past its limits) and go out together on the drain.
      this.waitingForDrain = true;
      this.sink.onDrain(this.drained);
    }
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.subscription.onWake = undefined;
    this.deps.fanout.detach(this.subscription);
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
