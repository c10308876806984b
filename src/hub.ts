import type { HubConfig } from './config.js';
import { type HubContext, type HubOverrides, createHubContext } from './context.js';
import { shuttingDown } from './core/errors.js';
import { routeGrpcLogs } from './logger.js';
import { type MetricsServer, serveMetrics } from './metrics.js';
import { type RunningServer, startServer } from './server.js';

export interface RunningHub extends RunningServer {
  context: HubContext;
  /** The address clients dial, with the real port (useful with port 0). */
  address: string;
  /** Where /metrics is served (real port), when --metrics-address is set. */
  metricsAddress?: string;
  /** Graceful stop: streams end with UNAVAILABLE, in-flight pushes commit, the database closes. */
  stop(): Promise<void>;
}

/** How long shutdown waits for calls to finish before cutting them off. */
const SHUTDOWN_GRACE_MS = 5_000;

/** Builds the context and starts serving; the one entry used by main and by tests. */
export async function startHub(config: HubConfig, overrides: HubOverrides = {}): Promise<RunningHub> {
  const context = await createHubContext(config, overrides);
  routeGrpcLogs(context.logger);
  let running: RunningServer | undefined;
  let metricsServer: MetricsServer | undefined;
  try {
    await context.commits.ready();
    running = await startServer(context);
    if (context.metrics && config.metricsAddress) metricsServer = await serveMetrics(context.metrics, config.metricsAddress);
  } catch (error) {
    running?.server.forceShutdown();
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
    stop() {
      stopping ??= (async () => {
        unwatchStorage();
        setHealth(false);
        context.stopTimers();
        // Streams end first (they would hold shutdown open), then unary calls drain: push
        // streams answer what they took and end; Subscribe streams end at once.
        context.beginShutdown();
        context.fanout.failAll(shuttingDown());
        const graceful = running.server.shutdown();
        const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS, 'timeout').unref());
        if ((await Promise.race([graceful, timeout])) === 'timeout') running.server.forceShutdown();
        await context.commits.drained();
        await context.backend.close();
        await metricsServer?.close();
      })();
      return stopping;
    },
  };
}
