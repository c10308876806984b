import { ClientError, Status } from 'nice-grpc';

export { Status };

/** Trailer in which the hub puts the stable reason of a failure (AIP-193). */
export const REASON_TRAILER = 'pushhub-reason';
/** Trailer in which the hub says when to retry, in ms (with PUSH_RATE_EXCEEDED). */
export const RETRY_AFTER_TRAILER = 'pushhub-retry-after-ms';

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
  /**
   * When the hub said to try again, in ms: with `PUSH_RATE_EXCEEDED` (the
   * `pushhub-retry-after-ms` trailer, or a push stream result's `retryAfterMs`); 0 otherwise.
   * The merchant client already waits and retries by it, within its deadline.
   */
  readonly retryAfterMs: number;

  constructor(code: Status, reason: string, details: string, path = '', retryAfterMs = 0) {
    super(`${Status[code] ?? code}${reason ? ` (${reason})` : ''}: ${details}`);
    this.name = 'PushHubError';
    this.code = code;
    this.reason = reason;
    this.path = path;
    this.details = details;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * The receiver blocked this merchant (reason `RECEIVER_BLOCKED_MERCHANT`, code NOT_FOUND):
 * like FCM's UNREGISTERED, remove the receiver from the list you push to. Pushing again is
 * refused the same way until the receiver unblocks you.
 */
export class ReceiverBlockedError extends PushHubError {
  /** The receiver that blocked the merchant. */
  readonly receiverId: string;

  constructor(receiverId: string, details: string, path = '') {
    super(Status.NOT_FOUND, 'RECEIVER_BLOCKED_MERCHANT', details, path);
    this.name = 'ReceiverBlockedError';
    this.receiverId = receiverId;
  }
}

/** A PushHubError with reason RECEIVER_BLOCKED_MERCHANT as a {@link ReceiverBlockedError}; anything else as is. */
export function asReceiverBlocked(error: unknown, receiverId: string): unknown {
  if (error instanceof PushHubError && !(error instanceof ReceiverBlockedError) && error.reason === 'RECEIVER_BLOCKED_MERCHANT') {
    return new ReceiverBlockedError(receiverId, error.details, error.path);
  }
  return error;
}

/** Converts a nice-grpc ClientError into a PushHubError; anything else is returned as is. */
export function toPushHubError(error: unknown, reason = '', retryAfterMs = 0): unknown {
  if (error instanceof ClientError) return new PushHubError(error.code, reason, error.details, error.path, retryAfterMs);
  return error;
}

/** The wait the hub asked for when it refused a push for its rate (0: not rate limited). */
export function rateLimitWaitMs(error: unknown): number {
  return error instanceof PushHubError && error.reason === 'PUSH_RATE_EXCEEDED' ? Math.max(1, error.retryAfterMs) : 0;
}

/**
 * Stable reasons the SDK itself gives a {@link PushHubError} when it could not reach the hub
 * (the hub gave no reason: it was never reached). The code stays `UNAVAILABLE`; the message
 * says what is likely wrong and how to fix it. See docs/tls.md.
 */
export const ConnectionReason = {
  /** Nothing listens on the address, or its host name does not resolve. Retried. */
  HUB_UNREACHABLE: 'HUB_UNREACHABLE',
  /** The hub serves TLS and the client connected in plaintext: pass `tls: { ca }`. Not retried. */
  TLS_REQUIRED: 'TLS_REQUIRED',
  /** The client asked for TLS and the hub is plaintext. Not retried. */
  HUB_IS_PLAINTEXT: 'HUB_IS_PLAINTEXT',
  /** The hub's certificate is for other names than the one dialled. Not retried. */
  TLS_NAME_MISMATCH: 'TLS_NAME_MISMATCH',
  /** The hub's certificate is self-signed or signed by a CA the client does not trust. Not retried. */
  TLS_UNTRUSTED: 'TLS_UNTRUSTED',
  /** The hub's certificate has expired or is not valid yet. Not retried. */
  TLS_CERT_EXPIRED: 'TLS_CERT_EXPIRED',
} as const;

/**
 * Connection reasons that no retry can fix: a wrong TLS setting on one side. A call failing
 * with one fails at once instead of spending its retries.
 */
export const PERMANENT_CONNECTION_REASONS: ReadonlySet<string> = new Set([
  ConnectionReason.TLS_REQUIRED,
  ConnectionReason.HUB_IS_PLAINTEXT,
  ConnectionReason.TLS_NAME_MISMATCH,
  ConnectionReason.TLS_UNTRUSTED,
  ConnectionReason.TLS_CERT_EXPIRED,
]);

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
 * UNAVAILABLE); resuming is always safe, since the cursor dedupes. A wrong TLS setting
 * (PERMANENT_CONNECTION_REASONS) is definitive too.
 */
export function isResumableStreamEnd(error: unknown): boolean {
  return error instanceof PushHubError && !DEFINITIVE_CODES.has(error.code) && !PERMANENT_CONNECTION_REASONS.has(error.reason);
}

/** Whether a call that failed with this error may be sent again unchanged (with its request id). */
export function isRetryable(error: unknown): boolean {
  return error instanceof PushHubError && error.code === Status.UNAVAILABLE && !PERMANENT_CONNECTION_REASONS.has(error.reason);
}
