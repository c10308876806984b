/**
 * The hub's persistence, behind an interface so the domain never sees SQL. The SQLite
 * implementation lives in ./sqlite; a second backend implements the same contract and runs
 * the same test suite (test/store-contract.test.ts).
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

export interface HubStore {
  /** Runs fn in one write transaction, committed durably before it returns. */
  transaction<T>(fn: () => T): T;

  insertAccount(account: AccountRecord): boolean;
  getAccount(id: string): AccountRecord | undefined;
  updatePasswordHash(id: string, passwordHash: Buffer): boolean;
  /**
   * Compare-and-set: replaces the hash only while it still equals `expected`, atomically in
   * the database (so it holds across hub processes on one database). False when another
   * rotation got there first, or the account does not exist.
   */
  replacePasswordHash(id: string, expected: Buffer, next: Buffer): boolean;
  isReceiver(id: string): boolean;

  /** Highest sequence ever assigned (survives purges, so sequences are never reused). */
  headSequence(): number;
  setHeadSequence(seq: number): void;

  insertChange(change: ChangeRecord): void;
  /** The live (not withdrawn, not replaced) item with this merchant, audience and key. */
  findItemByKey(locator: ItemLocator): ChangeRecord | undefined;
  findItemById(itemId: string): ChangeRecord | undefined;
  deleteChange(seq: number): void;

  findRequest(merchantId: string, requestId: string): RequestRecord | undefined;
  saveRequest(merchantId: string, requestId: string, record: RequestRecord): void;

  /**
   * Changes visible to a receiver after a sequence, unexpired, ascending, at most limit:
   * every item, and the tombstones whose sequence is above tombstonesAfterSeq. A resume
   * passes its cursor (it needs every tombstone); a snapshot passes the head at which it
   * started, because tombstones at or below it are for items the snapshot never contains,
   * while later ones may withdraw an item of a page already sent.
   */
  readChanges(receiverId: string, afterSeq: number, nowMs: number, limit: number, tombstonesAfterSeq: number): ChangeRecord[];
  /** How many live (unexpired) public items a merchant has. */
  countPublicItems(merchantId: string, nowMs: number): number;
  /** A merchant's live items after a sequence, ascending, optionally for one receiver id. */
  listItems(merchantId: string, receiverId: string | undefined, afterSeq: number, nowMs: number, limit: number): ChangeRecord[];

  /** Deletes expired changes and request ids older than requestCutoffMs; returns rows removed. */
  purge(nowMs: number, requestCutoffMs: number): number;
  close(): void;
}
