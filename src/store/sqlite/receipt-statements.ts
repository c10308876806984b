import type Database from 'better-sqlite3';
import { itemIdSequence } from '../../core/ids.js';
import { PUBLIC_RECEIVER } from '../../core/records.js';
import {
  type Confirmation,
  type ConfirmResult,
  type ItemFacts,
  PUBLIC_PROGRESS,
  type ReceiptEvent,
  type TouchedPublicItem,
  endOfItemRow,
  tombstoneReplaced,
} from '../../core/receipts.js';
import type { ProgressInput } from '../ports.js';

interface EventRow {
  id: number;
  merchant_id: string;
  receiver_id: string;
  from_seq: number;
  up_to_seq: number;
  at_ms: number;
  delivered_count: number;
  eligible_count: number;
  item_id: string;
}

export const toReceiptEvent = (r: EventRow): ReceiptEvent => ({
  id: r.id,
  merchantId: r.merchant_id,
  receiverId: r.receiver_id,
  fromSeq: r.from_seq,
  upToSeq: r.up_to_seq,
  atMs: r.at_ms,
  deliveredCount: r.delivered_count,
  eligibleCount: r.eligible_count,
  itemId: r.item_id,
});

const EVENT_COLUMNS = 'id, merchant_id, receiver_id, from_seq, up_to_seq, at_ms, delivered_count, eligible_count, item_id';


export type SqliteReceipts = ReturnType<typeof createSqliteReceipts>;

/**
 * The receipt statements on one SQLite connection (the hub's reader connection for reads,
 * the commit worker's for writes), prepared once, synchronous: the async ports wrap them in
 * sqlite-backend.ts. Writes run inside the caller's transaction (see confirm).
 */
