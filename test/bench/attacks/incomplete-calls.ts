import http2 from 'node:http2';
import net from 'node:net';
import { Status } from 'nice-grpc';
import { REASON_TRAILER } from '../../../src/middleware/error-status.js';
import type { CallOutcome } from '../../reliability/support.js';

export interface IncompleteCalls {
  /** Resolves once every connection was accepted (and its calls opened) or refused. */
  opened: Promise<void>;
  /** Resolves once every opened call got its status from the hub. */
  ended: Promise<CallOutcome[]>;
  readonly stats: { acceptedConnections: number; refusedConnections: number; callsOpened: number; streamsOpen: number };
  stop(): void;
}

/**
 * Opens `connections` HTTP/2 connections from `localAddress` and, on each one the hub
 * accepts, `callsPerConnection` unary calls (Register) whose request message never completes:
 * the frame header announces 100 bytes, 10 are sent, and the request stays open. The attack
 * of issue 16 (What we saw, 7) that held every connection slot for 338 s.
 */
export function holdIncompleteCalls(
  address: string,
  options: { localAddress: string; connections: number; callsPerConnection: number },
): IncompleteCalls {
  const stats = { acceptedConnections: 0, refusedConnections: 0, callsOpened: 0, streamsOpen: 0 };
  const sessions: http2.ClientHttp2Session[] = [];
  const ends: Promise<CallOutcome>[] = [];
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const partialFrame = Buffer.concat([Buffer.from([0, 0, 0, 0, 100]), Buffer.alloc(10)]);

  const openOne = () =>
    new Promise<void>((resolve) => {
      const session = http2.connect(`http://${address}`, {
        createConnection: () => net.connect({ host, port, localAddress: options.localAddress }),
        // Room for the calls on one connection (the hub advertises its own limit).
        peerMaxConcurrentStreams: options.callsPerConnection,
      });
      sessions.push(session);
      session.on('error', () => {});
      let accepted = false;
      session.once('remoteSettings', () => {
        accepted = true;
        stats.acceptedConnections++;
        for (let i = 0; i < options.callsPerConnection; i++) ends.push(openCall(session));
        resolve();
      });
      session.once('close', () => {
        if (!accepted) stats.refusedConnections++;
        resolve();
      });
    });

  const openCall = (session: http2.ClientHttp2Session) =>
    new Promise<CallOutcome>((resolve) => {
      const stream = session.request(
        { ':method': 'POST', ':path': '/pushhub.v1.PushHubService/Register', 'content-type': 'application/grpc', te: 'trailers' },
        { endStream: false },
      );
      stats.callsOpened++;
      stats.streamsOpen++;
      stream.write(partialFrame);
      let settled = false;
      const finish = (headers: http2.IncomingHttpHeaders) => {
        if (settled || headers['grpc-status'] === undefined) return;
        settled = true;
        resolve({
          code: Number(headers['grpc-status']) as Status,
          details: decodeURIComponent(String(headers['grpc-message'] ?? '')),
          reason: headers[REASON_TRAILER] === undefined ? undefined : String(headers[REASON_TRAILER]),
        });
      };
      stream.on('response', finish);
      stream.on('trailers', finish);
      stream.on('error', () => {});
      stream.once('close', () => {
        stats.streamsOpen--;
        if (!settled) {
          settled = true;
          resolve({ code: Status.UNAVAILABLE, details: `stream closed (code ${stream.rstCode})`, reason: undefined });
        }
      });
    });

  const opened = Promise.all(Array.from({ length: options.connections }, openOne)).then(() => undefined);
  return {
    opened,
    ended: opened.then(() => Promise.all(ends)),
    stats,
    stop: () => {
      for (const session of sessions) session.destroy();
    },
  };
}
