import { readFileSync } from 'node:fs';
import type { ServerHttp2Session as Http2ServerSession } from 'node:http2';
import { ServerCredentials } from '@grpc/grpc-js';
import { type Server, createServer } from 'nice-grpc';
import { HealthDefinition, HealthServiceImpl, HealthState } from 'nice-grpc-server-health';
import { ServerReflection, ServerReflectionService } from 'nice-grpc-server-reflection';
import { createPushHubService } from './api/service.js';
import type { HubContext } from './context.js';
import { PushHubServiceDefinition } from '../sdk/src/gen/pushhub/v1/pushhub.js';
import { createWireDefinition } from '../sdk/src/wire-definition.js';
import { recordingWireTimestamps } from './api/wire-timestamps.js';
import { grpcMetricsMiddleware } from './metrics.js';
import { anonymousStreamLimitMiddleware } from './middleware/anonymous-stream-limit.js';
import { ConnectionCredentials } from './middleware/auth.js';
import { callGuardMiddleware } from './middleware/call-guard.js';
import { trustedProxyCheck } from './middleware/client-source.js';
import { describeListenFailure } from './listen-check.js';
import { listenWithConnectionLimits } from './middleware/connection-limits.js';
import { errorStatusMiddleware } from './middleware/error-status.js';
import { decodeOrMark } from './middleware/request-guards.js';
import { requestTimeoutInterceptor } from './middleware/request-timeout.js';
import { StallSweep, stallGuardInterceptor } from './middleware/stall-guard.js';
import { SUBSCRIBE_PATH, subscribeInterceptor } from './api/subscribe-call.js';
import type { CallGuardOptions } from './middleware/call-guard.js';

const PROTOSET_PATH = new URL('./gen/pushhub.binpb', import.meta.url);

/**
 * The server side of the shared wire module: undecodable bytes become a marker the request
 * guard answers with INVALID_ARGUMENT, and Subscribe writes already-encoded frames as they
 * are: each change is encoded once at commit (see delivery/frames.ts) and shared by every
 * stream it goes to.
 */
const pushHubWireDefinition = createWireDefinition({
  wrapRequestDecoder: (decode, method) => decodeOrMark(recordingWireTimestamps(decode, method)),
  preEncodedSubscribeFrames: true,
  fromPartial: false,
});

/** grpcurl tries v1alpha first; the messages are identical, only the path differs. */
const reflectionV1Alpha = Object.fromEntries(
  Object.entries(ServerReflectionService).map(([name, method]) => [
    name,
    { ...method, path: method.path.replace('grpc.reflection.v1.', 'grpc.reflection.v1alpha.') },
  ]),
) as typeof ServerReflectionService;

/** grpc-js server options for many long-lived, mostly idle streams, and bounded abuse. */
function serverOptions(hub: HubContext, connections: ConnectionCredentials, guard: CallGuardOptions) {
  const { config } = hub;
  const stallSweep = new StallSweep(config.subscriberStallTimeoutMs);
  return {
    'grpc.max_receive_message_length': config.maxMessageBytes,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    // Detect dead peers at the HTTP/2 level too (the Subscribe heartbeat covers the app level).
    'grpc.keepalive_time_ms': 60_000,
    'grpc.keepalive_timeout_ms': 20_000,
    'grpc.keepalive_permit_without_calls': 1,
    // grpc-js keeps per-message channelz counters and timestamps unless this is off.
    'grpc.enable_channelz': 0,
    'grpc.max_concurrent_streams': config.maxStreamsPerConnection,
    // A connection with no call open is closed (GOAWAY): silent sessions do not pile up.
    'grpc.max_connection_idle_ms': config.connectionIdleTimeoutMs,
    // Streams whose client accepts no data are reset (see stall-guard.ts).
    // Calls whose request never completes end (see request-timeout.ts); first, so both see grpc-js's base call.
    // Connections forget their verified authorization header when they close (auth.ts); it returns the call as is.
    // Subscribe is served here, below nice-grpc, last (see api/subscribe-call.ts): it gets grpc-js's base call.
    interceptors: [
      connections.interceptor,
      requestTimeoutInterceptor(config.requestTimeoutMs, hub.logger, hub.metrics && (() => hub.metrics!.requestTimedOut())),
      stallGuardInterceptor(stallSweep, hub.logger, new Set([SUBSCRIBE_PATH])),
      subscribeInterceptor(hub, { ...guard, stallSweep, rpcMetrics: hub.metrics !== undefined }),
    ],
  };
}

