import { existsSync, renameSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { newHistoryId } from '../core/ids.js';
import { MIGRATIONS } from '../store/sqlite/migrations.js';
import { EXIT_DATABASE_OWNED, SqliteOwnedError, acquireSqliteOwnership } from '../store/sqlite/owner.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { copyDatabase, describeDatabase, syncFile } from './backup.js';
import { fail, parseSubcommand } from './cli.js';
import type { Subcommand } from './index.js';

const USAGE = `usage: pushhub restore --db FILE --from BACKUP

Puts a backup (from pushhub backup) in place of a hub's SQLite database. Refused while a hub
(or another writing command) holds the file: stop the hub first. The restored database
starts a new history, so every receiver drops what it stored and gets its state again from
the restored database when it reconnects (a reset, never a gap or a stale item; see
docs/backups.md). The database it replaces is kept beside it as FILE.replaced-<time>.

  --db FILE        the hub's database (its --db); need not exist
  --from BACKUP    the backup to restore (left unchanged)
  --help           this text

Exit codes: 0 restored, 1 failed, 2 bad command line, 3 the database is in use.
`;

/** Folds the WAL of the database being replaced into it, so it can be kept as one file. */
function checkpoint(path: string): void {
  const db = new Database(path, { fileMustExist: true });
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.pragma('journal_mode = DELETE');
  } finally {
    db.close();
  }
}

export const restoreCommand: Subcommand = {
  summary: 'put a backup in place of a stopped hub\'s SQLite database (--db FILE --from BACKUP)',
  async run(args) {
    const parsed = parseSubcommand('restore', USAGE, args, ['db', 'from'], ['db', 'from']);
    if ('exit' in parsed) return parsed.exit;
    const db = parsed.values.db as string;
    const from = parsed.values.from as string;
    if (!existsSync(from)) return fail('restore', `--from ${from}: no such file`);
    let backup;
    try {
      backup = describeDatabase(from);
    } catch (error) {
      return fail('restore', `--from ${from}: not a pushhub database (${(error as Error).message})`);
    }
    if (backup.schemaVersion > MIGRATIONS.length) {
      return fail('restore', `--from ${from}: schema version ${backup.schemaVersion} is newer than this pushhub understands (${MIGRATIONS.length}); restore it with a newer pushhub`);
    }

    let ownership;
    try {
      ownership = acquireSqliteOwnership(db, 'restore');
    } catch (error) {
      if (error instanceof SqliteOwnedError) return fail('restore', error.message, EXIT_DATABASE_OWNED);
      return fail('restore', (error as Error).message);
    }
    const staging = `${db}.restoring-${process.pid}`;
    try {
      rmSync(staging, { force: true });
      copyDatabase(from, staging);
      // The copy is brought to this hub's schema and given a new history: cursors of the
      // database it replaces (and of the backup's own past) no longer apply.
      const store = openSqliteStore(staging);
      let historyId: string;
      try {
        const previous = store.history();
        historyId = newHistoryId();
        store.replaceHistory(previous.id, { id: historyId, start: 'restored', startedAtMs: Date.now() });
        store.pragma('journal_mode = DELETE'); // one self-contained file to rename
      } finally {
        store.close();
      }
      syncFile(staging);
      let kept = '';
      if (existsSync(db)) {
        checkpoint(db);
        kept = `${db}.replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        renameSync(db, kept);
      }
      for (const leftover of [`${db}-wal`, `${db}-shm`, `${db}-journal`]) rmSync(leftover, { force: true });
      renameSync(staging, db);
      syncFile(db);
      process.stdout.write(
        `pushhub restore: ${db} now holds ${from} (head sequence ${backup.head}) with a new history ${historyId}; ` +
          `receivers reset to it when they reconnect.${kept ? ` The replaced database was kept as ${kept}.` : ''}\n`,
      );
      return 0;
    } catch (error) {
      rmSync(staging, { force: true });
      for (const leftover of [`${staging}-wal`, `${staging}-shm`]) rmSync(leftover, { force: true });
      return fail('restore', (error as Error).message);
    } finally {
      ownership.release();
    }
  },
};
