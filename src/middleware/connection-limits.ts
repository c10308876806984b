import http2 from 'node:http2';
import type { Logger } from '../logger.js';

export interface ConnectionLimits {
  /** Open TCP connections the listener accepts; past it Node closes new ones at accept. */
  maxConnections: number;
  /** A connection whose client has not sent the HTTP/2 preface (its SETTINGS) in this time is destroyed, in ms. */
  handshakeTimeoutMs: number;
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
  if (limits.maxConnections > 0) server.maxConnections = limits.maxConnections;
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
