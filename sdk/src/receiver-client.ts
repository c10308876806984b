import { delay, isAbortError } from 'abort-controller-x';
import { type Channel, Metadata } from 'nice-grpc';
import {
  type Credentials,
  type HubAddress,
  type HubClient,
  type TlsOptions,
  basicAuthorization,
  createHubChannel,
  createStreamingHubClient,
  toChannelError,
} from './connection.js';
import { PushHubError, REASON_TRAILER, Status, isResumableStreamEnd } from './errors.js';
import { ReceiptPolicy, Role } from './gen/pushhub/v1/pushhub.js';
import { RECEIPT_METHOD } from './receipts.js';
import { METHOD } from './push-types.js';
import { type RegisterOptions, registerAccount } from './register.js';
import { type RetryOptions, backoffMs } from './retry.js';
import { type BlockedMerchant, type Item, type ResetReasonName, type Withdrawal, resetReasonName } from './types.js';
import { SubscribeCall, createSubscribeClient } from './subscribe-call.js';
import type { Client as GrpcClient } from '@grpc/grpc-js';
import { checkSequence, checkString, toSafeNumber } from './values.js';

export type { ResetReasonName } from './types.js';

/**
 * One event of a receiver's stream. Plain data: `JSON.parse(JSON.stringify(event))`
 * deep-equals the event.
 */
export type ReceiverEvent =
  | {
      /** An item to store, replacing any stored item with the same merchant, audience and non-empty key. */
      type: 'item';
      /** The item. */
      item: Item;
    }
  | {
      /** An item to remove (by its id; for a keyed item also the stored item with that key). */
      type: 'withdrawal';
      /** The withdrawal. */
      withdrawal: Withdrawal;
    }
  | {
      /** The backlog has been sent; live events follow. Sent after every (re)connection. */
      type: 'caughtUp';
      /** The newest sequence the receiver has now been sent: store it as the cursor. */
      sequence: number;
      /** The hub history the sequence belongs to: store it with the cursor. */
      historyId: string;
    }
  | {
      /**
       * The stored state (items, cursor) no longer belongs to the hub's history: drop it. The
       * receiver's full current state follows, then a `caughtUp`; a store applies the reset and
       * that state together (ReceiverStore does, in one transaction at the `caughtUp`).
       */
      type: 'reset';
      /** Why (see {@link ResetReasonName}). */
      reason: ResetReasonName;
      /** The hub history the new state belongs to. */
      historyId: string;
    };

/** Options of ReceiverClient.subscribe. */
export interface SubscribeOptions {
  /**
   * The last sequence the receiver processed; 0 (default) starts with the receiver's
   * current state (every live item, no withdrawals). A non-negative integer number; anything
   * else fails with INVALID_ARGUMENT naming `afterSequence`.
   */
  afterSequence?: number;
  /**
   * The history `afterSequence` belongs to (from the last `caughtUp` or `reset`); empty or
   * absent for a new receiver. A cursor of another history gets a `reset`.
   */
  historyId?: string;
  /** Ends the subscription: the iteration finishes without an error. */
  signal?: AbortSignal;
}

/** Options of a ReceiverClient. */
export interface ReceiverClientOptions {
  /** The hub's host:port, or several hub nodes (see {@link HubAddress}); a reconnection may land on another node and resumes from the cursor there. */
  address: HubAddress;
  /** The receiver id returned by `register`. */
  id: string;
  /** The receiver password returned by `register`. */
  password: string;
  /** TLS settings when the hub serves TLS. */
  tls?: TlsOptions;
  /**
   * A connection is dead when nothing arrived for this many heartbeat intervals (default 2).
   * The interval is the one the hub announces in its heartbeats.
   */
  heartbeatTimeoutFactor?: number;
  /**
   * The heartbeat interval assumed until the hub announces its own, in ms (default 30 000,
   * the hub's default).
   */
  heartbeatIntervalMs?: number;
  /** Reconnect backoff; `maxAttempts` counts consecutive failed connections (default: unlimited). */
  reconnect?: RetryOptions;
  /** Called before each reconnection, e.g. for logging. */
  onReconnect?: (info: { error: unknown; attempt: number; delayMs: number; afterSequence: number }) => void;
}

