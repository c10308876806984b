import { type CallContext, type ServerMiddleware } from 'nice-grpc';
import { HubError, Reason } from '../core/errors.js';

export interface AnonymousStreamLimits {
  /** Concurrent unauthenticated streams in total. */
  maxStreams: number;
  /** Concurrent unauthenticated streams from one source address. */
  maxStreamsPerSource: number;
}

/** `ipv4:127.0.0.1:5000` / `ipv6:[::1]:5000` → the address without the port. */
const sourceOf = (peer: string) => peer.replace(/^ipv[46]:/, '').replace(/:\d+$/, '');

/**
 * Caps concurrent streaming calls that need no credentials (Health/Watch, reflection), in
 * total and per source address: each holds memory for as long as the peer likes, and
 * nobody anonymous may hold an unbounded amount. Unary calls pass (they end on their own).
 */
export function anonymousStreamLimitMiddleware(limits: AnonymousStreamLimits): ServerMiddleware {
  let open = 0;
  const bySource = new Map<string, number>();
  return async function* limitAnonymousStreams(call, context: CallContext) {
    if (!call.responseStream && !call.requestStream) return yield* call.next(call.request, context);
    const source = sourceOf(context.peer);
    const fromSource = bySource.get(source) ?? 0;
    if (open >= limits.maxStreams || fromSource >= limits.maxStreamsPerSource) {
      const which = open >= limits.maxStreams ? `${limits.maxStreams} in total` : `${limits.maxStreamsPerSource} per source address`;
      throw new HubError(Reason.TooManyAnonymousStreams, `stream: too many unauthenticated streams (at most ${which})`);
    }
    open++;
    bySource.set(source, fromSource + 1);
    try {
      return yield* call.next(call.request, context);
    } finally {
      open--;
      const left = (bySource.get(source) ?? 1) - 1;
      if (left === 0) bySource.delete(source);
      else bySource.set(source, left);
    }
  };
}
