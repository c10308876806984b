import assert from 'node:assert/strict';
import pg from 'pg';
import { DatabaseTooNewError, MIGRATIONS, migrate, openPostgresBackend } from '../../src/store/postgres/postgres-backend.js';
import { freshDatabase } from '../support/postgres.js';

const limits = { idempotencyWindowMs: 60_000, maxPublicItemsPerMerchant: 0 };

describe('postgres migrations', function () {
  this.timeout(60_000);
  let url: string;
  let client: pg.Client;
  beforeEach(async () => {
    url = await freshDatabase();
    client = new pg.Client({ connectionString: url });
    await client.connect();
  });
  afterEach(() => client?.end());

  const version = async () => (await client.query('SELECT version FROM pushhub_schema')).rows[0].version as number;
  const tables = async () =>
    (await client.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")).rows.map(
      (r) => r.tablename as string,
    );

  it('a fresh database gets every table and the newest version', async () => {
    assert.equal(await migrate(client), MIGRATIONS.length);
    assert.equal(await version(), MIGRATIONS.length);
    assert.deepEqual(await tables(), ['account_events', 'accounts', 'admin_log', 'bars', 'changes', 'head', 'history', 'pushhub_schema', 'receipt_cursors', 'receipt_events', 'receipt_totals', 'registrations', 'requests']);
    assert.equal((await client.query('SELECT seq FROM head')).rows[0].seq, '0');
  });

  it('re-opening a migrated database changes nothing and keeps its rows', async () => {
    await migrate(client);
    await client.query("UPDATE head SET seq = 42");
    await client.query("INSERT INTO accounts VALUES ('R00-1', 'receiver', 'r', '\\x00', 1)");
    const backend = await openPostgresBackend(url, { limits });
    try {
      assert.equal(backend.feed.head, 42);
      assert.equal(await backend.accounts.isReceiver('R00-1'), true);
    } finally {
      await backend.close();
    }
    assert.equal(await version(), MIGRATIONS.length);
  });

  it('applies only the migrations a database lacks', async () => {
    await migrate(client, MIGRATIONS.slice(0, 1));
    const extra = [...MIGRATIONS, 'CREATE TABLE later_table (x int)'];
    assert.equal(await migrate(client, extra), extra.length);
    assert.equal(await version(), extra.length);
    assert.ok((await tables()).includes('later_table'));
  });

  it('a failing migration leaves the previous version and no partial schema', async () => {
    await migrate(client);
    await assert.rejects(migrate(client, [...MIGRATIONS, 'CREATE TABLE half (x int); SELECT no_such_function()']));
    assert.equal(await version(), MIGRATIONS.length);
    assert.ok(!(await tables()).includes('half'));
  });

  it('a database of a newer pushhub is refused, by migrate and by openPostgresBackend', async () => {
    await migrate(client);
    await client.query('UPDATE pushhub_schema SET version = $1', [MIGRATIONS.length + 1]);
    await assert.rejects(migrate(client), DatabaseTooNewError);
    await assert.rejects(openPostgresBackend(url, { limits }), (error: Error) => {
      assert.ok(error instanceof DatabaseTooNewError);
      assert.match(error.message, /newer than this pushhub understands/);
      return true;
    });
    assert.equal(await version(), MIGRATIONS.length + 1);
  });

  it('nodes starting together migrate once', async () => {
    const backends = await Promise.all([openPostgresBackend(url, { limits }), openPostgresBackend(url, { limits }), openPostgresBackend(url, { limits })]);
    await Promise.all(backends.map((b) => b.close()));
    assert.equal(await version(), MIGRATIONS.length);
  });
});
