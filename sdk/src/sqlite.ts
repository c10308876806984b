import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

/** The command that installs the receiver store's SQLite driver, for the error message. */
export const SQLITE_INSTALL_COMMAND = 'npm install better-sqlite3';

/**
 * Raised when the receiver's local store is opened but better-sqlite3 is not installed.
 * It is an optional peer dependency of the SDK: merchant-only users never need a native
 * SQLite build, so it is loaded only when a ReceiverStore opens.
 */
export class SqliteMissingError extends Error {
  constructor(cause: unknown) {
    super(
      `better-sqlite3 is not installed: the receiver's local store (createReceiverStore, pushhub-receiver) needs it. ` +
        `Install it next to @pushhub/sdk: ${SQLITE_INSTALL_COMMAND}`,
      { cause },
    );
    this.name = 'SqliteMissingError';
  }
}

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
