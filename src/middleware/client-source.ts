import { BlockList, isIP, isIPv4 } from 'node:net';

/** Where a call's client address came from: the TCP peer, or a trusted proxy's header. */
export type SourceVia = 'peer' | 'x-real-ip' | 'x-forwarded-for';

/** What every per-source limit keys on, and how it was found (for logs and metrics). */
export interface ClientSource {
  /**
   * The limit key: an IPv4 address (`203.0.113.7`), or an IPv6 /64 (`2001:db8:1:2::/64`),
   * since one /64 is what one subscriber gets and holds 2^64 addresses.
   */
  key: string;
  /** The client address itself (before grouping), for logs. */
  address: string;
  via: SourceVia;
}

/** The part of a call the resolver reads: grpc-js's peer string and the request headers. */
export interface SourceInput {
  peer: string;
  metadata: { get(key: string): unknown };
}

/**
 * Resolves the client source of a call. One function feeds every per-source limit (login
 * throttle, registration throttle, scrypt queue shares, anonymous calls), so they all agree
 * on who a client is. Cheap: without trusted proxies it only parses the peer string, and it
 * reads no header unless the peer is a trusted proxy; callers compute it when a limit needs it.
 */
export type SourceResolver = (call: SourceInput) => ClientSource;

/**
 * The IP address in grpc-js's peer string (`127.0.0.1:54321`, `::1:54321`, `[::1]:54321`,
 * optionally prefixed `ipv4:`/`ipv6:`; grpc-js always appends the port), without the port: a
 * client gets a new port per connection, so limits key on the address.
 */
export function peerAddress(peer: string): string {
  let address = peer.startsWith('ipv') ? peer.replace(/^ipv[46]:/, '') : peer;
  if (address.startsWith('[')) address = address.slice(1, address.indexOf(']'));
  else address = address.replace(/:\d+$/, '');
  return socketAddress(address);
}

/** A socket's remoteAddress as a limit address: an IPv4-mapped IPv6 address is the IPv4 one. */
export const socketAddress = (address: string) =>
  address.length <= 22 && /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address;

/**
 * The limit key of an address: IPv4 as it is, IPv6 grouped by its /64 (the first four
 * hextets, lowercase, without leading zeros), a zone index dropped.
 */
export function sourceKey(address: string): string {
  if (!address.includes(':')) return address;
  const hextets = expandIpv6(address.replace(/%.*$/, ''));
  if (!hextets) return address;
  return `${hextets.slice(0, 4).map((h) => h.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (with an embedded IPv4 tail), or undefined. */
function expandIpv6(address: string): number[] | undefined {
  let text = address;
  const ipv4Tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (ipv4Tail) {
    const [a, b, c, d] = ipv4Tail.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, ipv4Tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail, extra] = text.split('::');
  if (extra !== undefined) return undefined;
  const parse = (part: string | undefined) => (part ? part.split(':').map((h) => Number.parseInt(h, 16)) : []);
  const left = parse(head);
  const right = parse(tail);
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const all = [...left, ...Array<number>(tail === undefined ? 0 : missing).fill(0), ...right];
  return all.every((h) => Number.isInteger(h) && h >= 0 && h <= 0xffff) ? all : undefined;
}

/**
 * The resolver for a hub with these trusted proxies (addresses or CIDR blocks, checked by
 * the config). From a trusted peer the client address is `X-Real-IP` (nginx:
 * `grpc_set_header X-Real-IP $remote_addr`), else the last `X-Forwarded-For` hop that is not
 * itself a trusted proxy; a header that is missing or not an IP address leaves the peer's
 * own address. From any other peer the headers are ignored: a client that talks to the hub
 * directly cannot choose its own source.
 */
export function createSourceResolver(trustedProxies: readonly string[]): SourceResolver {
  if (trustedProxies.length === 0) {
    return ({ peer }) => {
      const address = peerAddress(peer);
      return { key: sourceKey(address), address, via: 'peer' };
    };
  }
  const isTrusted = trustedProxyCheck(trustedProxies);

  return ({ peer, metadata }) => {
    const peerIp = peerAddress(peer);
    if (!isTrusted(peerIp)) return { key: sourceKey(peerIp), address: peerIp, via: 'peer' };
    const realIp = forwardedAddress(metadata.get('x-real-ip'));
    if (realIp !== undefined) return { key: sourceKey(realIp), address: realIp, via: 'x-real-ip' };
    const forwardedFor = metadata.get('x-forwarded-for');
    if (typeof forwardedFor === 'string') {
      // Each proxy appends the address it saw: walk back from the nearest hop past every
      // trusted proxy. Hops further left were written by the client and prove nothing.
      const hops = forwardedFor.split(',');
      for (let i = hops.length - 1; i >= 0; i--) {
        const hop = forwardedAddress(hops[i]);
        if (hop === undefined) break;
        if (!isTrusted(hop)) return { key: sourceKey(hop), address: hop, via: 'x-forwarded-for' };
      }
    }
    return { key: sourceKey(peerIp), address: peerIp, via: 'peer' };
  };
}

/** Whether an address (IPv4-mapped already unmapped) is one of these proxies (addresses or CIDR blocks). */
export function trustedProxyCheck(trustedProxies: readonly string[]): (address: string) => boolean {
  if (trustedProxies.length === 0) return () => false;
  const trusted = new BlockList();
  for (const cidr of trustedProxies) {
    const [address, bits] = cidr.split('/') as [string, string | undefined];
    const type = isIPv4(address) ? 'ipv4' : 'ipv6';
    trusted.addSubnet(address, bits === undefined ? (type === 'ipv4' ? 32 : 128) : Number(bits), type);
  }
  return (address) => isIP(address) !== 0 && trusted.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
}

/** One header value as an IP address; anything else (two values, a name, a port) is undefined. */
function forwardedAddress(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  let address = value.trim();
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
  return isIP(address) === 0 ? undefined : socketAddress(address);
}
