import { type CallContext, type ServerMiddleware } from 'nice-grpc';
import { HubError, Reason } from '../core/errors.js';
import type { AuthContext } from '../api/call-context.js';
import type { Logger } from '../logger.js';
import type { HubMetrics } from '../metrics.js';
import type { Registry } from '../registry/registry.js';
import type { SourceResolver } from './client-source.js';
import { type ConnectionCredentials, authenticateCall } from './auth.js';
import { toCallError } from './error-status.js';
import { MalformedRequest, checkMetadataSize, malformed, rejectMalformedMessages } from './request-guards.js';

export interface CallGuardOptions {
  /** Request metadata (keys plus values) larger than this is refused before anything else. */
  maxMetadataBytes: number;
  /** The client source of a call (client-source.ts): limits key on it, rejections log it. */
  sourceOf: SourceResolver;
  /** Bench only: trust the id with the role the method needs (see config.insecureBenchSkipPasswordCheck). */
  insecureBenchSkipPasswordCheck?: boolean;
  /** Verified authorization headers per open connection (auth.ts); its interceptor must be on the server. */
  connections?: ConnectionCredentials;
  logger: Logger;
  metrics?: HubMetrics;
}

const passwordRotated = () =>
  new HubError(Reason.Unauthenticated, 'authorization: the password this stream was opened with was rotated; reconnect with the new one');

/** The status a stream ends with when its account's credentials are revoked, by cause. */
export const revokedBy = (cause: string | undefined): HubError => {
  if (cause === 'deleted') return new HubError(Reason.AccountDeleted, 'authorization: this account was deleted; its streams ended and its id is refused');
  if (cause === 'suspended') return new HubError(Reason.AccountSuspended, 'authorization: this account was suspended by the hub operator');
  return passwordRotated();
};

/**
 * Every PushHubService call passes these checks, in this order: the metadata limit, then
 * authentication and the method's role (permission before existence), then the request must
 * have decoded (so an anonymous caller learns nothing more than UNAUTHENTICATED). A stream
 * also ends with UNAUTHENTICATED when its account's password is rotated. Whatever the call
 * throws becomes its gRPC status here (toCallError, the one mapping point).
 *
 * All of it is one middleware, not one each, because nice-grpc runs every middleware as an
 * async generator that each response message passes through (`yield*`), and an open stream
 * holds every layer's generator, pending promise and context copy for as long as it is open:
 * one layer instead of five is what each broadcast event and each idle Subscribe stream pay
 * less (docs/performance.md).
 */
export function callGuardMiddleware(registry: Registry, options: CallGuardOptions): ServerMiddleware<AuthContext> {
  const { maxMetadataBytes, logger, metrics } = options;
  return async function* guard(call, context: CallContext) {
    // Set only for a stream: its signal also aborts when the password is rotated.
    let revocation: { linked: AbortController; revoked: boolean; cause?: string; unwatch: () => void; onCallAbort: () => void } | undefined;
    // The call's own signal, read before a stream's context gets the linked one below.
    const callSignal = context.signal;
    try {
      checkMetadataSize(context.metadata, maxMetadataBytes);
      let authed = await authenticateCall(registry, call.method.path, context, options);
      if (!call.requestStream && !call.responseStream) {
        if (call.request instanceof MalformedRequest) throw malformed(call.request.problem);
        return yield* call.next(call.request, authed);
      }
      const request = call.requestStream ? (rejectMalformedMessages(call.request as AsyncIterable<unknown>) as typeof call.request) : call.request;
      if (request instanceof MalformedRequest) throw malformed(request.problem);
      if (authed.account.id !== '') {
        // Streams (Subscribe, PushStream) all need an account: a stream opened with a leaked
        // password does not outlive the rotation.
        const linked = new AbortController();
        const onCallAbort = () => linked.abort(callSignal.reason);
        callSignal.addEventListener('abort', onCallAbort, { once: true });
        const watch: NonNullable<typeof revocation> = { linked, revoked: false, onCallAbort, unwatch: () => {} };
        watch.unwatch = registry.watchRevocation(authed.account.id, (cause) => {
          watch.revoked = true;
          watch.cause = cause;
          linked.abort();
        });
        revocation = watch;
        // A copy per stream (not per message): nice-grpc's own context keeps its signal.
        authed = { ...authed, signal: linked.signal };
      }
      const result = yield* call.next(request, authed);
      if (revocation?.revoked) throw revokedBy(revocation.cause);
      return result;
    } catch (error) {
      throw toCallError(revocation?.revoked ? revokedBy(revocation.cause) : error, call.method.path, context, logger, metrics, options.sourceOf);
    } finally {
      if (revocation) {
        revocation.unwatch();
        callSignal.removeEventListener('abort', revocation.onCallAbort);
      }
    }
  };
}
