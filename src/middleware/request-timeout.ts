import { constants as http2Constants, type ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { Reason } from '../core/errors.js';
import type { Logger } from '../logger.js';
import { REASON_TRAILER } from './error-status.js';

/**
 * A grpc-js server interceptor that ends a call whose request message has not fully arrived
 * `timeoutMs` after the call started (its headers arrived), with DEADLINE_EXCEEDED
 * (REQUEST_TIMEOUT). Calls with a request stream (PushStream, reflection) are exempt: their
 * requests arrive over the call's whole life.
 *
 * Why here and not in a nice-grpc middleware: grpc-js runs a unary or server-streaming
 * handler only once the request is complete, so nothing after it sees a call whose request
 * never ends, and the HTTP/2 connection idle timeout never fires while such a call is open.
 * Without this, one client held 10,000 connections with such calls for 338 s (issue 16).
 *
 * After the status, the HTTP/2 stream is reset (NO_ERROR, RFC 9113 §8.1: the response is
 * complete, stop sending): otherwise the stream stays half-open while the client never
 * finishes its request, and keeps its slot and its connection.
 */
export function requestTimeoutInterceptor(timeoutMs: number, logger: Logger, onTimeout?: () => void): grpc.ServerInterceptor {
  // One sweep for all calls instead of a timer per call (the stall guard's pattern): a unary
  // push only adds itself to a set and removes itself when its request is complete.
  const waiting = new Set<Pending>();
  let sweeper: NodeJS.Timeout | undefined;
  const sweep = () => {
    const now = Date.now();
    for (const pending of waiting) {
      if (now - pending.since < timeoutMs) break; // insertion order is start order
      waiting.delete(pending);
      pending.expire();
    }
    if (waiting.size === 0 && sweeper) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };

  return (method, call) => {
    if (method.requestStream || !(timeoutMs > 0)) return call as grpc.ServerInterceptingCall;
    // grpc-js keeps the HTTP/2 stream on its base call (this interceptor comes first).
    const stream = (call as unknown as { stream?: ServerHttp2Stream }).stream;
    if (!stream) return call as grpc.ServerInterceptingCall;
    const pending: Pending = {
      since: Date.now(),
      expire() {
        if (stream.destroyed) return;
        logger.info('call ended: request incomplete', { reason: Reason.RequestTimeout, method: method.path, peer: call.getPeer(), timeoutMs });
        onTimeout?.();
        const metadata = new grpc.Metadata();
        metadata.set(REASON_TRAILER, Reason.RequestTimeout);
        call.sendStatus({
          code: grpc.status.DEADLINE_EXCEEDED,
          details: `request: the request message did not arrive within ${timeoutMs} ms of the call's start`,
          metadata,
        });
        if (!stream.destroyed) stream.close(http2Constants.NGHTTP2_NO_ERROR);
      },
    };
    waiting.add(pending);
    sweeper ??= setInterval(sweep, Math.max(10, Math.floor(timeoutMs / 4))).unref();
    // The request is complete at the client's END_STREAM ('end'); a reset or cancel closes it.
    // No wrapper around the call: a unary push pays two listeners, not a layer per message.
    const done = () => waiting.delete(pending);
    if (stream.readableEnded) done();
    else {
      stream.once('end', done);
      stream.once('close', done);
    }
    return call as grpc.ServerInterceptingCall;
  };
}

/** One call whose request has not fully arrived yet, since when (ms). */
interface Pending {
  since: number;
  expire(): void;
}