const DEFAULT_HEARTBEAT_INTERVAL_MS = 30_000;
const DEFAULT_RECONNECT: Required<RetryOptions> = { maxAttempts: Number.POSITIVE_INFINITY, initialBackoffMs: 100, maxBackoffMs: 5000 };

/**
 * Raised when the heartbeat watchdog declares the connection dead. A PushHubError
 * (DEADLINE_EXCEEDED, no reason), so a caller that runs out of reconnect attempts gets the
 * SDK's one error type for a hub that does not answer.
 */
class DeadConnectionError extends PushHubError {
  constructor(ms: number) {
    super(Status.DEADLINE_EXCEEDED, '', `no message from the hub for ${ms} ms`);
  }
}

/**
 * Failures after which resuming from the cursor can help: every stream end that is not a
 * definitive answer (isResumableStreamEnd): the hub restarted or was unreachable, the
 * receiver was too slow, a proxy reset the stream or answered with an error page. Definitive
 * answers (bad credentials, permission, a cursor beyond the hub's newest sequence) need the caller.
 */
function isResumable(error: unknown): boolean {
  return error instanceof DeadConnectionError || isResumableStreamEnd(error);
}

/**
 * A receiver's connection to the hub: a subscription that survives hub restarts, network
 * drops and silent connections, resuming from the last sequence it handed out.
 */
export class ReceiverClient {
  private channel: Channel;
  private client: HubClient;
  /** grpc-js's own client on the same channel, for Subscribe (subscribe-call.ts). */
  private subscribeClient: GrpcClient;
  private readonly credentials: Credentials;
  private readonly options: ReceiverClientOptions;
  private readonly reconnect: Required<RetryOptions>;
  private closed = false;

  /**
   * Registers a new receiver and returns its id and password. The password is shown only
   * once: store it safely (the daemon writes it to a file only its owner can read).
   */
  static register(address: HubAddress, options: RegisterOptions = {}): Promise<Credentials> {
    return registerAccount(address, Role.ROLE_RECEIVER, options);
  }

  /** Connects lazily: `subscribe` opens the connection. */
  constructor(options: ReceiverClientOptions) {
    this.options = options;
    this.credentials = { id: options.id, password: options.password };
    this.reconnect = { ...DEFAULT_RECONNECT, ...options.reconnect };
    this.channel = createHubChannel(options.address, options.tls, { private: true });
    this.client = createStreamingHubClient(this.channel);
    this.subscribeClient = createSubscribeClient(this.channel);
  }

  /** Replaces a connection found silently dead: a new call on it would hang the same way. */
  private renewChannel(): void {
    this.channel.close();
    this.channel = createHubChannel(this.options.address, this.options.tls, { private: true });
    this.client = createStreamingHubClient(this.channel);
    this.subscribeClient = createSubscribeClient(this.channel);
  }

  /** The receiver's id. */
  get id(): string {
    return this.credentials.id;
  }

  /**
   * The receiver's events: the backlog after `afterSequence` (or the current state), a
   * `caughtUp`, then live events, for as long as the caller iterates. Reconnects with
   * backoff and jitter and resumes after the last sequence it handed out, so the caller
   * sees every change once, in sequence order; a `caughtUp` follows each reconnection.
   * When the cursor cannot be resumed from (the hub's database was restored, or the cursor
   * is beyond its newest sequence), a `reset` comes first, then the full current state.
   * Throws a {@link PushHubError} for failures resuming cannot fix (e.g. UNAUTHENTICATED).
   */
  subscribe(options: SubscribeOptions = {}): AsyncGenerator<ReceiverEvent, void, undefined> {
    // One generator per event, not subscribeBatches wrapped in a second one (the SDK's two
    // generators were 7.5 % of a receiver's CPU per event, docs/performance.md).
    return this.events(options, false) as AsyncGenerator<ReceiverEvent, void, undefined>;
  }

