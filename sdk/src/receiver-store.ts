import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { isAbortError } from 'abort-controller-x';
import { PushHubError } from './errors.js';
import { Item } from './gen/pushhub/v1/pushhub.js';
import type { ReceiverClient, ReceiverEvent } from './receiver-client.js';

/** The kind of offer an item carries; 'none' for a plain message. */
export type OfferKind = 'discount' | 'points' | 'voucher' | 'none';

/** One change to the store's contents, emitted as a `change` event after it is committed. */
export type StoreChange =
  /** An item was added; `replaced` is the item it replaced (same merchant, audience, key), if any. */
  | { type: 'added'; item: Item; replaced?: Item }
  /**
   * An item was removed: withdrawn by its merchant, past its valid_until, or replaced by a
   * newer item with the same key (the newer one is `added` next, unless it has already ended).
   */
  | { type: 'removed'; item: Item; cause: 'withdrawn' | 'expired' | 'replaced' };

/** Options of ReceiverStore.sync. */
export interface SyncOptions {
  /** Ends the sync: `sync` resolves. */
  signal?: AbortSignal;
  /** How often expired items are dropped, in ms (default 60 000). */
  purgeIntervalMs?: number;
  /** Called after each (re)connection once the backlog is applied, with the store's cursor. */
  onCaughtUp?: (sequence: bigint) => void;
}

/** Events of a ReceiverStore. */
export interface ReceiverStoreEvents {
  /** Emitted once per change, after the transaction that made it has committed. */
  change: [StoreChange];
}

/** Schema migrations, applied in order; the index + 1 is the schema version (PRAGMA user_version). */
const MIGRATIONS = [
  `CREATE TABLE items (
     item_id        TEXT PRIMARY KEY,
     sequence       INTEGER NOT NULL,
     merchant_id    TEXT NOT NULL,
     audience       INTEGER NOT NULL,
     item_key       TEXT NOT NULL,
     offer_kind     TEXT NOT NULL,
     valid_until_ms INTEGER NOT NULL,
     item           BLOB NOT NULL
   );
   CREATE UNIQUE INDEX items_by_key ON items (merchant_id, audience, item_key) WHERE item_key <> '';
   CREATE INDEX items_by_merchant ON items (merchant_id, sequence);
   CREATE INDEX items_by_offer ON items (offer_kind, sequence);
   CREATE INDEX items_by_expiry ON items (valid_until_ms);
   CREATE TABLE state (
     id        INTEGER PRIMARY KEY CHECK (id = 1),
     cursor    INTEGER NOT NULL,
     receiver  TEXT NOT NULL
   );
   INSERT INTO state (id, cursor, receiver) VALUES (1, 0, '');`,
];

interface ItemRow {
  item: Buffer;
}

const offerKindOf = (item: Item): OfferKind => item.info?.offer?.$case ?? 'none';
const validUntilMs = (item: Item): number => item.info?.validUntil?.getTime() ?? Number.MAX_SAFE_INTEGER;
const decode = (row: ItemRow): Item => Item.decode(row.item);

/**
 * A receiver's local copy of its current info, in one SQLite file: every live item, keyed by
 * id and by (merchant, audience, key), plus the cursor (the last sequence applied).
 *
 * Each event is applied in one transaction together with the cursor, and events at or
 * below the cursor are skipped, so after a crash the store resumes from its cursor with
 * nothing lost and nothing applied twice.
 */
