/**
 * The records of the hub's domain: accounts, the change log (items and tombstones) and
 * remembered request ids. Every backend stores exactly these (src/store/ports.ts).
 */

export type AccountRole = 'merchant' | 'receiver';

export interface AccountRecord {
  id: string;
  role: AccountRole;
  displayName: string;
  /** scrypt-kdf hash of the password; the password itself is never stored. */
  passwordHash: Buffer;
  createdAtMs: number;
  /** Set while an operator has the account suspended. */
  suspendedAtMs?: number;
  /** Set once the account is deleted: the row stays (without credentials) so the id is never issued again. */
  deletedAtMs?: number;
  /** The last time its credentials were verified with scrypt (a login; cached credentials do not count). */
  lastSeenAtMs?: number;
}

/**
 * Kinds of rows in the change log. Copy, Barred and Unbarred rows serve account actions:
 * - Copy: a live public item delivered again, at a new sequence, after an unblock (receiverId
 *   is the receiver) or a resume (receiverId is PUBLIC_RECEIVER). Never an item: the original
 *   row is the item (ListItems, withdraw, replace); its tombstone reaches the copy's holders.
 * - Barred / Unbarred: markers (empty frame) telling open streams that a receiver blocked or
 *   unblocked merchantId, or (receiverId PUBLIC_RECEIVER) that the merchant was suspended or
 *   resumed. They travel the change feed to every node; streams update their filter by them.
 */
export const ChangeKind = { Item: 1, Withdrawal: 2, Copy: 3, Barred: 4, Unbarred: 5 } as const;
export type ChangeKind = (typeof ChangeKind)[keyof typeof ChangeKind];

/** Public items are stored once with this receiver id and match every receiver. */
export const PUBLIC_RECEIVER = '';

/** One entry of the hub's change log: an item, or the tombstone of a withdrawn item. */
export interface ChangeRecord {
  /** Position in the hub's single monotonic change sequence. */
  seq: number;
  kind: ChangeKind;
  itemId: string;
  merchantId: string;
  /** The receiver of a specific item, or PUBLIC_RECEIVER. */
  receiverId: string;
  /** Replacement key; '' when the item has none. */
  itemKey: string;
  /** The encoded SubscribeResponse for this change, built once, sent as-is to every subscriber. */
  frame: Uint8Array;
  /** `frame` as one gRPC message (prefix included), made by the first stream that writes it alone (FrameBatch). */
  message?: Buffer;
  pushedAtMs: number;
  /** Items past this are never delivered; tombstones are kept until the item would have expired. */
  validUntilMs: number;
}

/** The remembered outcome of a push with a request_id. */
export interface RequestRecord {
  itemId: string;
  seq: number;
  createdAtMs: number;
  /** sha256 (hex) of the request without its request_id; '' for records of older hubs. */
  digest: string;
}

export interface ItemLocator {
  merchantId: string;
  receiverId: string;
  itemKey: string;
}

/**
 * Why a merchant is barred for a receiver: blocked by that receiver, or, for every receiver
 * (receiverId PUBLIC_RECEIVER), suspended by an operator or deleted.
 */
export type BarCause = 'blocked' | 'suspended' | 'deleted';

/** One row of the bars table: a receiver's block, or a merchant's suspension or deletion. */
export interface BarRecord {
  receiverId: string;
  merchantId: string;
  cause: BarCause;
  atMs: number;
}
