import type Database from 'better-sqlite3';
import { migrateSqlite } from '../../../sdk/src/sqlite-migrator.js';

/**
 * Numbered schema migrations. Each runs in its own transaction together with the bump of
 * PRAGMA user_version, so a crash mid-migration leaves the previous version intact.
 * Never edit a released migration: append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: accounts, the change log, idempotency records, meta.
  `
  CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('merchant', 'receiver')),
    display_name TEXT NOT NULL,
    password_hash BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE changes (
    seq INTEGER PRIMARY KEY,
    kind INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    receiver_id TEXT NOT NULL,
    item_key TEXT NOT NULL,
    frame BLOB NOT NULL,
    pushed_at_ms INTEGER NOT NULL,
    valid_until_ms INTEGER NOT NULL
  );
  -- Subscribe reads (receiver_id IN (?, '')) AND seq > ?.
  CREATE INDEX changes_by_receiver ON changes (receiver_id, seq);
  -- Replace by key: at most one live item per merchant, audience and key.
  CREATE UNIQUE INDEX items_by_key ON changes (merchant_id, receiver_id, item_key)
    WHERE kind = 1 AND item_key <> '';
  CREATE INDEX items_by_id ON changes (item_id) WHERE kind = 1;
  CREATE INDEX changes_by_merchant ON changes (merchant_id, seq) WHERE kind = 1;
  CREATE INDEX changes_by_expiry ON changes (valid_until_ms);

  CREATE TABLE requests (
    merchant_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, request_id)
  ) WITHOUT ROWID;
  CREATE INDEX requests_by_age ON requests (created_at_ms);

  CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) WITHOUT ROWID;
  INSERT INTO meta (name, value) VALUES ('head_seq', 0);
  `,
  // 2: item ids carry their sequence (registry/ids.ts), so Withdraw-by-id reads the primary
  // key and no index on a random id is updated per push. Items pushed before keep their
  // random (v4 UUID) ids, whose 17th hex digit is 8-b; this index finds only those, until
  // they expire.
  `
  DROP INDEX items_by_id;
  CREATE INDEX legacy_items_by_id ON changes (item_id) WHERE kind = 1 AND substr(item_id, 18, 1) >= '8';
  `,
  // 3: a stored frame is now a SubscribeResponse holding one event (repeated events = 1;
  // see delivery/frames.ts). The old frame was the event's own encoding (the oneof had the
  // same field numbers), so the new one is that, prefixed with the tag of field 1 (0x0a) and
  // the length as a varint. Frames are bounded far below 2 MiB, so three varint bytes do.
  // (|| concatenates the bytes as text; the CAST makes the result a BLOB again, unchanged.)
  `
  UPDATE changes SET frame = CAST(unhex('0a' || CASE
      WHEN length(frame) < 128 THEN printf('%02x', length(frame))
      WHEN length(frame) < 16384 THEN printf('%02x%02x', (length(frame) & 127) | 128, length(frame) >> 7)
      ELSE printf('%02x%02x%02x', (length(frame) & 127) | 128, ((length(frame) >> 7) & 127) | 128, length(frame) >> 14)
    END) || frame AS BLOB);
  `,
  // 4: a request id remembers a digest of its request, so reusing the id for a different
  // request is refused instead of answered with the first request's result. Rows written
  // before have no digest ('') and replay as before until they age out (24 h).
  `
  ALTER TABLE requests ADD COLUMN digest TEXT NOT NULL DEFAULT '';
  -- The per-merchant cap on live public items counts them inside each commit.
  CREATE INDEX public_items_by_merchant ON changes (merchant_id, valid_until_ms) WHERE kind = 1 AND receiver_id = '';
  `,
  // 5: delivery receipts (core/receipts.ts). One cursor row per receiver that confirmed or
  // opted out; the receipt log (one row per confirmation and merchant, not per item).
  `
  CREATE TABLE receipt_cursors (
    receiver_id TEXT PRIMARY KEY,
    confirmed_seq INTEGER NOT NULL,
    confirmed_at_ms INTEGER NOT NULL,
    opted_out INTEGER NOT NULL,
    registered_at_ms INTEGER NOT NULL
  ) WITHOUT ROWID;
  -- A public item's delivered_count: an index range count, never a scan of all receivers.
  CREATE INDEX receipt_cursors_by_seq ON receipt_cursors (confirmed_seq, registered_at_ms) WHERE opted_out = 0;
  CREATE INDEX receipt_opt_outs ON receipt_cursors (registered_at_ms) WHERE opted_out = 1;
  -- A public item's eligible_count: receivers registered before it ended (an index range
  -- for an ended item; for a live one, all of them: a count kept by triggers, read in O(1)).
  CREATE INDEX receivers_by_registration ON accounts (created_at_ms) WHERE role = 'receiver';
  CREATE TABLE receipt_totals (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
  INSERT INTO receipt_totals (name, value) SELECT 'receivers', COUNT(*) FROM accounts WHERE role = 'receiver';
  CREATE TRIGGER receivers_counted AFTER INSERT ON accounts WHEN NEW.role = 'receiver'
    BEGIN UPDATE receipt_totals SET value = value + 1 WHERE name = 'receivers'; END;
  CREATE TRIGGER receivers_uncounted AFTER DELETE ON accounts WHEN OLD.role = 'receiver'
    BEGIN UPDATE receipt_totals SET value = value - 1 WHERE name = 'receivers'; END;

  -- AUTOINCREMENT: ids are WatchDeliveries cursors and must never be reused after a purge.
  CREATE TABLE receipt_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_id TEXT NOT NULL,
    receiver_id TEXT NOT NULL,
    from_seq INTEGER NOT NULL,
    up_to_seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    delivered_count INTEGER NOT NULL,
    eligible_count INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    keep_until_ms INTEGER NOT NULL
  );
  CREATE INDEX receipt_events_by_merchant ON receipt_events (merchant_id, id);
  CREATE INDEX receipt_events_by_receiver ON receipt_events (receiver_id, merchant_id, up_to_seq) WHERE receiver_id <> '';
  CREATE INDEX receipt_events_by_expiry ON receipt_events (keep_until_ms);
  -- GetDeliveryStatus of a withdrawn or replaced item: its tombstone by item id.
  CREATE INDEX tombstones_by_item ON changes (item_id) WHERE kind = 2;
  `,
  // 6: accounts over their whole life (docs/accounts.md). An account is suspended or deleted
  // in place (a deleted row keeps its id, so the id is never issued again, and nothing else).
  // Bars: a receiver's block of a merchant, or (receiver_id '') a merchant's suspension or
  // deletion. Registrations: request ids of Register (hashed). The admin log: who did what.
  `
  ALTER TABLE accounts ADD COLUMN suspended_at_ms INTEGER;
  ALTER TABLE accounts ADD COLUMN deleted_at_ms INTEGER;
  ALTER TABLE accounts ADD COLUMN last_seen_at_ms INTEGER;
  CREATE TABLE bars (
    receiver_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    cause TEXT NOT NULL CHECK (cause IN ('blocked', 'suspended', 'deleted')),
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (receiver_id, merchant_id)
  ) WITHOUT ROWID;
  CREATE INDEX bars_by_merchant ON bars (merchant_id);
  CREATE TABLE registrations (
    request_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX registrations_by_age ON registrations (created_at_ms);
  CREATE TABLE admin_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    account_id TEXT NOT NULL,
    outcome TEXT NOT NULL
  );
  `,
  // 7: the history cursors belong to (docs/backups.md): a new id whenever continuity cannot
  // be guaranteed (`pushhub restore`, a cursor beyond the head), so receivers reset instead
  // of resuming into another timeline. A database upgraded to it starts its first history.
  `
  CREATE TABLE history (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    history_id TEXT NOT NULL,
    started_by TEXT NOT NULL CHECK (started_by IN ('created', 'restored', 'cursor-ahead')),
    started_at_ms INTEGER NOT NULL
  );
  INSERT INTO history (id, history_id, started_by, started_at_ms)
    VALUES (1, 'H' || lower(hex(randomblob(12))), 'created', CAST(unixepoch('subsec') * 1000 AS INTEGER));
  `,
];

export class DatabaseTooNewError extends Error {
  constructor(found: number, known: number) {
    super(
      `database schema version ${found} is newer than this pushhub understands (${known}); ` +
        'upgrade pushhub or point --db at another file',
    );
    this.name = 'DatabaseTooNewError';
  }
}

/** Brings the database to the newest version; `migrations` is a parameter only for tests. */
export function migrate(db: Database.Database, migrations: readonly string[] = MIGRATIONS): { fromVersion: number; toVersion: number } {
  return migrateSqlite(db, migrations, (found, known) => new DatabaseTooNewError(found, known));
}
