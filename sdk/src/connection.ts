import { isIP } from 'node:net';
import { checkServerIdentity } from 'node:tls';
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
import { type Endpoint, explainConnectionError } from './connection-errors.js';
import { PushHubError, REASON_TRAILER, RETRY_AFTER_TRAILER, Status, toPushHubError } from './errors.js';
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
/** host:port with a port; IPv6 in brackets. */
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+):\d{1,5}$/;

const invalidAddress = (message: string) => new PushHubError(Status.INVALID_ARGUMENT, 'INVALID_ADDRESS', `address: ${message}`);

/**
 * An address without a port is refused, not sent to grpc-js's default (80 in plaintext, 443
 * with TLS, neither of them the hub's 50051): the mistake shows at once, with the fix.
 */
function checkHostPort(address: string): void {
  const bare = address.replace(/^dns:(\/\/[^/]*\/)?/, '');
  if (/^(ipv4|ipv6|unix|unix-abstract):/.test(address) || HOST_PORT.test(bare)) return;
  if (isIP(bare) === 6) throw invalidAddress(`"${address}" is an IPv6 address without brackets and port: write [${bare}]:50051`);
  throw invalidAddress(`"${address}" has no port: write HOST:PORT, e.g. ${bare}:50051 (the hub's default port)`);
}

/**
 * The grpc-js target for a {@link HubAddress}. Several addresses (an array, or one string
 * with commas) must be IP literals, since grpc-js resolves one name per channel; for host
 * names use one `dns:` name that resolves to every node.
 */
export function hubTarget(address: HubAddress): string {
  const list = typeof address === 'string' ? (TARGET_SCHEME.test(address) ? [address] : address.split(',')) : [...address];
  const addresses = list.map((a) => a.trim()).filter((a) => a !== '');
  if (addresses.length === 0) throw invalidAddress('at least one host:port is required');
  for (const a of addresses) checkHostPort(a);
  if (addresses.length === 1) return addresses[0]!;
  if (addresses.every((a) => IPV4_ADDRESS.test(a))) return `ipv4:${addresses.join(',')}`;
  if (addresses.every((a) => IPV6_ADDRESS.test(a))) return `ipv6:${addresses.join(',')}`;
  throw invalidAddress(
    `several addresses must all be IPv4 or all IPv6 literals (got ${addresses.join(', ')}); ` +
      'for host names use one dns: name that resolves to every node, e.g. dns:hubs.internal:50051',
  );
}

/** What each channel dialled, for explaining its connection failures (see connection-errors.ts). */
const endpoints = new WeakMap<Channel, Endpoint>();

/** Whether a grpc-js target's (first) host is an IP literal. */
function targetHostIsIp(target: string): boolean {
  const first = target.replace(/^(ipv4|ipv6):/, '').split(',')[0]!;
  return isIP(first.slice(0, first.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1')) !== 0;
}

/**
 * A placeholder TLS server name for a hub dialled by IP address. grpc-js sends the target's
 * host as SNI, and Node prints DEP0123 ("Setting the TLS ServerName to an IP address is not
 * permitted by RFC 6066") for an IP. With this override grpc-js sends the placeholder instead
 * (a name no proxy routes on), and the certificate is still checked against the real IP below.
 */
const IP_SERVERNAME_PLACEHOLDER = 'ip-address.pushhub.invalid';

/**
 * Opens a channel (one HTTP/2 connection, re-established on demand) to the hub. `private`
 * gives the channel its own connection: grpc-js otherwise shares connections between
 * channels to the same address, and a client that found its connection silently dead must
 * be able to replace it by closing its channel.
 */
export function createHubChannel(address: HubAddress, tls?: TlsOptions, options: { private?: boolean } = {}): Channel {
  const target = hubTarget(address);
  const byIp = tls !== undefined && targetHostIsIp(target);
  const credentials = !tls
    ? ChannelCredentials.createInsecure()
    : byIp
      ? ChannelCredentials.createSsl(tls.ca ?? null, null, null, {
          // Called with the placeholder name: check the certificate against the IP actually dialled.
          checkServerIdentity: (_placeholder, cert) => checkServerIdentity(firstIp(target), cert),
        })
      : ChannelCredentials.createSsl(tls.ca ?? null);
  const channelOptions: Record<string, unknown> = { ...CHANNEL_OPTIONS };
  if (options.private) channelOptions['grpc.use_local_subchannel_pool'] = 1;
  if (byIp) channelOptions['grpc.ssl_target_name_override'] = IP_SERVERNAME_PLACEHOLDER;
  const channel = createChannel(target, credentials, channelOptions);
  endpoints.set(channel, { target, tls: tls ? { ca: tls.ca !== undefined } : undefined });
  return channel;
}

/** The IP of a target whose first host is an IP literal, without brackets. */
function firstIp(target: string): string {
  const first = target.replace(/^(ipv4|ipv6):/, '').split(',')[0]!;
  return first.slice(0, first.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
}

/**
 * Turns a failed call on `channel` into a PushHubError, explaining connection failures (TLS
 * mismatch, nothing listening) in words: what translateErrors and the receiver's stream use.
 */
export function toChannelError(channel: Channel, error: unknown, reason = '', retryAfterMs = 0): Promise<unknown> {
  return explainConnectionError(toPushHubError(error, reason, retryAfterMs), endpoints.get(channel));
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
 * Turns every failed call on `channel` into a PushHubError carrying the hub's reason trailer,
 * or, when the hub was never reached, the SDK's explanation (see connection-errors.ts); the
 * one place where client errors are translated.
 */
export function errorMiddleware(channel: Channel): ClientMiddleware {
  return async function* translateErrors<Req, Res>(call: ClientMiddlewareCall<Req, Res>, options: CallOptions) {
    let reason = '';
    let retryAfterMs = 0;
    try {
      return yield* call.next(call.request, {
        ...options,
        onTrailer(trailer) {
          reason = trailer.get(REASON_TRAILER) ?? '';
          retryAfterMs = Number(trailer.get(RETRY_AFTER_TRAILER) ?? 0) || 0;
          options.onTrailer?.(trailer);
        },
      });
    } catch (error) {
      throw await toChannelError(channel, error, reason, retryAfterMs);
    }
  };
}

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
    .use(errorMiddleware(channel))
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
