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
  return (method, call) => {
    // Other calls get the call itself, no wrapper per unary push: grpc-js only chains the
    // interceptors' results through the interface (the declared return type is narrower).
    if (!method.responseStream || !(timeoutMs > 0)) return call as grpc.ServerInterceptingCall;
    const guarded = new grpc.ServerInterceptingCall(call);
    let pending = 0;
    let timer: NodeJS.Timeout | undefined;
    const onStall = () => {
      timer = undefined;
      // grpc-js keeps the HTTP/2 stream on its base call; without it, fall back to a status.
      const stream = (call as unknown as { stream?: ServerHttp2Stream }).stream;
      if (stream?.destroyed) return; // cancelled meanwhile: nothing to end
      logger.warn('stream reset: no progress', { reason: Reason.SubscriberStalled, method: method.path, peer: call.getPeer(), timeoutMs });
      if (stream) stream.close(http2Constants.NGHTTP2_ENHANCE_YOUR_CALM);
      else call.sendStatus({ code: grpc.status.RESOURCE_EXHAUSTED, details: `stream: no data accepted for ${timeoutMs} ms`, metadata: null });
    };
    const sendMessage = guarded.sendMessage.bind(guarded);
    guarded.sendMessage = (message, callback) => {
      pending++;
      timer ??= setTimeout(onStall, timeoutMs).unref();
      sendMessage(message, () => {
        pending--;
        // Progress: the clock restarts for whatever is still queued.
        clearTimeout(timer);
        timer = pending > 0 ? setTimeout(onStall, timeoutMs).unref() : undefined;
        callback();
      });
    };
    const sendStatus = guarded.sendStatus.bind(guarded);
    guarded.sendStatus = (status) => {
      clearTimeout(timer);
      timer = undefined;
      sendStatus(status);
    };
    return guarded;
  };
}
