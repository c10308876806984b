import Database from 'better-sqlite3';
import pg from 'pg';
import type { HubConfig } from '../../src/config.js';

/** Rows of the change log with this item id, read from the hub's own store (either backend). */
export async function changeRowsOf(config: HubConfig, itemId: string): Promise<number> {
  if (config.databaseUrl !== undefined) {
    const client = new pg.Client({ connectionString: config.databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM changes WHERE item_id = $1', [itemId]);
      return rows[0]!.n;
    } finally {
      await client.end();
    }
  }
  const db = new Database(config.dbPath, { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM changes WHERE item_id = ?').get(itemId) as { n: number }).n;
  } finally {
    db.close();
  }
}
