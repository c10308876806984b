import type { CallContext } from 'nice-grpc';
import type { Registry, Account } from '../registry/registry.js';
import type { HubConfig } from '../config.js';
import type { ChangeFeed, ChangeReader, HistoryStore } from '../store/ports.js';
import type { CommitQueue } from '../delivery/commit-queue.js';
import type { Fanout } from '../delivery/fanout.js';
import type { PushRateLimiter } from '../delivery/rate-limit.js';
import type { HubMetrics } from '../metrics.js';

/** What the auth middleware adds to every authenticated call. */
export interface AuthContext {
  account: Account;
  /** The caller's source address (IP, no port), which throttles and the scrypt queue key on. */
  source: string;
}

export type AuthedCallContext = CallContext & AuthContext;

/** Everything the RPC handlers use, built once by the composition root. */
export interface HubServices {
  config: HubConfig;
  /** Reads of the change log (Subscribe backlogs, ListItems). */
  changes: ChangeReader;
  /** This node's feed of committed changes, in sequence order (its head is what it has published). */
  feed: ChangeFeed;
  /** The history cursors belong to (see docs/backups.md). */
  history: HistoryStore;
  registry: Registry;
  commits: CommitQueue;
  fanout: Fanout;
  pushLimiter: PushRateLimiter;
  /** Set when metrics are served (--metrics-address). */
  metrics?: HubMetrics;
  /**
   * The clock items live by (ms since the epoch): validation, commits, backlog reads, the
   * live filter and purge all read it. Date.now outside tests, which inject their own.
   */
  now: () => number;
  /** Aborted when the hub starts shutting down: push streams stop taking pushes. */
  shutdownSignal: AbortSignal;
}
