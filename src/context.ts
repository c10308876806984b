import { setMaxListeners } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { HubServices } from './api/call-context.js';
import { type HubConfig, describeDatabaseUrl } from './config.js';
import { HubError, Reason } from './core/errors.js';
import { CommitQueue } from './delivery/commit-queue.js';
import { Fanout } from './delivery/fanout.js';
import { PushRateLimiter } from './delivery/rate-limit.js';
import { CallRateLimiter, ConfirmQueue, DeliveryWatch, PublicProgress } from './delivery/receipts.js';
import type { ReceiptServices } from './api/call-context.js';
import { type Logger, createLogger } from './logger.js';
import { type HubMetrics, createHubMetrics } from './metrics.js';
import { createSourceResolver } from './middleware/client-source.js';
import { createRegistry } from './registry/registry.js';
import type { HubBackend } from './store/ports.js';
import { ChangeKind, PUBLIC_RECEIVER } from './core/records.js';
import { SqliteOwnedError } from './store/sqlite/owner.js';
import { openSqliteBackend } from './store/sqlite/sqlite-backend.js';

export interface HubContext extends HubServices {
  logger: Logger;
  /** The storage backend (closed last, by RunningHub.stop). */
  backend: HubBackend;
  /** Set when --metrics-address is (the hub serves them); otherwise no metric is kept. */
  metrics?: HubMetrics;
  /** Stops timers; the caller closes the server first and then the store. */
  stopTimers(): void;
  /** Resolves when background store work (receipt batches and counts) has finished: await before closing the store. */
  backgroundDrained(): Promise<void>;
  /** Marks the start of shutdown (see HubServices.shutdownSignal). */
  beginShutdown(): void;
}

/** What tests may replace in the composition root. */
export interface HubOverrides {
  logger?: Logger;
  /** The clock for item validity (see HubServices.now); default Date.now. */
  now?: () => number;
  /** Tests only: lets CommitQueue.testPragma reach the commit worker's connection. */
  testHooks?: boolean;
}

/**
 * The composition root: builds config-dependent parts once. Tests pass overrides (a temp
 * database, a tiny scrypt cost, a short heartbeat) through the same path as production.
 * The backend is the one seam between the domain and storage: SQLite by default, PostgreSQL
 * with --database-url (then several hubs may share one database).
 */
export async function createHubContext(config: HubConfig, overrides: HubOverrides = {}): Promise<HubContext> {
  const now = overrides.now ?? Date.now;
  const logger = overrides.logger ?? createLogger({ level: config.logLevel });
  const backend = await openBackend(config, logger, overrides);
  const fanout = new Fanout(config.heartbeatIntervalMs);
  // Suspended merchants, for every stream of this node: loaded once, then kept current by the
  // suspension markers of every node's commits (before the fan-out hands them to streams).
  const suspendedMerchants = new Set(await backend.accounts.suspendedMerchants());
  backend.feed.onChanges((changes) => {
    for (const change of changes) {
      if (change.receiverId !== PUBLIC_RECEIVER) continue;
      if (change.kind === ChangeKind.Barred) suspendedMerchants.add(change.merchantId);
      else if (change.kind === ChangeKind.Unbarred) suspendedMerchants.delete(change.merchantId);
    }
    fanout.publish(changes);
  });
  // Streams of the old history end (UNAVAILABLE): each receiver reconnects and is reset.
  backend.history.onChange((history) => {
    logger.warn('a new history started: every receiver resets its state', { historyId: history.id, start: history.start });
    fanout.failAll(new HubError(Reason.HistoryChanged, 'subscribe: the hub started a new history; reconnect (your state will be reset)'));
    receipts.watch.failAll(new HubError(Reason.HistoryChanged, 'watch deliveries: the hub started a new history; reconnect (receipts are not replayed across it)'));
  });
  const commits = new CommitQueue(backend.committer, now);
  const registry = createRegistry(backend.accounts, backend.feed, config);
  const metrics = config.metricsAddress
    ? createHubMetrics({
        headSequence: () => backend.feed.head,
        subscribeStreams: () => fanout.size,
        deliveries: () => fanout.deliveries,
        dbPath: config.databaseUrl === undefined ? config.dbPath : undefined,
        mostBlocked: (limit) => backend.admin.mostBlocked(limit),
        suspendedAccounts: async () => (await backend.admin.totals(now())).suspended,
      })
    : undefined;
  if (metrics) commits.onBatchCommitted = (...batch) => metrics.batchCommitted(...batch);
  const receipts = createReceiptServices(backend, config, now, logger);
  if (metrics) receipts.confirms.onConfirmed = (count, lags) => metrics.receiptsConfirmed(count, lags);

  // Purge runs on one node of a cluster (the leader); SQLite's single node always leads.
  const purgeTimer = setInterval(() => {
    if (!backend.leader.isLeader) return;
    const nowMs = now();
    // Expired items stay endedItemRetentionMs past their end, so their receipts can be read.
    commits.purge(nowMs - config.endedItemRetentionMs, nowMs - config.idempotencyWindowMs).catch((error: unknown) => {
      logger.error('purge failed', { error: String(error) });
    });
  }, config.purgeIntervalMs);
  purgeTimer.unref();
  const shutdown = new AbortController();
  // Every open push stream listens for shutdown: there can be many, by design.
  setMaxListeners(0, shutdown.signal);

  return {
    config,
    logger,
    backend,
    changes: backend.changes,
    feed: backend.feed,
    history: backend.history,
    registry,
    commits,
    fanout,
    metrics,
    now,
    pushLimiter: new PushRateLimiter(config.merchantPushRatePerSec),
    sourceOf: createSourceResolver(config.trustedProxies),
    shutdownSignal: shutdown.signal,
    accountFilters: { listBlocks: (receiverId) => backend.accounts.listBlocks(receiverId), suspendedMerchants },
    receipts,
    stopTimers: () => {
      clearInterval(purgeTimer);
      void receipts.stop();
    },
    backgroundDrained: receipts.drained,
    beginShutdown: () => shutdown.abort(),
  };
}

