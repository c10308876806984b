import { delay } from 'abort-controller-x';
import type { HubClient } from './connection.js';
import { PushHubError, Status, isRetryable } from './errors.js';
import { RatePacer } from './rate-pacer.js';
import { type DeepPartial, PushStreamEntry, PushStreamRequest, type PushStreamResult } from './gen/pushhub/v1/pushhub.js';
import { METHOD, type PushOptions, type PushResult, type WithdrawTarget, checkRequestId, toWithdrawRequest } from './push-types.js';
import { newRequestId } from './request-id.js';
import { type RetryOptions, backoffMs } from './retry.js';
import type { ServiceInfoInput } from './types.js';
import { checkString, serviceInfoToWire, toSafeNumber } from './values.js';
import { encodeMessage } from './wire-definition.js';

/**
 * The high-volume push path (the PushStream RPC): many pushes in flight on one HTTP/2
 * stream, each promise resolved when the hub commits that push (or rejected with a
 * {@link PushHubError} for that push alone; the stream goes on).
 */
export interface MerchantPushStream {
  /** Pushes `info` to one receiver; resolves once the hub has committed it. */
  pushSpecific(receiverId: string, info: ServiceInfoInput, options?: PushOptions): Promise<PushResult>;
  /** Pushes `info` to every registered receiver. */
  pushPublic(info: ServiceInfoInput, options?: PushOptions): Promise<PushResult>;
  /** Withdraws one of this merchant's live items. */
  withdraw(target: WithdrawTarget, options?: PushOptions): Promise<PushResult>;
  /** Stops accepting pushes and resolves once every push sent so far is answered. */
  close(): Promise<void>;
}

/** Options of a push stream. */
export interface PushStreamOptions {
  /** Pushes in flight at most; further pushes wait for acknowledgements (default 256). */
  window?: number;
  /** Retries of a broken stream (consecutive failures without an acknowledgement). */
  retry: Required<RetryOptions>;
  /**
   * Paces pushes refused with PUSH_RATE_EXCEEDED (shared with the merchant's unary calls).
   * @internal
   */
  pacer?: RatePacer;
  /**
   * How long after it was queued a push refused with PUSH_RATE_EXCEEDED is still sent again,
   * in ms (the merchant's deadlineMs); past it, its promise rejects with that error.
   */
  deadlineMs?: number;
}

interface Pending {
  /** The push, encoded once as a one-entry PushStreamRequest (see `requests`). */
  frame: Uint8Array;
  /** When it was queued (ms since the epoch): its PUSH_RATE_EXCEEDED retries end deadlineMs later. */
  queuedAtMs: number;
  resolve(result: PushResult): void;
  reject(error: unknown): void;
}

/** One HTTP/2 stream's share of the state: what is still to be written on it. */
interface Connection {
  /** Encoded one-entry requests not yet written, oldest first. */
  outbox: Uint8Array[];
  wake: (() => void) | undefined;
  abort: AbortController;
  /** Requests written and responses read on this stream. */
  written: number;
  answered: number;
}

const DEFAULT_WINDOW = 256;
/**
 * Bytes per request at most: well under the hub's default message limit (64 KiB), so a
 * batch is never refused for its size (one larger push still goes, alone).
 */
const MAX_REQUEST_BYTES = 32 * 1024;

/**
 * Opens a push stream on `client`. Delivery guarantees: every push gets a request id when it
 * is queued; when the stream breaks with UNAVAILABLE, a new stream is opened and every
 * unacknowledged push is sent again, in the original order, with its request id, so the hub
 * applies each exactly once. The stream half-closes whenever nothing is in flight, so an
 * idle merchant never holds a hub's graceful shutdown open; the next push opens a new one.
 */
