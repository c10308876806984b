import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  type AccountRecord,
  type AccountRole,
  type BarCause,
  type BarRecord,
  type ChangeKind,
  type ChangeRecord,
  type ItemLocator,
  PUBLIC_RECEIVER,
  type RequestRecord,
} from '../../core/records.js';
import type { BatchView } from '../../core/batch-view.js';
import type { History } from '../ports.js';
import { itemIdSequence } from '../../core/ids.js';
import { migrate } from './migrations.js';
import { type SqliteReceipts, createSqliteReceipts } from './receipt-statements.js';

interface ChangeRow {
  seq: number;
  kind: ChangeKind;
  item_id: string;
  merchant_id: string;
  receiver_id: string;
  item_key: string;
  frame: Buffer;
  pushed_at_ms: number;
  valid_until_ms: number;
}

const toChange = (row: ChangeRow): ChangeRecord => ({
  seq: row.seq,
  kind: row.kind,
  itemId: row.item_id,
  merchantId: row.merchant_id,
  receiverId: row.receiver_id,
  itemKey: row.item_key,
  frame: row.frame,
  pushedAtMs: row.pushed_at_ms,
  validUntilMs: row.valid_until_ms,
});

const CHANGE_COLUMNS = 'seq, kind, item_id, merchant_id, receiver_id, item_key, frame, pushed_at_ms, valid_until_ms';

/** The SQLite store, plus raw pragmas for the commit worker's test hooks. */
/**
 * The SQLite backend's synchronous store, one per connection (the hub's reader connection,
 * the commit worker's writer connection). It is the BatchView applyBatch writes through
 * inside the worker's transaction; src/store/sqlite/sqlite-backend.ts wraps it in the
 * async ports.
 */
export interface HubStore extends BatchView {
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
   * Runs fn (a batch, inside the write transaction) with the request ids its ops carry read
   * up front, in one statement per merchant: findRequest then answers from memory, and
   * saveRequest writes a plain INSERT for an id not stored yet. The SDK gives every push a
   * request id, so this is one statement per id instead of a SELECT and an INSERT OR REPLACE
   * (measured: ~3.5 µs of the commit worker per push, docs/performance.md).
   */
  withBatchRequests<T>(ops: readonly { merchantId: string; requestId: string }[], fn: () => T): T;

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

  /** The history cursors belong to (see ports.ts HistoryStore). */
  history(): History;
  /** Compare-and-set: replaces the history only while it is still `fromId`; false otherwise. */
  replaceHistory(fromId: string, next: History): boolean;
  close(): void;

  // Accounts over their whole life (docs/accounts.md).
  touch(id: string, atMs: number): void;
  listBlocks(receiverId: string): { merchantId: string; atMs: number }[];
  suspendedMerchants(): string[];
  /** See AccountStore.registerWithRequest. */
  registerWithRequest(account: AccountRecord, requestHash: string, digest: string, windowStartMs: number): { outcome: 'created' | 'replaced' | 'reused' | 'id-taken'; accountId: string };
  /** The raw connection, for the admin queries (src/store/sqlite/admin-store.ts). */
  readonly db: Database.Database;
}

export type SqliteStore = HubStore & {
  pragma: Database.Database['pragma'];
  /** Delivery receipts on this connection (receipt-statements.ts). */
  receipts: SqliteReceipts;
};

/**
 * Opens the database and proves it is writable (a write inside a rolled-back transaction):
 * a hub that would fail every push later refuses to start now, naming the path and why.
 */
function openWritable(path: string, onMigrated?: (fromVersion: number, toVersion: number) => void): Database.Database {
  let db: Database.Database | undefined;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const { fromVersion, toVersion } = migrate(db);
    if (fromVersion !== toVersion) onMigrated?.(fromVersion, toVersion);
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec("UPDATE meta SET value = value WHERE name = 'head_seq'");
    } finally {
      db.exec('ROLLBACK');
    }
    return db;
  } catch (error) {
    db?.close();
    // Errors without a code (a newer schema version) already say what to do: keep them.
    if (typeof (error as { code?: unknown })?.code !== 'string') throw error;
    const code = (error as { code: string }).code;
    const message = (error as Error)?.message ?? String(error);
    // fs errors start with their code already (EEXIST: ...); SQLite's do not.
    const why = message.startsWith(`${code}:`) ? message : `${code}: ${message}`;
    throw new Error(`database ${path}: cannot open it for writing (${why})`, { cause: error });
  }
}

/**
 * Opens (creating if needed) the SQLite database at path and migrates it. WAL with
 * synchronous=FULL: a commit is durable against power loss once transaction() returns.
 */
