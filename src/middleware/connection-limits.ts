import diagnosticsChannel from 'node:diagnostics_channel';
import type { Server as NetServer, Socket } from 'node:net';
import type { Logger } from '../logger.js';

/** The HTTP/2 client preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") is 24 bytes. */
const HTTP2_PREFACE_BYTES = 24;

export interface ConnectionLimits {
  /** Open TCP connections the listener accepts; past it the OS-level accept is closed at once. */
  maxConnections: number;
  /** A connection that has not sent the HTTP/2 preface within this time is destroyed, in ms. */
  handshakeTimeoutMs: number;
}

/**
 * Caps connections and closes silent ones on the listener bound to `port`.
 *
 * grpc-js has no option for either and keeps its http2 server private, so this uses Node's
 * documented `net.server.socket` diagnostics channel, which reports every accepted socket
 * (with `socket.server`, the listening server) after 'connection'. From the first socket on,
 * the listener's documented `maxConnections` makes Node refuse connections past the cap
 * before any HTTP/2 state exists for them. Returns the function that stops watching.
 */
export function limitConnections(port: number, limits: ConnectionLimits, logger: Logger): () => void {
  let capped: NetServer | undefined;
  const onSocket = (message: unknown) => {
    const socket = (message as { socket: Socket & { server?: NetServer } }).socket;
    if (socket.localPort !== port) return;
    if (!capped && socket.server && limits.maxConnections > 0) {
      capped = socket.server;
      capped.maxConnections = limits.maxConnections;
    }
    if (!(limits.handshakeTimeoutMs > 0)) return;
    const timer = setTimeout(() => {
      if (socket.bytesRead >= HTTP2_PREFACE_BYTES || socket.destroyed) return;
      logger.info('connection closed: no HTTP/2 preface', { peer: socket.remoteAddress, timeoutMs: limits.handshakeTimeoutMs });
      socket.destroy();
    }, limits.handshakeTimeoutMs).unref();
    socket.once('close', () => clearTimeout(timer));
  };
  diagnosticsChannel.subscribe('net.server.socket', onSocket);
  return () => diagnosticsChannel.unsubscribe('net.server.socket', onSocket);
}
