import type { DeepPartial, ServiceInfo, WithdrawRequest } from './gen/pushhub/v1/pushhub.js';

/**
 * The content of a push: a `ServiceInfo` where every field is optional (unset strings are
 * empty, an unset `validUntil` means the hub's default lifetime). For example
 * `{ key: 'points', title: 'Your points', offer: { $case: 'points', value: { balance: 120n, earned: 20n } } }`.
 */
export type ServiceInfoInput = DeepPartial<ServiceInfo>;

/** The hub's acknowledgement of a committed push or withdrawal. */
export interface PushResult {
  /** The item's id (for a withdrawal: the withdrawn item's id). */
  itemId: string;
  /** The change's position in the hub's sequence. */
  sequence: bigint;
}

/** Per-call options of a push. */
export interface PushOptions {
  /**
   * Idempotency key (at most 128 characters). Generated when omitted; every retry of one call
   * reuses it, so the hub applies the push once. Pass your own to make retries of your own
   * (for example after a crash) idempotent too; the hub remembers it for 24 h.
   */
  requestId?: string;
  /** Cancels the call (and its retries). */
  signal?: AbortSignal;
}

/** What to withdraw: an item by id, or the live item with a key (specific: with `receiverId`; public: without). */
export type WithdrawTarget = { itemId: string } | { key: string; receiverId?: string };

/** Builds a WithdrawRequest from the SDK's target shape (not exported from the package). */
export function toWithdrawRequest(target: WithdrawTarget, requestId: string): DeepPartial<WithdrawRequest> {
  return 'itemId' in target
    ? { itemId: target.itemId, requestId }
    : { key: target.key, receiverId: target.receiverId ?? '', requestId };
}

