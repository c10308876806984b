import { type CallContext, type ServerMiddleware } from 'nice-grpc';
import { HubError, Reason } from '../core/errors.js';
import type { SourceResolver } from './client-source.js';

export interface AnonymousStreamLimits {
  /** Concurrent unauthenticated calls in total. */
  maxStreams: number;
  /** Concurrent unauthenticated calls from one client source (client-source.ts). */
  maxStreamsPerSource: number;
  sourceOf: SourceResolver;
}

/**
 * Caps concurrent calls that need no credentials (Health/Check and Watch, reflection), in
 * total and per client source: a stream holds memory for as long as the peer likes, and
 * nobody anonymous may hold an unbounded amount. Unary calls count too: a unary call whose
 * handler is slow to answer is held like a stream while it lasts (and one whose request never
 * arrives ends at --request-timeout-ms, see request-timeout.ts).
 */
export function anonymousStreamLimitMiddleware(limits: AnonymousStreamLimits): ServerMiddleware {
  let open = 0;
  const bySource = new Map<string, number>();
  return async function* limitAnonymousStreams(call, context: CallContext) {
    const source = limits.sourceOf(context).key;
    const fromSource = bySource.get(source) ?? 0;
    if (open >= limits.maxStreams || fromSource >= limits.maxStreamsPerSource) {
      const which = open >= limits.maxStreams ? `${limits.maxStreams} in total` : `${limits.maxStreamsPerSource} per source address`;
      const kind = call.responseStream || call.requestStream ? 'stream' : 'call';
      throw new HubError(Reason.TooManyAnonymousStreams, `${kind}: too many unauthenticated ${kind}s (at most ${which})`);
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
