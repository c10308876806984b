import type { ChangeRecord, ItemLocator, RequestRecord } from './records.js';

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

  insertChange(change: ChangeRecord): void;
  deleteChange(seq: number): void;
  saveRequest(merchantId: string, requestId: string, record: RequestRecord): void;
  setHeadSequence(seq: number): void;
}
