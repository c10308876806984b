import { setMaxListeners } from 'node:events';
import type { HubServices } from './api/call-context.js';
import type { HubConfig } from './config.js';
import { CommitQueue, inlineCommitter } from './delivery/commit-queue.js';
import { Fanout } from './delivery/fanout.js';
import { PushRateLimiter } from './delivery/rate-limit.js';
import { type Logger, createLogger } from './logger.js';
import { createRegistry } from './registry/registry.js';
import { openSqliteStore } from './store/sqlite/sqlite-store.js';
import { sqliteWorkerCommitter } from './store/sqlite/worker-committer.js';
import type { HubStore } from './store/types.js';

export interface HubContext extends HubServices {
  logger: Logger;
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
}

export function createHubContext(config: HubConfig, overrides: HubOverrides = {}): HubContext {
  const now = overrides.now ?? Date.now;
  const logger = overrides.logger ?? createLogger();
  const store = overrides.store ?? openSqliteStore(config.dbPath);
  const fanout = new Fanout();
  // A file database commits in a worker thread (fsync off the event loop); an injected or
  // in-memory store commits inline, through the store itself.
  const limits = { idempotencyWindowMs: config.idempotencyWindowMs, maxPublicItemsPerMerchant: config.maxPublicItemsPerMerchant };
  const committer =
    overrides.store || config.dbPath === ':memory:'
      ? inlineCommitter(store, limits)
      : sqliteWorkerCommitter(config.dbPath, limits);
  const commits = new CommitQueue(store, fanout, committer, now);
  const registry = createRegistry(store, config);

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
    now,
    pushLimiter: new PushRateLimiter(config.merchantPushRatePerSec),
    shutdownSignal: shutdown.signal,
    stopTimers: () => clearInterval(purgeTimer),
    beginShutdown: () => shutdown.abort(),
  };
}
