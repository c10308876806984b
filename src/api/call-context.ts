import type { CallContext } from 'nice-grpc';
import type { Registry, Account } from '../registry/registry.js';
import type { HubConfig } from '../config.js';
import type { ChangeFeed, ChangeReader, HistoryStore, ReceiptStore } from '../store/ports.js';
import type { CallRateLimiter, ConfirmQueue, DeliveryWatch } from '../delivery/receipts.js';
import type { CommitQueue } from '../delivery/commit-queue.js';
import type { Fanout } from '../delivery/fanout.js';
import type { PushRateLimiter } from '../delivery/rate-limit.js';
import type { HubMetrics } from '../metrics.js';
import type { Logger } from '../logger.js';
import type { AccountStore } from '../store/ports.js';
import type { SourceResolver } from '../middleware/client-source.js';

/** What the auth middleware adds to every authenticated call. */
export interface AuthContext {
  account: Account;
  /**
   * The caller's source key (an IPv4 address or an IPv6 /64; behind a trusted proxy the
   * forwarded client's), which throttles and the scrypt queue key on (see client-source.ts).
   */
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
  /** The client source of a call, for every per-source limit (--trusted-proxy decides whose headers count). */
  sourceOf: SourceResolver;
  /** Set when metrics are served (--metrics-address). */
  metrics?: HubMetrics;
  /**
   * The clock items live by (ms since the epoch): validation, commits, backlog reads, the
   * live filter and purge all read it. Date.now outside tests, which inject their own.
   */
  now: () => number;
  /** Aborted when the hub starts shutting down: push streams stop taking pushes. */
  shutdownSignal: AbortSignal;
  /** Blocks and suspensions as Subscribe filters them (see context.ts). */
  accountFilters?: AccountFilters;
  logger?: Logger;
  /** Delivery receipts (issue 18): confirmations, status reads, live watch. */
  receipts: ReceiptServices;
}

/** What Subscribe and ListBlockedMerchants read of blocks and suspensions. */
export interface AccountFilters {
  listBlocks: AccountStore['listBlocks'];
  /** Suspended merchants, kept current by this node's feed (the suspension markers). */
  suspendedMerchants: ReadonlySet<string>;
}

/** The receipt parts of the hub (delivery/receipts.ts), built once by the composition root. */
export interface ReceiptServices {
  store: ReceiptStore;
  confirms: ConfirmQueue;
  watch: DeliveryWatch;
  confirmLimiter: CallRateLimiter;
  statusLimiter: CallRateLimiter;
}