export function createPushStream(client: HubClient, options: PushStreamOptions): MerchantPushStream {
  const window = Math.max(1, options.window ?? DEFAULT_WINDOW);
  const pending = new Map<bigint, Pending>(); // insertion order is ref order
  const windowWaiters: (() => void)[] = [];
  /** Waiters woken for a freed slot that have not taken it yet (each holds one slot). */
  let woken = 0;
  let nextRef = 1n;
  let closed = false;
  let current: Connection | undefined;
  let running: Promise<void> | undefined;

  // One freed slot wakes one waiter, which holds it until it runs: waking every waiter on
  // each ack (they only join `pending` later) made a deep queue spin, ~500 pushes/s.
  const wakeWindow = () => {
    while (pending.size + woken < window && windowWaiters.length > 0) {
      woken++;
      windowWaiters.shift()!();
    }
  };

  /**
   * The stream's requests: whatever was queued while the previous write was in progress goes
   * out as one request (never waiting for more). A request with several entries is the byte
   * concatenation of one-entry requests: protobuf appends repeated fields when messages are
   * concatenated, so nothing is encoded twice, not even on a resend.
   */
  async function* requests(connection: Connection): AsyncGenerator<Uint8Array> {
    for (;;) {
      while (connection.outbox.length > 0) {
        const outbox = connection.outbox;
        let count = 0;
        let bytes = 0;
        while (count < outbox.length && (count === 0 || bytes + outbox[count]!.byteLength <= MAX_REQUEST_BYTES)) {
          bytes += outbox[count]!.byteLength;
          count++;
        }
        const frames = count === outbox.length ? outbox : outbox.slice(0, count);
        connection.outbox = count === outbox.length ? [] : outbox.slice(count);
        connection.written += count;
        yield count === 1 ? frames[0]! : Buffer.concat(frames, bytes);
      }
      if (pending.size === 0 || connection.abort.signal.aborted) return; // half-close
      await new Promise<void>((resolve) => (connection.wake = resolve));
      connection.wake = undefined;
    }
  }

  const pacer = options.pacer ?? new RatePacer();
  const deadlineMs = options.deadlineMs ?? 10_000;

  /** Sends a push again on the stream in use (or the next one), after it was refused for the rate. */
  const resend = (ref: bigint) => {
    const entry = pending.get(ref);
    if (!entry) return; // answered meanwhile (a reconnect re-sent it)
    if (current && !current.abort.signal.aborted) {
      current.outbox.push(entry.frame);
      current.wake?.();
    }
    ensureRunning();
  };

  const settle = (response: PushStreamResult): boolean => {
    const entry = pending.get(response.ref);
    if (!entry) return true;
    if (response.code === Status.UNAVAILABLE) return false; // keep it; the caller reconnects
    if (response.reason === 'PUSH_RATE_EXCEEDED' && response.retryAfterMs > 0) {
      // Nothing was stored: send it again when the hub's hint (spread by the pacer) says,
      // unless that is past its deadline. It keeps its slot in the window meanwhile.
      const wait = pacer.reserve(response.retryAfterMs);
      if (Date.now() + wait <= entry.queuedAtMs + deadlineMs) {
        setTimeout(resend, wait, response.ref);
        return true;
      }
    }
    pending.delete(response.ref);
    wakeWindow();
    if (response.code === Status.OK) {
      try {
        entry.resolve({ itemId: response.itemId, sequence: toSafeNumber(response.sequence, 'sequence') });
      } catch (error) {
        entry.reject(error);
      }
    } else entry.reject(new PushHubError(response.code, response.reason, response.message, '/pushhub.v1.PushHubService/PushStream', response.retryAfterMs));
    return true;
  };

  const failAll = (error: unknown) => {
    for (const entry of pending.values()) entry.reject(error);
    pending.clear();
    wakeWindow();
  };

  /** Runs streams until nothing is pending; started by the first push after an idle spell. */
  async function run(): Promise<void> {
    let failures = 0;
    while (pending.size > 0) {
      const connection: Connection = {
        outbox: [...pending.values()].map((entry) => entry.frame),
        wake: undefined,
        abort: new AbortController(),
        written: 0,
        answered: 0,
      };
      current = connection;
      try {
        // The wire module sends the encoded requests as they are.
        const stream = client.pushStream(requests(connection) as AsyncIterable<never>, { signal: connection.abort.signal });
        for await (const response of stream) {
          for (const result of response.results) {
            connection.answered++;
            if (!settle(result)) {
              connection.abort.abort();
              throw new PushHubError(Status.UNAVAILABLE, 'SHUTTING_DOWN', result.message);
            }
          }
          failures = 0;
          if (pending.size === 0) connection.wake?.();
        }
        // The hub ended the call with pushes unanswered (it is stopping): resend them on a new
        // stream after a backoff. (Pushes queued after the half-close just get a new stream.)
        if (connection.answered < connection.written) throw new PushHubError(Status.UNAVAILABLE, '', 'push stream ended with pushes unanswered');
      } catch (error) {
        const retry = isRetryable(error) || (connection.abort.signal.aborted && pending.size > 0);
        failures++;
        if (!retry || failures >= options.retry.maxAttempts) {
          failAll(error);
          failures = 0;
        } else {
          await delay(new AbortController().signal, backoffMs(failures, options.retry));
        }
      } finally {
        connection.abort.abort();
        connection.wake?.();
        current = undefined;
      }
    }
  }

  const ensureRunning = () => {
    if (running) return;
    running = run().finally(() => {
      running = undefined;
      // A push may have arrived while the last stream was winding down.
      if (pending.size > 0) ensureRunning();
    });
  };

  const enqueue = async (build: (ref: bigint) => DeepPartial<PushStreamEntry>, signal?: AbortSignal): Promise<PushResult> => {
    if (closed) throw new Error('push stream is closed');
    // Behind earlier waiters too (first come, first served), not only when the window is full.
    if (pending.size + woken >= window || windowWaiters.length > 0) {
      await new Promise<void>((resolve) => windowWaiters.push(resolve));
      woken--; // this push takes the slot it was woken for
      if (signal?.aborted) {
        wakeWindow(); // pass the slot on
        signal.throwIfAborted();
      }
    }
    // Behind pushes refused for the rate that wait for their turn (0 when there are none).
    try {
      await RatePacer.wait(pacer.turn(), signal);
    } catch (error) {
      wakeWindow(); // the slot this push would have taken is free again
      throw error;
    }
    const ref = nextRef++;
    let frame: Buffer;
    try {
      frame = encodeMessage(PushStreamRequest, { entries: [PushStreamEntry.fromPartial(build(ref))] });
    } catch (error) {
      wakeWindow(); // the slot this push would have taken is free again
      throw error;
    }
    const result = new Promise<PushResult>((resolve, reject) => pending.set(ref, { frame, queuedAtMs: Date.now(), resolve, reject }));
    if (current && !current.abort.signal.aborted) {
      current.outbox.push(frame);
      current.wake?.();
    }
    ensureRunning();
    return result;
  };

  /** Checks and converts a push before it takes a slot: a refused input never reaches the wire. */
  const push = (build: () => DeepPartial<PushStreamEntry>['push'], signal: AbortSignal | undefined): Promise<PushResult> => {
    let entry: DeepPartial<PushStreamEntry>['push'];
    try {
      entry = build();
    } catch (error) {
      return Promise.reject(error);
    }
    return enqueue((ref) => ({ ref, push: entry }), signal);
  };

  return {
    pushSpecific(receiverId, info, pushOptions = {}) {
      return push(() => {
        const value = {
          receiverId: checkString(receiverId, 'receiverId', METHOD.pushStream, true),
          info: serviceInfoToWire(info, 'info', METHOD.pushStream),
          requestId: checkRequestId(pushOptions, METHOD.pushStream, newRequestId),
        };
        return { $case: 'specific', value };
      }, pushOptions.signal);
    },
    pushPublic(info, pushOptions = {}) {
      return push(() => {
        const value = { info: serviceInfoToWire(info, 'info', METHOD.pushStream), requestId: checkRequestId(pushOptions, METHOD.pushStream, newRequestId) };
        return { $case: 'public', value };
      }, pushOptions.signal);
    },
    withdraw(target, pushOptions = {}) {
      return push(() => {
        const value = toWithdrawRequest(target, checkRequestId(pushOptions, METHOD.pushStream, newRequestId), METHOD.pushStream);
        return { $case: 'withdraw', value };
      }, pushOptions.signal);
    },
    async close() {
      closed = true;
      while (running) await running.catch(() => undefined);
    },
  };
}
