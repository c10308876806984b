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
} from './connection.js';
import { PushHubError, REASON_TRAILER, Status, toPushHubError } from './errors.js';
import { Role } from './gen/pushhub/v1/pushhub.js';
import { METHOD } from './push-types.js';
import { type RegisterOptions, registerAccount } from './register.js';
import { type RetryOptions, backoffMs } from './retry.js';
import type { Item, Withdrawal } from './types.js';
import { checkSequence, itemFromWire, toSafeNumber, withdrawalFromWire } from './values.js';

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
    };

/** Options of ReceiverClient.subscribe. */
export interface SubscribeOptions {
  /**
   * The last sequence the receiver processed; 0 (default) starts with the receiver's
   * current state (every live item, no withdrawals). A non-negative integer number; anything
   * else fails with INVALID_ARGUMENT naming `afterSequence`.
   */
  afterSequence?: number;
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
 * Failures after which resuming from the cursor can help: the hub restarted or was
 * unreachable (UNAVAILABLE), the receiver was too slow or has stale streams on the hub
 * (RESOURCE_EXHAUSTED), or the transport broke without a hub reason (INTERNAL, CANCELLED
 * from a reset HTTP/2 stream). Everything else (bad credentials, a cursor beyond the hub's
 * newest sequence) needs the caller.
 */
function isResumable(error: unknown): boolean {
  if (error instanceof DeadConnectionError) return true;
  if (!(error instanceof PushHubError)) return false;
  if (error.code === Status.UNAVAILABLE || error.code === Status.RESOURCE_EXHAUSTED) return true;
  return (error.code === Status.INTERNAL || error.code === Status.CANCELLED || error.code === Status.UNKNOWN) && error.reason === '';
}

/**
 * A receiver's connection to the hub: a subscription that survives hub restarts, network
 * drops and silent connections, resuming from the last sequence it handed out.
 */
export class ReceiverClient {
  private channel: Channel;
  private client: HubClient;
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
  }

  /** Replaces a connection found silently dead: a new call on it would hang the same way. */
  private renewChannel(): void {
    this.channel.close();
    this.channel = createHubChannel(this.options.address, this.options.tls, { private: true });
    this.client = createStreamingHubClient(this.channel);
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
   * Throws a {@link PushHubError} for failures resuming cannot fix (e.g. UNAUTHENTICATED,
   * or OUT_OF_RANGE when the cursor is beyond the hub's newest sequence).
   */
  async *subscribe(options: SubscribeOptions = {}): AsyncGenerator<ReceiverEvent, void, undefined> {
    for await (const batch of this.subscribeBatches(options)) yield* batch;
  }

  /**
   * The same events as {@link ReceiverClient.subscribe}, in the batches the hub sent them
   * (a backlog page, or what was ready live), so a store can apply each batch in one
   * transaction. A batch is never empty; the next one is read when the caller asks for it.
   */
  async *subscribeBatches(options: SubscribeOptions = {}): AsyncGenerator<ReceiverEvent[], void, undefined> {
    const outer = options.signal ?? new AbortController().signal;
    // The cursor stays a bigint inside (it is compared with every event's wire sequence).
    let cursor = BigInt(checkSequence(options.afterSequence, 'afterSequence', METHOD.subscribe));
    let intervalMs = this.options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    const factor = this.options.heartbeatTimeoutFactor ?? 2;
    let failures = 0;

    while (!outer.aborted && !this.closed) {
      const attempt = new AbortController();
      const onOuterAbort = () => attempt.abort();
      outer.addEventListener('abort', onOuterAbort, { once: true });
      let dead: DeadConnectionError | undefined;
      // One watchdog per connection, refreshed (not replaced) after each batch. Time the
      // caller spends on a batch is not silence: a watchdog firing then just starts over.
      let busy = false;
      let watchdogMs = intervalMs * factor;
      const expire = () => {
        if (busy) {
          watchdog.refresh();
          return;
        }
        dead = new DeadConnectionError(watchdogMs);
        attempt.abort();
      };
      let watchdog = setTimeout(expire, watchdogMs);
      let failure: unknown;
      // The client has no middleware (each would be a generator every event passes through):
      // credentials, read per attempt so a rotated password counts, and the reason trailer
      // for the error are handled here.
      let reason = '';
      try {
        const stream = this.client.subscribe(
          { afterSequence: cursor },
          {
            signal: attempt.signal,
            metadata: Metadata({ authorization: basicAuthorization(this.credentials) }),
            onTrailer: (trailer) => {
              reason = trailer.get(REASON_TRAILER) ?? '';
            },
          },
        );
        for await (const response of stream) {
          busy = true;
          const batch: ReceiverEvent[] = [];
          for (const { event } of response.events) {
            switch (event?.$case) {
              case 'item':
                if (event.value.sequence > cursor) {
                  cursor = event.value.sequence;
                  batch.push({ type: 'item', item: itemFromWire(event.value) });
                }
                break;
              case 'withdrawal':
                if (event.value.sequence > cursor) {
                  cursor = event.value.sequence;
                  batch.push({ type: 'withdrawal', withdrawal: withdrawalFromWire(event.value) });
                }
                break;
              case 'caughtUp':
                failures = 0;
                if (event.value.sequence > cursor) cursor = event.value.sequence;
                batch.push({ type: 'caughtUp', sequence: toSafeNumber(cursor, 'caughtUp.sequence') });
                break;
              case 'heartbeat':
                if (event.value.intervalMs > 0) intervalMs = event.value.intervalMs;
                break;
            }
          }
          if (batch.length > 0) yield batch;
          busy = false;
          if (intervalMs * factor !== watchdogMs) {
            clearTimeout(watchdog);
            watchdogMs = intervalMs * factor;
            watchdog = setTimeout(expire, watchdogMs);
          } else {
            watchdog.refresh();
          }
        }
        failure = new PushHubError(Status.UNAVAILABLE, '', 'subscribe stream ended');
      } catch (error) {
        failure = dead ?? toPushHubError(error, reason);
      } finally {
        clearTimeout(watchdog);
        outer.removeEventListener('abort', onOuterAbort);
        attempt.abort();
      }
      if (outer.aborted || this.closed) return;
      if (isAbortError(failure) || !isResumable(failure)) throw failure;
      failures++;
      if (failures >= this.reconnect.maxAttempts) throw failure;
      if (failure instanceof DeadConnectionError) this.renewChannel();
      const delayMs = backoffMs(failures, this.reconnect);
      this.options.onReconnect?.({ error: failure, attempt: failures, delayMs, afterSequence: Number(cursor) });
      try {
        await delay(outer, delayMs);
      } catch (error) {
        if (isAbortError(error)) return;
        throw error;
      }
    }
  }

  /** Closes the connection; a running subscription ends (without an error). */
  close(): void {
    this.closed = true;
    this.channel.close();
  }
}
