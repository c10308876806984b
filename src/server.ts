import { readFileSync } from 'node:fs';
import { ServerCredentials } from '@grpc/grpc-js';
import { type Server, createServer } from 'nice-grpc';
import { HealthDefinition, HealthServiceImpl, HealthState } from 'nice-grpc-server-health';
import { ServerReflection, ServerReflectionService } from 'nice-grpc-server-reflection';
import { createPushHubService } from './api/service.js';
import type { HubContext } from './context.js';
import { PushHubServiceDefinition } from '../sdk/src/gen/pushhub/v1/pushhub.js';
import { authMiddleware } from './middleware/auth.js';
import { grpcMetricsMiddleware } from './metrics.js';
import { errorStatusMiddleware } from './middleware/error-status.js';
import { decodeOrMark, malformedRequestMiddleware, metadataLimitMiddleware } from './middleware/request-guards.js';
import { createWireDefinition } from '../sdk/src/wire-definition.js';

const PROTOSET_PATH = new URL('./gen/pushhub.binpb', import.meta.url);

/**
 * The server side of the shared wire module: undecodable bytes become a marker the request
 * guard answers with INVALID_ARGUMENT, and Subscribe writes already-encoded frames as they
 * are: each change is encoded once at commit (see delivery/frames.ts) and shared by every
 * stream it goes to.
 */
const pushHubWireDefinition = createWireDefinition({
  wrapRequestDecoder: decodeOrMark,
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

/** grpc-js channel options for many long-lived, mostly idle streams. */
function channelOptions(maxMessageBytes: number) {
  return {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    // Detect dead peers at the HTTP/2 level too (the Subscribe heartbeat covers the app level).
    'grpc.keepalive_time_ms': 60_000,
    'grpc.keepalive_timeout_ms': 20_000,
    'grpc.keepalive_permit_without_calls': 1,
    // grpc-js keeps per-message channelz counters and timestamps unless this is off.
    'grpc.enable_channelz': 0,
    'grpc.max_concurrent_streams': 1000,
  };
}

export interface RunningServer {
  server: Server;
  port: number;
  health: HealthState;
}

/** Assembles middleware and services on a nice-grpc server and binds it. */
export async function startServer(hub: HubContext): Promise<RunningServer> {
  const { config } = hub;
  // use() returns a new server: keep that one, it is the one with the middleware.
  const base = createServer(channelOptions(config.maxMessageBytes));
  // Per-RPC metrics sit outside the error middleware, so they see the final status code.
  const server = (hub.metrics ? base.use(grpcMetricsMiddleware()).use(hub.metrics.middleware) : base).use(
    errorStatusMiddleware(hub.logger, hub.metrics),
  );
  server
    .with(metadataLimitMiddleware(config.maxMetadataBytes))
    .with(authMiddleware(hub.registry, { insecureBenchSkipPasswordCheck: config.insecureBenchSkipPasswordCheck }))
    .with(malformedRequestMiddleware())
    .add(pushHubWireDefinition, createPushHubService(hub) as never);

  const health = HealthState();
  server.add(HealthDefinition, HealthServiceImpl(health));

  const protoset = readFileSync(PROTOSET_PATH);
  const reflection = ServerReflection(protoset, [PushHubServiceDefinition.fullName, 'grpc.health.v1.Health']);
  server.add(ServerReflectionService, reflection);
  server.add(reflectionV1Alpha, reflection);

  const credentials =
    config.tlsCertPath && config.tlsKeyPath
      ? ServerCredentials.createSsl(null, [
          { cert_chain: readFileSync(config.tlsCertPath), private_key: readFileSync(config.tlsKeyPath) },
        ])
      : ServerCredentials.createInsecure();
  const port = await server.listen(config.address, credentials);
  health.setStatus('healthy');
  health.setStatus('healthy', PushHubServiceDefinition.fullName);
  return { server, port, health };
}
