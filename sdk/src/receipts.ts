/**
 * Delivery receipts in the SDK (issue 18): the merchant's reads (`deliveryStatus`,
 * `watchDeliveries`, `waitForDelivery`) and the receiver's confirmations, batched.
 * Results are plain data: numbers and ISO-8601 strings.
 */
import { delay, isAbortError } from 'abort-controller-x';
import type { HubClient } from './connection.js';
import { PushHubError, Status, isRetryable } from './errors.js';
import { DeliveryState } from './gen/pushhub/v1/pushhub.js';
import { type RetryOptions, backoffMs } from './retry.js';
import { type ResetReasonName, resetReasonName } from './types.js';
import { checkString, invalidArgument, toSafeNumber } from './values.js';

export const RECEIPT_METHOD = {
  confirmDelivery: '/pushhub.v1.PushHubService/ConfirmDelivery',
  getDeliveryStatus: '/pushhub.v1.PushHubService/GetDeliveryStatus',
  watchDeliveries: '/pushhub.v1.PushHubService/WatchDeliveries',
  setReceiptPolicy: '/pushhub.v1.PushHubService/SetReceiptPolicy',
} as const;

/** Where an item stands; see {@link DeliveryStatus}. */
export type DeliveryStateName =
  /** Specific item, live, not yet confirmed by its receiver. */
  | 'PENDING'
  /** Specific item confirmed by its receiver (see `confirmedAt`). */
  | 'DELIVERED'
  | 'WITHDRAWN_BEFORE_DELIVERY'
  | 'EXPIRED_BEFORE_DELIVERY'
  | 'REPLACED_BEFORE_DELIVERY'
  /** The receiver has turned receipts off. */
  | 'UNKNOWN'
  /** A public item: see `deliveredCount` of `eligibleCount`. */
  | 'PUBLIC'
  /** Not among this merchant's items (never pushed, another merchant's, or purged). */
  | 'NOT_FOUND';

const STATE_NAME: Partial<Record<DeliveryState, DeliveryStateName>> = {
  [DeliveryState.DELIVERY_STATE_PENDING]: 'PENDING',
  [DeliveryState.DELIVERY_STATE_DELIVERED]: 'DELIVERED',
  [DeliveryState.DELIVERY_STATE_WITHDRAWN_BEFORE_DELIVERY]: 'WITHDRAWN_BEFORE_DELIVERY',
  [DeliveryState.DELIVERY_STATE_EXPIRED_BEFORE_DELIVERY]: 'EXPIRED_BEFORE_DELIVERY',
  [DeliveryState.DELIVERY_STATE_REPLACED_BEFORE_DELIVERY]: 'REPLACED_BEFORE_DELIVERY',
  [DeliveryState.DELIVERY_STATE_UNKNOWN]: 'UNKNOWN',
  [DeliveryState.DELIVERY_STATE_PUBLIC]: 'PUBLIC',
  [DeliveryState.DELIVERY_STATE_NOT_FOUND]: 'NOT_FOUND',
};

/** One item's delivery state, as plain data. */
export interface DeliveryStatus {
  /** The item asked about. */
  itemId: string;
  /** Where it stands. */
  state: DeliveryStateName;
  /** The item's sequence (0 with NOT_FOUND). */
  sequence: number;
  /** Specific items: the receiver. */
  receiverId?: string;
  /** With DELIVERED: when the receiver confirmed the item (ISO-8601). */
  confirmedAt?: string;
  /** With PUBLIC: receivers (receipts on) whose confirmed cursor reached the item. */
  deliveredCount?: number;
  /** With PUBLIC: receivers (receipts on) registered before the item ended. */
  eligibleCount?: number;
}

