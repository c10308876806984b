import { setMaxListeners } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { HubServices } from './api/call-context.js';
import type { HubConfig } from './config.js';
import { CommitQueue, inlineCommitter } from './delivery/commit-queue.js';
import { Fanout } from './delivery/fanout.js';
import { PushRateLimiter } from './delivery/rate-limit.js';
import { type Logger, createLogger } from './logger.js';
import { type HubMetrics, createHubMetrics } from './metrics.js';
import { createRegistry } from './registry/registry.js';
import { openSqliteStore } from './store/sqlite/sqlite-store.js';
import { sqliteWorkerCommitter } from './store/sqlite/worker-committer.js';
import type { HubStore } from './core/records.js';

export interface HubContext extends HubServices {
  logger: Logger;
  /** Set when --metrics-address is (the hub serves them); otherwise no metric is kept. */
  metrics?: HubMetrics;
  /** Stops timers; the caller closes the server first and then the store. */
  stopTimers(): void;
  /** Marks the start of shutdown (see HubServices.shutdownSignal). */
  beginShutdown(): void;
}

/**
 * The composition root: builds config-dependent parts once. Tests pass overrides (a temp
 * database, a tiny scrypt cost, a short heartbeat) through the same path as production.
 */
/** What tests may replace in the composition root. */
export interface HubOverrides {
  logger?: Logger;
  store?: HubStore;
  /** The clock for item validity (see HubServices.now); default Date.now. */
  now?: () => number;
  /** Tests only: lets CommitQueue.testPragma reach the commit worker's connection. */
  testHooks?: boolean;
}

export function createHubContext(config: HubConfig, overrides: HubOverrides = {}): HubContext {
  const now = overrides.now ?? Date.now;
  const logger = overrides.logger ?? createLogger({ level: config.logLevel });
  const store = overrides.store ?? openStoreLogged(config.dbPath, logger);
  const fanout = new Fanout(config.heartbeatIntervalMs);
  // A file database commits in a worker thread (fsync off the event loop); an injected or
  // in-memory store commits inline, through the store itself.
  const limits = { idempotencyWindowMs: config.idempotencyWindowMs, maxPublicItemsPerMerchant: config.maxPublicItemsPerMerchant };
  const committer =
    overrides.store || config.dbPath === ':memory:'
      ? inlineCommitter(store, limits)
      : sqliteWorkerCommitter(config.dbPath, limits, { testHooks: overrides.testHooks });
  const commits = new CommitQueue(store, fanout, committer, now);
  const registry = createRegistry(store, config);
  const metrics = config.metricsAddress
    ? createHubMetrics({
        headSequence: () => commits.headSequence,
        subscribeStreams: () => fanout.size,
        deliveries: () => fanout.deliveries,
        dbPath: config.dbPath,
      })
    : undefined;
  if (metrics) commits.onBatchCommitted = (...batch) => metrics.batchCommitted(...batch);

  const purgeTimer = setInterval(() => {
    const nowMs = now();
    commits.purge(nowMs, nowMs - config.idempotencyWindowMs).catch((error: unknown) => {
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
    store,
    registry,
    commits,
    fanout,
    metrics,
    now,
    pushLimiter: new PushRateLimiter(config.merchantPushRatePerSec),
    shutdownSignal: shutdown.signal,
    stopTimers: () => clearInterval(purgeTimer),
    beginShutdown: () => shutdown.abort(),
  };
}

/** The schema version of an existing database file, read without changing it; 0 for a new one. */
function schemaVersion(path: string): number {
  if (path === ':memory:' || !existsSync(path)) return 0;
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

/**
 * Opens the store, logging the migrations it ran, and turns SQLite's bare "unable to open
 * database file" into a message with the path and the likely cause.
 */
function openStoreLogged(path: string, logger: Logger): HubStore {
  let before: number;
  let store: HubStore;
  try {
    before = schemaVersion(path);
    store = openSqliteStore(path);
  } catch (error) {
    throw new Error(describeOpenFailure(path, error));
  }
  const after = schemaVersion(path);
  if (after !== before) logger.info('database migrated', { db: path, fromVersion: before, toVersion: after });
  return store;
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
