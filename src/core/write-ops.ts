import type { ServiceInfo } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import type { HubError } from './errors.js';
import type { ChangeRecord } from './records.js';

/** A validated push: receiverId is PUBLIC_RECEIVER for a public push; info.validUntil is set. */
export interface PushOp {
  kind: 'push';
  merchantId: string;
  receiverId: string;
  info: ServiceInfo;
  requestId: string;
  /** Digest of the request without its request_id (see api/request-digest.ts); '' without a request_id. */
  requestDigest: string;
  /**
   * valid_until's nanos as sent, when they have a sub-millisecond part that info.validUntil
   * (a Date) cannot hold; the frame then carries them exactly.
   */
  validUntilNanos?: number;
}

/** A validated withdrawal, by item id or by (receiverId, key). */
export interface WithdrawOp {
  kind: 'withdraw';
  merchantId: string;
  itemId: string;
  key: string;
  receiverId: string;
  requestId: string;
  /** Digest of the request without its request_id; '' without a request_id. */
  requestDigest: string;
}

/**
 * An account action that changes what receivers see, so it commits through the same batches
 * as pushes and takes sequences in the change log (a resume from any cursor replays it):
 * - block / unblock: `accountId` (a receiver) blocks or unblocks `merchantId`;
 * - suspend / resume / delete: on `accountId` (an operator's action, or the account's own
 *   deletion); `merchantId` is ''.
 * No request id: each is idempotent by itself (blocking twice is one block).
 */
export interface AccountOp {
  kind: 'block' | 'unblock' | 'suspend' | 'resume' | 'delete';
  accountId: string;
  merchantId: string;
  requestId: '';
  requestDigest: '';
}

export type WriteOp = PushOp | WithdrawOp | AccountOp;

export interface WriteAck {
  itemId: string;
  seq: number;
}

/** What one committed batch produced: one outcome per op, the changes to fan out, the new head. */
export interface BatchResult {
  outcomes: (WriteAck | HubError)[];
  published: ChangeRecord[];
  head: number;
}

/** Per-batch rules from the config, the same on every backend. */
export interface BatchLimits {
  /** How long a request_id is remembered, in ms. */
  idempotencyWindowMs: number;
  /** Live public items per merchant; 0 = unlimited. */
  maxPublicItemsPerMerchant: number;
  /** Merchants one receiver may block; 0 = unlimited (optional: 10,000 when absent). */
  maxBlocksPerReceiver?: number;
}
