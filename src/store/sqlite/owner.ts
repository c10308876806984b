/**
 * One owner per SQLite file: the hub, `pushhub restore` and `pushhub admin` write the
 * database, and two of them at once would each believe they know the head (issue 16: a
 * second hub on one file made receivers skip the other's items). Every writing process takes
 * ownership first; a second one is refused with a message that names the owner.
 *
 * The lock is a kernel lock that dies with the process: a RESERVED lock (an open
 * `BEGIN IMMEDIATE`) on a sidecar SQLite file, `FILE-owner`, held for as long as the owner
 * runs. SQLite's locks are POSIX advisory locks, which the OS drops when the process ends,
 * however it ends, so after a SIGKILL (or a power loss) the next start needs no cleanup: there
 * is no pid to check, and a pid reused by another process (pid 1 in a container) cannot keep a
 * dead owner alive. SQLite also tracks locks per file inside one process, so two owners in
 * one process (tests) exclude each other too. A RESERVED lock still lets others read the
 * sidecar, which holds the owner's record (pid, host, since, command) for the refusal message.
 *
 * Usage (the API the hub, `pushhub restore` and `pushhub admin` share):
 * ```ts
 * const ownership = acquireSqliteOwnership('./data/pushhub.db', 'admin'); // or throws SqliteOwnedError
 * try { ...write... } finally { ownership.release(); }
 * readSqliteOwner('./data/pushhub.db'); // the live owner's record, or undefined
 * ```
 * A process that gets a SqliteOwnedError exits with EXIT_DATABASE_OWNED (3).
 */
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/** Exit code of a command refused because another process owns its SQLite file (documented in docs/backups.md). */
export const EXIT_DATABASE_OWNED = 3;

/** Who holds a SQLite file. */
export interface SqliteOwner {
  /** Process id of the owner. */
  pid: number;
  /** Host name the owner runs on. */
  host: string;
  /** When it took ownership, ISO-8601. */
  since: string;
  /** What it is: 'hub', 'restore', 'admin'. */
  command: string;
}

/** Ownership of one SQLite file, held until `release` (or until the process ends). */
export interface SqliteOwnership {
  readonly file: string;
  readonly owner: SqliteOwner;
  /** Gives the file up; idempotent. */
  release(): void;
}

/** Thrown when another process (or another owner in this one) holds the file. */
export class SqliteOwnedError extends Error {
  constructor(
    readonly file: string,
    readonly owner: SqliteOwner | undefined,
  ) {
    super(`${file} is in use by ${describeOwner(owner)}; stop it first (only one process may write a SQLite database)`);
    this.name = 'SqliteOwnedError';
  }
}

/** "pushhub hub (pid 123 on host-a, since 2026-12-03T07:50:16.000Z)". */
export function describeOwner(owner: SqliteOwner | undefined): string {
  if (!owner) return 'another pushhub process (it is starting; its record is not written yet)';
  return `pushhub ${owner.command} (pid ${owner.pid} on ${owner.host}, since ${owner.since})`;
}

/** The sidecar file whose lock marks the owner. */
export const ownerFileOf = (file: string): string => `${file}-owner`;

/** How long acquiring waits for a brief holder (a `readSqliteOwner` probe) before refusing. ms. */
const ACQUIRE_WAIT_MS = 250;

const SCHEMA = `CREATE TABLE IF NOT EXISTS owner (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  since TEXT NOT NULL,
  command TEXT NOT NULL
)`;

const isBusy = (error: unknown): boolean => {
  const code = (error as { code?: unknown })?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
};

function readRecord(db: Database.Database): SqliteOwner | undefined {
  try {
    return db.prepare('SELECT pid, host, since, command FROM owner WHERE id = 1').get() as SqliteOwner | undefined;
  } catch {
    return undefined; // no table yet: the owner is between creating the file and writing its record
  }
}

/** The store's wording for a file it cannot write (see sqlite-store.ts openWritable). */
function cannotOpen(file: string, error: unknown): Error {
  const code = (error as { code?: unknown })?.code;
  const message = (error as Error)?.message ?? String(error);
  if (typeof code !== 'string') return error as Error;
  const why = message.startsWith(`${code}:`) ? message : `${code}: ${message}`;
  return Object.assign(new Error(`database ${file}: cannot open it for writing (${why})`, { cause: error }), { code });
}

/**
 * Takes ownership of `file` (a SQLite database path) for `command`, or throws a
 * SqliteOwnedError naming the current owner. ':memory:' needs no owner.
 */
export function acquireSqliteOwnership(file: string, command: string): SqliteOwnership {
  const owner: SqliteOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString(), command };
  if (file === ':memory:') return { file, owner, release: () => undefined };
  let db: Database.Database;
  try {
    mkdirSync(dirname(file), { recursive: true });
    db = new Database(ownerFileOf(file));
  } catch (error) {
    throw cannotOpen(file, error);
  }
  let held = false;
  try {
    db.pragma(`busy_timeout = ${ACQUIRE_WAIT_MS}`);
    db.exec('BEGIN IMMEDIATE');
    // Holding it: write the record (the commit lets it go for a moment), then take it again.
    // Another process that takes it in that moment wins, and this one is refused below.
    db.exec(SCHEMA);
    db.prepare('INSERT OR REPLACE INTO owner (id, pid, host, since, command) VALUES (1, ?, ?, ?, ?)').run(
      owner.pid,
      owner.host,
      owner.since,
      owner.command,
    );
    db.exec('COMMIT');
    db.exec('BEGIN IMMEDIATE');
    held = true;
  } catch (error) {
    const current = isBusy(error) ? readRecord(db) : undefined;
    if (db.inTransaction) db.exec('ROLLBACK');
    db.close();
    if (isBusy(error)) throw new SqliteOwnedError(file, current);
    throw cannotOpen(file, error);
  }
  return {
    file,
    owner,
    release() {
      if (!held) return;
      held = false;
      db.exec('ROLLBACK');
      db.close();
    },
  };
}

/**
 * The record of the process that owns `file` now, or undefined when none does (never
 * owned, or its owner ended: a stale record left by a killed owner is not reported).
 */
export function readSqliteOwner(file: string): SqliteOwner | undefined {
  if (file === ':memory:') return undefined;
  let db: Database.Database;
  try {
    db = new Database(ownerFileOf(file), { fileMustExist: true });
  } catch {
    return undefined;
  }
  try {
    db.pragma('busy_timeout = 0');
    try {
      db.exec('BEGIN IMMEDIATE');
      db.exec('ROLLBACK');
      return undefined; // free: nobody holds it
    } catch (error) {
      if (!isBusy(error)) throw error;
    }
    db.pragma(`busy_timeout = ${ACQUIRE_WAIT_MS}`);
    // An owner writes its record right after taking the lock: wait out that moment.
    for (let attempt = 0; ; attempt++) {
      const record = readRecord(db);
      if (record || attempt >= 25) return record ?? { pid: 0, host: 'unknown', since: 'unknown', command: 'process' };
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  } finally {
    db.close();
  }
}
