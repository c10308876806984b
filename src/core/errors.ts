import { Status } from 'nice-grpc';

/**
 * Stable reasons, one per kind of failure (AIP-193). Clients branch on the reason; the
 * message is for humans and names the offending field.
 */
export const Reason = {
  InvalidArgument: 'INVALID_ARGUMENT',
  Unauthenticated: 'UNAUTHENTICATED',
  PermissionDenied: 'PERMISSION_DENIED',
  ReceiverNotFound: 'RECEIVER_NOT_FOUND',
  ItemNotFound: 'ITEM_NOT_FOUND',
  CursorOutOfRange: 'CURSOR_OUT_OF_RANGE',
  SubscriberTooSlow: 'SUBSCRIBER_TOO_SLOW',
  TooManyStreams: 'TOO_MANY_STREAMS',
  PushRateExceeded: 'PUSH_RATE_EXCEEDED',
  LoginThrottled: 'LOGIN_THROTTLED',
  /** The scrypt queue is full (logins, registrations, rotations); retry with backoff. */
  AuthBusy: 'AUTH_BUSY',
  /** Too many registrations (or wrong registration tokens) from one source address. */
  RegistrationThrottled: 'REGISTRATION_THROTTLED',
  /** Another RotatePassword for the account won; retry with the password that is current. */
  RotationConflict: 'ROTATION_CONFLICT',
  RegistrationClosed: 'REGISTRATION_CLOSED',
  MetadataTooLarge: 'METADATA_TOO_LARGE',
  ShuttingDown: 'SHUTTING_DOWN',
  SubscriberStalled: 'SUBSCRIBER_STALLED',
  StorageUnavailable: 'STORAGE_UNAVAILABLE',
  TooManyAnonymousStreams: 'TOO_MANY_ANONYMOUS_STREAMS',
  /** A request_id already used, inside the idempotency window, for a request with other content. */
  RequestIdReused: 'REQUEST_ID_REUSED',
  /** The merchant already has as many live public items as the hub allows. */
  PublicItemLimit: 'PUBLIC_ITEM_LIMIT',
  /** The hub started a new history while the stream was open: reconnect, a Reset follows. */
  HistoryChanged: 'HISTORY_CHANGED',
  /** The receiver blocked this merchant: drop it from the merchant's list (FCM's UNREGISTERED). */
  ReceiverBlockedMerchant: 'RECEIVER_BLOCKED_MERCHANT',
  /** An operator suspended the account (pushes refused, a receiver cannot subscribe). */
  AccountSuspended: 'ACCOUNT_SUSPENDED',
  /** The account was deleted: its streams end with this, its credentials stop working. */
  AccountDeleted: 'ACCOUNT_DELETED',
  /** No registered (and not deleted) merchant with this id. */
  MerchantNotFound: 'MERCHANT_NOT_FOUND',
  /** No account (or a deleted one) with this id (admin actions). */
  AccountNotFound: 'ACCOUNT_NOT_FOUND',
  /** The receiver already blocks as many merchants as the hub allows. */
  BlockLimit: 'BLOCK_LIMIT',
  /** ConfirmDelivery beyond the newest sequence the hub has sent anyone. */
  ConfirmationAhead: 'CONFIRMATION_AHEAD',
  /** Too many ConfirmDelivery (per receiver) or GetDeliveryStatus (per merchant) calls; retry later. */
  ReceiptRateExceeded: 'RECEIPT_RATE_EXCEEDED',
  /** The request message did not fully arrive within --request-timeout-ms of the call's start. */
  RequestTimeout: 'REQUEST_TIMEOUT',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

/**
 * The error catalogue: each stable reason with the one gRPC status it is always sent with,
 * so a throw names only the reason and the message (the field and the problem).
 */
export const STATUS_OF = {
  [Reason.InvalidArgument]: Status.INVALID_ARGUMENT,
  [Reason.RequestIdReused]: Status.INVALID_ARGUMENT,
  [Reason.ConfirmationAhead]: Status.INVALID_ARGUMENT,
  [Reason.Unauthenticated]: Status.UNAUTHENTICATED,
  [Reason.PermissionDenied]: Status.PERMISSION_DENIED,
  [Reason.RegistrationClosed]: Status.PERMISSION_DENIED,
  [Reason.ReceiverNotFound]: Status.NOT_FOUND,
  [Reason.ItemNotFound]: Status.NOT_FOUND,
  [Reason.ReceiverBlockedMerchant]: Status.NOT_FOUND,
  [Reason.MerchantNotFound]: Status.NOT_FOUND,
  [Reason.AccountNotFound]: Status.NOT_FOUND,
  [Reason.AccountSuspended]: Status.PERMISSION_DENIED,
  [Reason.AccountDeleted]: Status.UNAUTHENTICATED,
  [Reason.BlockLimit]: Status.RESOURCE_EXHAUSTED,
  [Reason.CursorOutOfRange]: Status.OUT_OF_RANGE,
  [Reason.RotationConflict]: Status.ABORTED,
  [Reason.SubscriberTooSlow]: Status.RESOURCE_EXHAUSTED,
  [Reason.SubscriberStalled]: Status.RESOURCE_EXHAUSTED,
  [Reason.TooManyStreams]: Status.RESOURCE_EXHAUSTED,
  [Reason.TooManyAnonymousStreams]: Status.RESOURCE_EXHAUSTED,
  [Reason.PushRateExceeded]: Status.RESOURCE_EXHAUSTED,
  [Reason.PublicItemLimit]: Status.RESOURCE_EXHAUSTED,
  [Reason.ReceiptRateExceeded]: Status.RESOURCE_EXHAUSTED,
  [Reason.LoginThrottled]: Status.RESOURCE_EXHAUSTED,
  [Reason.AuthBusy]: Status.RESOURCE_EXHAUSTED,
  [Reason.RegistrationThrottled]: Status.RESOURCE_EXHAUSTED,
  [Reason.MetadataTooLarge]: Status.RESOURCE_EXHAUSTED,
  [Reason.ShuttingDown]: Status.UNAVAILABLE,
  [Reason.StorageUnavailable]: Status.UNAVAILABLE,
  [Reason.HistoryChanged]: Status.UNAVAILABLE,
  [Reason.RequestTimeout]: Status.DEADLINE_EXCEEDED,
} as const satisfies Record<Reason, Status>;

/** A failure the hub expects and explains; the error middleware turns it into a gRPC status. */
export class HubError extends Error {
  /** The status this reason is always sent with (see STATUS_OF). */
  readonly code: Status;

  constructor(
    readonly reason: Reason,
    message: string,
    /**
     * When the client may send the request again, in ms (PUSH_RATE_EXCEEDED): sent in the
     * pushhub-retry-after-ms trailer (PushStream: the result's retry_after_ms).
     */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'HubError';
    this.code = STATUS_OF[reason];
  }
}

export const invalidArgument = (field: string, problem: string) =>
  new HubError(Reason.InvalidArgument, `${field}: ${problem}`);

export const shuttingDown = () =>
  new HubError(Reason.ShuttingDown, 'hub is shutting down; reconnect and resume from your last sequence');

export const storageUnavailable = (problem: string) =>
  new HubError(Reason.StorageUnavailable, `storage: ${problem}; nothing was stored, retry later with the same request_id`);

export const receiverNotFound = (field: string, receiverId: string) =>
  new HubError(Reason.ReceiverNotFound, `${field}: no registered receiver ${receiverId}`);

export const receiverBlockedMerchant = (receiverId: string) =>
  new HubError(Reason.ReceiverBlockedMerchant, `receiver_id: receiver ${receiverId} blocked this merchant; remove it from your list`);

export const merchantSuspended = () =>
  new HubError(Reason.AccountSuspended, 'authorization: this merchant is suspended by the hub operator; pushes are refused until it is resumed');

export const merchantNotFound = (field: string, merchantId: string) =>
  new HubError(Reason.MerchantNotFound, `${field}: no registered merchant ${merchantId}`);
