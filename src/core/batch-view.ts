import type { AccountRecord, BarCause, BarRecord, ChangeRecord, ItemLocator, RequestRecord } from './records.js';

/**
 * What applyBatch reads and writes, synchronously, inside the backend's write transaction.
 * SQLite implements it with prepared statements on the transaction's own connection (each
 * read costs microseconds and no round trip); PostgreSQL implements it over a working set
 * loaded before the batch in a few queries (core/working-set.ts), collecting the writes to
 * send back in a few multi-row statements. better-sqlite3 forbids async work inside a
 * transaction, and PostgreSQL must not pay a round trip per statement: this interface is
 * what lets one synchronous domain function serve both.
 *
 * Reads see the batch's own earlier writes (an item pushed, then replaced, in one batch).
 */
export interface BatchView {
  /** The item with this merchant, receiver and non-empty key, if stored (expired or not). */
  findItemByKey(locator: ItemLocator): ChangeRecord | undefined;
  /** The item with this id, if stored (expired or not). */
  findItemById(itemId: string): ChangeRecord | undefined;
  findRequest(merchantId: string, requestId: string): RequestRecord | undefined;
  /** Live (unexpired at nowMs) public items of a merchant. */
  countPublicItems(merchantId: string, nowMs: number): number;
  /** Whether this id is a registered receiver (checked in the commit: no race with the push). */
  isReceiver(id: string): boolean;

  /**
   * The bar on (receiverId, merchantId): receiverId's block of the merchant, or with
   * receiverId PUBLIC_RECEIVER the merchant's own suspension or deletion.
   */
  findBar(receiverId: string, merchantId: string): BarCause | undefined;
  /** How many merchants a receiver blocks. */
  countBlocks(receiverId: string): number;
  /** The account (deleted or not), for account actions. */
  getAccount(id: string): AccountRecord | undefined;
  /**
   * A merchant's live (unexpired at nowMs) items that `receiverId` can see (public ones and
   * its specific ones), or every live item of the merchant when receiverId is undefined.
   * Ascending by seq.
   */
  liveItemsOf(merchantId: string, receiverId: string | undefined, nowMs: number): ChangeRecord[];

  insertChange(change: ChangeRecord): void;
  saveBar(bar: BarRecord): void;
  deleteBar(receiverId: string, merchantId: string): void;
  /** Suspends (a time) or resumes (null) an account. */
  setSuspended(id: string, atMs: number | null): void;
  /**
   * Deletes an account: its credentials and name go, the row stays (so the id is never issued
   * again). For a receiver, every change-log row and bar of it goes too; for a merchant, every
   * receiver's block of it.
   */
  deleteAccount(id: string, atMs: number): void;
  deleteChange(seq: number): void;
  saveRequest(merchantId: string, requestId: string, record: RequestRecord): void;
  setHeadSequence(seq: number): void;
}
