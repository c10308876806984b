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
export interface HubOverrides {
  logger?: Logger;
  store?: HubStore;
  /** Tests only: lets CommitQueue.testPragma reach the commit worker's connection. */
  testHooks?: boolean;
}

export function createHubContext(config: HubConfig, overrides: HubOverrides = {}): HubContext {
  const logger = overrides.logger ?? createLogger();
  const store = overrides.store ?? openSqliteStore(config.dbPath);
  const fanout = new Fanout();
  // A file database commits in a worker thread (fsync off the event loop); an injected or
  // in-memory store commits inline, through the store itself.
  const committer =
    overrides.store || config.dbPath === ':memory:'
      ? inlineCommitter(store, config.idempotencyWindowMs)
      : sqliteWorkerCommitter(config.dbPath, config.idempotencyWindowMs, { testHooks: overrides.testHooks });
  const commits = new CommitQueue(store, fanout, committer);
  const registry = createRegistry(store, config);

  const purgeTimer = setInterval(() => {
    const nowMs = Date.now();
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
    pushLimiter: new PushRateLimiter(config.merchantPushRatePerSec),
    shutdownSignal: shutdown.signal,
    stopTimers: () => clearInterval(purgeTimer),
    beginShutdown: () => shutdown.abort(),
  };
}
