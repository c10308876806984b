import { statSync } from 'node:fs';
import { type Server as HttpServer, createServer as createHttpServer } from 'node:http';
import type { ServerMiddleware } from 'nice-grpc';
import { prometheusServerMiddleware, registry as grpcRegistry } from 'nice-grpc-prometheus';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Reason } from './core/errors.js';
import { ChangeKind, type ChangeRecord } from './core/records.js';

/** What the metrics read at scrape time (gauges), instead of being told on the hot path. */
export interface MetricSources {
  headSequence(): number;
  /** Open Subscribe streams attached to the fan-out. */
  subscribeStreams(): number;
  /** Changes handed to open Subscribe streams since start (a plain counter the fan-out keeps). */
  deliveries(): number;
  /** The SQLite file; its size (plus -wal) is reported. Unset or ':memory:' reports nothing. */
  dbPath?: string;
  /** The merchants most blocked (abuse signal), read from the store at scrape time. */
  mostBlocked?: (limit: number) => Promise<{ merchantId: string; blocks: number }[]>;
  /** Accounts suspended now (store read at scrape time). */
  suspendedAccounts?: () => Promise<number>;
}

/** Merchants in pushhub_merchant_blocks: a bounded label set, whatever the number of merchants. */
export const MOST_BLOCKED_TOP_N = 10;

/**
 * The hub's Prometheus metrics. Counters move once per batch or once per call, never per
 * delivered event; gauges are read by collect() callbacks when scraped. Names follow the
 * Prometheus conventions: `pushhub_` prefix, base units (seconds, bytes), `_total` counters.
 */
export interface HubMetrics {
  readonly registry: Registry;
  /** One committed batch: its size, when it started committing and when its oldest write arrived (performance.now() ms). */
  batchCommitted(size: number, startedAtMs: number, oldestAtMs: number, published: readonly ChangeRecord[]): void;
  /** A call (or a push on a PushStream) refused with this reason. */
  rejected(method: string, reason: string): void;
  /** A receiver blocked or unblocked a merchant (on this node). */
  blockChanged(action: 'block' | 'unblock'): void;
  /** An account action by an operator or the account itself (suspend, resume, delete, rotate). */
  accountAction(action: string): void;
  /**
   * A refusal by a per-source limit, and where the client address it counted came from
   * (`peer`, or a trusted proxy's `x-real-ip` / `x-forwarded-for`): bounded labels, never the address.
   */
  sourceLimited(reason: string, via: string): void;
  /** A TCP connection refused at accept because its source already had --max-connections-per-source. */
  connectionRefused(limit: 'per_source'): void;
  /** A call ended because its request message had not arrived within --request-timeout-ms. */
  requestTimedOut(): void;
  /** Counts open PushStream calls (Subscribe streams are counted by the fan-out); once per call. */
  readonly middleware: ServerMiddleware;
  /** One stored batch of delivery confirmations: how many, and per receipt event the lag (ms). */
  receiptsConfirmed(confirmations: number, lagsMs: readonly number[]): void;
}

/** A rejection reason's share of the failed-login and throttle counters. */
const THROTTLE_KIND: Partial<Record<string, string>> = {
  [Reason.LoginThrottled]: 'login',
  [Reason.PushRateExceeded]: 'push_rate',
};