export class ReceiverStore extends EventEmitter<ReceiverStoreEvents> {
  private readonly db: Database.Database;
  private readonly statements;

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
    this.migrate();
    const db = this.db;
    this.statements = {
      cursor: db.prepare('SELECT cursor, receiver FROM state WHERE id = 1').safeIntegers(true),
      setCursor: db.prepare('UPDATE state SET cursor = ? WHERE id = 1'),
      setReceiver: db.prepare('UPDATE state SET receiver = ? WHERE id = 1'),
      byId: db.prepare('SELECT item FROM items WHERE item_id = ?'),
      byKey: db.prepare('SELECT item FROM items WHERE merchant_id = ? AND audience = ? AND item_key = ?'),
      insert: db.prepare(
        `INSERT INTO items (item_id, sequence, merchant_id, audience, item_key, offer_kind, valid_until_ms, item)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      deleteById: db.prepare('DELETE FROM items WHERE item_id = ?'),
      all: db.prepare('SELECT item FROM items WHERE valid_until_ms > ? ORDER BY sequence'),
      byMerchant: db.prepare('SELECT item FROM items WHERE merchant_id = ? AND valid_until_ms > ? ORDER BY sequence'),
      byOffer: db.prepare('SELECT item FROM items WHERE offer_kind = ? AND valid_until_ms > ? ORDER BY sequence'),
      expired: db.prepare('SELECT item FROM items WHERE valid_until_ms <= ? ORDER BY sequence'),
      clear: db.prepare('DELETE FROM items'),
    };
  }

  /** The last sequence applied; subscribe after it to resume. 0 for a new store. */
  get cursor(): bigint {
    return (this.statements.cursor.get() as { cursor: bigint }).cursor;
  }

  /** The receiver id the store belongs to ('' until `sync` or `bindReceiver` sets it). */
  get receiverId(): string {
    return (this.statements.cursor.get() as { receiver: string }).receiver;
  }

  /**
   * Ties the store to one receiver; a store synced by another receiver is refused, since its
   * cursor and items mean nothing to this one.
   */
  bindReceiver(receiverId: string): void {
    const current = this.receiverId;
    if (current === receiverId) return;
    if (current !== '') throw new Error(`this store belongs to receiver ${current}, not ${receiverId}`);
    this.statements.setReceiver.run(receiverId);
  }

  /**
   * Applies one event atomically with the cursor and returns the changes it made (also
   * emitted as `change` events after commit). Events at or below the cursor are ignored.
   */
  apply(event: ReceiverEvent, nowMs = Date.now()): StoreChange[] {
    const changes = this.db.transaction(() => this.applyInTransaction(event, nowMs)).immediate();
    for (const change of changes) this.emit('change', change);
    return changes;
  }

  /** Removes items past their valid_until and returns (and emits) the removals. */
  purgeExpired(nowMs = Date.now()): StoreChange[] {
    const changes = this.db
      .transaction((): StoreChange[] => {
        const expired = (this.statements.expired.all(nowMs) as ItemRow[]).map(decode);
        for (const item of expired) this.statements.deleteById.run(item.itemId);
        return expired.map((item) => ({ type: 'removed', item, cause: 'expired' }));
      })
      .immediate();
    for (const change of changes) this.emit('change', change);
    return changes;
  }

  /** Every live item, in sequence order. */
  items(nowMs = Date.now()): Item[] {
    return (this.statements.all.all(nowMs) as ItemRow[]).map(decode);
  }

  /** The live items of one merchant, in sequence order. */
  itemsByMerchant(merchantId: string, nowMs = Date.now()): Item[] {
    return (this.statements.byMerchant.all(merchantId, nowMs) as ItemRow[]).map(decode);
  }

  /** The live items carrying one kind of offer ('none': plain messages), in sequence order. */
  itemsByOfferKind(kind: OfferKind, nowMs = Date.now()): Item[] {
    return (this.statements.byOffer.all(kind, nowMs) as ItemRow[]).map(decode);
  }

  /** One item by id, if stored. */
  item(itemId: string): Item | undefined {
    const row = this.statements.byId.get(itemId) as ItemRow | undefined;
    return row && decode(row);
  }

  /**
   * Keeps the store current: subscribes after the stored cursor and applies every event
   * until `signal` aborts (resolves) or the subscription fails for good (rejects). Expired
   * items are dropped as they expire (checked every `purgeIntervalMs`, default 60 s).
   *
   * When the hub reports the cursor as beyond its newest sequence (its database was
   * replaced), the store starts over from the hub's current state, emitting removals.
   */
  async sync(client: ReceiverClient, options: SyncOptions = {}): Promise<void> {
    this.bindReceiver(client.id);
    const purge = setInterval(() => this.purgeExpired(), options.purgeIntervalMs ?? 60_000);
    purge.unref();
    try {
      for (;;) {
        try {
          this.purgeExpired();
          for await (const event of client.subscribe({ afterSequence: this.cursor, signal: options.signal })) {
            this.apply(event);
            if (event.type === 'caughtUp') options.onCaughtUp?.(event.sequence);
          }
          return;
        } catch (error) {
          if (isAbortError(error) || options.signal?.aborted) return;
          if (error instanceof PushHubError && error.reason === 'CURSOR_OUT_OF_RANGE') {
            this.reset();
            continue;
          }
          throw error;
        }
      }
    } finally {
      clearInterval(purge);
    }
  }

  /** Closes the file. */
  close(): void {
    this.db.close();
  }

  private reset(): void {
    const changes = this.db
      .transaction((): StoreChange[] => {
        const removed = (this.statements.all.all(0) as ItemRow[]).map(decode);
        this.statements.clear.run();
        this.statements.setCursor.run(0n);
        return removed.map((item) => ({ type: 'removed', item, cause: 'withdrawn' }));
      })
      .immediate();
    for (const change of changes) this.emit('change', change);
  }

  private applyInTransaction(event: ReceiverEvent, nowMs: number): StoreChange[] {
    const cursor = this.cursor;
    const s = this.statements;
    switch (event.type) {
      case 'caughtUp':
        if (event.sequence > cursor) s.setCursor.run(event.sequence);
        return [];
      case 'item': {
        const item = event.item;
        if (item.sequence <= cursor) return [];
        s.setCursor.run(item.sequence);
        const key = item.info?.key ?? '';
        const changes: StoreChange[] = [];
        let replaced: Item | undefined;
        if (key !== '') {
          const row = s.byKey.get(item.merchantId, item.audience, key) as ItemRow | undefined;
          if (row) {
            replaced = decode(row);
            s.deleteById.run(replaced.itemId);
          }
        }
        // An item that expired in transit is not stored, but it still replaces its older namesake.
        if (validUntilMs(item) <= nowMs) {
          if (replaced) changes.push({ type: 'removed', item: replaced, cause: 'expired' });
          return changes;
        }
        s.deleteById.run(item.itemId);
        s.insert.run(
          item.itemId,
          item.sequence,
          item.merchantId,
          item.audience,
          key,
          offerKindOf(item),
          validUntilMs(item),
          Buffer.from(Item.encode(item).finish()),
        );
        changes.push(replaced ? { type: 'added', item, replaced } : { type: 'added', item });
        return changes;
      }
      case 'withdrawal': {
        const w = event.withdrawal;
        if (w.sequence <= cursor) return [];
        s.setCursor.run(w.sequence);
        const removed: Item[] = [];
        const byId = s.byId.get(w.itemId) as ItemRow | undefined;
        if (byId) removed.push(decode(byId));
        if (w.key !== '') {
          // The withdrawn item was the live one for its key, so any stored item with that key
          // is it or an older one the store missed being replaced: both must go.
          const byKey = s.byKey.get(w.merchantId, w.audience, w.key) as ItemRow | undefined;
          if (byKey) {
            const item = decode(byKey);
            if (item.itemId !== w.itemId && item.sequence < w.sequence) removed.push(item);
          }
        }
        for (const item of removed) s.deleteById.run(item.itemId);
        const cause = w.replaced ? 'replaced' : 'withdrawn';
        return removed.map((item) => ({ type: 'removed', item, cause }));
      }
    }
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new Error(`store schema version ${version} is newer than this SDK (${MIGRATIONS.length}); upgrade @pushhub/sdk`);
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }
}

/** Opens (creating if needed) a receiver store file. */
export function createReceiverStore(path: string): ReceiverStore {
  return new ReceiverStore(path);
}

