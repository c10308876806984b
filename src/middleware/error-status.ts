import { isAbortError } from 'abort-controller-x';
import { type CallContext, type ServerMiddleware, ServerError, Status } from 'nice-grpc';
import { HubError, Reason } from '../core/errors.js';
import type { Logger } from '../logger.js';
import type { HubMetrics } from '../metrics.js';
import type { ClientSource, SourceResolver } from './client-source.js';

/** Trailer carrying the stable reason of a failure (AIP-193), for SDKs to branch on. */
export const REASON_TRAILER = 'pushhub-reason';
/** Trailer carrying when to retry, in ms (PUSH_RATE_EXCEEDED), like HTTP's Retry-After. */
export const RETRY_AFTER_TRAILER = 'pushhub-retry-after-ms';

/**
 * The level each rejection is logged at. A client's own mistakes (bad field, unknown id,
 * shutdown reconnects) are routine: debug. What an operator should see grow — failed logins,
 * throttles, slow consumers cut off, closed registration, oversized metadata — is warn.
 * Anything unexpected is error, with its stack.
 */
const LEVEL_BY_REASON: Partial<Record<string, 'debug' | 'info' | 'warn'>> = {
  [Reason.Unauthenticated]: 'warn',
  [Reason.PermissionDenied]: 'warn',
  [Reason.LoginThrottled]: 'warn',
  [Reason.PushRateExceeded]: 'warn',
  [Reason.SubscriberTooSlow]: 'warn',
  [Reason.RegistrationClosed]: 'warn',
  [Reason.MetadataTooLarge]: 'warn',
  [Reason.TooManyStreams]: 'info',
  [Reason.AuthBusy]: 'info',
  [Reason.RegistrationThrottled]: 'info',
  [Reason.TooManyAnonymousStreams]: 'info',
  [Reason.RequestTimeout]: 'info',
};

/** Refusals by a per-source limit: their log line and metric say which client address counted. */
export const PER_SOURCE_REASONS: ReadonlySet<string> = new Set([
  Reason.LoginThrottled,
  Reason.AuthBusy,
  Reason.RegistrationThrottled,
  Reason.TooManyAnonymousStreams,
]);

/** "/pushhub.v1.PushHubService/Subscribe" -> "Subscribe": short, and a bounded label set. */
export const methodName = (path: string) => path.slice(path.lastIndexOf('/') + 1);

/**
 * The one place where errors become gRPC statuses: HubError keeps its code and message (and
 * its reason goes into a trailer); anything unexpected is INTERNAL with a generic message,
 * and its stack goes to the log, never to the client. Each rejected call is logged here
 * once (method, code, reason, message; never metadata or request fields) and counted.
 * Returns what the call should throw (an abort passes through as it is).
 */
export function toCallError(
  error: unknown,
  path: string,
  context: CallContext,
  logger: Logger,
  metrics?: HubMetrics,
  sourceOf?: SourceResolver,
): unknown {
  const method = methodName(path);
  if (error instanceof HubError) {
    context.trailer.set(REASON_TRAILER, error.reason);
    if (error.retryAfterMs !== undefined) context.trailer.set(RETRY_AFTER_TRAILER, String(error.retryAfterMs));
    const level = LEVEL_BY_REASON[error.reason] ?? 'debug';
    // The client source only where someone reads it: logged rejections and per-source limits.
    const client: ClientSource | undefined = sourceOf && (level !== 'debug' || PER_SOURCE_REASONS.has(error.reason)) ? sourceOf(context) : undefined;
    logger[level]('rpc rejected', {
      method,
      code: Status[error.code],
      reason: error.reason,
      message: error.message,
      ...(client && { source: client.address, sourceVia: client.via }),
    });
    metrics?.rejected(method, error.reason);
    if (client && PER_SOURCE_REASONS.has(error.reason)) metrics?.sourceLimited(error.reason, client.via);
    return new ServerError(error.code, error.message);
  }
  if (isAbortError(error)) return error;
  if (error instanceof ServerError) {
    logger.info('rpc rejected', { method, code: Status[error.code], message: error.details });
    metrics?.rejected(method, Status[error.code] ?? String(error.code));
    return error;
  }
  logger.error('unexpected error', { method, error: String((error as Error)?.stack ?? error) });
  metrics?.rejected(method, 'INTERNAL');
  return new ServerError(Status.INTERNAL, 'internal error');
}

/**
 * {@link toCallError} as a middleware, for the services without the call guard (health,
 * reflection); PushHubService's calls are mapped by the call guard itself (call-guard.ts).
 */
export function errorStatusMiddleware(logger: Logger, metrics?: HubMetrics, sourceOf?: SourceResolver): ServerMiddleware {
  return async function* errorStatus(call, context: CallContext) {
    try {
      return yield* call.next(call.request, context);
    } catch (error) {
      throw toCallError(error, call.method.path, context, logger, metrics, sourceOf);
    }
  };
}