export interface RunningServer {
  server: Server;
  port: number;
  health: HealthState;
  /** Ends every call and connection now (grpc-js's forceShutdown, plus the sessions it misses). */
  forceShutdown(): void;
}

/** Assembles middleware and services on a nice-grpc server and binds it. */
export async function startServer(hub: HubContext): Promise<RunningServer> {
  const { config } = hub;
  const connections = new ConnectionCredentials();
  const guard: CallGuardOptions = {
    maxMetadataBytes: config.maxMetadataBytes,
    sourceOf: hub.sourceOf,
    insecureBenchSkipPasswordCheck: config.insecureBenchSkipPasswordCheck,
    connections,
    logger: hub.logger,
    metrics: hub.metrics,
  };
  const base = createServer(serverOptions(hub, connections, guard) as never);
  // use() returns a new server: keep that one, it is the one with the middleware. Per-RPC
  // metrics sit outside the error mapping, so they see the final status code.
  const server = hub.metrics ? base.use(grpcMetricsMiddleware()).use(hub.metrics.middleware) : base;
  // PushHubService: one call guard (limits, auth, malformed requests, revocation, error mapping).
  server
    .with(callGuardMiddleware(hub.registry, guard))
    .add(pushHubWireDefinition, createPushHubService(hub) as never);

  // Health and reflection need no credentials: their calls are capped in total and per source.
  const anonymous = server.with(errorStatusMiddleware(hub.logger, hub.metrics, hub.sourceOf)).with(
    anonymousStreamLimitMiddleware({
      maxStreams: config.maxAnonymousStreams,
      maxStreamsPerSource: config.maxAnonymousStreamsPerSource,
      sourceOf: hub.sourceOf,
    }),
  );
  const health = HealthState();
  anonymous.add(HealthDefinition, HealthServiceImpl(health));

  const protoset = readFileSync(PROTOSET_PATH);
  const reflection = ServerReflection(protoset, [PushHubServiceDefinition.fullName, 'grpc.health.v1.Health']);
  anonymous.add(ServerReflectionService, reflection);
  anonymous.add(reflectionV1Alpha, reflection);

  const credentials =
    config.tlsCertPath && config.tlsKeyPath
      ? ServerCredentials.createSsl(null, [
          { cert_chain: readFileSync(config.tlsCertPath), private_key: readFileSync(config.tlsKeyPath) },
        ])
      : ServerCredentials.createInsecure();
  const openSessions = new Set<Http2ServerSession>();
  const port = await listenWithConnectionLimits(
    () =>
      server.listen(config.address, credentials).catch((error: unknown) => {
        throw new Error(describeListenFailure('--address', config.address, error));
      }),
    {
      maxConnections: config.maxConnections,
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      maxConnectionsPerSource: config.maxConnectionsPerSource,
      isTrustedProxy: trustedProxyCheck(config.trustedProxies),
      onRefused: hub.metrics && (() => hub.metrics!.connectionRefused('per_source')),
      openSessions,
    },
    hub.logger,
  );
  health.setStatus('healthy');
  health.setStatus('healthy', PushHubServiceDefinition.fullName);
  const forceShutdown = () => {
    server.forceShutdown();
    for (const session of openSessions) session.destroy();
    openSessions.clear();
  };
  return { server, port, health, forceShutdown };
}
