import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Database } from './sqlite.js';
import type { Item, OfferKind, StoreChange } from './types.js';
import type { ReceiverClient, ReceiverEvent } from './receiver-client.js';
import { STORE_MIGRATIONS, type StoreTables, createStoreTables } from './receiver-store-tables.js';
import { type SyncOptions, syncReceiverStore } from './receiver-sync.js';
import { migrateSqlite } from './sqlite-migrator.js';

export type { OfferKind, ReceiverDaemonLine, StoreChange } from './types.js';
export type { SyncOptions } from './receiver-sync.js';

/** Events of a ReceiverStore (`store.on('change', (change) => …)`). */
export interface ReceiverStoreEvents {
  /** Emitted once per change, after the transaction that made it has committed. */
  change: [StoreChange];
}

/**
 * A receiver's local copy of its current info, in one SQLite file: every live item, keyed by
 * id and by (merchant, audience, key), plus the cursor (the last sequence applied).
 *
 * Each batch of events is applied in one transaction together with the cursor (and the history
 * it belongs to), and events at or below the cursor are skipped, so after a crash the store resumes from its cursor with
 * nothing lost and nothing applied twice.
 */
export class ReceiverStore extends EventEmitter<ReceiverStoreEvents> {
  private readonly db: Database.Database;
  private readonly tables: StoreTables;

  /** Opens (creating if needed) the store file at `path`; ':memory:' for a throwaway store. */
  constructor(path: string) {
    super();
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    // WAL: readers (queries, other processes) never block the writer. synchronous=NORMAL in
    // WAL mode survives a process crash; a power loss may drop the newest transactions, but
    // the cursor rolls back with them, so they are fetched again.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    migrateSqlite(
      this.db,
      STORE_MIGRATIONS,
      (found, known) => new Error(`store schema version ${found} is newer than this SDK (${known}); upgrade @pushhub/sdk`),
    );
    this.tables = createStoreTables(this.db);
  }

  /** The last sequence applied; subscribe after it to resume. 0 for a new store. */
  get cursor(): number {
    return this.tables.state().cursor;
  }

  /** The history the cursor belongs to ('' for a new store); sent with the cursor when resuming. */
  get historyId(): string {
    return this.tables.state().historyId;
  }

  /** True while a reset's new state is being gathered (until its caughtUp replaces the items). */
  get resetting(): boolean {
    return this.tables.resetting;
  }

  /** The receiver id the store belongs to ('' until `sync` or `bindReceiver` sets it). */
  get receiverId(): string {
    return this.tables.state().receiver;
  }

  /**
   * Ties the store to one receiver; a store synced by another receiver is refused, since its
   * cursor and items mean nothing to this one.
   */
  bindReceiver(receiverId: string): void {
    const current = this.receiverId;
    if (current === receiverId) return;
    if (current !== '') throw new Error(`this store belongs to receiver ${current}, not ${receiverId}`);
    this.tables.setReceiver(receiverId);
  }

  /**
   * Applies one event atomically with the cursor and returns the changes it made (also
   * emitted as `change` events after commit). Events at or below the cursor are ignored.
   */
  apply(event: ReceiverEvent, nowMs = Date.now()): StoreChange[] {
    return this.applyBatch([event], nowMs);
  }

  /**
   * Applies events in order in ONE transaction together with the cursor (moved to the last
   * event's sequence), and returns (and emits, after commit) the changes they made. Events
   * at or below the cursor are ignored.
   */
  applyBatch(events: readonly ReceiverEvent[], nowMs = Date.now()): StoreChange[] {
    return this.commit(() => this.tables.applyBatch(events, nowMs));
  }

  /** Removes items past their valid_until and returns (and emits) the removals. */
  purgeExpired(nowMs = Date.now()): StoreChange[] {
    return this.commit(() => this.tables.purgeExpired(nowMs));
  }

  /** Every live item, in sequence order. */
  items(nowMs = Date.now()): Item[] {
    return this.tables.items(nowMs);
  }

  /** The live items of one merchant, in sequence order. */
  itemsByMerchant(merchantId: string, nowMs = Date.now()): Item[] {
    return this.tables.itemsByMerchant(merchantId, nowMs);
  }

  /** The live items carrying one kind of offer ('none': plain messages), in sequence order. */
  itemsByOfferKind(kind: OfferKind, nowMs = Date.now()): Item[] {
    return this.tables.itemsByOfferKind(kind, nowMs);
  }

  /** One item by id, if stored. */
  item(itemId: string): Item | undefined {
    return this.tables.item(itemId);
  }

  /**
   * Keeps the store current: subscribes after the stored cursor and applies each batch of
   * events in one transaction until `signal` aborts (resolves) or the subscription fails for
   * good (rejects). Expired items are dropped as they expire (checked every
   * `purgeIntervalMs`, default 60 s).
   *
   * When the stored state cannot be resumed from (the hub's database was restored, or the
   * cursor is beyond its newest sequence), the hub sends a reset and the receiver's full
   * state: the store replaces its items in one transaction and emits one `reset` change,
   * then an `added` change per item of the new state (never removals).
   */
  sync(client: ReceiverClient, options: SyncOptions = {}): Promise<void> {
    return syncReceiverStore(this, client, options);
  }

  /** Closes the file. */
  close(): void {
    this.db.close();
  }

  /** Runs `write` in one immediate transaction, then emits its changes (after commit). */
  private commit(write: () => StoreChange[]): StoreChange[] {
    const changes = this.db.transaction(write).immediate();
    for (const change of changes) this.emit('change', change);
    return changes;
  }
}

/** Opens (creating if needed) a receiver store file. */
export function createReceiverStore(path: string): ReceiverStore {
  return new ReceiverStore(path);
}
