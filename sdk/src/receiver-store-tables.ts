import type Database from 'better-sqlite3';
import { Item as WireItem } from './gen/pushhub/v1/pushhub.js';
import type { ReceiverEvent, ResetReasonName } from './receiver-client.js';
import type { Item, OfferKind, StoreChange } from './types.js';
import { itemFromWire, itemToWire, wireAudience } from './values.js';

/** Schema migrations, applied in order; the index + 1 is the schema version (PRAGMA user_version). */
export const STORE_MIGRATIONS: readonly string[] = [
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
  // 2: the history the cursor belongs to, and the table a reset's new state is gathered in
  // until its caughtUp, when it replaces the items in one transaction.
  `ALTER TABLE state ADD COLUMN history_id TEXT NOT NULL DEFAULT '';
   CREATE TABLE reset_items (
     item_id        TEXT PRIMARY KEY,
     sequence       INTEGER NOT NULL,
     merchant_id    TEXT NOT NULL,
     audience       INTEGER NOT NULL,
     item_key       TEXT NOT NULL,
     offer_kind     TEXT NOT NULL,
     valid_until_ms INTEGER NOT NULL,
     item           BLOB NOT NULL
   );
   CREATE UNIQUE INDEX reset_items_by_key ON reset_items (merchant_id, audience, item_key) WHERE item_key <> '';`,
];

interface ItemRow {
  item: Buffer;
}

const offerKindOf = (item: Item): OfferKind => item.info?.offer?.$case ?? 'none';
const validUntilMs = (item: Item): number => (item.info.validUntil === '' ? Number.MAX_SAFE_INTEGER : Date.parse(item.info.validUntil));
/** Items are kept in their wire encoding (schema 1), read back as plain data. */
const decode = (row: ItemRow): Item => itemFromWire(WireItem.decode(row.item));
const encode = (item: Item): Buffer => Buffer.from(WireItem.encode(itemToWire(item)).finish());

/**
 * The store's tables and every statement on them, prepared once. Writes run inside the
 * caller's transaction (see ReceiverStore); nothing here emits events.
 */
