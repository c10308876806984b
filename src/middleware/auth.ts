import type { Http2Session } from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import { type CallContext } from 'nice-grpc';
import { HubError, Reason } from '../core/errors.js';
import type { AuthContext } from '../api/call-context.js';
import type { Account, Registry } from '../registry/registry.js';
import type { AccountRole } from '../core/records.js';
import type { SourceResolver } from './client-source.js';

/** Role each method needs; methods not listed need no credentials (Register). */
const REQUIRED_ROLE: Record<string, AccountRole | 'any'> = {
  PushSpecific: 'merchant',
  PushPublic: 'merchant',
  Withdraw: 'merchant',
  PushStream: 'merchant',
  ListItems: 'merchant',
  Subscribe: 'receiver',
  RotatePassword: 'any',
  BlockMerchant: 'receiver',
  UnblockMerchant: 'receiver',
  ListBlockedMerchants: 'receiver',
  DeleteAccount: 'any',
  ConfirmDelivery: 'receiver',
  GetDeliveryStatus: 'merchant',
  WatchDeliveries: 'merchant',
  SetReceiptPolicy: 'receiver',
};

const unauthenticated = (problem: string) =>
  new HubError(Reason.Unauthenticated, `authorization: ${problem}`);

/**
 * Parses `authorization: Basic base64(id:password)`. The scheme name is case-insensitive
 * (RFC 7617, RFC 9110 §11.1), and the value must be sent once: with two headers, which one
 * counts would depend on the parser, so neither does.
 */
export function parseBasicAuth(headers: string[]): { id: string; password: string } {
  // Node's http2 joins repeated headers with ", " before grpc-js sees them; a comma never
  // occurs in one Basic value (base64 has none), so it marks a second header.
  const values = headers.flatMap((header) => header.split(','));
  if (values.length > 1) throw unauthenticated(`sent ${values.length} times; send it once`);
  const header = values[0];
  if (header === undefined || header === '') throw unauthenticated('missing; send "Basic base64(id:password)"');
  const match = /^Basic +([A-Za-z0-9+/=_-]{1,1024})$/i.exec(header.trim());
  if (!match) throw unauthenticated('malformed; expected "Basic base64(id:password)"');
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0 || colon === decoded.length - 1) throw unauthenticated('malformed; expected "Basic base64(id:password)"');
  return { id: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * The authorization header each open connection last proved, with its account: a later call
 * on the same HTTP/2 connection sending the same header string skips the parse, the HMAC and
 * the credential cache (measured: auth was 8 % of a unary push, docs/performance.md). Keyed
 * by the peer string (address and port name one open TCP connection); the interceptor drops
 * the entry when the connection closes, and a password rotation (the account's credential
 * epoch moves on) makes the entry miss. The header (so the password) stays in memory while the
 * connection is open, as nghttp2's HPACK table holds it anyway.
 */
export class ConnectionCredentials {
  private readonly byPeer = new Map<string, { header: string; account: Account; epoch: number }>();
  private readonly tracked = new WeakSet<Http2Session>();

  /** A grpc-js interceptor that forgets a connection's entry when the connection closes. */
  readonly interceptor: grpc.ServerInterceptor = (_method, call) => {
    const session = (call as unknown as { stream?: { session?: Http2Session } }).stream?.session;
    if (session && !this.tracked.has(session)) {
      this.tracked.add(session);
      const peer = call.getPeer();
      session.once('close', () => this.byPeer.delete(peer));
    }
    return call as grpc.ServerInterceptingCall;
  };

  lookup(peer: string, header: string, registry: Registry): Account | undefined {
    const known = this.byPeer.get(peer);
    if (known === undefined || known.header !== header || registry.credentialEpoch(known.account.id) !== known.epoch) return undefined;
    return known.account;
  }

  remember(peer: string, header: string, account: Account, epoch: number): void {
    this.byPeer.set(peer, { header, account, epoch });
  }
}

const ANONYMOUS: Account = { id: '', role: 'receiver' };

/**
 * Adds account and source to nice-grpc's own context object instead of a copy per call (a
 * spread was 2 % of a unary push). The source address is derived on first read: only the
 * throttles and the scrypt queue need it.
 */
function withAuth(context: CallContext, account: Account, sourceOf: SourceResolver): CallContext & AuthContext {
  const authed = context as CallContext & AuthContext;
  authed.account = account;
  let source: string | undefined;
  Object.defineProperty(authed, 'source', { get: () => (source ??= sourceOf(context).key), enumerable: true, configurable: true });
  return authed;
}

/**
 * Authenticates a call (every method but Register) and checks the caller's role before the
 * handler runs (permission before existence). Returns the call context with `source` and
 * `account` added, for the call guard (call-guard.ts) to hand on.
 */
export async function authenticateCall(
  registry: Registry,
  path: string,
  context: CallContext,
  options: { sourceOf: SourceResolver; insecureBenchSkipPasswordCheck?: boolean; connections?: ConnectionCredentials },
): Promise<CallContext & AuthContext> {
  const method = path.slice(path.lastIndexOf('/') + 1);
  const required = REQUIRED_ROLE[method];
  if (required === undefined) return withAuth(context, ANONYMOUS, options.sourceOf);
  const headers = context.metadata.getAll('authorization');
  const header = headers.length === 1 ? headers[0]! : undefined;
  let account = header === undefined ? undefined : options.connections?.lookup(context.peer, header, registry);
  if (account === undefined) {
    const { id, password } = parseBasicAuth(headers);
    // Read before the check: a rotation while it runs leaves the remembered entry stale.
    const epoch = registry.credentialEpoch(id);
    // Bench only (config.insecureBenchSkipPasswordCheck): the id is trusted with the role the method needs.
    account = options.insecureBenchSkipPasswordCheck
      ? { id, role: required === 'any' ? ('merchant' as const) : required }
      : await registry.authenticate(id, password, options.sourceOf(context).key);
    if (header !== undefined) options.connections?.remember(context.peer, header, account, epoch);
  }
  if (required !== 'any' && account.role !== required) {
    throw new HubError(Reason.PermissionDenied,
      `authorization: ${method} needs a ${required} account; ${account.id} is a ${account.role}`,
    );
  }
  return withAuth(context, account, options.sourceOf);
}
