import {
  type DeliveryEvent,
  ResetReason,
  type WatchDeliveriesResponse,
} from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { HubError, Reason, storageUnavailable } from '../core/errors.js';
import type { Confirmation, ReceiptEvent, TouchedPublicItem } from '../core/receipts.js';
import type { History, ReceiptFeed, ReceiptStore } from '../store/ports.js';
import { resetReasonFor } from './subscribe-stream.js';

/** Told about each confirmation batch (metrics): confirmations taken and per-event lag. */
export type ConfirmObserver = (confirmations: number, lagsMs: readonly number[]) => void;

/** A storage fault carries a string code (SQLITE_FULL, POSTGRES_UNAVAILABLE, ...). */
const asStorageError = (error: unknown): unknown =>
  typeof (error as { code?: unknown })?.code === 'string' ? storageUnavailable('receipts could not be stored') : error;

/** How long a confirmation waits for others to share its transaction (ms): well inside "DELIVERED within a second". */
const CONFIRM_GATHER_MS = 50;

/**
 * Group commit for confirmations: what arrives while one batch is being stored goes into the
 * next, one transaction each, and a receiver's confirmations in one batch collapse to the
 * highest. Each caller is answered after its batch is durable.
 */
export class ConfirmQueue {
  private pending = new Map<string, { upToSeq: number; waiters: { resolve: (seq: number) => void; reject: (e: unknown) => void }[] }>();
  private busy = false;
  private scheduled = false;
  private flushing: Promise<void> = Promise.resolve();
  /** Public items the stored confirmations reached (the progress coalescer counts them). */
  onPublicItems: (items: TouchedPublicItem[]) => void = () => undefined;
  onConfirmed: ConfirmObserver = () => undefined;

  constructor(
    private readonly store: ReceiptStore,
    private readonly feed: ReceiptFeed,
    private readonly now: () => number,
  ) {}

  /** Stores a confirmation (upToSeq checked against the head by the caller); resolves with the receiver's confirmed sequence. */
  submit(receiverId: string, upToSeq: number): Promise<number> {
    return new Promise((resolve, reject) => {
      let entry = this.pending.get(receiverId);
      if (!entry) this.pending.set(receiverId, (entry = { upToSeq, waiters: [] }));
      else entry.upToSeq = Math.max(entry.upToSeq, upToSeq);
      entry.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.busy || this.scheduled) return;
    this.scheduled = true;
    // Receivers confirm about once a second each, spread out: gathering for CONFIRM_GATHER_MS
    // puts the confirmations of that window in one transaction instead of one each.
    setTimeout(() => {
      this.scheduled = false;
      this.flushing = this.flush();
    }, CONFIRM_GATHER_MS);
  }

  /** Resolves when no batch is being stored (shutdown waits for it before closing the store). */
  async idle(): Promise<void> {
    await this.flushing;
  }

  private async flush(): Promise<void> {
    if (this.busy || this.pending.size === 0) return;
    this.busy = true;
    const taken = this.pending;
    this.pending = new Map();
    const batch: Confirmation[] = [...taken].map(([receiverId, e]) => ({ receiverId, upToSeq: e.upToSeq }));
    try {
      const result = await this.store.confirm(batch, this.now());
      // Persist, then publish: watchers see only stored receipts.
      this.feed.committed(result.events);
      if (result.publicItems.length > 0) this.onPublicItems(result.publicItems);
      this.onConfirmed(batch.length, result.lagsMs);
      let i = 0;
      for (const entry of taken.values()) {
        const confirmed = result.confirmed[i++]!;
        for (const w of entry.waiters) w.resolve(confirmed);
      }
    } catch (error) {
      const failure = asStorageError(error);
      for (const entry of taken.values()) for (const w of entry.waiters) w.reject(failure);
    } finally {
      this.busy = false;
      if (this.pending.size > 0) this.schedule();
    }
  }
}

/**
 * Public items' counts, coalesced: an item a confirmation reached is marked, and once a
 * second the marked items are counted (index range counts, see ReceiptStore.publicCounts)
 * and one progress event each is appended. So a public item gets at most one update per
 * second from this node, however many receivers catch up meanwhile.
 */
export class PublicProgress {
  private dirty = new Map<number, TouchedPublicItem>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ticking: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: ReceiptStore,
    private readonly feed: ReceiptFeed,
    private readonly now: () => number,
    private readonly intervalMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  touch(items: readonly TouchedPublicItem[]): void {
    for (const item of items) this.dirty.set(item.seq, item);
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => (this.ticking = this.tick()), this.intervalMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const items = [...this.dirty.values()];
    this.dirty.clear();
    try {
      const atMs = this.now();
      const inputs = [];
      for (const item of items) {
        const { delivered, eligible } = await this.store.publicCounts(item.seq, item.merchantId, item.validUntilMs > atMs ? undefined : item.validUntilMs);
        inputs.push({ merchantId: item.merchantId, itemId: item.itemId, seq: item.seq, atMs, deliveredCount: delivered, eligibleCount: eligible, keepUntilMs: item.validUntilMs });
      }
      this.feed.committed(await this.store.appendProgress(inputs));
    } catch (error) {
      this.onError(error);
    } finally {
      this.timer = undefined;
      if (this.dirty.size > 0 && !this.stopped) {
        this.timer = setTimeout(() => (this.ticking = this.tick()), this.intervalMs);
        this.timer.unref();
      }
    }
  }

