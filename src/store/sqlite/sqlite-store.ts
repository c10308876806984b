import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  type AccountRecord,
  type AccountRole,
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
}

export type SqliteStore = HubStore & { pragma: Database.Database['pragma'] };

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
  const getAccount = db.prepare('SELECT id, role, display_name, password_hash, created_at_ms FROM accounts WHERE id = ?');
  const updatePassword = db.prepare('UPDATE accounts SET password_hash = ? WHERE id = ?');
  const replacePassword = db.prepare('UPDATE accounts SET password_hash = ? WHERE id = ? AND password_hash = ?');
  const isReceiver = db.prepare("SELECT 1 FROM accounts WHERE id = ? AND role = 'receiver'").pluck();
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
  // Two index range scans merged by seq: the receiver's own changes and the public ones.
  const readChanges = db.prepare(
    `SELECT ${CHANGE_COLUMNS} FROM changes
     WHERE receiver_id IN (?, '') AND seq > ? AND valid_until_ms > ? AND (kind = 1 OR seq > ?)
     ORDER BY seq LIMIT ?`,
  );
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
    getAccount(id: string) {
      const row = getAccount.get(id) as
        | { id: string; role: AccountRole; display_name: string; password_hash: Buffer; created_at_ms: number }
        | undefined;
      if (!row) return undefined;
      return {
        id: row.id,
        role: row.role,
        displayName: row.display_name,
        passwordHash: row.password_hash,
        createdAtMs: row.created_at_ms,
      };
    },
    updatePasswordHash: (id, hash) => updatePassword.run(hash, id).changes === 1,
    replacePasswordHash: (id, expected, next) => replacePassword.run(next, id, expected).changes === 1,
    isReceiver(id) {
      // Accounts are never deleted and never change role, so a receiver once found stays
      // one: remembered, the check costs no statement for the next push to it (the commit
      // worker runs it for every specific push). Bounded; a miss only costs the read again.
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
      const row = findRequest.get(merchantId, requestId) as
        | { item_id: string; seq: number; created_at_ms: number; digest: string }
        | undefined;
      return row && { itemId: row.item_id, seq: row.seq, createdAtMs: row.created_at_ms, digest: row.digest };
    },
    saveRequest(merchantId, requestId, record) {
      saveRequest.run(merchantId, requestId, record.itemId, record.seq, record.createdAtMs, record.digest);
    },

    readChanges(receiverId, afterSeq, nowMs, limit, tombstonesAfterSeq) {
      return (readChanges.all(receiverId, afterSeq, nowMs, tombstonesAfterSeq, limit) as ChangeRow[]).map(toChange);
    },
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
      return db.transaction(() => purgeChanges.run(nowMs).changes + purgeRequests.run(requestCutoffMs).changes).immediate();
    },
    history() {
      const row = getHistory.get() as { history_id: string; started_by: History['start']; started_at_ms: number };
      return { id: row.history_id, start: row.started_by, startedAtMs: row.started_at_ms };
    },
    replaceHistory: (fromId, next) => replaceHistory.run(next.id, next.start, next.startedAtMs, fromId).changes === 1,
    close: () => db.close(),
    pragma: db.pragma.bind(db) as Database.Database['pragma'],
  };
}

/** Receiver ids a store remembers having found (see isReceiver): ~100 bytes each. */
const KNOWN_RECEIVERS_MAX = 100_000;

export { PUBLIC_RECEIVER };
