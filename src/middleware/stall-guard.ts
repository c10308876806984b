import { constants as http2Constants, type ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { Reason } from '../core/errors.js';
import type { Logger } from '../logger.js';

/**
 * A grpc-js server interceptor that resets a server-streaming call whose client accepts no
 * data for `timeoutMs` (a Subscribe or Health/Watch stream that never reads).
 *
 * Why here and not in a nice-grpc middleware: nice-grpc awaits the call's 'drain' before it
 * resumes the handler, so a stuck stream's handler is suspended and cannot time itself out.
 * grpc-js calls a message's send callback only once HTTP/2 has taken its bytes (the peer's
 * flow-control window let them out), so "a send pending for timeoutMs" is exactly "no
 * progress". Such a stream's trailers would queue behind the unsent data, so no status can
 * reach it: the stream is reset with ENHANCE_YOUR_CALM, which gRPC clients report as
 * RESOURCE_EXHAUSTED, and the reset frees the handler (its signal aborts) and its memory.
 * The reason (SUBSCRIBER_STALLED) goes to the hub's log.
 */
export function stallGuardInterceptor(timeoutMs: number, logger: Logger): grpc.ServerInterceptor {
  // One sweep for all streams instead of a timer per message: a send that starts or
  // completes only notes the time (each broadcast writes one message to every stream, and a
  // timer set and cleared per write was a measured share of the hub's work per delivery).
  // The sweep runs every quarter timeout, so a stall is found within 1.25 × timeoutMs.
  const waiting = new Set<Watch>();
  let sweeper: NodeJS.Timeout | undefined;
  const sweep = () => {
    const now = Date.now();
    for (const watch of waiting) {
      if (now - watch.since < timeoutMs) continue;
      waiting.delete(watch);
      watch.onStall();
    }
    if (waiting.size === 0 && sweeper) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };
  const startWaiting = (watch: Watch) => {
    watch.since = Date.now();
    waiting.add(watch);
    sweeper ??= setInterval(sweep, Math.max(1, Math.floor(timeoutMs / 4))).unref();
  };

  return (method, call) => {
    // Other calls get the call itself, no wrapper per unary push: grpc-js only chains the
    // interceptors' results through the interface (the declared return type is narrower).
    if (!method.responseStream || !(timeoutMs > 0)) return call as grpc.ServerInterceptingCall;
    const guarded = new grpc.ServerInterceptingCall(call);
    const watch: Watch = {
      pending: 0,
      since: 0,
      onStall() {
        // grpc-js keeps the HTTP/2 stream on its base call; without it, fall back to a status.
        const stream = (call as unknown as { stream?: ServerHttp2Stream }).stream;
        if (stream?.destroyed) return; // cancelled meanwhile: nothing to end
        logger.warn('stream reset: no progress', { reason: Reason.SubscriberStalled, method: method.path, peer: call.getPeer(), timeoutMs });
        if (stream) stream.close(http2Constants.NGHTTP2_ENHANCE_YOUR_CALM);
        else call.sendStatus({ code: grpc.status.RESOURCE_EXHAUSTED, details: `stream: no data accepted for ${timeoutMs} ms`, metadata: null });
      },
    };
    const sendMessage = guarded.sendMessage.bind(guarded);
    guarded.sendMessage = (message, callback) => {
      if (watch.pending++ === 0) startWaiting(watch);
      sendMessage(message, () => {
        // Progress: the clock restarts for whatever is still queued.
        if (--watch.pending === 0) waiting.delete(watch);
        else watch.since = Date.now();
        callback();
      });
    };
    const sendStatus = guarded.sendStatus.bind(guarded);
    guarded.sendStatus = (status) => {
      waiting.delete(watch);
      sendStatus(status);
    };
    return guarded;
  };
}

/** One guarded stream: sends not yet taken by HTTP/2, and since when it has made no progress (ms). */
interface Watch {
  pending: number;
  since: number;
  onStall(): void;
}