export function createHubMetrics(sources: MetricSources): HubMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const committed = new Counter({
    name: 'pushhub_changes_committed_total',
    help: 'Changes committed, by kind (push = a stored item, withdrawal = a tombstone)',
    labelNames: ['kind'],
    registers,
  });
  const committedPush = committed.labels('push');
  const committedWithdrawal = committed.labels('withdrawal');
  const batchSize = new Histogram({
    name: 'pushhub_commit_batch_size',
    help: 'Writes per committed transaction (group commit batch)',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 4096],
    registers,
  });
  const commitDuration = new Histogram({
    name: 'pushhub_commit_duration_seconds',
    help: 'Time to commit one batch durably (transaction plus fsync)',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
    registers,
  });
  const ackLatency = new Histogram({
    name: 'pushhub_ack_latency_seconds',
    help: 'From a write being queued to its acknowledgement, for the oldest write of each batch (the batch worst case; one observation per batch)',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
    registers,
  });
  const rejections = new Counter({
    name: 'pushhub_rejections_total',
    help: 'Calls, and pushes on a PushStream, refused; by method and stable reason',
    labelNames: ['method', 'reason'],
    registers,
  });
  const failedLogins = new Counter({ name: 'pushhub_failed_logins_total', help: 'Calls refused as UNAUTHENTICATED (unknown id, wrong or missing password)', registers });
  const throttles = new Counter({
    name: 'pushhub_throttled_total',
    help: 'Calls or pushes refused by a throttle: kind login (too many failed logins) or push_rate',
    labelNames: ['kind'],
    registers,
  });
  const sourceLimited = new Counter({
    name: 'pushhub_source_limited_total',
    help: 'Calls refused by a per-source limit, by reason and by where the client address came from (via: peer, x-real-ip, x-forwarded-for)',
    labelNames: ['reason', 'via'],
    registers,
  });
  const connectionsRefused = new Counter({
    name: 'pushhub_connections_refused_total',
    help: 'TCP connections closed at accept by a limit (per_source: --max-connections-per-source)',
    labelNames: ['limit'],
    registers,
  });
  const requestTimeouts = new Counter({
    name: 'pushhub_request_timeouts_total',
    help: 'Calls ended because their request message had not arrived within --request-timeout-ms',
    registers,
  });
  const tooSlow = new Counter({ name: 'pushhub_streams_too_slow_total', help: 'Subscribe streams ended because the receiver read too slowly', registers });
  const confirmations = new Counter({
    name: 'pushhub_receipt_confirmations_total',
    help: 'Delivery confirmations stored (ConfirmDelivery calls and resumes; a receiver\'s confirmations in one batch count once)',
    registers,
  });
  const confirmationLag = new Histogram({
    name: 'pushhub_receipt_confirmation_lag_seconds',
    help: 'From a push to its receiver\'s confirmation, for the oldest item each confirmation covered (one observation per receiver, merchant and confirmation)',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86400],
    registers,
  });
  let deliveredBefore = 0;
  new Counter({
    name: 'pushhub_deliveries_total',
    help: 'Committed changes handed to open Subscribe streams',
    registers,
    // The fan-out adds to a plain number per batch; the counter catches up when scraped.
    collect() {
      const now = sources.deliveries();
      this.inc(now - deliveredBefore);
      deliveredBefore = now;
    },
  });
  let pushStreams = 0;
  new Gauge({
    name: 'pushhub_open_streams',
    help: 'Open streams, by method (Subscribe, PushStream)',
    labelNames: ['method'],
    registers,
    collect() {
      this.set({ method: 'Subscribe' }, sources.subscribeStreams());
      this.set({ method: 'PushStream' }, pushStreams);
    },
  });
  new Gauge({
    name: 'pushhub_head_sequence',
    help: 'The newest committed sequence',
    registers,
    collect() {
      this.set(sources.headSequence());
    },
  });
  const blockChanges = new Counter({
    name: 'pushhub_block_changes_total',
    help: 'Blocks and unblocks of merchants by receivers on this node, by action (block, unblock)',
    labelNames: ['action'],
    registers,
  });
  const accountActions = new Counter({
    name: 'pushhub_account_actions_total',
    help: 'Account actions on this node: suspend, resume, delete (an operator or the account itself), rotate (an operator)',
    labelNames: ['action'],
    registers,
  });
  const { mostBlocked, suspendedAccounts } = sources;
  if (mostBlocked) {
    new Gauge({
      name: 'pushhub_merchant_blocks',
      help: `Receivers blocking a merchant, for the ${MOST_BLOCKED_TOP_N} most blocked merchants (top-N: the label set stays bounded)`,
      labelNames: ['merchant'],
      registers,
      async collect() {
        this.reset();
        for (const { merchantId, blocks } of await mostBlocked(MOST_BLOCKED_TOP_N)) this.set({ merchant: merchantId }, blocks);
      },
    });
  }
  if (suspendedAccounts) {
    new Gauge({
      name: 'pushhub_suspended_accounts',
      help: 'Accounts suspended by an operator now',
      registers,
      async collect() {
        this.set(await suspendedAccounts());
      },
    });
  }
  const { dbPath } = sources;
  if (dbPath && dbPath !== ':memory:') {
    new Gauge({
      name: 'pushhub_database_size_bytes',
      help: 'Size of the SQLite database file plus its write-ahead log',
      registers,
      collect() {
        const size = (path: string) => {
          try {
            return statSync(path).size;
          } catch {
            return 0; // no -wal between checkpoints
          }
        };
        this.set(size(dbPath) + size(`${dbPath}-wal`));
      },
    });
  }

  return {
    registry,
    batchCommitted(size, startedAtMs, oldestAtMs, published) {
      const now = performance.now();
      batchSize.observe(size);
      commitDuration.observe((now - startedAtMs) / 1000);
      ackLatency.observe((now - oldestAtMs) / 1000);
      let withdrawals = 0;
      for (const change of published) if (change.kind === ChangeKind.Withdrawal) withdrawals++;
      if (published.length > withdrawals) committedPush.inc(published.length - withdrawals);
      if (withdrawals > 0) committedWithdrawal.inc(withdrawals);
    },
    blockChanged(action) {
      blockChanges.inc({ action });
    },
    accountAction(action) {
      accountActions.inc({ action });
    },
    receiptsConfirmed(count, lagsMs) {
      confirmations.inc(count);
      for (const lag of lagsMs) confirmationLag.observe(Math.max(0, lag) / 1000);
    },
    rejected(method, reason) {
      rejections.inc({ method, reason });
      if (reason === Reason.Unauthenticated) failedLogins.inc();
      else if (reason === Reason.SubscriberTooSlow) tooSlow.inc();
      const throttle = THROTTLE_KIND[reason];
      if (throttle) throttles.inc({ kind: throttle });
    },
    sourceLimited: (reason, via) => sourceLimited.inc({ reason, via }),
    connectionRefused: (limit) => connectionsRefused.inc({ limit }),
    requestTimedOut: () => requestTimeouts.inc(),
    async *middleware(call, context) {
      if (!call.method.path.endsWith('/PushStream')) return yield* call.next(call.request, context);
      pushStreams++;
      try {
        return yield* call.next(call.request, context);
      } finally {
        pushStreams--;
      }
    },
  };
}