export function createSqliteReceipts(db: Database.Database) {
  const getCursor = db.prepare('SELECT confirmed_seq, opted_out FROM receipt_cursors WHERE receiver_id = ?');
  // The registration time comes with the first row: a public item's counts compare it.
  const insertCursor = db.prepare(
    `INSERT INTO receipt_cursors (receiver_id, confirmed_seq, confirmed_at_ms, opted_out, registered_at_ms)
     SELECT id, ?, ?, ?, created_at_ms FROM accounts WHERE id = ?`,
  );
  const advanceCursor = db.prepare('UPDATE receipt_cursors SET confirmed_seq = ?, confirmed_at_ms = ? WHERE receiver_id = ?');
  const setOptOut = db.prepare('UPDATE receipt_cursors SET opted_out = ? WHERE receiver_id = ?');
  const deleteReceiverEvents = db.prepare('DELETE FROM receipt_events WHERE receiver_id = ?');
  // One index range of the receiver's own changes: what the move covers, per merchant.
  // Items of a merchant the receiver blocks (or a suspended one) never reached it: no receipt.
  const coveredSpecific = db.prepare(
    `SELECT merchant_id, MIN(pushed_at_ms) AS oldest_ms, MAX(valid_until_ms) AS keep_until_ms FROM changes c
     WHERE receiver_id = ? AND seq > ? AND seq <= ? AND kind = 1 AND valid_until_ms > ?
       AND NOT EXISTS (SELECT 1 FROM bars b WHERE b.receiver_id IN (c.receiver_id, '') AND b.merchant_id = c.merchant_id)
     GROUP BY merchant_id`,
  );
  const barred = db.prepare('SELECT 1 FROM bars WHERE receiver_id = ? AND merchant_id = ?').pluck();
  // Receivers that block the merchant are left out of its public items' counts.
  const deliveredBlocking = db
    .prepare(
      `SELECT COUNT(*) FROM bars b JOIN receipt_cursors c ON c.receiver_id = b.receiver_id
       WHERE b.merchant_id = ? AND b.cause = 'blocked' AND c.confirmed_seq >= ? AND c.registered_at_ms < ? AND c.opted_out = 0`,
    )
    .pluck();
  const eligibleBlocking = db
    .prepare(
      `SELECT COUNT(*) FROM bars b JOIN accounts a ON a.id = b.receiver_id
       WHERE b.merchant_id = ? AND b.cause = 'blocked' AND a.created_at_ms < ?
         AND NOT EXISTS (SELECT 1 FROM receipt_cursors c WHERE c.receiver_id = b.receiver_id AND c.opted_out = 1)`,
    )
    .pluck();
  const coveredPublic = db.prepare(
    `SELECT seq, item_id, merchant_id, valid_until_ms FROM changes
     WHERE receiver_id = '' AND seq > ? AND seq <= ? AND kind = 1 AND valid_until_ms > ? ORDER BY seq`,
  );
  const insertEvent = db.prepare(
    `INSERT INTO receipt_events (merchant_id, receiver_id, from_seq, up_to_seq, at_ms, delivered_count, eligible_count, item_id, keep_until_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const itemRow = db.prepare(
    'SELECT seq, item_id, merchant_id, receiver_id, valid_until_ms FROM changes WHERE seq = ? AND item_id = ? AND kind = 1',
  );
  // Same predicate as the partial index tombstones_by_item (migration 5).
  const tombstoneRow = db.prepare(
    'SELECT seq, merchant_id, receiver_id, pushed_at_ms, frame FROM changes WHERE item_id = ? AND kind = 2',
  );
  const optedOut = db.prepare('SELECT opted_out FROM receipt_cursors WHERE receiver_id = ?').pluck();
  // The first confirmation of this receiver covering the merchant's items at or above seq.
  const firstCovering = db.prepare(
    `SELECT from_seq, at_ms FROM receipt_events
     WHERE receiver_id = ? AND merchant_id = ? AND up_to_seq >= ? AND receiver_id <> ''
     ORDER BY up_to_seq LIMIT 1`,
  );
  const countDelivered = db
    .prepare('SELECT COUNT(*) FROM receipt_cursors WHERE confirmed_seq >= ? AND registered_at_ms < ? AND opted_out = 0')
    .pluck();
  const countReceivers = db.prepare("SELECT COUNT(*) FROM accounts WHERE created_at_ms < ? AND role = 'receiver'").pluck();
  const allReceivers = db.prepare("SELECT value FROM receipt_totals WHERE name = 'receivers'").pluck();
  const countOptedOut = db.prepare('SELECT COUNT(*) FROM receipt_cursors WHERE registered_at_ms < ? AND opted_out = 1').pluck();
  const eventsAfter = db.prepare(
    `SELECT ${EVENT_COLUMNS} FROM receipt_events WHERE merchant_id = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?`,
  );
  const deliveredItems = db.prepare(
    `SELECT item_id, seq FROM changes
     WHERE receiver_id = ? AND seq > ? AND seq <= ? AND merchant_id = ? AND kind = 1 AND valid_until_ms > ? ORDER BY seq`,
  );
  const headEventId = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'receipt_events'").pluck();
  const purgeEvents = db.prepare('DELETE FROM receipt_events WHERE keep_until_ms <= ?');

  const append = (e: Omit<ReceiptEvent, 'id'>, keepUntilMs: number): ReceiptEvent => {
    const { lastInsertRowid } = insertEvent.run(
      e.merchantId, e.receiverId, e.fromSeq, e.upToSeq, e.atMs, e.deliveredCount, e.eligibleCount, e.itemId, keepUntilMs,
    );
    return { id: Number(lastInsertRowid), ...e };
  };

  return {
    /** Runs inside the caller's write transaction (see ReceiptStore.confirm). */
    confirm(batch: readonly Confirmation[], nowMs: number): ConfirmResult {
      const confirmed: number[] = [];
      const events: ReceiptEvent[] = [];
      const lagsMs: number[] = [];
      let low = Number.POSITIVE_INFINITY;
      let high = 0;
      for (const { receiverId, upToSeq } of batch) {
        const cursor = getCursor.get(receiverId) as { confirmed_seq: number; opted_out: number } | undefined;
        if (cursor?.opted_out) {
          confirmed.push(0);
          continue;
        }
        const from = cursor?.confirmed_seq ?? 0;
        if (upToSeq <= from) {
          confirmed.push(from);
          continue;
        }
        if (cursor) advanceCursor.run(upToSeq, nowMs, receiverId);
        else if (insertCursor.run(upToSeq, nowMs, 0, receiverId).changes === 0) {
          confirmed.push(0); // not a registered account (deleted meanwhile): nothing to record
          continue;
        }
        confirmed.push(upToSeq);
        for (const row of coveredSpecific.all(receiverId, from, upToSeq, nowMs) as { merchant_id: string; oldest_ms: number; keep_until_ms: number }[]) {
          const event = { merchantId: row.merchant_id, receiverId, fromSeq: from, upToSeq, atMs: nowMs, deliveredCount: 0, eligibleCount: 0, itemId: '' };
          events.push(append(event, row.keep_until_ms));
          lagsMs.push(nowMs - row.oldest_ms);
        }
        low = Math.min(low, from);
        high = Math.max(high, upToSeq);
      }
      const publicItems: TouchedPublicItem[] =
        high === 0
          ? []
          : (coveredPublic.all(low, high, nowMs) as { seq: number; item_id: string; merchant_id: string; valid_until_ms: number }[]).map(
              (r) => ({ seq: r.seq, itemId: r.item_id, merchantId: r.merchant_id, validUntilMs: r.valid_until_ms }),
            );
      return { confirmed, events, publicItems, lagsMs };
    },

    /** Runs inside the caller's write transaction. */
    appendProgress(inputs: readonly ProgressInput[]): ReceiptEvent[] {
      return inputs.map((p) =>
        append(
          { merchantId: p.merchantId, receiverId: PUBLIC_PROGRESS, fromSeq: p.seq, upToSeq: p.seq, atMs: p.atMs, deliveredCount: p.deliveredCount, eligibleCount: p.eligibleCount, itemId: p.itemId },
          p.keepUntilMs,
        ),
      );
    },

    /** Runs inside the caller's write transaction. */
    setOptOut(receiverId: string, optOut: boolean | undefined, nowMs: number): boolean {
      const cursor = getCursor.get(receiverId) as { confirmed_seq: number; opted_out: number } | undefined;
      if (optOut === undefined) return cursor?.opted_out === 1;
      if (!cursor) insertCursor.run(0, nowMs, optOut ? 1 : 0, receiverId);
      else setOptOut.run(optOut ? 1 : 0, receiverId);
      // Nothing about an opted-out receiver is kept for merchants: its receipts go now.
      if (optOut) deleteReceiverEvents.run(receiverId);
      return optOut;
    },

    itemFacts(merchantId: string, itemIds: readonly string[], nowMs: number): ItemFacts[] {
      return itemIds.map((itemId): ItemFacts => {
        const seq = itemIdSequence(itemId);
        if (seq === undefined) return { found: false, itemId };
        let facts: ItemFacts;
        const item = itemRow.get(seq, itemId) as { merchant_id: string; receiver_id: string; valid_until_ms: number } | undefined;
        if (item) {
          // Another merchant's item is reported exactly like a missing one: no existence oracle.
          if (item.merchant_id !== merchantId) return { found: false, itemId };
          facts = { found: true, itemId, seq, merchantId, receiverId: item.receiver_id, end: endOfItemRow(item.valid_until_ms, nowMs), optedOut: false };
        } else {
          const tomb = tombstoneRow.get(itemId) as { merchant_id: string; receiver_id: string; pushed_at_ms: number; frame: Buffer } | undefined;
          if (!tomb || tomb.merchant_id !== merchantId) return { found: false, itemId };
          facts = {
            found: true, itemId, seq, merchantId, receiverId: tomb.receiver_id,
            end: { kind: tombstoneReplaced(tomb.frame) ? 'replaced' : 'withdrawn', atMs: tomb.pushed_at_ms },
            optedOut: false,
          };
        }
        if (facts.receiverId === PUBLIC_RECEIVER) return facts;
        // A merchant the receiver blocks sees nothing of that receiver.
        if (barred.get(facts.receiverId, merchantId) !== undefined) return { found: false, itemId };
        facts.optedOut = optedOut.get(facts.receiverId) === 1;
        if (facts.optedOut) return facts;
        const covering = firstCovering.get(facts.receiverId, merchantId, seq) as { from_seq: number; at_ms: number } | undefined;
        if (covering && covering.from_seq < seq) facts.confirmedAtMs = covering.at_ms;
        return facts;
      });
    },

    publicCounts(seq: number, merchantId: string, endMs?: number) {
      const until = endMs ?? Number.MAX_SAFE_INTEGER;
      const delivered = (countDelivered.get(seq, until) as number) - (deliveredBlocking.get(merchantId, seq, until) as number);
      // A live item counts every receiver registered so far: the kept total, not an index scan.
      const registered = endMs === undefined ? (allReceivers.get() as number) : (countReceivers.get(endMs) as number);
      const eligible = registered - (countOptedOut.get(until) as number) - (eligibleBlocking.get(merchantId, until) as number);
      return { delivered, eligible };
    },

    eventsAfter(merchantId: string, afterId: number, upToId: number, limit: number): ReceiptEvent[] {
      return (eventsAfter.all(merchantId, afterId, upToId, limit) as EventRow[]).map(toReceiptEvent);
    },

    deliveredItems(e: ReceiptEvent): { itemId: string; seq: number }[] {
      // Items live when the receiver confirmed: one that had expired by then was not delivered.
      return (deliveredItems.all(e.receiverId, e.fromSeq, e.upToSeq, e.merchantId, e.atMs) as { item_id: string; seq: number }[]).map(
        (r) => ({ itemId: r.item_id, seq: r.seq }),
      );
    },

    headEventId: (): number => (headEventId.get() as number | undefined) ?? 0,

    /** Receipt events whose items have all been purged (run with the change purge). */
    purge: (nowMs: number): number => purgeEvents.run(nowMs).changes,
  };
}