/** One event of `watchDeliveries`. `cursor` resumes after it (`afterCursor`). */
export type DeliveryEvent =
  | {
      /** A specific item reached its receiver. */
      type: 'delivered';
      /** Resume after this (`afterCursor`). */
      cursor: number;
      /** The item. */
      itemId: string;
      /** The item's sequence. */
      sequence: number;
      /** Its receiver. */
      receiverId: string;
      /** When the receiver confirmed it (ISO-8601). */
      confirmedAt: string;
    }
  | {
      /** A public item's counts (at most one update per item per second). */
      type: 'publicProgress';
      /** Resume after this (`afterCursor`). */
      cursor: number;
      /** The item. */
      itemId: string;
      /** The item's sequence. */
      sequence: number;
      /** Receivers (receipts on) whose confirmed cursor reached the item. */
      deliveredCount: number;
      /** Receivers (receipts on) registered before the item ended. */
      eligibleCount: number;
      /** When the counts were taken (ISO-8601). */
      countedAt: string;
    }
  | {
      /** The retained backlog has been sent; live events follow. Sent after every (re)connection. */
      type: 'caughtUp';
      /** Resume after this (`afterCursor`). */
      cursor: number;
      /** The history `cursor` belongs to: store it with the cursor and pass it as `historyId`. */
      historyId: string;
    }
  | {
      /**
       * The stored cursor could not be resumed: the hub's database was restored (its history
       * changed) or the cursor was beyond the newest receipt. Receipts before now are not
       * replayed: read `deliveryStatus` for the items you track. A `caughtUp` and live
       * receipts of the new history follow.
       */
      type: 'reset';
      /** Why (as for a receiver's reset). */
      reason: ResetReasonName;
      /** The hub's current history. */
      historyId: string;
    };

/** Options of MerchantClient.watchDeliveries. */
export interface WatchDeliveriesOptions {
  /** Resume after this cursor (an event's `cursor`); 0 (default): only receipts from now on. */
  afterCursor?: number;
  /**
   * The history `afterCursor` belongs to (from the last `caughtUp` or `reset`). With it, a
   * cursor the hub cannot resume (a restored database) gets a `reset` instead of a replay
   * from the wrong place or an OUT_OF_RANGE error.
   */
  historyId?: string;
  /** Ends the iteration without an error. */
  signal?: AbortSignal;
  /** Reconnect backoff on UNAVAILABLE or a broken stream (default: unlimited attempts). */
  reconnect?: RetryOptions;
}

/** Options of MerchantClient.waitForDelivery. */
export interface WaitForDeliveryOptions {
  /** Give up after this many ms: rejects with a PushHubError DEADLINE_EXCEEDED (default 60 000). */
  timeoutMs?: number;
  /** Rejects with the signal's abort error. */
  signal?: AbortSignal;
  /** How often the state is read again while waiting (ends without an event: expiry), ms (default 5000). */
  pollIntervalMs?: number;
}

export function statusFromWire(s: { itemId: string; state: DeliveryState; sequence: bigint; receiverId: string; confirmedAt?: Date; deliveredCount: bigint; eligibleCount: bigint }): DeliveryStatus {
  const state = STATE_NAME[s.state] ?? 'NOT_FOUND';
  const status: DeliveryStatus = { itemId: s.itemId, state, sequence: toSafeNumber(s.sequence, 'sequence') };
  if (s.receiverId !== '') status.receiverId = s.receiverId;
  if (s.confirmedAt) status.confirmedAt = s.confirmedAt.toISOString();
  if (state === 'PUBLIC') {
    status.deliveredCount = toSafeNumber(s.deliveredCount, 'deliveredCount');
    status.eligibleCount = toSafeNumber(s.eligibleCount, 'eligibleCount');
  }
  return status;
}

/** Checks item ids for deliveryStatus: an array of 1 to 1,000 strings. */
export function checkItemIds(itemIds: unknown): string[] {
  if (!Array.isArray(itemIds)) throw invalidArgument('itemIds', 'must be an array of item ids', RECEIPT_METHOD.getDeliveryStatus);
  if (itemIds.length === 0 || itemIds.length > 1000) throw invalidArgument('itemIds', `must hold 1 to 1000 item ids, got ${itemIds.length}`, RECEIPT_METHOD.getDeliveryStatus);
  return itemIds.map((id, i) => checkString(id, `itemIds[${i}]`, RECEIPT_METHOD.getDeliveryStatus, true));
}

