import { ClientError, Status } from 'nice-grpc';

export { Status };

/** Trailer in which the hub puts the stable reason of a failure (AIP-193). */
export const REASON_TRAILER = 'pushhub-reason';

/**
 * A failed hub call: the gRPC status code, the hub's stable reason (from the
 * `pushhub-reason` trailer, e.g. `RECEIVER_NOT_FOUND`; empty when the failure happened
 * before the hub answered, such as a dropped connection) and the hub's message.
 *
 * Branch on `code` and `reason`; the message is for humans and may change.
 */
export class PushHubError extends Error {
  /** The gRPC status code. */
  readonly code: Status;
  /** The hub's stable reason, or '' when the hub gave none. */
  readonly reason: string;
  /** The full method path of the failed call, e.g. `/pushhub.v1.PushHubService/PushSpecific`. */
  readonly path: string;
  /** The hub's message without the status prefix. */
  readonly details: string;

  constructor(code: Status, reason: string, details: string, path = '') {
    super(`${Status[code] ?? code}${reason ? ` (${reason})` : ''}: ${details}`);
    this.name = 'PushHubError';
    this.code = code;
    this.reason = reason;
    this.path = path;
    this.details = details;
  }
}

/** Converts a nice-grpc ClientError into a PushHubError; anything else is returned as is. */
export function toPushHubError(error: unknown, reason = ''): unknown {
  if (error instanceof ClientError) return new PushHubError(error.code, reason, error.details, error.path);
  return error;
}

/**
 * Status codes that are a definitive answer about the request itself: credentials, permission,
 * the request's content, a cursor or state the caller must change. Sending the same request
 * again cannot help. Every other code (UNAVAILABLE, INTERNAL or CANCELLED from a reset HTTP/2
 * stream, UNKNOWN or UNAVAILABLE from a proxy's HTML error page, RESOURCE_EXHAUSTED, ...) can
 * be a transport or a passing state.
 */
const DEFINITIVE_CODES: ReadonlySet<Status> = new Set([
  Status.UNAUTHENTICATED,
  Status.PERMISSION_DENIED,
  Status.INVALID_ARGUMENT,
  Status.OUT_OF_RANGE,
  Status.FAILED_PRECONDITION,
  Status.NOT_FOUND,
  Status.ALREADY_EXISTS,
  Status.UNIMPLEMENTED,
]);

/**
 * Whether a Subscribe stream that ended with this error should be resumed from the cursor:
 * after anything but a definitive answer. A stream cut by a proxy ends in many ways (issue 21:
 * nginx gave INTERNAL from RST_STREAM when a node died, and HTML error pages map to UNKNOWN or
 * UNAVAILABLE); resuming is always safe, since the cursor dedupes.
 */
export function isResumableStreamEnd(error: unknown): boolean {
  return error instanceof PushHubError && !DEFINITIVE_CODES.has(error.code);
}

/** Whether a call that failed with this error may be sent again unchanged (with its request id). */
export function isRetryable(error: unknown): boolean {
  return error instanceof PushHubError && error.code === Status.UNAVAILABLE;
}
