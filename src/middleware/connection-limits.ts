import http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from '../logger.js';
import { socketAddress, sourceKey } from './client-source.js';

export interface ConnectionLimits {
  /** Open TCP connections the listener accepts; past it Node closes new ones at accept. */
  maxConnections: number;
  /** A connection whose client has not sent the HTTP/2 preface (its SETTINGS) in this time is destroyed, in ms. */
  handshakeTimeoutMs: number;
  /** Open TCP connections from one source (an IPv4 address or an IPv6 /64); past it new ones are closed at accept. */
  maxConnectionsPerSource: number;
  /** Peers exempt from the per-source cap: trusted proxies carry many clients on their connections. */
  isTrustedProxy: (address: string) => boolean;
  /** Told of each connection closed by the per-source cap (a metric). */
  onRefused?: () => void;
  /**
   * Filled with every open HTTP/2 session, for a forced shutdown to destroy: grpc-js's
   * forceShutdown destroys only the sessions it tracks for channelz, none when channelz is
   * off (grpc-js 1.14), so their streams would stay open after the hub stopped.
   */
  openSessions?: Set<http2.ServerHttp2Session>;
}

/**
 * Runs `listen` (grpc-js's bind) and applies the limits to the http2 servers it creates.
 *
 * grpc-js has no option for a connection cap or a handshake timeout and keeps its http2
 * server private; it creates that server through `http2.createServer`/`createSecureServer`
 * during bind, so those are wrapped for exactly that call to see it. On it, Node's documented
 * `maxConnections` refuses connections past the cap before any HTTP/2 state exists, and each
 * session that has not received the client's SETTINGS (the end of the preface) within the
 * timeout is destroyed: a silent TCP connection holds nothing for long.
 */
export async function listenWithConnectionLimits<T>(listen: () => Promise<T>, limits: ConnectionLimits, logger: Logger): Promise<T> {
  const { createServer, createSecureServer } = http2;
  const captured: http2.Http2Server[] = [];
  const capture =
    <F extends (...args: never[]) => http2.Http2Server>(create: F) =>
    (...args: Parameters<F>) => {
      const server = create(...args);
      captured.push(server);
      return server;
    };
  const mutable = http2 as { createServer: unknown; createSecureServer: unknown };
  mutable.createServer = capture(createServer as never);
  mutable.createSecureServer = capture(createSecureServer as never);
  try {
    return await listen();
  } finally {
    mutable.createServer = createServer;
    mutable.createSecureServer = createSecureServer;
    for (const server of captured) applyLimits(server, limits, logger);
  }
}

function applyLimits(server: http2.Http2Server, limits: ConnectionLimits, logger: Logger): void {
  const sessions = limits.openSessions;
  if (sessions) {
    server.on('session', (session: http2.ServerHttp2Session) => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
    });
  }
  if (limits.maxConnections > 0) server.maxConnections = limits.maxConnections;
  if (limits.maxConnectionsPerSource > 0) capPerSource(server, limits, logger);
  if (!(limits.handshakeTimeoutMs > 0)) return;
  server.on('session', (session: http2.ServerHttp2Session) => {
    const timer = setTimeout(() => {
      logger.info('connection closed: no HTTP/2 preface', { peer: session.socket?.remoteAddress, timeoutMs: limits.handshakeTimeoutMs });
      // session.destroy() alone leaves the TCP connection open when no preface arrived (the
      // socket belongs to nghttp2 by then): reset the socket itself, then drop the session.
      session.socket?.resetAndDestroy();
      session.destroy();
    }, limits.handshakeTimeoutMs).unref();
    // Both listeners go once the preface arrived: a long-lived session keeps neither (nor
    // the timer they would hold on to).
    const done = () => {
      clearTimeout(timer);
      session.off('remoteSettings', done);
      session.off('close', done);
    };
    session.once('remoteSettings', done);
    session.once('close', done);
  });
}

/**
 * Closes a new TCP connection at once when its source already has maxConnectionsPerSource
 * open, so one address (or one IPv6 /64) cannot take every slot of --max-connections. The
 * key is the TCP peer's: no header exists yet at accept. Trusted proxies are exempt; behind a
 * proxy the proxy's own per-client limits (nginx `limit_conn`) take this place.
 */
function capPerSource(server: http2.Http2Server, limits: ConnectionLimits, logger: Logger): void {
  const open = new Map<string, number>();
  let refusedSinceLog = 0;
  let lastLogMs = 0;
  server.on('connection', (socket: Socket) => {
    const address = socketAddress(socket.remoteAddress ?? '');
    if (limits.isTrustedProxy(address)) return;
    const key = sourceKey(address);
    const count = open.get(key) ?? 0;
    if (count >= limits.maxConnectionsPerSource) {
      socket.destroy();
      limits.onRefused?.();
      // One line per second at most: a flood of refused connections must not flood the log.
      refusedSinceLog++;
      const now = Date.now();
      if (now - lastLogMs >= 1000) {
        logger.warn('connections refused: per-source cap', { source: address, sourceKey: key, refused: refusedSinceLog, maxConnectionsPerSource: limits.maxConnectionsPerSource });
        refusedSinceLog = 0;
        lastLogMs = now;
      }
      return;
    }
    open.set(key, count + 1);
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left === 0) open.delete(key);
      else open.set(key, left);
    });
  });
}
