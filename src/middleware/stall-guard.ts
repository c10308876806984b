import { constants as http2Constants, type ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { Reason } from '../core/errors.js';
import type { Logger } from '../logger.js';

/** One guarded stream: sends not yet taken by HTTP/2, and since when it has made no progress (ms). */
export interface StallWatch {
  pending: number;
  since: number;
  onStall(): void;
}

/**
 * One sweep for all guarded streams instead of a timer per message: a send that starts or
 * completes only notes the time (each broadcast writes one message to every stream, and a
 * timer set and cleared per write was a measured share of the hub's work per delivery). The
 * sweep runs every quarter timeout, so a stall is found within 1.25 × timeoutMs. Shared by the
 * interceptor below and Subscribe, which writes its HTTP/2 stream itself (api/subscribe-call.ts).
 */
export class StallSweep {
  private readonly waiting = new Set<StallWatch>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(readonly timeoutMs: number) {}

  /** A send starts (call before the write; `sent` when its callback runs). */
  sending(watch: StallWatch): void {
    if (watch.pending++ !== 0) return;
    watch.since = Date.now();
    this.waiting.add(watch);
    this.sweeper ??= setInterval(this.sweep, Math.max(1, Math.floor(this.timeoutMs / 4))).unref();
  }

  /** HTTP/2 took a send's bytes: progress, so the clock restarts for whatever is still queued. */
  sent(watch: StallWatch): void {
    if (--watch.pending === 0) this.waiting.delete(watch);
    else watch.since = Date.now();
  }

  /** The stream ended: it is no longer watched. */
  forget(watch: StallWatch): void {
    this.waiting.delete(watch);
  }

  private readonly sweep = () => {
    const now = Date.now();
    for (const watch of this.waiting) {
      if (now - watch.since < this.timeoutMs) continue;
      this.waiting.delete(watch);
      watch.onStall();
    }
    if (this.waiting.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  };
}

/**
 * Resets a stream whose client has accepted no data for the sweep's timeout. Such a stream's
 * trailers would queue behind the unsent data, so no status can reach it: the stream is reset
 * with ENHANCE_YOUR_CALM, which gRPC clients report as RESOURCE_EXHAUSTED, and the reset frees
 * the handler (its signal aborts) and its memory. The reason (SUBSCRIBER_STALLED) goes to the
 * hub's log.
 */
export function resetStalled(stream: ServerHttp2Stream, logger: Logger, method: string, peer: string, timeoutMs: number): void {
  if (stream.destroyed) return; // cancelled meanwhile: nothing to end
  logger.warn('stream reset: no progress', { reason: Reason.SubscriberStalled, method, peer, timeoutMs });
  stream.close(http2Constants.NGHTTP2_ENHANCE_YOUR_CALM);
}

/**
 * A grpc-js server interceptor that resets a server-streaming call whose client accepts no
 * data for `timeoutMs` (a Health/Watch or WatchDeliveries stream that never reads; Subscribe
 * is guarded by api/subscribe-call.ts on the same sweep, and `skip` names it here).
 *
 * Why here and not in a nice-grpc middleware: nice-grpc awaits the call's 'drain' before it
 * resumes the handler, so a stuck stream's handler is suspended and cannot time itself out.
 * grpc-js calls a message's send callback only once HTTP/2 has taken its bytes (the peer's
 * flow-control window let them out), so "a send pending for timeoutMs" is exactly "no
 * progress".
 */
export function stallGuardInterceptor(sweep: StallSweep, logger: Logger, skip: ReadonlySet<string> = new Set()): grpc.ServerInterceptor {
  const timeoutMs = sweep.timeoutMs;
  return (method, call) => {
    // Other calls get the call itself, no wrapper per unary push: grpc-js only chains the
    // interceptors' results through the interface (the declared return type is narrower).
    if (!method.responseStream || !(timeoutMs > 0) || skip.has(method.path)) return call as grpc.ServerInterceptingCall;
    const guarded = new grpc.ServerInterceptingCall(call);
    const watch: StallWatch = {
      pending: 0,
      since: 0,
      onStall() {
        // grpc-js keeps the HTTP/2 stream on its base call; without it, fall back to a status.
        const stream = (call as unknown as { stream?: ServerHttp2Stream }).stream;
        if (stream) resetStalled(stream, logger, method.path, call.getPeer(), timeoutMs);
        else call.sendStatus({ code: grpc.status.RESOURCE_EXHAUSTED, details: `stream: no data accepted for ${timeoutMs} ms`, metadata: null });
      },
    };
    const sendMessage = guarded.sendMessage.bind(guarded);
    guarded.sendMessage = (message, callback) => {
      sweep.sending(watch);
      sendMessage(message, () => {
        sweep.sent(watch);
        callback();
      });
    };
    const sendStatus = guarded.sendStatus.bind(guarded);
    guarded.sendStatus = (status) => {
      sweep.forget(watch);
      sendStatus(status);
    };
    return guarded;
  };
}