const DEFAULT_RECONNECT: Required<RetryOptions> = { maxAttempts: Number.POSITIVE_INFINITY, initialBackoffMs: 100, maxBackoffMs: 5000 };

/** Resuming can help after these: the hub restarted or the stream broke, or it was too slow. */
const resumable = (error: unknown) =>
  isRetryable(error) || (error instanceof PushHubError && (error.code === Status.RESOURCE_EXHAUSTED || ((error.code === Status.INTERNAL || error.code === Status.CANCELLED) && error.reason === '')));

/** The merchant's receipt stream, reconnecting and resuming after the last cursor it handed out. */
export async function* watchDeliveries(client: HubClient, options: WatchDeliveriesOptions = {}): AsyncGenerator<DeliveryEvent, void, undefined> {
  const signal = options.signal ?? new AbortController().signal;
  const reconnect = { ...DEFAULT_RECONNECT, ...options.reconnect };
  let cursor = BigInt(options.afterCursor ?? 0);
  if (options.afterCursor !== undefined && (!Number.isSafeInteger(options.afterCursor) || options.afterCursor < 0)) {
    throw invalidArgument('afterCursor', 'must be a non-negative integer number', RECEIPT_METHOD.watchDeliveries);
  }
  let historyId = options.historyId === undefined ? '' : checkString(options.historyId, 'historyId', RECEIPT_METHOD.watchDeliveries);
  let failures = 0;
  while (!signal.aborted) {
    try {
      for await (const response of client.watchDeliveries({ afterCursor: cursor, historyId }, { signal })) {
        for (const { cursor: at, event } of response.events) {
          const n = toSafeNumber(at, 'cursor');
          switch (event?.$case) {
            case 'delivered':
              if (at > cursor) cursor = at;
              yield { type: 'delivered', cursor: n, itemId: event.value.itemId, sequence: toSafeNumber(event.value.sequence, 'sequence'), receiverId: event.value.receiverId, confirmedAt: (event.value.confirmedAt ?? new Date(0)).toISOString() };
              break;
            case 'publicProgress':
              if (at > cursor) cursor = at;
              yield {
                type: 'publicProgress', cursor: n, itemId: event.value.itemId, sequence: toSafeNumber(event.value.sequence, 'sequence'),
                deliveredCount: toSafeNumber(event.value.deliveredCount, 'deliveredCount'), eligibleCount: toSafeNumber(event.value.eligibleCount, 'eligibleCount'),
                countedAt: (event.value.countedAt ?? new Date(0)).toISOString(),
              };
              break;
            case 'caughtUp':
              failures = 0;
              if (at > cursor) cursor = at;
              if (event.value.historyId !== '') historyId = event.value.historyId;
              yield { type: 'caughtUp', cursor: toSafeNumber(cursor, 'cursor'), historyId };
              break;
            case 'reset':
              // Receipt ids start over in the new history: the caughtUp that follows sets the cursor.
              cursor = 0n;
              historyId = event.value.historyId;
              yield { type: 'reset', reason: resetReasonName(event.value.reason), historyId };
              break;
          }
        }
      }
      throw new PushHubError(Status.UNAVAILABLE, '', 'watch deliveries stream ended');
    } catch (error) {
      if (signal.aborted || isAbortError(error)) return;
      if (!resumable(error) || ++failures >= reconnect.maxAttempts) throw error;
      try {
        await delay(signal, backoffMs(failures, reconnect));
      } catch {
        return;
      }
    }
  }
}

/**
 * Waits until one specific item is DELIVERED, or ends undelivered (WITHDRAWN, EXPIRED,
 * REPLACED before delivery, UNKNOWN, NOT_FOUND), and resolves with that status. A receipt
 * stream is opened before the first read, so a delivery between the two is not missed.
 */
