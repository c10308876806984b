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
}

export const ChangeKind = { Item: 1, Withdrawal: 2 } as const;
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
