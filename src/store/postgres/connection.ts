import pg from 'pg';

/**
 * Connection settings shared by every connection a node opens. bigint columns (sequences,
 * epoch milliseconds) are parsed as numbers: both stay far below 2^53.
 */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * Every session forces custom plans: with the default plan cache, PostgreSQL switches a
 * prepared cursor read to a generic plan after five runs and kept a sequential scan for it,
 * which moved read p99 from 3.6 to 28-35 ms in the measurements of issue 11.
 */
const SESSION_OPTIONS = '-c plan_cache_mode=force_custom_plan';

export function connectionConfig(url: string, applicationName: string): pg.ClientConfig {
  return { connectionString: url, types, options: SESSION_OPTIONS, application_name: applicationName };
}

/** One advisory-lock namespace for pushhub, so its keys never meet another application's. */
export const LOCK_NAMESPACE = 0x70757368; // 'push'
export const LockKey = { Migrate: 1, Leader: 2, AccountEvents: 3, Receipts: 4 } as const;

/** LISTEN channels. A notification only wakes a node; it never carries data. */
export const Channel = { Changes: 'pushhub_changes', Accounts: 'pushhub_accounts', Receipts: 'pushhub_receipts' } as const;

/** Runs fn inside BEGIN/COMMIT on client; rolls back and rethrows on any error. */
export async function inTransaction<T>(client: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
