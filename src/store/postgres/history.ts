import type pg from 'pg';
import { newHistoryId } from '../../core/ids.js';
import type { History, HistoryStart, HistoryStore } from '../ports.js';
import { LOCK_NAMESPACE, LockKey, inTransaction } from './connection.js';

interface HistoryRow {
  history_id: string;
  started_by: HistoryStart;
  started_at_ms: number;
  fingerprint: string;
}

const toHistory = (row: HistoryRow): History => ({ id: row.history_id, start: row.started_by, startedAtMs: row.started_at_ms });

/**
 * What identifies this database's physical timeline, each part read where the role may
 * (any role may on PostgreSQL 18; a managed service may hide some, which are then left out):
 * - system: the cluster's system identifier, new for every initdb (a dump restored into
 *   another cluster);
 * - timeline: the WAL timeline, new after point-in-time recovery or a promoted standby (a
 *   failover, which may have lost the newest commits of an asynchronous replica);
 * - database: the database's OID, new for a database created again (a dump restored into a
 *   new or re-created database);
 * - table: the history table's OID, new when the tables were re-created (pg_restore --clean).
 * Stored with the history; at start a part that differs from the stored one (both known)
 * means the rows may come from another timeline, so a new history starts.
 */
async function readFingerprint(client: pg.ClientBase): Promise<Record<string, string>> {
  const parts: Record<string, string> = {};
  const read = async (name: string, sql: string) => {
    try {
      await client.query('SAVEPOINT fingerprint');
      const value = (await client.query<{ value: string | number | null }>(sql)).rows[0]?.value;
      await client.query('RELEASE SAVEPOINT fingerprint');
      if (value !== null && value !== undefined) parts[name] = String(value);
    } catch {
      await client.query('ROLLBACK TO SAVEPOINT fingerprint');
    }
  };
  await read('system', 'SELECT system_identifier::text AS value FROM pg_control_system()');
  await read('timeline', 'SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS value');
  await read('database', 'SELECT oid::text AS value FROM pg_database WHERE datname = current_database()');
  await read('table', "SELECT 'history'::regclass::oid::text AS value");
  return parts;
}

const encode = (parts: Record<string, string>): string =>
  Object.entries(parts)
    .map(([name, value]) => `${name}=${value}`)
    .join(';');

const decode = (text: string): Record<string, string> =>
  Object.fromEntries(text.split(';').filter((part) => part.includes('=')).map((part) => part.split('=', 2) as [string, string]));

/** The parts that differ between the stored and the live fingerprint (both known). */
export function fingerprintChanges(stored: string, live: Record<string, string>): string[] {
  const before = decode(stored);
  return Object.keys(live).filter((name) => before[name] !== undefined && before[name] !== live[name]);
}

/**
 * At start (one node at a time, under the migration lock): compares the stored fingerprint
 * with the live one and starts a new history ('restored') when the database was restored
 * from a dump or to a point in time. Returns the current history and what changed.
 */
export async function checkPostgresHistory(client: pg.ClientBase, nowMs = Date.now()): Promise<{ history: History; changed: string[] }> {
  return inTransaction(client, async () => {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_NAMESPACE, LockKey.Migrate]);
    const row = (await client.query<HistoryRow>('SELECT history_id, started_by, started_at_ms, fingerprint FROM history WHERE id = 1 FOR UPDATE')).rows[0]!;
    const live = await readFingerprint(client);
    const changed = fingerprintChanges(row.fingerprint, live);
    const fingerprint = encode(live);
    if (changed.length > 0) {
      const next: History = { id: newHistoryId(), start: 'restored', startedAtMs: nowMs };
      await client.query('UPDATE history SET history_id = $1, started_by = $2, started_at_ms = $3, fingerprint = $4 WHERE id = 1', [
        next.id,
        next.start,
        next.startedAtMs,
        fingerprint,
      ]);
      return { history: next, changed };
    }
    if (fingerprint !== row.fingerprint) await client.query('UPDATE history SET fingerprint = $1 WHERE id = 1', [fingerprint]);
    return { history: toHistory(row), changed };
  });
}

/**
 * The history on a node of a cluster: read at start, rotated by compare-and-set in the
 * database, and polled (one cheap read per interval) so a rotation by another node reaches
 * this one's streams within the interval.
 */
export function createPostgresHistory(
  pool: pg.Pool,
  initial: History,
  options: { pollIntervalMs: number; onError: (error: unknown) => void },
): HistoryStore & { close(): void } {
  let current = initial;
  const listeners: ((history: History) => void)[] = [];
  const adopt = (history: History) => {
    if (history.id === current.id) return;
    current = history;
    for (const listener of listeners) listener(history);
  };
  const poll = setInterval(() => {
    pool
      .query<HistoryRow>({ name: 'history-read', text: 'SELECT history_id, started_by, started_at_ms FROM history WHERE id = 1' })
      .then(({ rows }) => adopt(toHistory(rows[0]!)), options.onError);
  }, options.pollIntervalMs);
  poll.unref();
  return {
    current: () => current,
    async rotate(fromId, start, nowMs) {
      const next: History = { id: newHistoryId(), start, startedAtMs: nowMs };
      const { rows } = await pool.query<HistoryRow>({
        name: 'history-rotate',
        text: `UPDATE history SET history_id = $1, started_by = $2, started_at_ms = $3 WHERE id = 1 AND history_id = $4
               RETURNING history_id, started_by, started_at_ms`,
        values: [next.id, next.start, next.startedAtMs, fromId],
      });
      const now =
        rows[0] ??
        (await pool.query<HistoryRow>({ name: 'history-read', text: 'SELECT history_id, started_by, started_at_ms FROM history WHERE id = 1' })).rows[0]!;
      adopt(toHistory(now));
      return current;
    },
    onChange: (listener) => void listeners.push(listener),
    close: () => clearInterval(poll),
  };
}
