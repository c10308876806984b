/**
 * PostgreSQL failures that mean the storage (not the request, not the code) failed, told
 * apart so the commit queue can answer a retryable UNAVAILABLE (STORAGE_UNAVAILABLE) as it
 * does for SQLite's SQLITE_FULL or SQLITE_READONLY. The raised error carries a `code`
 * in the same style (`POSTGRES_FULL`, ...) and the server's SQLSTATE, if any, in its message.
 */
export const PostgresFault = {
  /** 53100 disk_full. */
  Full: 'POSTGRES_FULL',
  /** 25006 read_only_sql_transaction: a standby, or default_transaction_read_only. */
  ReadOnly: 'POSTGRES_READONLY',
  /** 58xxx system and I/O errors. */
  IoError: 'POSTGRES_IOERR',
  /** 40001, 40P01, 55P03: a serialization failure, deadlock or lock timeout; a retry may pass. */
  Busy: 'POSTGRES_BUSY',
  /**
   * The server cannot be reached or is going away: a lost or refused connection, class 08,
   * 57P01-57P03 (admin or crash shutdown, starting up), 53200/53300/53400 (memory, connections).
   */
  Unavailable: 'POSTGRES_UNAVAILABLE',
} as const;
export type PostgresFault = (typeof PostgresFault)[keyof typeof PostgresFault];

/** A storage fault of PostgreSQL; `cause` is the driver's error. */
export class PostgresStorageError extends Error {
  constructor(
    readonly code: PostgresFault,
    message: string,
    options: { cause: unknown },
  ) {
    super(message, options);
    this.name = 'PostgresStorageError';
  }
}

/** Errors of node-postgres and of the socket under it that mean the connection is gone. */
const CONNECTION_LOST = /^(Connection terminated|Client has encountered a connection error|Client was closed|Connection ended|timeout expired|Query read timeout)/;
const SOCKET_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** The fault a driver error stands for; undefined when it is not a storage fault. */
export function postgresFaultOf(error: unknown): PostgresFault | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    if (code === '53100') return PostgresFault.Full;
    if (code === '25006') return PostgresFault.ReadOnly;
    if (code.startsWith('58')) return PostgresFault.IoError;
    if (code === '40001' || code === '40P01' || code === '55P03') return PostgresFault.Busy;
    if (code.startsWith('08') || code.startsWith('57P') || code.startsWith('53')) return PostgresFault.Unavailable;
    return undefined;
  }
  if (typeof code === 'string' && SOCKET_CODES.has(code)) return PostgresFault.Unavailable;
  return CONNECTION_LOST.test(error.message) ? PostgresFault.Unavailable : undefined;
}

/**
 * The error to raise for a driver error: a PostgresStorageError for a storage fault, the
 * error itself otherwise. The message names the fault and the SQLSTATE; it never holds the
 * connection URL (node-postgres puts none in its errors).
 */
export function asStorageFault(error: unknown): unknown {
  const fault = postgresFaultOf(error);
  if (!fault) return error;
  const sqlState = (error as { code?: unknown }).code;
  const detail = typeof sqlState === 'string' && /^[0-9A-Z]{5}$/.test(sqlState) ? ` (SQLSTATE ${sqlState})` : '';
  return new PostgresStorageError(fault, `PostgreSQL: ${(error as Error).message}${detail}`, { cause: error });
}

/** Awaits a driver call, raising a storage fault as a PostgresStorageError (reads, accounts). */
export async function storageFaultsOf<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    throw asStorageFault(error);
  }
}