  /**
   * No new count starts; resolves when the one in flight is stored. Shutdown awaits this
   * before it closes the store: a count cut off by the close logged a warning on every stop.
   */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.ticking;
  }
}

// --- WatchDeliveries ----------------------------------------------------------------------

/** The DeliveryEvent messages one receipt event becomes (a delivery event covers several items). */
async function toDeliveryEvents(store: ReceiptStore, e: ReceiptEvent): Promise<DeliveryEvent[]> {
  const cursor = BigInt(e.id);
  if (e.receiverId === '') {
    return [{
      cursor,
      event: {
        $case: 'publicProgress',
        value: { itemId: e.itemId, sequence: BigInt(e.upToSeq), deliveredCount: BigInt(e.deliveredCount), eligibleCount: BigInt(e.eligibleCount), countedAt: new Date(e.atMs) },
      },
    }];
  }
  const items = await store.deliveredItems(e);
  return items.map((item) => ({
    cursor,
    event: { $case: 'delivered', value: { itemId: item.itemId, sequence: BigInt(item.seq), receiverId: e.receiverId, confirmedAt: new Date(e.atMs) } },
  }));
}

/** One open WatchDeliveries stream's live queue (bounded, like a Subscribe stream's). */
class Watcher {
  private queue: { id: number; events: DeliveryEvent[] }[] = [];
  private queued = 0;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    readonly merchantId: string,
    private readonly limit: number,
  ) {}

  offer(id: number, events: DeliveryEvent[]): void {
    if (this.failure) return;
    if (this.queued + events.length > this.limit) {
      this.fail(new HubError(Reason.SubscriberTooSlow, `watch deliveries: more than ${this.limit} unread events; resume from your last cursor`));
      return;
    }
    this.queue.push({ id, events });
    this.queued += events.length;
    this.wakeUp();
  }

  fail(error: Error): void {
    this.failure ??= error;
    this.queue = [];
    this.wakeUp();
  }

  take(): { id: number; events: DeliveryEvent[] }[] {
    if (this.failure) throw this.failure;
    const taken = this.queue;
    this.queue = [];
    this.queued = 0;
    return taken;
  }

  /** Resolves when there is something to take, the stream failed, or after ms (a heartbeat). */
  wait(ms: number): Promise<void> {
    if (this.queue.length > 0 || this.failure) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.wakeUp(), ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

export interface WatchOptions {
  /** The database's current history: watch cursors belong to it, as Subscribe's do. */
  history: () => History;
  heartbeatIntervalMs: number;
  /** Events queued for one stream before it is ended as too slow. */
  bufferLimit: number;
  maxStreamsPerMerchant: number;
}

/** Backlog events read per query. */
const WATCH_PAGE = 256;

/**
 * Routes this node's receipt feed to open WatchDeliveries streams. A receipt event is turned
 * into DeliveryEvents (a read of the items it covers) once per node, and only when one of
 * its merchant's streams is open here; the reads run one at a time, so order is kept.
 */
export class DeliveryWatch {
  private readonly watchers = new Map<string, Set<Watcher>>();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: ReceiptStore,
    private readonly feed: ReceiptFeed,
    private readonly options: WatchOptions,
    private readonly onError: (error: unknown) => void,
  ) {
    feed.onEvents((events) => this.dispatch(events));
  }

  private dispatch(events: readonly ReceiptEvent[]): void {
    const wanted = events.filter((e) => this.watchers.has(e.merchantId));
    if (wanted.length === 0) return;
    this.chain = this.chain.then(async () => {
      for (const e of wanted) {
        const set = this.watchers.get(e.merchantId);
        if (!set) continue;
        try {
          const out = await toDeliveryEvents(this.store, e);
          for (const w of set) w.offer(e.id, out);
        } catch (error) {
          for (const w of set) w.fail(storageUnavailable('receipts could not be read; resume from your last cursor'));
          this.onError(error);
        }
      }
    });
  }

  /** Resolves when the events handed to watchers so far are read and dispatched. */
  async idle(): Promise<void> {
    await this.chain;
  }

  /** Set by close: a watch starting later (its call arrived during shutdown) fails at once. */
  private closedBy: Error | undefined;

  /** Ends every open stream with this error (a new history); new streams still start. */
  failAll(error: Error): void {
    for (const set of this.watchers.values()) for (const w of set) w.fail(error);
  }

  /** Shutdown: ends every open stream with this error, and every stream that starts later. */
  close(error: Error): void {
    this.closedBy = error;
    this.failAll(error);
  }

  /**
   * A merchant's receipts: the retained events after the cursor (none when it is 0), then
   * WatchCaughtUp, then live events. The live listener is attached before the backlog is
   * read up to the feed's head, and live events at or below the cursor are dropped, so no
   * event is missed or sent twice.
   *
   * A cursor of another history (`historyId` given and not the current one: a restored
   * database), or beyond the newest receipt when the client names its history, cannot be
   * resumed: a Reset comes first, then receipts from now on, as for cursor 0 (receipt ids
   * are reissued after a restore, so a replay from that cursor would skip or repeat).
   */
  async *stream(merchantId: string, afterCursor: number, historyId: string, signal: AbortSignal): AsyncGenerator<WatchDeliveriesResponse> {
    const set = this.watchers.get(merchantId);
    if ((set?.size ?? 0) >= this.options.maxStreamsPerMerchant) {
      throw new HubError(Reason.TooManyStreams,
        `watch deliveries: this merchant already has ${this.options.maxStreamsPerMerchant} open streams (max watch streams per merchant)`,
      );
    }
    const history = this.options.history();
    let reset = afterCursor > 0 ? resetReasonFor(history, historyId) : undefined;
    if (reset === undefined && afterCursor > this.feed.head) {
      const stored = await this.store.headEventId();
      if (afterCursor > stored) {
        if (historyId === '') throw new HubError(Reason.CursorOutOfRange, `after_cursor: ${afterCursor} is beyond the newest receipt ${stored}`);
        reset = ResetReason.RESET_REASON_CURSOR_AHEAD;
      }
    }
    if (reset !== undefined) {
      afterCursor = 0;
      yield { events: [{ cursor: 0n, event: { $case: 'reset', value: { reason: reset, historyId: history.id } } }] };
    }
    const watcher = new Watcher(merchantId, this.options.bufferLimit);
    const onAbort = () => watcher.fail((signal.reason as Error | undefined) ?? new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    let own = this.watchers.get(merchantId);
    if (!own) this.watchers.set(merchantId, (own = new Set()));
    own.add(watcher);
    if (this.closedBy) watcher.fail(this.closedBy);
    try {
      let cursor = afterCursor;
      if (cursor === 0) {
        cursor = this.feed.head;
      } else {
        const head = this.feed.head;
        for (;;) {
          const page = await this.store.eventsAfter(merchantId, cursor, head, WATCH_PAGE);
          if (page.length === 0) break;
          const events: DeliveryEvent[] = [];
          for (const e of page) events.push(...(await toDeliveryEvents(this.store, e)));
          cursor = page[page.length - 1]!.id;
          if (events.length > 0) yield { events };
        }
        cursor = Math.max(cursor, head);
      }
      yield { events: [{ cursor: BigInt(cursor), event: { $case: 'caughtUp', value: { cursor: BigInt(cursor), historyId: history.id } } }] };
      for (;;) {
        await watcher.wait(this.options.heartbeatIntervalMs);
        const taken = watcher.take();
        if (taken.length === 0) {
          const heartbeat = { sequence: BigInt(cursor), sentAt: new Date(), intervalMs: this.options.heartbeatIntervalMs, historyId: history.id };
          yield { events: [{ cursor: BigInt(cursor), event: { $case: 'heartbeat', value: heartbeat } }] };
          continue;
        }
        const events: DeliveryEvent[] = [];
        for (const entry of taken) {
          if (entry.id <= cursor) continue;
          cursor = entry.id;
          events.push(...entry.events);
        }
        if (events.length > 0) yield { events };
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      own.delete(watcher);
      if (own.size === 0) this.watchers.delete(merchantId);
    }
  }
}

/** Per-key token bucket: `ratePerSec` sustained, bursts of two seconds' worth; 0 = unlimited. */
export class CallRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; updatedMs: number }>();

  constructor(
    private readonly ratePerSec: number,
    private readonly describe: string,
  ) {}

  take(key: string, nowMs = Date.now()): void {
    if (this.ratePerSec <= 0) return;
    const capacity = this.ratePerSec * 2;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      // Bounded: buckets that have refilled carry no state worth keeping.
      if (this.buckets.size >= 100_000) this.buckets.clear();
      this.buckets.set(key, (bucket = { tokens: capacity, updatedMs: nowMs }));
    }
    bucket.tokens = Math.min(capacity, bucket.tokens + ((nowMs - bucket.updatedMs) / 1000) * this.ratePerSec);
    bucket.updatedMs = nowMs;
    if (bucket.tokens < 1) {
      throw new HubError(Reason.ReceiptRateExceeded, `${this.describe}: at most ${this.ratePerSec} calls/s; retry later`);
    }
    bucket.tokens -= 1;
  }
}
