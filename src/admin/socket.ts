import { chmodSync, existsSync, rmSync } from 'node:fs';
import { type Server, type Socket, createConnection, createServer } from 'node:net';
import { HubError } from '../core/errors.js';
import type { AdminActions, AdminCommand } from './actions.js';

/**
 * The admin socket of a hub on a SQLite file: a Unix socket next to the database
 * (`FILE-admin.sock`, mode 0600, so only the hub's OS user and root reach it). The SQLite file
 * has one owner, the hub (src/store/sqlite/owner.ts); `pushhub admin --db FILE` finds the hub
 * running, sends its one request here and the hub carries it out through its own commit
 * queue and feed: the effect is immediate on its streams and the one-owner rule holds.
 *
 * The protocol is one JSON line each way: `{ command, id?, query?, actor }`, then
 * `{ ok: true, result }` or `{ ok: false, reason, message }`.
 */
export const adminSocketOf = (dbPath: string): string => `${dbPath}-admin.sock`;

export interface AdminRequest {
  command: AdminCommand;
  id?: string;
  query?: Parameters<AdminActions['list']>[0];
  actor: string;
}

export type AdminReply = { ok: true; result: unknown } | { ok: false; reason: string; message: string };

/** Longest request line accepted (a request is a few hundred bytes). */
const MAX_LINE_BYTES = 64 * 1024;

/** Runs one admin request with the actions of whoever serves it (the actor comes with the request). */
export async function runAdminRequest(actionsFor: (actor: string) => AdminActions, request: AdminRequest): Promise<AdminReply> {
  try {
    const actions = actionsFor(String(request.actor ?? 'unknown'));
    const id = String(request.id ?? '');
    let result: unknown;
    switch (request.command) {
      case 'list': result = await actions.list({ limit: 100, ...(request.query ?? {}) }); break;
      case 'show': result = await actions.show(id); break;
      case 'suspend': result = await actions.suspend(id); break;
      case 'resume': result = await actions.resume(id); break;
      case 'delete': result = await actions.delete(id); break;
      case 'rotate': result = await actions.rotate(id); break;
      case 'stats': result = await actions.stats(); break;
      default: return { ok: false, reason: 'INVALID_ARGUMENT', message: `unknown admin command ${String(request.command)}` };
    }
    return { ok: true, result };
  } catch (error) {
    if (error instanceof HubError) return { ok: false, reason: error.reason, message: error.message };
    return { ok: false, reason: 'INTERNAL', message: String((error as Error)?.message ?? error) };
  }
}

/** Serves the admin socket of a hub (call close() on shutdown; the socket file goes with it). */
export async function serveAdminSocket(path: string, actionsFor: (actor: string) => AdminActions, onError: (error: unknown) => void): Promise<Server> {
  // This process owns the database (owner.ts), so a socket file left here is a dead hub's.
  if (existsSync(path)) rmSync(path, { force: true });
  const server = createServer((socket: Socket) => {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('error', onError);
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_LINE_BYTES) return void socket.destroy();
      const end = buffered.indexOf('\n');
      if (end < 0) return;
      const line = buffered.slice(0, end);
      socket.pause();
      let request: AdminRequest;
      try {
        request = JSON.parse(line) as AdminRequest;
      } catch {
        socket.end(`${JSON.stringify({ ok: false, reason: 'INVALID_ARGUMENT', message: 'not a JSON request line' })}\n`);
        return;
      }
      runAdminRequest(actionsFor, request).then(
        (reply) => socket.end(`${JSON.stringify(reply)}\n`),
        (error: unknown) => {
          onError(error);
          socket.destroy();
        },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  server.unref();
  return server;
}

/** Sends one request to a hub's admin socket; undefined when nothing listens there. */
export async function sendAdminRequest(path: string, request: AdminRequest): Promise<AdminReply | undefined> {
  if (!existsSync(path)) return undefined;
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => (buffered += chunk));
    socket.on('end', () => {
      try {
        resolve(JSON.parse(buffered.trim()) as AdminReply);
      } catch {
        reject(new Error(`admin socket ${path}: no answer from the hub`));
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') resolve(undefined);
      else reject(error);
    });
  });
}
