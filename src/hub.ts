import type { HubConfig } from './config.js';
import { type HubContext, type HubOverrides, createHubContext } from './context.js';
import { shuttingDown } from './core/errors.js';
import { checkCanListen } from './listen-check.js';
import { routeGrpcLogs } from './logger.js';
import { type MetricsServer, serveMetrics } from './metrics.js';
import { type RunningServer, startServer } from './server.js';
import { createAdminActions } from './admin/actions.js';
import { adminSocketOf, serveAdminSocket } from './admin/socket.js';

export interface RunningHub extends RunningServer {
  context: HubContext;
  /** The address clients dial, with the real port (useful with port 0). */
  address: string;
  /** Where /metrics is served (real port), when --metrics-address is set. */
  metricsAddress?: string;
  /** Graceful stop: streams end with UNAVAILABLE, in-flight pushes commit, the database closes. */
  stop(): Promise<void>;
  /** Read-only figures about this node (the ones /metrics exports) and two test controls. */
  probe: HubProbe;
}

/**
 * What tests (and an embedding program) may observe about a running node without reaching
 * into its parts: the same figures /metrics exports, plus a purge on demand and, when the hub
 * was started with test hooks, a pragma on the commit worker's connection.
 */
export interface HubProbe {
  /** The newest sequence this node has published (its feed's head). */
  headSequence(): number;
  /** Open Subscribe streams on this node, and those of one receiver. */
  openSubscribeStreams(): number;
  streamsOf(receiverId: string): number;
  /** Writes committed and the transactions they shared (group commit). */
  readonly commitStats: { transactions: number; writes: number };
  /** scrypt runs (decoys among them) and the cost of the latest. */
  readonly authStats: { scryptVerifications: number; decoyVerifications: number; lastScryptCost: number };
  readonly scryptQueue: HubContext['registry']['scryptQueue'];
  /** Purges now (expired changes, request ids created before requestCutoffMs); rows removed. */
  purge(nowMs: number, requestCutoffMs: number): Promise<number>;
  /** Tests only (testHooks): runs a pragma on the commit worker's connection. */
  testPragma(statement: string): Promise<number>;
}

const probeOf = (context: HubContext): HubProbe => ({
  headSequence: () => context.feed.head,
  openSubscribeStreams: () => context.fanout.size,
  streamsOf: (receiverId) => context.fanout.streamsOf(receiverId),
  commitStats: context.commits.stats,
  authStats: context.registry.stats,
  scryptQueue: context.registry.scryptQueue,
  purge: (nowMs, requestCutoffMs) => context.commits.purge(nowMs, requestCutoffMs),
  testPragma: (statement) => context.commits.testPragma(statement),
});

/** How long shutdown waits for calls to finish before cutting them off. */
const SHUTDOWN_GRACE_MS = 5_000;

/** Builds the context and starts serving; the one entry used by main and by tests. */
export async function startHub(config: HubConfig, overrides: HubOverrides = {}): Promise<RunningHub> {
  // Both listen addresses first: a port in use must not leave a created or migrated database.
  await checkCanListen('--address', config.address);
  if (config.metricsAddress) await checkCanListen('--metrics-address', config.metricsAddress);
  const context = await createHubContext(config, overrides);
  routeGrpcLogs(context.logger);
  let running: RunningServer | undefined;
  let metricsServer: MetricsServer | undefined;
  let adminSocket: Awaited<ReturnType<typeof serveAdminSocket>> | undefined;
  try {
    await context.commits.ready();
    running = await startServer(context);
    if (context.metrics && config.metricsAddress) metricsServer = await serveMetrics(context.metrics, config.metricsAddress);
    adminSocket = await startAdminSocket(context);
  } catch (error) {
    running?.forceShutdown();
    context.stopTimers();
    await context.backend.close();
    throw error;
  }
  // Health follows storage: NOT_SERVING while writes fail (disk full, read-only), SERVING
  // again once one succeeds, so load balancers stop sending pushes that cannot be stored.
  const setHealth = (serving: boolean) => {
    running.health.setStatus(serving ? 'healthy' : 'unhealthy');
    running.health.setStatus(serving ? 'healthy' : 'unhealthy', 'pushhub.v1.PushHubService');
  };
  const unwatchStorage = context.commits.onWritableChange(setHealth);
  const host = config.address.slice(0, config.address.lastIndexOf(':'));
  let stopping: Promise<void> | undefined;
  return {
    ...running,
    context,
    address: `${host}:${running.port}`,
    metricsAddress: metricsServer?.address,
    probe: probeOf(context),
    stop() {
      stopping ??= (async () => {
        unwatchStorage();
        setHealth(false);
        context.stopTimers();
        // Streams end first (they would hold shutdown open), then unary calls drain: push
        // streams answer what they took and end; Subscribe streams end at once.
        context.beginShutdown();
        context.fanout.close(shuttingDown());
        context.receipts.watch.close(shuttingDown());
        const graceful = running.server.shutdown();
        const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS, 'timeout').unref());
        if ((await Promise.race([graceful, timeout])) === 'timeout') running.forceShutdown();
        await context.commits.drained();
        await context.backgroundDrained();
        await context.backend.close();
        await metricsServer?.close();
        adminSocket?.close();
      })();
      return stopping;
    },
  };
}

/**
 * On a SQLite file the hub owns, `pushhub admin` goes through the hub (src/admin/socket.ts):
 * its actions run on the hub's commit queue and feed, so they hold at once for its streams.
 * PostgreSQL needs none: the command writes the database and every node hears it.
 */
async function startAdminSocket(context: HubContext) {
  const { config } = context;
  if (config.databaseUrl !== undefined || config.dbPath === ':memory:') return undefined;
  const path = adminSocketOf(config.dbPath);
  try {
    return await serveAdminSocket(
      path,
      (actor) =>
        createAdminActions({
          admin: context.backend.admin,
          submit: (op) => context.commits.submit(op),
          accountChanged: (kind, id) => context.registry.accountChanged(kind, id),
          scryptLogN: config.scryptLogN,
          now: context.now,
          actor,
          onAction: (entry) => context.logger.info('admin action', { actor: entry.actor, action: entry.action, account: entry.accountId, outcome: entry.outcome }),
          onMetric: (action) => context.metrics?.accountAction(action),
        }),
      (error) => context.logger.warn('admin socket error', { error: String((error as Error)?.message ?? error) }),
    );
  } catch (error) {
    // A path past the Unix socket limit (~107 bytes) or an unwritable folder: the hub serves
    // on; pushhub admin then says it cannot reach it.
    context.logger.warn('admin socket not served; pushhub admin cannot reach this hub', { path, error: String((error as Error)?.message ?? error) });
    return undefined;
  }
}
