import { type CallContext } from 'nice-grpc';
import { HubError, Reason } from '../core/errors.js';
import type { AuthContext } from '../api/call-context.js';
import type { Registry } from '../registry/registry.js';
import type { AccountRole } from '../core/records.js';

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
};

const unauthenticated = (problem: string) =>
  new HubError(Reason.Unauthenticated, `authorization: ${problem}`);

/**
 * The caller's IP address from grpc-js's peer string (`127.0.0.1:54321`, `::1:54321`,
 * `[::1]:54321`, optionally prefixed `ipv4:`/`ipv6:`), without the port: a client gets a new
 * port per connection, so throttles key on the address. An IPv4-mapped IPv6 address counts
 * as the IPv4 one.
 */
export function sourceAddress(peer: string): string {
  let address = peer.replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed) address = bracketed[1]!;
  else if (/:\d+$/.test(address) && (address.includes('.') || address.split(':').length > 2)) address = address.replace(/:\d+$/, '');
  return address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}

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
 * Authenticates a call (every method but Register) and checks the caller's role before the
 * handler runs (permission before existence). Returns the call context with `source` and
 * `account` added, for the call guard (call-guard.ts) to hand on.
 */
export async function authenticateCall(
  registry: Registry,
  path: string,
  context: CallContext,
  options: { insecureBenchSkipPasswordCheck?: boolean } = {},
): Promise<CallContext & AuthContext> {
  const method = path.slice(path.lastIndexOf('/') + 1);
  const required = REQUIRED_ROLE[method];
  const source = sourceAddress(context.peer);
  if (required === undefined) return { ...context, source, account: { id: '', role: 'receiver' } };
  const { id, password } = parseBasicAuth(context.metadata.getAll('authorization'));
  // Bench only (config.insecureBenchSkipPasswordCheck): the id is trusted with the role the method needs.
  const account = options.insecureBenchSkipPasswordCheck
    ? { id, role: required === 'any' ? ('merchant' as const) : required }
    : await registry.authenticate(id, password, source);
  if (required !== 'any' && account.role !== required) {
    throw new HubError(Reason.PermissionDenied,
      `authorization: ${method} needs a ${required} account; ${id} is a ${account.role}`,
    );
  }
  return { ...context, source, account };
}
