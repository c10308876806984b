import type pg from 'pg';
import { LOCK_NAMESPACE, LockKey, inTransaction } from './connection.js';

/**
 * Numbered schema migrations for PostgreSQL (the SQLite ones are in ../sqlite/migrations.ts;
 * the two schemas hold the same rows). Never edit a released migration: append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: accounts, the change log, idempotency records, the head, account events.
  `
  CREATE TABLE accounts (
    id text PRIMARY KEY,
    role text NOT NULL CHECK (role IN ('merchant', 'receiver')),
    display_name text NOT NULL,
    password_hash bytea NOT NULL,
    created_at_ms bigint NOT NULL
  );

  CREATE TABLE changes (
    seq bigint PRIMARY KEY,
    kind smallint NOT NULL CHECK (kind IN (1, 2)),
    item_id text NOT NULL,
    merchant_id text NOT NULL,
    receiver_id text NOT NULL,
    item_key text NOT NULL,
    frame bytea NOT NULL,
    pushed_at_ms bigint NOT NULL,
    valid_until_ms bigint NOT NULL
  );
  -- Subscribe reads receiver_id IN ($1, '') AND seq > $2: two range scans merged by seq.
  CREATE INDEX changes_by_receiver ON changes (receiver_id, seq);
  -- Replace by key: at most one live item per merchant, audience and key.
  CREATE UNIQUE INDEX items_by_key ON changes (merchant_id, receiver_id, item_key)
    WHERE kind = 1 AND item_key <> '';
  -- ListItems. Withdraw by id needs no index: item ids carry their sequence (registry/ids.ts).
  CREATE INDEX items_by_merchant ON changes (merchant_id, seq) WHERE kind = 1;
  -- The cap on live public items per merchant, counted inside every commit that needs it.
  CREATE INDEX public_items_by_merchant ON changes (merchant_id, valid_until_ms)
    WHERE kind = 1 AND receiver_id = '';
  CREATE INDEX changes_by_expiry ON changes (valid_until_ms);

  CREATE TABLE requests (
    merchant_id text NOT NULL,
    request_id text NOT NULL,
    item_id text NOT NULL,
    seq bigint NOT NULL,
    created_at_ms bigint NOT NULL,
    digest text NOT NULL DEFAULT '',
    PRIMARY KEY (merchant_id, request_id)
  );
  CREATE INDEX requests_by_age ON requests (created_at_ms);

  -- The highest sequence ever assigned; survives purges, so sequences are never reused.
  -- Every writing transaction locks this row first: sequence order is commit order.
  CREATE TABLE head (
    id smallint PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL
  );
  INSERT INTO head (id, seq) VALUES (1, 0);

  -- Account events (a password rotation) for the other nodes. Ids are drawn under an
  -- advisory lock held to commit, so they commit in order too, and are never reused.
  CREATE TABLE account_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL,
    account_id text NOT NULL,
    created_at_ms bigint NOT NULL
  );
  `,
  // 2: delivery receipts (core/receipts.ts), as SQLite's migration 5: one cursor row per
  // receiver that confirmed or opted out; the receipt log (per confirmation and merchant).
  `
  CREATE TABLE receipt_cursors (
    receiver_id text PRIMARY KEY,
    confirmed_seq bigint NOT NULL,
    confirmed_at_ms bigint NOT NULL,
    opted_out boolean NOT NULL,
    registered_at_ms bigint NOT NULL
  );
  -- A public item's delivered_count: an index range count, never a scan of all receivers.
  CREATE INDEX receipt_cursors_by_seq ON receipt_cursors (confirmed_seq, registered_at_ms) WHERE NOT opted_out;
  CREATE INDEX receipt_opt_outs ON receipt_cursors (registered_at_ms) WHERE opted_out;
  -- A public item's eligible_count: receivers registered before it ended (an index range
  -- for an ended item; for a live one, all of them: a count kept by a trigger, read in O(1)).
  CREATE INDEX receivers_by_registration ON accounts (created_at_ms) WHERE role = 'receiver';
  CREATE TABLE receipt_totals (name text PRIMARY KEY, value bigint NOT NULL);
  INSERT INTO receipt_totals (name, value) SELECT 'receivers', count(*) FROM accounts WHERE role = 'receiver';
  CREATE FUNCTION pushhub_count_receivers() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP = 'INSERT' AND NEW.role = 'receiver' THEN
      UPDATE receipt_totals SET value = value + 1 WHERE name = 'receivers';
    ELSIF TG_OP = 'DELETE' AND OLD.role = 'receiver' THEN
      UPDATE receipt_totals SET value = value - 1 WHERE name = 'receivers';
    END IF;
    RETURN NULL;
  END $$;
  CREATE TRIGGER receivers_counted AFTER INSERT OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION pushhub_count_receivers();

  -- Ids are WatchDeliveries cursors; writers take the Receipts advisory lock, so they commit in order.
  CREATE TABLE receipt_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id text NOT NULL,
    receiver_id text NOT NULL,
    from_seq bigint NOT NULL,
    up_to_seq bigint NOT NULL,
    at_ms bigint NOT NULL,
    delivered_count bigint NOT NULL,
    eligible_count bigint NOT NULL,
    item_id text NOT NULL,
    keep_until_ms bigint NOT NULL
  );
  CREATE INDEX receipt_events_by_merchant ON receipt_events (merchant_id, id);
  CREATE INDEX receipt_events_by_receiver ON receipt_events (receiver_id, merchant_id, up_to_seq) WHERE receiver_id <> '';
  CREATE INDEX receipt_events_by_expiry ON receipt_events (keep_until_ms);
  -- GetDeliveryStatus of a withdrawn or replaced item: its tombstone by item id.
  CREATE INDEX tombstones_by_item ON changes (item_id) WHERE kind = 2;
  `,
  // 3: accounts over their whole life (docs/accounts.md), as SQLite's migration 6: suspended
  // and deleted accounts in place, bars (blocks, suspensions, deletions), Register request
  // ids, the admin log; and the change log's new kinds (3 copy, 4 barred, 5 unbarred).
  `
  ALTER TABLE accounts ADD COLUMN suspended_at_ms bigint;
  ALTER TABLE accounts ADD COLUMN deleted_at_ms bigint;
  ALTER TABLE accounts ADD COLUMN last_seen_at_ms bigint;
  ALTER TABLE changes DROP CONSTRAINT changes_kind_check;
  ALTER TABLE changes ADD CONSTRAINT changes_kind_check CHECK (kind BETWEEN 1 AND 5);
  CREATE TABLE bars (
    receiver_id text NOT NULL,
    merchant_id text NOT NULL,
    cause text NOT NULL CHECK (cause IN ('blocked', 'suspended', 'deleted')),
    at_ms bigint NOT NULL,
    PRIMARY KEY (receiver_id, merchant_id)
  );
  CREATE INDEX bars_by_merchant ON bars (merchant_id);
  CREATE TABLE registrations (
    request_hash text PRIMARY KEY,
    account_id text NOT NULL,
    digest text NOT NULL,
    created_at_ms bigint NOT NULL
  );
  CREATE INDEX registrations_by_age ON registrations (created_at_ms);
  CREATE TABLE admin_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms bigint NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    account_id text NOT NULL,
    outcome text NOT NULL
  );
  `,
  // 4: the history cursors belong to (docs/backups.md), with the fingerprint of the
  // database's physical timeline it was last seen on (postgres/history.ts): a restored dump
  // or a point-in-time recovery is detected at start and starts a new history.
  `
  CREATE TABLE history (
    id smallint PRIMARY KEY CHECK (id = 1),
    history_id text NOT NULL,
    started_by text NOT NULL CHECK (started_by IN ('created', 'restored', 'cursor-ahead')),
    started_at_ms bigint NOT NULL,
    fingerprint text NOT NULL DEFAULT ''
  );
  INSERT INTO history (id, history_id, started_by, started_at_ms)
    VALUES (1, 'H' || substr(md5(random()::text || clock_timestamp()::text), 1, 24), 'created',
            (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
  `,
];

export class DatabaseTooNewError extends Error {
  constructor(found: number, known: number) {
    super(
      `database schema version ${found} is newer than this pushhub understands (${known}); ` +
        'upgrade pushhub or point --database-url at another database',
    );
    this.name = 'DatabaseTooNewError';
  }
}

/**
 * Brings the database to the newest version in one transaction (DDL is transactional in
 * PostgreSQL), under an advisory lock so nodes starting together migrate once.
 * `migrations` is a parameter only for tests. Returns the version reached.
 */
export async function migrate(client: pg.ClientBase, migrations: readonly string[] = MIGRATIONS): Promise<number> {
  return inTransaction(client, async () => {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_NAMESPACE, LockKey.Migrate]);
    await client.query('CREATE TABLE IF NOT EXISTS pushhub_schema (version integer NOT NULL)');
    const rows = (await client.query<{ version: number }>('SELECT version FROM pushhub_schema')).rows;
    if (rows.length === 0) await client.query('INSERT INTO pushhub_schema (version) VALUES (0)');
    const current = rows[0]?.version ?? 0;
    if (current > migrations.length) throw new DatabaseTooNewError(current, migrations.length);
    for (let version = current; version < migrations.length; version++) {
      await client.query(migrations[version]!);
    }
    if (current < migrations.length) {
      await client.query('UPDATE pushhub_schema SET version = $1', [migrations.length]);
    }
    return migrations.length;
  });
}
