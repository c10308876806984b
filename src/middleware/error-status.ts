import { isAbortError } from 'abort-controller-x';
import { type CallContext, type ServerMiddleware, ServerError, Status } from 'nice-grpc';
import { HubError } from '../errors.js';
import type { Logger } from '../logger.js';

/** Trailer carrying the stable reason of a failure (AIP-193), for SDKs to branch on. */
export const REASON_TRAILER = 'pushhub-reason';

/**
 * The one place where errors become gRPC statuses: HubError keeps its code and message (and
 * its reason goes into a trailer); anything unexpected is INTERNAL with a generic message,
 * and its stack goes to the log, never to the client.
 */
export function errorStatusMiddleware(logger: Logger): ServerMiddleware {
  return async function* errorStatus(call, context: CallContext) {
    try {
      return yield* call.next(call.request, context);
    } catch (error) {
      if (error instanceof HubError) {
        context.trailer.set(REASON_TRAILER, error.reason);
        throw new ServerError(error.code, error.message);
      }
      if (error instanceof ServerError || isAbortError(error)) throw error;
      logger.error('unexpected error', { method: call.method.path, error: String((error as Error)?.stack ?? error) });
      throw new ServerError(Status.INTERNAL, 'internal error');
    }
  };
}