export async function waitForDelivery(
  client: HubClient,
  readStatus: (itemId: string, signal: AbortSignal) => Promise<DeliveryStatus>,
  itemId: string,
  options: WaitForDeliveryOptions = {},
): Promise<DeliveryStatus> {
  checkString(itemId, 'itemId', RECEIPT_METHOD.getDeliveryStatus, true);
  const timeoutMs = options.timeoutMs ?? 60_000;
  const pollMs = options.pollIntervalMs ?? 5000;
  const stop = new AbortController();
  const onAbort = () => stop.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stop.abort();
  }, timeoutMs);
  let wake: (() => void) | undefined;
  let seen = false;
  let caughtUp!: () => void;
  const ready = new Promise<void>((resolve) => (caughtUp = resolve));
  const watching = (async () => {
    try {
      for await (const event of watchDeliveries(client, { signal: stop.signal })) {
        if (event.type === 'caughtUp') caughtUp();
        if (event.type === 'delivered' && event.itemId === itemId) {
          seen = true;
          wake?.();
        }
      }
    } catch {
      // The status reads go on: they alone decide.
    } finally {
      caughtUp();
    }
  })();
  try {
    await Promise.race([ready, delay(stop.signal, pollMs).catch(() => undefined)]);
    for (;;) {
      if (stop.signal.aborted) break;
      const status = await readStatus(itemId, stop.signal);
      if (status.state !== 'PENDING') return status;
      if (!seen) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          const t = setTimeout(resolve, pollMs);
          stop.signal.addEventListener('abort', () => {
            clearTimeout(t);
            resolve();
          }, { once: true });
        });
      }
      seen = false;
    }
    if (timedOut) throw new PushHubError(Status.DEADLINE_EXCEEDED, '', `item ${itemId} was not delivered within ${timeoutMs} ms`, RECEIPT_METHOD.getDeliveryStatus);
    throw options.signal?.reason ?? new Error('aborted');
  } catch (error) {
    if (timedOut && (isAbortError(error) || stop.signal.aborted)) {
      throw new PushHubError(Status.DEADLINE_EXCEEDED, '', `item ${itemId} was not delivered within ${timeoutMs} ms`, RECEIPT_METHOD.getDeliveryStatus);
    }
    throw error;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    stop.abort();
    await watching;
  }
}

/**
 * A receiver's confirmations, batched: `note(seq)` after the local store commits; the
 * first is sent at once, later ones at most about once a second while events flow, and
 * `flush()` (on caughtUp) sends at once. Failures are reported, never thrown: the next
 * confirmation (or the next resume) covers what a failed one did.
 */
export class DeliveryConfirmer {
  private noted = 0;
  private sent = 0;
  private lastSentMs = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly confirm: (upToSequence: number) => Promise<unknown>,
    private readonly onError: (error: unknown) => void = () => undefined,
    private readonly intervalMs = 1000,
  ) {}

  /** The store has committed everything up to seq. */
  note(seq: number): void {
    if (seq <= this.noted) return;
    this.noted = seq;
    if (this.timer || this.inFlight) return;
    const wait = this.lastSentMs + this.intervalMs - Date.now();
    if (wait <= 0) void this.send();
    else this.schedule(wait);
  }

  /** Sends what was noted now (caught up: the receiver is current). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    void this.send();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.send();
    }, ms);
    this.timer.unref();
  }

  private async send(): Promise<void> {
    if (this.closed || this.noted <= this.sent) return;
    if (this.inFlight) {
      await this.inFlight;
      return this.send();
    }
    const seq = this.noted;
    this.lastSentMs = Date.now();
    // A failed confirmation is not retried as such: the next one (or the next resume) covers it.
    this.inFlight = this.confirm(seq).then(
      () => undefined,
      (error: unknown) => this.onError(error),
    );
    this.sent = Math.max(this.sent, seq);
    try {
      await this.inFlight;
    } finally {
      this.inFlight = undefined;
    }
    if (this.noted > this.sent && !this.timer && !this.closed) this.schedule(Math.max(0, this.lastSentMs + this.intervalMs - Date.now()));
  }
}
