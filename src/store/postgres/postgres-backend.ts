import pg from 'pg';
import type { BatchLimits } from '../../core/write-ops.js';
import type { HubBackend } from '../ports.js';
import { createPostgresAccountStore } from './account-store.js';
import { createPostgresAdminStore } from './admin-store.js';
import { createPostgresChangeFeed } from './change-feed.js';
import { createPostgresChangeReader } from './change-reader.js';
import { createPostgresBatchCommitter } from './batch-committer.js';
import { createPostgresWriter } from './committer.js';
import { connectionConfig } from './connection.js';
import { checkPostgresHistory, createPostgresHistory } from './history.js';
import { createPostgresLeader } from './leader.js';
import { migrate } from './migrations.js';
import { createPostgresReceiptFeed, createPostgresReceiptStore } from './receipt-store.js';

export { DatabaseTooNewError, MIGRATIONS, migrate } from './migrations.js';
export { PostgresFault, PostgresStorageError } from './storage-fault.js';

export interface PostgresBackendOptions {
  /** The domain's per-batch rules (idempotency window, public item cap), as on every backend. */
  limits: BatchLimits;
  /** Connections for reads and account queries (the writer, listener and leader have their own). */
  poolSize: number;
  /** Fallback catch-up read of the feed when no notification came. ms. */
  feedPollIntervalMs: number;
  /** Rows per feed catch-up read. */
  feedPageSize: number;
  /** First wait before the feed's listener reconnects. ms. */
  reconnectDelayMs: number;
  /** How often a follower tries to become leader. ms. */
  leaderRetryMs: number;
  /** Connection and background errors (never a password or the URL). */
  onError: (error: unknown) => void;
  onLeaderChange?: (isLeader: boolean) => void;
  /** Told when the database was found restored at start (the parts of its fingerprint that changed). */
  onRestoreDetected?: (changed: string[], historyId: string) => void;
}

export const DEFAULT_POSTGRES_OPTIONS: Omit<PostgresBackendOptions, 'limits'> = {
  poolSize: 8,
  // A lost NOTIFY then costs at most a second of latency, for one cheap head read per second.
  feedPollIntervalMs: 1000,
  feedPageSize: 1000,
  reconnectDelayMs: 100,
  leaderRetryMs: 1000,
  onError: () => undefined,
};

/**
 * Opens one hub node's PostgreSQL backend: migrates the database (refusing a newer schema),
 * then starts the node's writer, change feed and leader election. N nodes may open the
 * same database; each must be closed to release its connections (and leadership).
 */
export async function openPostgresBackend(
  url: string,
  overrides: Partial<PostgresBackendOptions> & Pick<PostgresBackendOptions, 'limits'>,
): Promise<HubBackend> {
  const options: PostgresBackendOptions = { ...DEFAULT_POSTGRES_OPTIONS, ...overrides };
  const migrator = new pg.Client(connectionConfig(url, 'pushhub-migrate'));
  await migrator.connect();
  let startHistory;
  try {
    await migrate(migrator);
    const checked = await checkPostgresHistory(migrator);
    startHistory = checked.history;
    if (checked.changed.length > 0) options.onRestoreDetected?.(checked.changed, checked.history.id);
  } finally {
    await migrator.end();
  }

  const pool = new pg.Pool({ ...connectionConfig(url, 'pushhub-reader'), max: options.poolSize });
  // An idle pooled connection that dies is dropped by the pool; the next query opens another.
  pool.on('error', options.onError);
  const feed = createPostgresChangeFeed(pool, url, {
    pollIntervalMs: options.feedPollIntervalMs,
    pageSize: options.feedPageSize,
    reconnectDelayMs: options.reconnectDelayMs,
    onError: options.onError,
  });
  // The node's own commits reach its fan-out without a read (persist, then publish).
  const writer = createPostgresWriter(url, options.onError, (stored, head, previousHead) =>
    feed.committed(stored, head, previousHead),
  );
  const committer = createPostgresBatchCommitter(writer, options.limits, (seq) => feed.readUpTo(seq));
  const receiptFeed = createPostgresReceiptFeed(pool, url, {
    pollIntervalMs: options.feedPollIntervalMs,
    pageSize: options.feedPageSize,
    reconnectDelayMs: options.reconnectDelayMs,
    onError: options.onError,
  });
  try {
    await feed.start();
    await receiptFeed.start();
  } catch (error) {
    await receiptFeed.close();
    await feed.close();
    await writer.close();
    await pool.end();
    throw error;
  }
  const leader = createPostgresLeader(url, {
    retryMs: options.leaderRetryMs,
    onError: options.onError,
    onChange: options.onLeaderChange,
  });
  await leader.ready;
  const history = createPostgresHistory(pool, startHistory, { pollIntervalMs: options.feedPollIntervalMs, onError: options.onError });

  return {
    accounts: createPostgresAccountStore(pool),
    admin: createPostgresAdminStore(pool),
    changes: createPostgresChangeReader(pool),
    committer,
    feed,
    leader,
    history,
    receipts: createPostgresReceiptStore(pool),
    receiptFeed,
    async close() {
      history.close();
      await leader.close();
      await receiptFeed.close();
      await feed.close();
      await committer.close();
      await pool.end();
    },
  };
}
