import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { SqliteMissingError } from './sqlite-missing-error.js';

export { SQLITE_INSTALL_COMMAND, SqliteMissingError } from './sqlite-missing-error.js';

let loaded: typeof BetterSqlite3 | undefined;

/** Loads better-sqlite3 on first use (synchronously: a store opens in a constructor). */
function load(): typeof BetterSqlite3 {
  if (loaded) return loaded;
  try {
    loaded = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
  } catch (error) {
    // Only a missing better-sqlite3 itself; a broken install (e.g. a missing dependency of
    // it) keeps its own error.
    const e = error as NodeJS.ErrnoException;
    if (e?.code === 'MODULE_NOT_FOUND' && /['"]better-sqlite3['"]/.test(e.message)) throw new SqliteMissingError(error);
    throw error;
  }
  return loaded;
}

/**
 * Throws a {@link SqliteMissingError} now if better-sqlite3 is not installed, for a command
 * that should fail before it does anything else (such as registering a receiver).
 */
export function ensureSqlite(): void {
  load();
}

/**
 * better-sqlite3's Database constructor, resolved lazily: `new Database(path)` loads the
 * package on first use and throws a {@link SqliteMissingError} when it is not installed.
 * Importing this module never loads it.
 */
export const Database = function Database(this: unknown, ...args: ConstructorParameters<typeof BetterSqlite3>) {
  return new (load())(...args);
} as unknown as typeof BetterSqlite3;

// The type `Database.Database`, as with `import Database from 'better-sqlite3'`.
export declare namespace Database {
  type Database = BetterSqlite3.Database;
}