/** The statements applyEvent writes through, on the items table or on reset_items. */
function itemStatements(db: Database.Database, table: 'items' | 'reset_items') {
  return {
    byId: db.prepare(`SELECT item FROM ${table} WHERE item_id = ?`),
    byKey: db.prepare(`SELECT item FROM ${table} WHERE merchant_id = ? AND audience = ? AND item_key = ?`),
    insert: db.prepare(
      `INSERT INTO ${table} (item_id, sequence, merchant_id, audience, item_key, offer_kind, valid_until_ms, item)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteById: db.prepare(`DELETE FROM ${table} WHERE item_id = ?`),
  };
}
type ItemStatements = ReturnType<typeof itemStatements>;

export function createStoreTables(db: Database.Database) {
  const live = itemStatements(db, 'items');
  const staged = itemStatements(db, 'reset_items');
  const s = {
    ...live,
    cursor: db.prepare('SELECT cursor, receiver, history_id AS historyId FROM state WHERE id = 1'),
    setCursor: db.prepare('UPDATE state SET cursor = ? WHERE id = 1'),
    setHistory: db.prepare('UPDATE state SET history_id = ? WHERE id = 1'),
    setReceiver: db.prepare('UPDATE state SET receiver = ? WHERE id = 1'),
    clearStaged: db.prepare('DELETE FROM reset_items'),
    // A reset's new state replaces the items (what expired meanwhile is left out).
    adoptStaged: db.prepare('INSERT INTO items SELECT * FROM reset_items WHERE valid_until_ms > ?'),
    all: db.prepare('SELECT item FROM items WHERE valid_until_ms > ? ORDER BY sequence'),
    byMerchant: db.prepare('SELECT item FROM items WHERE merchant_id = ? AND valid_until_ms > ? ORDER BY sequence'),
    byOffer: db.prepare('SELECT item FROM items WHERE offer_kind = ? AND valid_until_ms > ? ORDER BY sequence'),
    expired: db.prepare('SELECT item FROM items WHERE valid_until_ms <= ? ORDER BY sequence'),
    clear: db.prepare('DELETE FROM items'),
  };

  // Sequences are safe integers (the SDK refuses larger ones), so SQLite's numbers are exact.
  const state = () => s.cursor.get() as { cursor: number; receiver: string; historyId: string };

  /**
   * A reset in progress: the new state is gathered in reset_items (committed batch by batch,
   * invisible to readers) until its caughtUp. Kept in memory only: a store reopened
   * mid-reset still holds its old cursor and history, so the hub sends the reset again.
   */
  let resetting: { reason: ResetReasonName; historyId: string; cursor: number } | undefined;

  /** Applies one event after `cursor`, returning the changes; the caller moves the cursor. */
  function applyEvent(event: ReceiverEvent, cursor: number, nowMs: number, changes: StoreChange[], s: ItemStatements = live): number {
    switch (event.type) {
      case 'caughtUp':
        return event.sequence > cursor ? event.sequence : cursor;
      case 'reset':
        return cursor; // handled by applyBatch
      case 'item': {
        const item = event.item;
        if (item.sequence <= cursor) return cursor;
        const key = item.info.key;
        const audience = wireAudience(item.audience);
        let replaced: Item | undefined;
        if (key !== '') {
          const row = s.byKey.get(item.merchantId, audience, key) as ItemRow | undefined;
          if (row) {
            replaced = decode(row);
            s.deleteById.run(replaced.itemId);
          }
        }
        // An item that expired in transit is not stored, but it still replaces its older namesake.
        if (validUntilMs(item) <= nowMs) {
          if (replaced) changes.push({ type: 'removed', item: replaced, cause: 'expired' });
          return item.sequence;
        }
        s.deleteById.run(item.itemId);
        s.insert.run(
          item.itemId,
          item.sequence,
          item.merchantId,
          audience,
          key,
          offerKindOf(item),
          validUntilMs(item),
          encode(item),
        );
        changes.push(replaced ? { type: 'added', item, replaced } : { type: 'added', item });
        return item.sequence;
      }
      case 'withdrawal': {
        const w = event.withdrawal;
        if (w.sequence <= cursor) return cursor;
        const removed: Item[] = [];
        const byId = s.byId.get(w.itemId) as ItemRow | undefined;
        if (byId) removed.push(decode(byId));
        if (w.key !== '') {
          // The withdrawn item was the live one for its key, so any stored item with that key
          // is it or an older one the store missed being replaced: both must go.
          const byKey = s.byKey.get(w.merchantId, wireAudience(w.audience), w.key) as ItemRow | undefined;
          if (byKey) {
            const item = decode(byKey);
            if (item.itemId !== w.itemId && item.sequence < w.sequence) removed.push(item);
          }
        }
        for (const item of removed) {
          s.deleteById.run(item.itemId);
          changes.push({ type: 'removed', item, cause: w.replaced ? 'replaced' : 'withdrawn' });
        }
        return w.sequence;
      }
    }
  }

  return {
    state,
    setReceiver: (receiverId: string) => s.setReceiver.run(receiverId),

    /** Whether a reset is being gathered (its caughtUp has not come yet). */
    get resetting(): boolean {
      return resetting !== undefined;
    },

    /**
     * Applies events in order and moves the cursor once, to the last one applied. A reset
     * gathers the state that follows aside; at its caughtUp that state replaces the items,
     * with the cursor and history, inside the caller's transaction: the changes are one
     * `reset`, then an `added` per item of the new state.
     */
    applyBatch(events: readonly ReceiverEvent[], nowMs: number): StoreChange[] {
      const before = state();
      let cursor = before.cursor;
      let historyId = before.historyId;
      const changes: StoreChange[] = [];
      for (const event of events) {
        if (event.type === 'reset') {
          s.clearStaged.run();
          resetting = { reason: event.reason, historyId: event.historyId, cursor: 0 };
        } else if (resetting && event.type === 'caughtUp') {
          s.clear.run();
          s.adoptStaged.run(nowMs);
          s.clearStaged.run();
          cursor = Math.max(event.sequence, resetting.cursor);
          historyId = event.historyId !== '' ? event.historyId : resetting.historyId;
          changes.push({ type: 'reset', reason: resetting.reason, historyId });
          for (const row of s.all.all(nowMs) as ItemRow[]) changes.push({ type: 'added', item: decode(row) });
          resetting = undefined;
          // The cursor was replaced, not moved forward: written even when it is lower.
          s.setCursor.run(cursor);
        } else if (resetting) {
          resetting.cursor = applyEvent(event, resetting.cursor, nowMs, [], staged);
        } else {
          cursor = applyEvent(event, cursor, nowMs, changes);
          if (event.type === 'caughtUp' && event.historyId !== '') historyId = event.historyId;
        }
      }
      if (cursor !== before.cursor) s.setCursor.run(cursor);
      if (historyId !== before.historyId) s.setHistory.run(historyId);
      return changes;
    },

    purgeExpired(nowMs: number): StoreChange[] {
      const expired = (s.expired.all(nowMs) as ItemRow[]).map(decode);
      for (const item of expired) s.deleteById.run(item.itemId);
      return expired.map((item) => ({ type: 'removed', item, cause: 'expired' }));
    },


    items: (nowMs: number) => (s.all.all(nowMs) as ItemRow[]).map(decode),
    itemsByMerchant: (merchantId: string, nowMs: number) => (s.byMerchant.all(merchantId, nowMs) as ItemRow[]).map(decode),
    itemsByOfferKind: (kind: OfferKind, nowMs: number) => (s.byOffer.all(kind, nowMs) as ItemRow[]).map(decode),
    item(itemId: string): Item | undefined {
      const row = s.byId.get(itemId) as ItemRow | undefined;
      return row && decode(row);
    },
  };
}

export type StoreTables = ReturnType<typeof createStoreTables>;