  /**
   * The same events as {@link ReceiverClient.subscribe}, in the batches the hub sent them
   * (a backlog page, or what was ready live), so a store can apply each batch in one
   * transaction. A batch is never empty; the next one is read when the caller asks for it.
   */
  subscribeBatches(options: SubscribeOptions = {}): AsyncGenerator<ReceiverEvent[], void, undefined> {
    return this.events(options, true) as AsyncGenerator<ReceiverEvent[], void, undefined>;
  }

  /** subscribe (one event per step) and subscribeBatches (one batch per step) in one loop. */
  private async *events(options: SubscribeOptions, batches: boolean): AsyncGenerator<ReceiverEvent | ReceiverEvent[], void, undefined> {
    const outer = options.signal ?? new AbortController().signal;
    let cursor = checkSequence(options.afterSequence, 'afterSequence', METHOD.subscribe);
    let historyId = options.historyId ?? '';
    let intervalMs = this.options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    const factor = this.options.heartbeatTimeoutFactor ?? 2;
    let failures = 0;

    while (!outer.aborted && !this.closed) {
      const attempt = new AbortController();
      const onOuterAbort = () => attempt.abort();
      outer.addEventListener('abort', onOuterAbort, { once: true });
      let dead: DeadConnectionError | undefined;
      // One watchdog per connection. A message only notes its time; when the timer fires
      // early (messages came meanwhile) it waits out the rest (a timer refresh per message was
      // a measured share of the receive path, docs/performance.md). Time the caller spends on
      // a batch is not silence: a watchdog firing then just starts over.
      let busy = false;
      let lastMessageAt = Date.now();
      let watchdogMs = intervalMs * factor;
      const expire = () => {
        const quietMs = Date.now() - lastMessageAt;
        if (busy || quietMs < watchdogMs) {
          watchdog = setTimeout(expire, busy ? watchdogMs : watchdogMs - quietMs);
          return;
        }
        dead = new DeadConnectionError(watchdogMs);
        attempt.abort();
      };
      let watchdog = setTimeout(expire, watchdogMs);
      let failure: unknown;
      // Subscribe is read straight from grpc-js (subscribe-call.ts), with no middleware (each
      // would be a generator every event passes through): credentials, read per attempt so a
      // rotated password counts, and the reason trailer for the error are handled here.
      let reason = '';
      let stopCall: (() => void) | undefined;
      try {
        const call = new SubscribeCall(this.subscribeClient, { afterSequence: BigInt(cursor), historyId }, basicAuthorization(this.credentials));
        stopCall = () => call.cancel();
        if (attempt.signal.aborted) call.cancel();
        else attempt.signal.addEventListener('abort', stopCall, { once: true });
        for (;;) {
          const events = call.read();
          if (events === undefined) {
            if (call.done) break;
            await call.wait();
            continue;
          }
          busy = true;
          const batch: ReceiverEvent[] = [];
          for (const event of events) {
            switch (event.$case) {
              case 'item':
                if (event.sequence > cursor) {
                  cursor = event.sequence;
                  batch.push({ type: 'item', item: event.item });
                }
                break;
              case 'withdrawal':
                if (event.sequence > cursor) {
                  cursor = event.sequence;
                  batch.push({ type: 'withdrawal', withdrawal: event.withdrawal });
                }
                break;
              default:
                switch (event.event?.$case) {
                  case 'caughtUp': {
                    failures = 0;
                    const sequence = toSafeNumber(event.event.value.sequence, 'caughtUp.sequence');
                    if (sequence > cursor) cursor = sequence;
                    if (event.event.value.historyId !== '') historyId = event.event.value.historyId;
                    batch.push({ type: 'caughtUp', sequence: cursor, historyId });
                    break;
                  }
                  case 'reset':
                    // The state that follows starts from nothing, in the hub's current history.
                    cursor = 0;
                    historyId = event.event.value.historyId;
                    batch.push({ type: 'reset', reason: resetReasonName(event.event.value.reason), historyId });
                    break;
                  case 'heartbeat': {
                    const beat = event.event.value;
                    if (beat.intervalMs > 0) intervalMs = beat.intervalMs;
                    // The hub started a new history under an open stream: reconnect to be reset.
                    if (beat.historyId !== '' && historyId !== '' && beat.historyId !== historyId) {
                      throw new PushHubError(Status.UNAVAILABLE, 'HISTORY_CHANGED', 'the hub started a new history');
                    }
                    break;
                  }
                }
            }
          }
          if (batch.length > 0) {
            if (batches) yield batch;
            else for (const event of batch) yield event;
          }
          busy = false;
          lastMessageAt = Date.now();
          if (intervalMs * factor !== watchdogMs) {
            clearTimeout(watchdog);
            watchdogMs = intervalMs * factor;
            watchdog = setTimeout(expire, watchdogMs);
          }
        }
        if (call.error !== undefined) {
          reason = call.reason;
          throw call.error;
        }
        failure = new PushHubError(Status.UNAVAILABLE, '', 'subscribe stream ended');
      } catch (error) {
        // A hub never reached gets the SDK's explanation (TLS mismatch, nothing listening).
        failure = dead ?? (await toChannelError(this.channel, error, reason));
      } finally {
        clearTimeout(watchdog);
        outer.removeEventListener('abort', onOuterAbort);
        if (stopCall) attempt.signal.removeEventListener('abort', stopCall);
        attempt.abort();
        stopCall?.();
      }
      if (outer.aborted || this.closed) return;
      if (isAbortError(failure) || !isResumable(failure)) throw failure;
      failures++;
      if (failures >= this.reconnect.maxAttempts) throw failure;
      if (failure instanceof DeadConnectionError) this.renewChannel();
      const delayMs = backoffMs(failures, this.reconnect);
      this.options.onReconnect?.({ error: failure, attempt: failures, delayMs, afterSequence: cursor });
      try {
        await delay(outer, delayMs);
      } catch (error) {
        if (isAbortError(error)) return;
        throw error;
      }
    }
  }