export function openSqliteStore(path: string, options: { onMigrated?: (fromVersion: number, toVersion: number) => void } = {}): SqliteStore {
  const db = openWritable(path, options.onMigrated);

  // Prepared once; each sits next to the method that uses it.
  const insertAccount = db.prepare(
    'INSERT OR IGNORE INTO accounts (id, role, display_name, password_hash, created_at_ms) VALUES (?, ?, ?, ?, ?)',
  );
  const getAccount = db.prepare(
    'SELECT id, role, display_name, password_hash, created_at_ms, suspended_at_ms, deleted_at_ms, last_seen_at_ms FROM accounts WHERE id = ?',
  );
  const updatePassword = db.prepare('UPDATE accounts SET password_hash = ? WHERE id = ?');
  const replacePassword = db.prepare('UPDATE accounts SET password_hash = ? WHERE id = ? AND password_hash = ?');
  const isReceiver = db.prepare("SELECT 1 FROM accounts WHERE id = ? AND role = 'receiver' AND deleted_at_ms IS NULL").pluck();
  const getHead = db.prepare("SELECT value FROM meta WHERE name = 'head_seq'").pluck();
  const setHead = db.prepare("UPDATE meta SET value = ? WHERE name = 'head_seq'");
  const insertChange = db.prepare(
    `INSERT INTO changes (${CHANGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const findByKey = db.prepare(
    `SELECT ${CHANGE_COLUMNS} FROM changes
     WHERE merchant_id = ? AND receiver_id = ? AND item_key = ? AND kind = 1 AND item_key <> ''`,
  );
  const findBySeq = db.prepare(`SELECT ${CHANGE_COLUMNS} FROM changes WHERE seq = ? AND item_id = ? AND kind = 1`);
  // Same predicate as the partial index legacy_items_by_id (migration 2), so the planner uses it.
  const findLegacyById = db.prepare(
    `SELECT ${CHANGE_COLUMNS} FROM changes WHERE item_id = ? AND kind = 1 AND substr(item_id, 18, 1) >= '8'`,
  );
  const deleteChange = db.prepare('DELETE FROM changes WHERE seq = ?');
  const findRequest = db.prepare(
    'SELECT item_id, seq, created_at_ms, digest FROM requests WHERE merchant_id = ? AND request_id = ?',
  );
  const saveRequest = db.prepare(
    'INSERT OR REPLACE INTO requests (merchant_id, request_id, item_id, seq, created_at_ms, digest) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const insertRequest = db.prepare(
    'INSERT INTO requests (merchant_id, request_id, item_id, seq, created_at_ms, digest) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const findRequests = db.prepare(
    'SELECT request_id, item_id, seq, created_at_ms, digest FROM requests WHERE merchant_id = ? AND request_id IN (SELECT value FROM json_each(?))',
  );
  /** During withBatchRequests: merchant + NUL + request id -> its record, or null when not stored. */
  let batchRequests: Map<string, RequestRecord | null> | undefined;
  const requestKey = (merchantId: string, requestId: string) => `${merchantId}\0${requestId}`;
  // Two index range scans merged by seq: the receiver's own changes and the public ones.
  // Markers (kind 4, 5) are for live streams only. When the receiver blocks someone or a
  // merchant is suspended, items and copies of those merchants are left out (a primary-key
  // probe of bars per row; tombstones always pass): that costs ~30 % of a full backlog read
  // (20,000 rows, measured), so a receiver with no bar in force reads without it.
  const readChangesPlain = db.prepare(
    `SELECT ${CHANGE_COLUMNS} FROM changes
     WHERE receiver_id IN (?, '') AND seq > ? AND valid_until_ms > ? AND (kind = 1 OR seq > ?) AND kind <= 3
     ORDER BY seq LIMIT ?`,
  );
  const readChangesBarred = db.prepare(
    `SELECT ${CHANGE_COLUMNS} FROM changes c
     WHERE receiver_id IN (?, '') AND seq > ? AND valid_until_ms > ? AND (kind = 1 OR seq > ?) AND kind <= 3
       AND (kind = 2 OR NOT EXISTS (SELECT 1 FROM bars b WHERE b.receiver_id IN (?, '') AND b.merchant_id = c.merchant_id))
     ORDER BY seq LIMIT ?`,
  );
  // Deleted merchants have no rows left to filter: only blocks and suspensions count.
  const hasBars = db.prepare("SELECT EXISTS (SELECT 1 FROM bars WHERE receiver_id IN (?, '') AND cause <> 'deleted')").pluck();
  const findBar = db.prepare('SELECT cause FROM bars WHERE receiver_id = ? AND merchant_id = ?').pluck();
  const countBlocks = db.prepare("SELECT COUNT(*) FROM bars WHERE receiver_id = ? AND cause = 'blocked'").pluck();
  const saveBar = db.prepare('INSERT OR REPLACE INTO bars (receiver_id, merchant_id, cause, at_ms) VALUES (?, ?, ?, ?)');
  const deleteBar = db.prepare('DELETE FROM bars WHERE receiver_id = ? AND merchant_id = ?');
  const liveItemsAll = db.prepare(`SELECT ${CHANGE_COLUMNS} FROM changes WHERE merchant_id = ? AND kind = 1 AND valid_until_ms > ? ORDER BY seq`);
  const liveItemsFor = db.prepare(
    `SELECT ${CHANGE_COLUMNS} FROM changes WHERE merchant_id = ? AND kind = 1 AND valid_until_ms > ? AND receiver_id IN (?, '') ORDER BY seq`,
  );
  const setSuspended = db.prepare('UPDATE accounts SET suspended_at_ms = ? WHERE id = ?');
  const markDeleted = db.prepare(
    "UPDATE accounts SET password_hash = x'', display_name = '', suspended_at_ms = NULL, deleted_at_ms = ? WHERE id = ?",
  );
  const deleteReceiverRows = db.prepare('DELETE FROM changes WHERE receiver_id = ?');
  const deleteReceiverBars = db.prepare('DELETE FROM bars WHERE receiver_id = ?');
  const deleteBlocksOfMerchant = db.prepare("DELETE FROM bars WHERE merchant_id = ? AND receiver_id <> ''");
  // Receipts (issue 18): a deleted receiver's confirmations go with it; a blocked merchant
  // keeps nothing of that receiver's receipts.
  const deleteReceiverCursor = db.prepare('DELETE FROM receipt_cursors WHERE receiver_id = ?');
  const deleteReceiverReceipts = db.prepare('DELETE FROM receipt_events WHERE receiver_id = ?');
  const deletePairReceipts = db.prepare('DELETE FROM receipt_events WHERE receiver_id = ? AND merchant_id = ?');
  const touch = db.prepare('UPDATE accounts SET last_seen_at_ms = ? WHERE id = ?');
  const listBlocks = db.prepare("SELECT merchant_id, at_ms FROM bars WHERE receiver_id = ? AND cause = 'blocked' ORDER BY at_ms, merchant_id");
  const suspendedMerchants = db.prepare("SELECT merchant_id FROM bars WHERE receiver_id = '' AND cause = 'suspended'").pluck();
  const findRegistration = db.prepare('SELECT account_id, digest, created_at_ms FROM registrations WHERE request_hash = ?');
  const saveRegistration = db.prepare('INSERT OR REPLACE INTO registrations (request_hash, account_id, digest, created_at_ms) VALUES (?, ?, ?, ?)');
  const purgeRegistrations = db.prepare('DELETE FROM registrations WHERE created_at_ms < ?');
  const listAll = db.prepare(
    `SELECT ${CHANGE_COLUMNS} FROM changes
     WHERE merchant_id = ? AND kind = 1 AND seq > ? AND valid_until_ms > ? ORDER BY seq LIMIT ?`,
  );
  const listForReceiver = db.prepare(
    `SELECT ${CHANGE_COLUMNS} FROM changes
     WHERE receiver_id = ? AND merchant_id = ? AND kind = 1 AND seq > ? AND valid_until_ms > ? ORDER BY seq LIMIT ?`,
  );
  // Same predicate as the partial index public_items_by_merchant (migration 3).
  const countPublic = db
    .prepare("SELECT COUNT(*) FROM changes WHERE merchant_id = ? AND valid_until_ms > ? AND kind = 1 AND receiver_id = ''")
    .pluck();
  const purgeChanges = db.prepare('DELETE FROM changes WHERE valid_until_ms <= ?');
  const purgeRequests = db.prepare('DELETE FROM requests WHERE created_at_ms < ?');
  const getHistory = db.prepare('SELECT history_id, started_by, started_at_ms FROM history WHERE id = 1');
  const replaceHistory = db.prepare('UPDATE history SET history_id = ?, started_by = ?, started_at_ms = ? WHERE id = 1 AND history_id = ?');
  const knownReceivers = new Set<string>();
  const receipts = createSqliteReceipts(db);

  const readAccount = (id: string): AccountRecord | undefined => {
    const row = getAccount.get(id) as
      | {
          id: string;
          role: AccountRole;
          display_name: string;
          password_hash: Buffer;
          created_at_ms: number;
          suspended_at_ms: number | null;
          deleted_at_ms: number | null;
          last_seen_at_ms: number | null;
        }
      | undefined;
    if (!row) return undefined;
    return {
      id: row.id,
      role: row.role,
      displayName: row.display_name,
      passwordHash: row.password_hash,
      createdAtMs: row.created_at_ms,
      ...(row.suspended_at_ms !== null && { suspendedAtMs: row.suspended_at_ms }),
      ...(row.deleted_at_ms !== null && { deletedAtMs: row.deleted_at_ms }),
      ...(row.last_seen_at_ms !== null && { lastSeenAtMs: row.last_seen_at_ms }),
    };
  };

  return {
    transaction: <T>(fn: () => T): T => db.transaction(fn).immediate(),

    insertAccount(account: AccountRecord) {
      const result = insertAccount.run(
        account.id,
        account.role,
        account.displayName,
        account.passwordHash,
        account.createdAtMs,
      );
      return result.changes === 1;
    },
    getAccount: readAccount,
    updatePasswordHash: (id, hash) => updatePassword.run(hash, id).changes === 1,
    replacePasswordHash: (id, expected, next) => replacePassword.run(next, id, expected).changes === 1,
    isReceiver(id) {
      // Accounts never change role, and a deletion runs in this same store (the commit
      // worker's) and forgets the id, so a receiver once found stays one: remembered, the
      // check costs no statement for the next push to it (the commit worker runs it for
      // every specific push). Bounded; a miss only costs the read again.
      if (knownReceivers.has(id)) return true;
      if (isReceiver.get(id) === undefined) return false;
      if (knownReceivers.size >= KNOWN_RECEIVERS_MAX) knownReceivers.clear();
      knownReceivers.add(id);
      return true;
    },

    headSequence: () => getHead.get() as number,
    setHeadSequence: (seq) => void setHead.run(seq),

    insertChange(c) {
      insertChange.run(c.seq, c.kind, c.itemId, c.merchantId, c.receiverId, c.itemKey, c.frame, c.pushedAtMs, c.validUntilMs);
    },
    findItemByKey(locator: ItemLocator) {
      const row = findByKey.get(locator.merchantId, locator.receiverId, locator.itemKey) as ChangeRow | undefined;
      return row && toChange(row);
    },
    findItemById(itemId) {
      const seq = itemIdSequence(itemId);
      const row = (seq !== undefined ? findBySeq.get(seq, itemId) : findLegacyById.get(itemId)) as ChangeRow | undefined;
      return row && toChange(row);
    },
    deleteChange: (seq) => void deleteChange.run(seq),

    findRequest(merchantId, requestId): RequestRecord | undefined {
      const known = batchRequests?.get(requestKey(merchantId, requestId));
      if (known !== undefined) return known ?? undefined;
      const row = findRequest.get(merchantId, requestId) as
        | { item_id: string; seq: number; created_at_ms: number; digest: string }
        | undefined;
      return row && { itemId: row.item_id, seq: row.seq, createdAtMs: row.created_at_ms, digest: row.digest };
    },
    saveRequest(merchantId, requestId, record) {
      const key = requestKey(merchantId, requestId);
      const statement = batchRequests?.get(key) === null ? insertRequest : saveRequest;
      statement.run(merchantId, requestId, record.itemId, record.seq, record.createdAtMs, record.digest);
      batchRequests?.set(key, record);
    },
    withBatchRequests(ops, fn) {
      const byMerchant = new Map<string, string[]>();
      for (const op of ops) {
        if (op.requestId === '') continue;
        const ids = byMerchant.get(op.merchantId);
        if (ids) ids.push(op.requestId);
        else byMerchant.set(op.merchantId, [op.requestId]);
      }
      if (byMerchant.size === 0) return fn();
      const known = new Map<string, RequestRecord | null>();
      for (const [merchantId, ids] of byMerchant) {
        for (const id of ids) known.set(requestKey(merchantId, id), null);
        const rows = findRequests.all(merchantId, JSON.stringify(ids)) as { request_id: string; item_id: string; seq: number; created_at_ms: number; digest: string }[];
        for (const row of rows) known.set(requestKey(merchantId, row.request_id), { itemId: row.item_id, seq: row.seq, createdAtMs: row.created_at_ms, digest: row.digest });
      }
      batchRequests = known;
      try {
        return fn();
      } finally {
        batchRequests = undefined;
      }
    },

    readChanges(receiverId, afterSeq, nowMs, limit, tombstonesAfterSeq) {
      const rows = hasBars.get(receiverId)
        ? readChangesBarred.all(receiverId, afterSeq, nowMs, tombstonesAfterSeq, receiverId, limit)
        : readChangesPlain.all(receiverId, afterSeq, nowMs, tombstonesAfterSeq, limit);
      return (rows as ChangeRow[]).map(toChange);
    },

    findBar: (receiverId, merchantId) => findBar.get(receiverId, merchantId) as BarCause | undefined,
    countBlocks: (receiverId) => countBlocks.get(receiverId) as number,
    liveItemsOf(merchantId, receiverId, nowMs) {
      const rows = (receiverId === undefined ? liveItemsAll.all(merchantId, nowMs) : liveItemsFor.all(merchantId, nowMs, receiverId)) as ChangeRow[];
      return rows.map(toChange);
    },
    saveBar(bar: BarRecord) {
      saveBar.run(bar.receiverId, bar.merchantId, bar.cause, bar.atMs);
      if (bar.cause === 'blocked') deletePairReceipts.run(bar.receiverId, bar.merchantId);
    },
    deleteBar: (receiverId, merchantId) => void deleteBar.run(receiverId, merchantId),
    setSuspended: (id, atMs) => void setSuspended.run(atMs, id),
    deleteAccount(id, atMs) {
      const account = readAccount(id);
      markDeleted.run(atMs, id);
      knownReceivers.delete(id);
      if (account?.role === 'receiver') {
        deleteReceiverRows.run(id);
        deleteReceiverBars.run(id);
        deleteReceiverCursor.run(id);
        deleteReceiverReceipts.run(id);
      } else {
        deleteBlocksOfMerchant.run(id);
      }
    },
    touch: (id, atMs) => void touch.run(atMs, id),
    listBlocks: (receiverId) =>
      (listBlocks.all(receiverId) as { merchant_id: string; at_ms: number }[]).map((r) => ({ merchantId: r.merchant_id, atMs: r.at_ms })),
    suspendedMerchants: () => suspendedMerchants.all() as string[],
    registerWithRequest(account, requestHash, digest, windowStartMs) {
      return db
        .transaction(() => {
          const known = findRegistration.get(requestHash) as { account_id: string; digest: string; created_at_ms: number } | undefined;
          const remembered = known && known.created_at_ms >= windowStartMs ? readAccount(known.account_id) : undefined;
          if (known && remembered && remembered.deletedAtMs === undefined) {
            if (known.digest !== digest) return { outcome: 'reused' as const, accountId: known.account_id };
            updatePassword.run(account.passwordHash, known.account_id);
            return { outcome: 'replaced' as const, accountId: known.account_id };
          }
          const inserted = insertAccount.run(account.id, account.role, account.displayName, account.passwordHash, account.createdAtMs);
          if (inserted.changes !== 1) return { outcome: 'id-taken' as const, accountId: account.id };
          saveRegistration.run(requestHash, account.id, digest, account.createdAtMs);
          return { outcome: 'created' as const, accountId: account.id };
        })
        .immediate();
    },
    db,
    countPublicItems: (merchantId, nowMs) => countPublic.get(merchantId, nowMs) as number,
    listItems(merchantId, receiverId, afterSeq, nowMs, limit) {
      const rows = (
        receiverId === undefined
          ? listAll.all(merchantId, afterSeq, nowMs, limit)
          : listForReceiver.all(receiverId, merchantId, afterSeq, nowMs, limit)
      ) as ChangeRow[];
      return rows.map(toChange);
    },

    purge(nowMs, requestCutoffMs) {
      // Receipt events go with the items they cover (their keep_until is the items' end);
      // the count returned stays the changes and request ids removed (and registrations).
      return db
        .transaction(() => {
          receipts.purge(nowMs);
          return purgeChanges.run(nowMs).changes + purgeRequests.run(requestCutoffMs).changes + purgeRegistrations.run(requestCutoffMs).changes;
        })
        .immediate();
    },
    history() {
      const row = getHistory.get() as { history_id: string; started_by: History['start']; started_at_ms: number };
      return { id: row.history_id, start: row.started_by, startedAtMs: row.started_at_ms };
    },
    replaceHistory: (fromId, next) => replaceHistory.run(next.id, next.start, next.startedAtMs, fromId).changes === 1,
    close: () => db.close(),
    pragma: db.pragma.bind(db) as Database.Database['pragma'],
    receipts,
  };
}

/** Receiver ids a store remembers having found (see isReceiver): ~100 bytes each. */
const KNOWN_RECEIVERS_MAX = 100_000;

export { PUBLIC_RECEIVER };