/**
 * Per-RPC counts and latencies (grpc_server_started_total, grpc_server_handled_total,
 * grpc_server_handling_seconds, grpc_server_msg_*_total) from nice-grpc-prometheus. It wraps
 * every streamed message in one more generator step, so it is attached only when metrics
 * are served, and its registry is merged into the hub's at scrape time.
 */
export function grpcMetricsMiddleware(): ServerMiddleware {
  return prometheusServerMiddleware();
}

export interface MetricsServer {
  /** The bound address, with the real port. */
  address: string;
  close(): Promise<void>;
}

/** Serves GET /metrics (Prometheus text format) on host:port; everything else is 404. */
export async function serveMetrics(metrics: HubMetrics, address: string): Promise<MetricsServer> {
  const merged = Registry.merge([metrics.registry, grpcRegistry]);
  const server: HttpServer = createHttpServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; metrics are at /metrics\n');
      return;
    }
    merged.metrics().then(
      (body) => res.writeHead(200, { 'content-type': merged.contentType }).end(body),
      (error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(error)}\n`),
    );
  });
  const split = address.lastIndexOf(':');
  const host = address.slice(0, split).replace(/^\[(.*)\]$/, '$1');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(address.slice(split + 1)), host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  return {
    address: `${address.slice(0, split)}:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