/** Receipts (issue 18): the confirmation queue, the public count coalescer, the watch router. */
function createReceiptServices(
  backend: HubBackend,
  config: HubConfig,
  now: () => number,
  logger: Logger,
): ReceiptServices & { stop(): Promise<void>; drained(): Promise<void> } {
  const onError = (error: unknown) => logger.warn('receipts: background work failed', { error: String((error as Error)?.message ?? error) });
  const confirms = new ConfirmQueue(backend.receipts, backend.receiptFeed, now);
  const progress = new PublicProgress(backend.receipts, backend.receiptFeed, now, PUBLIC_PROGRESS_INTERVAL_MS, onError);
  confirms.onPublicItems = (items) => progress.touch(items);
  const watch = new DeliveryWatch(backend.receipts, backend.receiptFeed, {
    history: () => backend.history.current(),
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    bufferLimit: config.subscriberBufferLimit,
    maxStreamsPerMerchant: config.maxWatchStreamsPerMerchant,
  }, onError);
  return {
    store: backend.receipts,
    confirms,
    watch,
    confirmLimiter: new CallRateLimiter(config.receiptConfirmRatePerSec, 'confirm delivery rate limit (per receiver)'),
    statusLimiter: new CallRateLimiter(config.receiptStatusRatePerSec, 'delivery status rate limit (per merchant)'),
    stop: () => progress.stop(),
    drained: async () => {
      await Promise.all([progress.stop(), confirms.idle(), watch.idle()]);
    },
  };
}

/** A public item's counts are sent at most once a second (issue 18). */
const PUBLIC_PROGRESS_INTERVAL_MS = 1000;

/** The one factory that knows both backends. */
async function openBackend(config: HubConfig, logger: Logger, overrides: HubOverrides): Promise<HubBackend> {
  const limits = { idempotencyWindowMs: config.idempotencyWindowMs, maxPublicItemsPerMerchant: config.maxPublicItemsPerMerchant };
  if (config.databaseUrl !== undefined) {
    const { openPostgresBackend } = await import('./store/postgres/postgres-backend.js');
    try {
      return await openPostgresBackend(config.databaseUrl, {
        limits,
        onError: (error) => logger.warn('postgres connection error', { error: String((error as Error)?.message ?? error) }),
        onRestoreDetected: (changed, historyId) =>
        logger.warn('the database was restored (its fingerprint changed): a new history starts, receivers reset', { changed, historyId }),
      onLeaderChange: (isLeader) => logger.info(isLeader ? 'leader: this node purges' : 'leader: this node stopped leading (another node purges)'),
      });
    } catch (error) {
      throw new Error(describeConnectFailure(config.databaseUrl, error));
    }
  }
  try {
    return await openSqliteBackend(config.dbPath, {
      limits,
      testHooks: overrides.testHooks,
      onMigrated: (fromVersion, toVersion) => logger.info('database migrated', { db: config.dbPath, fromVersion, toVersion }),
    });
  } catch (error) {
    if (error instanceof SqliteOwnedError) throw error; // names the file and its owner already
    throw new Error(describeOpenFailure(config.dbPath, error));
  }
}

/**
 * "--db PATH: cannot open it for writing: REASON", naming what is wrong where we can tell.
 * Failures that are not about opening (a schema newer than this hub) keep their own words.
 */
export function describeOpenFailure(path: string, error: unknown): string {
  const message = String((error as Error)?.message ?? error);
  // The store's own wording: "database PATH: cannot open it for writing (CODE: reason)".
  const inner = /cannot open it for writing \((.*)\)$/s.exec(message)?.[1];
  if (inner === undefined && typeof (error as { code?: unknown })?.code !== 'string') return `--db ${path}: ${message}`;
  const reason = inner ?? message;
  let cause = reason;
  try {
    if (existsSync(path) && statSync(path).isDirectory()) cause = `it is a directory (${reason})`;
    else if (existsSync(dirname(path)) && !statSync(dirname(path)).isDirectory()) cause = `${dirname(path)} is not a directory (${reason})`;
    else if ((error as NodeJS.ErrnoException)?.code === 'EACCES') cause = `permission denied (${reason})`;
  } catch {
    // The checks above only refine the message; the store's own words stand otherwise.
  }
  return `--db ${path}: cannot open it for writing: ${cause}`;
}

/**
 * "--database-url postgres://host:port/db: cannot connect: <likely cause>", with the host and
 * port (never the user or password) and what the error most likely means.
 */
export function describeConnectFailure(url: string, error: unknown): string {
  const code = String((error as { code?: unknown })?.code ?? '');
  const message = String((error as Error)?.message ?? error);
  let where = 'the server';
  try {
    const parsed = new URL(url);
    where = `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}`;
  } catch {
    // describeDatabaseUrl below says the URL is unparsable.
  }
  const cause =
    code === 'ECONNREFUSED' ? `nothing listens on ${where} (is PostgreSQL running, on this host and port?)`
    : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? `the host of ${where} does not resolve`
    : code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' ? `${where} does not answer (firewall, or a wrong host)`
    : code === '28P01' || code === '28000' ? 'the server refused the user or password in the URL'
    : code === '3D000' ? 'the database in the URL does not exist (create it first)'
    // Anything else keeps its own words; the URL itself is never part of the message.
    : message.replaceAll(url, describeDatabaseUrl(url));
  return `--database-url ${describeDatabaseUrl(url)}: cannot connect: ${cause}`;
}