  /**
   * Tells the hub that every change up to `upToSequence` is stored on this receiver (its
   * merchants then see their items DELIVERED); resolves with the confirmed sequence (0 when
   * receipts are off). The store's `sync` confirms on its own; call this when you store
   * events yourself, after your store has committed them.
   */
  async confirmDelivery(upToSequence: number): Promise<number> {
    const seq = checkSequence(upToSequence, 'upToSequence', RECEIPT_METHOD.confirmDelivery);
    const response = await this.callUnary(RECEIPT_METHOD.confirmDelivery, (metadata, onTrailer) =>
      this.client.confirmDelivery({ upToSequence: BigInt(seq) }, { metadata, onTrailer, deadline: Date.now() + 10_000 }),
    );
    return toSafeNumber(response.confirmedSequence, 'confirmedSequence');
  }

  /**
   * Turns delivery receipts on ('share', the default) or off ('opt-out'), stored on the hub;
   * without an argument, reads the setting. Opted out, nothing is recorded and merchants
   * see UNKNOWN for this receiver's items.
   */
  async receiptPolicy(policy?: 'share' | 'opt-out'): Promise<'share' | 'opt-out'> {
    if (policy !== undefined && policy !== 'share' && policy !== 'opt-out') {
      throw new PushHubError(Status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', "policy must be 'share' or 'opt-out'", RECEIPT_METHOD.setReceiptPolicy);
    }
    const wire = policy === undefined ? ReceiptPolicy.RECEIPT_POLICY_UNSPECIFIED : policy === 'share' ? ReceiptPolicy.RECEIPT_POLICY_SHARE : ReceiptPolicy.RECEIPT_POLICY_OPT_OUT;
    const response = await this.callUnary(RECEIPT_METHOD.setReceiptPolicy, (metadata, onTrailer) =>
      this.client.setReceiptPolicy({ policy: wire }, { metadata, onTrailer, deadline: Date.now() + 10_000 }),
    );
    return response.policy === ReceiptPolicy.RECEIPT_POLICY_OPT_OUT ? 'opt-out' : 'share';
  }

  /**
   * Blocks a merchant on the hub: its specific pushes to this receiver are refused, its
   * public items are no longer delivered, and what this receiver holds of it is withdrawn
   * on the stream (cause 'blocked'). On every hub node, across resumes. Resolves with the
   * block's sequence. Blocking twice is one block; an unknown merchant is NOT_FOUND
   * (`MERCHANT_NOT_FOUND`).
   */
  async block(merchantId: string): Promise<number> {
    const request = { merchantId: checkString(merchantId, 'merchantId', ACCOUNT_METHOD.block, true) };
    const response = await this.callUnary(ACCOUNT_METHOD.block, (metadata, onTrailer) =>
      this.client.blockMerchant(request, { metadata, onTrailer, deadline: Date.now() + 10_000 }),
    );
    return toSafeNumber(response.sequence, 'sequence');
  }

  /** Lifts a block: the merchant's current public items come back on the stream. */
  async unblock(merchantId: string): Promise<number> {
    const request = { merchantId: checkString(merchantId, 'merchantId', ACCOUNT_METHOD.unblock, true) };
    const response = await this.callUnary(ACCOUNT_METHOD.unblock, (metadata, onTrailer) =>
      this.client.unblockMerchant(request, { metadata, onTrailer, deadline: Date.now() + 10_000 }),
    );
    return toSafeNumber(response.sequence, 'sequence');
  }

  /** The merchants this receiver blocks, oldest block first. */
  async blocked(): Promise<BlockedMerchant[]> {
    const response = await this.callUnary(ACCOUNT_METHOD.list, (metadata, onTrailer) =>
      this.client.listBlockedMerchants({}, { metadata, onTrailer, deadline: Date.now() + 10_000 }),
    );
    return response.merchants.map((m) => ({ merchantId: m.merchantId, blockedAt: (m.blockedAt ?? new Date(0)).toISOString() }));
  }

  /**
   * Deletes this receiver's account and everything the hub holds about it (its specific
   * items, cursor, confirmations, blocks, credentials); open streams end with
   * UNAUTHENTICATED (`ACCOUNT_DELETED`). `password` confirms it (default: the password this
   * client uses). Never retried. The local store, if any, is yours to delete.
   */
  async deleteAccount(password: string = this.credentials.password): Promise<void> {
    const request = { password: checkString(password, 'password', ACCOUNT_METHOD.deleteAccount, true) };
    await this.callUnary(ACCOUNT_METHOD.deleteAccount, (metadata, onTrailer) =>
      this.client.deleteAccount(request, { metadata, onTrailer, deadline: Date.now() + 10_000 }),
    );
  }

  /** One unary call on the receiver's channel (no middleware): credentials and the reason trailer. */
  private async callUnary<T>(path: string, call: (metadata: Metadata, onTrailer: (t: Metadata) => void) => Promise<T>): Promise<T> {
    let reason = '';
    try {
      return await call(Metadata({ authorization: basicAuthorization(this.credentials) }), (trailer) => {
        reason = trailer.get(REASON_TRAILER) ?? '';
      });
    } catch (error) {
      const converted = await toChannelError(this.channel, error, reason);
      throw converted instanceof PushHubError && converted.path === '' ? new PushHubError(converted.code, converted.reason, converted.details, path) : converted;
    }
  }

  /** Closes the connection; a running subscription ends (without an error). */
  close(): void {
    this.closed = true;
    this.channel.close();
  }
}

/** Method paths of the receiver's account calls (named in errors). */
const ACCOUNT_METHOD = {
  block: '/pushhub.v1.PushHubService/BlockMerchant',
  unblock: '/pushhub.v1.PushHubService/UnblockMerchant',
  list: '/pushhub.v1.PushHubService/ListBlockedMerchants',
  deleteAccount: '/pushhub.v1.PushHubService/DeleteAccount',
} as const;
