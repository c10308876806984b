// Apart from sqlite.ts so that the public type declarations never name better-sqlite3's types:
// a merchant project without @types/better-sqlite3 type-checks even with skipLibCheck off.

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
