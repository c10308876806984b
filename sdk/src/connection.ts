import { ChannelCredentials } from '@grpc/grpc-js';
import {
  type CallOptions,
  type Channel,
  type Client,
  type ClientMiddleware,
  type ClientMiddlewareCall,
  Metadata,
  createChannel,
  createClient,
  createClientFactory,
} from 'nice-grpc';
import { deadlineMiddleware } from 'nice-grpc-client-middleware-deadline';
import { REASON_TRAILER, toPushHubError } from './errors.js';
import { PushHubServiceDefinition } from './gen/pushhub/v1/pushhub.js';
import { pushHubClientDefinition, receiverClientDefinition } from './wire-definition.js';

/** TLS settings for a hub that serves TLS. Omit them for a plaintext hub. */
export interface TlsOptions {
  /** PEM root certificate(s) to trust; defaults to the system roots. */
  ca?: Buffer;
}

/** An account's id and password, as returned by `register`. */
export interface Credentials {
  /** The account id, e.g. `M11-4829104729104829`. */
  id: string;
  /** The account password (shown once by the hub). */
  password: string;
}

/** The generated client with the SDK's call options (deadline). */
export type HubClient = Client<typeof PushHubServiceDefinition, { deadline?: Date | number }>;

/**
 * Reconnect quickly after a hub restart: grpc-js starts at 1 s and grows to 120 s, which
 * would leave a client idle long after the hub is back. The SDK's own retry and backoff
 * decide when a call is tried again.
 */
const CHANNEL_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 2000,
  // Spread calls over every address the target resolves to (several hub nodes on one
  // PostgreSQL); a node that fails drops out until it reconnects. One address: no effect.
  'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
  // grpc-js keeps per-message channelz counters and timestamps unless this is off.
  'grpc.enable_channelz': 0,
};

/**
 * Where the hub is: one `host:port`, several of them (hub nodes sharing one database), or a
 * target that grpc-js resolves itself (`dns:hubs.internal:50051`, which may resolve to several
 * nodes, `ipv4:10.0.0.1:50051,10.0.0.2:50051`, `unix:/run/pushhub.sock`). Calls are balanced
 * round robin over the resolved addresses.
 */
export type HubAddress = string | readonly string[];

const TARGET_SCHEME = /^(dns|ipv4|ipv6|unix|unix-abstract):/;
const IPV4_ADDRESS = /^\d{1,3}(\.\d{1,3}){3}:\d+$/;
const IPV6_ADDRESS = /^\[[0-9A-Fa-f:.]+\]:\d+$/;

/**
 * The grpc-js target for a {@link HubAddress}. Several addresses (an array, or one string
 * with commas) must be IP literals, since grpc-js resolves one name per channel; for host
 * names use one `dns:` name that resolves to every node.
 */
export function hubTarget(address: HubAddress): string {
  const list = typeof address === 'string' ? (TARGET_SCHEME.test(address) ? [address] : address.split(',')) : [...address];
  const addresses = list.map((a) => a.trim()).filter((a) => a !== '');
  if (addresses.length === 0) throw new Error('address: at least one host:port is required');
  if (addresses.length === 1) return addresses[0]!;
  if (addresses.every((a) => IPV4_ADDRESS.test(a))) return `ipv4:${addresses.join(',')}`;
  if (addresses.every((a) => IPV6_ADDRESS.test(a))) return `ipv6:${addresses.join(',')}`;
  throw new Error(
    `address: several addresses must all be IPv4 or all IPv6 literals (got ${addresses.join(', ')}); ` +
      'for host names use one dns: name that resolves to every node, e.g. dns:hubs.internal:50051',
  );
}

/**
 * Opens a channel (one HTTP/2 connection, re-established on demand) to the hub. `private`
 * gives the channel its own connection: grpc-js otherwise shares connections between
 * channels to the same address, and a client that found its connection silently dead must
 * be able to replace it by closing its channel.
 */
export function createHubChannel(address: HubAddress, tls?: TlsOptions, options: { private?: boolean } = {}): Channel {
  const credentials = tls ? ChannelCredentials.createSsl(tls.ca ?? null) : ChannelCredentials.createInsecure();
  return createChannel(hubTarget(address), credentials, options.private ? { ...CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 } : CHANNEL_OPTIONS);
}

/** The `authorization` value for these credentials: `Basic base64(id:password)`. */
export const basicAuthorization = (credentials: Credentials): string =>
  `Basic ${Buffer.from(`${credentials.id}:${credentials.password}`).toString('base64')}`;

/**
 * Attaches `authorization: Basic ...` to every call, read at call time so a rotated
 * password takes effect on the next call.
 */
export function credentialsMiddleware(credentials: () => Credentials | undefined): ClientMiddleware {
  return async function* attachCredentials<Req, Res>(call: ClientMiddlewareCall<Req, Res>, options: CallOptions) {
    const current = credentials();
    if (!current) return yield* call.next(call.request, options);
    const metadata = Metadata(options.metadata);
    metadata.set('authorization', basicAuthorization(current));
    return yield* call.next(call.request, { ...options, metadata });
  };
}

/**
 * Turns every failed call into a PushHubError carrying the hub's reason trailer; the one
 * place where client errors are translated.
 */
export const errorMiddleware: ClientMiddleware = async function* translateErrors<Req, Res>(
  call: ClientMiddlewareCall<Req, Res>,
  options: CallOptions,
) {
  let reason = '';
  try {
    return yield* call.next(call.request, {
      ...options,
      onTrailer(trailer) {
        reason = trailer.get(REASON_TRAILER) ?? '';
        options.onTrailer?.(trailer);
      },
    });
  } catch (error) {
    throw toPushHubError(error, reason);
  }
};

/**
 * A hub client on `channel` with error translation, deadlines and (optionally) credentials.
 *
 * Order matters: in nice-grpc the middleware attached LAST is the outermost (it runs first
 * and sees every error of the ones inside it). The deadline middleware raises its own
 * `DEADLINE_EXCEEDED` ClientError, so error translation must be attached after it to turn
 * that into a PushHubError too.
 */
export function createHubClient(channel: Channel, credentials: () => Credentials | undefined = () => undefined): HubClient {
  return createClientFactory()
    .use(deadlineMiddleware)
    .use(credentialsMiddleware(credentials))
    .use(errorMiddleware)
    .create(pushHubClientDefinition, channel);
}

/**
 * A hub client on `channel` with no middleware, for a long-lived stream whose caller attaches
 * the credentials and translates errors itself (ReceiverClient's Subscribe): each nice-grpc
 * client middleware is an async generator that every message of the stream passes through.
 */
export function createStreamingHubClient(channel: Channel): HubClient {
  // Subscribe responses arrive as subscribe-decoder.ts ReceivedEvent[] (typed as the generated ones).
  return createClient(receiverClientDefinition, channel);
}
