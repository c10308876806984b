import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Subcommand } from './index.js';
import { fail, parseSubcommand } from './cli.js';

const USAGE = `usage: pushhub backup --db FILE --to FILE

Writes a consistent copy of a pushhub SQLite database, also while a hub runs and writes it:
the copy is one read transaction (VACUUM INTO), so it holds every push committed before it
started and none after, and the hub goes on writing meanwhile. The copy appears under FILE
only once it is complete. For PostgreSQL use pg_dump (docs/backups.md).

  --db FILE    the hub's database (its --db)
  --to FILE    the copy; a new file (an existing one is never overwritten)
  --help       this text

Exit codes: 0 written, 1 failed, 2 bad command line.
`;

/** What a pushhub database copy holds, for the operator's log. */
export function describeDatabase(path: string): { head: number; historyId: string; schemaVersion: number } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const schemaVersion = db.pragma('user_version', { simple: true }) as number;
    const head = db.prepare("SELECT value FROM meta WHERE name = 'head_seq'").pluck().get() as number;
    let historyId = '(none: written by a pushhub older than history ids)';
    try {
      historyId = db.prepare('SELECT history_id FROM history WHERE id = 1').pluck().get() as string;
    } catch {
      // Schema before migration 5: the hub that opens it starts its first history.
    }
    return { head, historyId, schemaVersion };
  } finally {
    db.close();
  }
}

/** Writes `path` to disk and its directory entry too, so a rename after it survives a power loss. */
export function syncFile(path: string): void {
  for (const target of [path, dirname(path)]) {
    const fd = openSync(target, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * A consistent copy of `source` (a pushhub SQLite file) at `target`, which must not exist:
 * written under a temporary name beside it, synced, then renamed into place.
 */
export function copyDatabase(source: string, target: string): void {
  const partial = `${target}.partial-${process.pid}`;
  const db = new Database(source, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    // A file that is not a pushhub database is refused before anything is written.
    db.prepare("SELECT value FROM meta WHERE name = 'head_seq'").get();
    db.prepare('VACUUM INTO ?').run(partial);
  } catch (error) {
    rmSync(partial, { force: true });
    const message = (error as Error).message;
    throw new Error(/no such table: meta/.test(message) ? `${source} is not a pushhub database` : `${source}: ${message}`, { cause: error });
  } finally {
    db.close();
  }
  syncFile(partial);
  renameSync(partial, target);
  syncFile(target);
}

export const backupCommand: Subcommand = {
  summary: 'a consistent copy of a running hub\'s SQLite database (--db FILE --to FILE)',
  async run(args) {
    const parsed = parseSubcommand('backup', USAGE, args, ['db', 'to'], ['db', 'to']);
    if ('exit' in parsed) return parsed.exit;
    const db = parsed.values.db as string;
    const to = parsed.values.to as string;
    if (!existsSync(db)) return fail('backup', `--db ${db}: no such file`);
    if (existsSync(to)) return fail('backup', `--to ${to}: already exists; choose a new name (a backup never overwrites a file)`);
    try {
      copyDatabase(db, to);
    } catch (error) {
      return fail('backup', (error as Error).message);
    }
    const copy = describeDatabase(to);
    process.stdout.write(
      `pushhub backup: wrote ${to} (${statSync(to).size} bytes): head sequence ${copy.head}, history ${copy.historyId}, schema version ${copy.schemaVersion}\n`,
    );
    return 0;
  },
};
