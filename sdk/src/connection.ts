import { ChannelCredentials } from '@grpc/grpc-js';
import {
  type CallOptions,
  type Channel,
  type Client,
  type ClientMiddleware,
  type ClientMiddlewareCall,
  Metadata,
  createChannel,
  createClientFactory,
} from 'nice-grpc';
import { deadlineMiddleware } from 'nice-grpc-client-middleware-deadline';
import { REASON_TRAILER, toPushHubError } from './errors.js';
import { PushHubServiceDefinition } from './gen/pushhub/v1/pushhub.js';
import { pushHubClientDefinition } from './wire-definition.js';

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
};

/**
 * Opens a channel (one HTTP/2 connection, re-established on demand) to the hub. `private`
 * gives the channel its own connection: grpc-js otherwise shares connections between
 * channels to the same address, and a client that found its connection silently dead must
 * be able to replace it by closing its channel.
 */
export function createHubChannel(address: string, tls?: TlsOptions, options: { private?: boolean } = {}): Channel {
  const credentials = tls ? ChannelCredentials.createSsl(tls.ca ?? null) : ChannelCredentials.createInsecure();
  return createChannel(address, credentials, options.private ? { ...CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 } : CHANNEL_OPTIONS);
}

/**
 * Attaches `authorization: Basic ...` to every call, read at call time so a rotated
 * password takes effect on the next call.
 */
export function credentialsMiddleware(credentials: () => Credentials | undefined): ClientMiddleware {
  return async function* attachCredentials<Req, Res>(call: ClientMiddlewareCall<Req, Res>, options: CallOptions) {
    const current = credentials();
    if (!current) return yield* call.next(call.request, options);
    const metadata = Metadata(options.metadata);
    metadata.set('authorization', `Basic ${Buffer.from(`${current.id}:${current.password}`).toString('base64')}`);
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
