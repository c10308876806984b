import assert from 'node:assert/strict';
import pg from 'pg';
import { ChangeKind } from '../../src/core/records.js';
import type { HubBackend } from '../../src/store/ports.js';
import { createPostgresWriter } from '../../src/store/postgres/committer.js';
import { connectionConfig } from '../../src/store/postgres/connection.js';
import { PostgresFault, PostgresStorageError, openPostgresBackend } from '../../src/store/postgres/postgres-backend.js';
import { postgresFaultOf } from '../../src/store/postgres/storage-fault.js';
import { adminQuery, freshDatabase } from '../support/postgres.js';
import { pushOp } from '../support/write-ops.js';

/**
 * What only the PostgreSQL backend has: its sessions, the writer's guards on a decision,
 * and storage faults told apart. The domain rules are in backend-contract.test.ts.
 */
const M1 = 'M00-0000000000000001';
const R1 = 'R00-0000000000000001';
const NOW = 1_000_000;
const limits = { idempotencyWindowMs: 60_000, maxPublicItemsPerMerchant: 0 };
const databaseName = (url: string) => new URL(url).pathname.slice(1);
const emptyQuery = { requests: [], itemKeys: [], itemIds: [], publicCountsFor: [], receiverIds: [], nowMs: NOW };

describe('postgres backend (one node)', function () {
  this.timeout(60_000);
  let backend: HubBackend;
  let url: string;
  beforeEach(async () => {
    url = await freshDatabase();
    backend = await openPostgresBackend(url, { limits });
    await backend.accounts.insertAccount({ id: R1, role: 'receiver', displayName: 'r', passwordHash: Buffer.from('h'), createdAtMs: 1 });
  });
  afterEach(() => backend.close());

  const stored = async () =>
    (
      await backend.changes.receiverChanges({ receiverId: R1, afterSeq: 0, upToSeq: Number.MAX_SAFE_INTEGER, nowMs: 0, limit: 100, maxBytes: 1 << 20 })
    ).map((c) => c.seq);

  it('runs on sessions that force custom plans and parse bigint as numbers', async () => {
    const client = new pg.Client(connectionConfig(url, 'pushhub-test'));
    await client.connect();
    try {
      assert.equal((await client.query('SHOW plan_cache_mode')).rows[0].plan_cache_mode, 'force_custom_plan');
      assert.equal((await client.query('SELECT seq FROM head')).rows[0].seq, 0);
    } finally {
      await client.end();
    }
  });

  it('stores request digests as text', async () => {
    await backend.committer.commit([pushOp(M1, R1, { requestId: 'r', requestDigest: 'ab12' })], NOW);
    const c = new pg.Client(connectionConfig(url, 'pushhub-test'));
    await c.connect();
    const [row] = await c
      .query<{ digest: string; type: string }>("SELECT digest, pg_typeof(digest)::text AS type FROM requests WHERE request_id = 'r'")
      .then((r) => r.rows)
      .finally(() => c.end());
    assert.deepEqual(row, { digest: 'ab12', type: 'text' });
  });

  describe('writer', () => {
    let writer: ReturnType<typeof createPostgresWriter>;
    const reported: number[][] = [];
    beforeEach(async () => {
      reported.length = 0;
      writer = createPostgresWriter(url, () => undefined, (rows) => reported.push(rows.map((r) => r.seq)));
      await writer.ready();
    });
    afterEach(() => writer.close());

    const item = (seq: number) => ({
      seq,
      kind: ChangeKind.Item,
      itemId: `I${seq.toString(16).padStart(16, '0')}${'0'.repeat(16)}`,
      merchantId: M1,
      receiverId: R1,
      itemKey: '',
      frame: Buffer.from([seq]),
      pushedAtMs: NOW,
      validUntilMs: NOW + 1000,
    });

    it('stores nothing when decide throws, and keeps working', async () => {
      await assert.rejects(
        writer.commit(emptyQuery, () => {
          throw new Error('domain failure');
        }),
        (error: Error) => error.message === 'domain failure' && !(error instanceof PostgresStorageError),
      );
      await writer.commit(emptyQuery, (_ws, head) => ({ writes: { inserts: [item(head + 1)], deletes: [], requests: [], head: head + 1 } }));
      assert.deepEqual(await stored(), [1]);
      assert.deepEqual(reported, [[1]], 'stored rows are reported to the feed');
    });

    it('stores nothing of a batch the database refuses (a sequence taken twice)', async () => {
      await assert.rejects(
        writer.commit(emptyQuery, (_ws, head) => ({
          writes: { inserts: [item(head + 1), { ...item(head + 1), itemId: 'I' + 'f'.repeat(32) }], deletes: [], requests: [], head: head + 1 },
        })),
        (error: { code?: string }) => error.code === '23505',
      );
      assert.deepEqual(await stored(), []);
      assert.deepEqual(reported, []);
    });

    it('refuses a decision that moves the head back or writes outside its range', async () => {
      await assert.rejects(
        writer.commit(emptyQuery, (_ws, head) => ({ writes: { inserts: [], deletes: [], requests: [], head: head - 1 } })),
        /moved the head back/,
      );
      await assert.rejects(
        writer.commit(emptyQuery, (_ws, head) => ({ writes: { inserts: [item(head + 2)], deletes: [], requests: [], head: head + 1 } })),
        /outside the batch's range/,
      );
    });

    it('a connection killed during a commit rejects it as POSTGRES_UNAVAILABLE; the next commit reconnects', async () => {
      // Another session holds the head lock, so the writer's commit waits inside its transaction.
      const holder = new pg.Client(connectionConfig(url, 'pushhub-test'));
      await holder.connect();
      await holder.query('BEGIN');
      await holder.query('SELECT seq FROM head WHERE id = 1 FOR UPDATE');
      const pending = writer.commit(emptyQuery, (_ws, head) => ({ writes: { inserts: [item(head + 1)], deletes: [], requests: [], head: head + 1 } }));
      const waiting = async () =>
        (
          await holder.query<{ pid: number }>(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'pushhub-writer' AND datname = $1 AND wait_event_type = 'Lock'",
            [databaseName(url)],
          )
        ).rows;
      let pids = await waiting();
      for (let i = 0; i < 500 && pids.length === 0; i++) pids = await new Promise((r) => setTimeout(r, 10)).then(waiting);
      assert.equal(pids.length, 1, 'the writer waits for the head lock');
      await holder.query('SELECT pg_terminate_backend($1)', [pids[0]!.pid]);
      await holder.query('ROLLBACK');
      await holder.end();
      await assert.rejects(pending, (error: unknown) => error instanceof PostgresStorageError && error.code === PostgresFault.Unavailable);
      assert.deepEqual(await stored(), []);
      await writer.commit(emptyQuery, (_ws, head) => ({ writes: { inserts: [item(head + 1)], deletes: [], requests: [], head: head + 1 } }));
      assert.deepEqual(await stored(), [1]);
    });

    it('a read-only database rejects commits as POSTGRES_READONLY, storing nothing', async () => {
      await adminQuery(`ALTER DATABASE ${databaseName(url)} SET default_transaction_read_only = on`);
      await adminQuery("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pushhub-writer' AND datname = $1", [
        databaseName(url),
      ]);
      const codes: string[] = [];
      for (let attempt = 0; attempt < 3 && codes.at(-1) !== PostgresFault.ReadOnly; attempt++) {
        await writer
          .commit(emptyQuery, (_ws, head) => ({ writes: { inserts: [item(head + 1)], deletes: [], requests: [], head: head + 1 } }))
          .then(
            () => codes.push('stored'),
            (error: unknown) => codes.push(error instanceof PostgresStorageError ? error.code : String(error)),
          );
      }
      // The first attempt may meet the killed connection; the new one is read-only.
      assert.equal(codes.at(-1), PostgresFault.ReadOnly, codes.join(', '));
      assert.ok(codes.every((c) => c === PostgresFault.ReadOnly || c === PostgresFault.Unavailable), codes.join(', '));
      assert.deepEqual(await stored(), []);
    });
  });

  it('tells storage faults from other database errors by SQLSTATE', () => {
    const pgError = (code: string) => Object.assign(new Error('x'), { code });
    assert.equal(postgresFaultOf(pgError('53100')), PostgresFault.Full);
    assert.equal(postgresFaultOf(pgError('25006')), PostgresFault.ReadOnly);
    assert.equal(postgresFaultOf(pgError('57P01')), PostgresFault.Unavailable);
    assert.equal(postgresFaultOf(pgError('08006')), PostgresFault.Unavailable);
    assert.equal(postgresFaultOf(pgError('58030')), PostgresFault.IoError);
    assert.equal(postgresFaultOf(pgError('40P01')), PostgresFault.Busy);
    assert.equal(postgresFaultOf(pgError('ECONNREFUSED')), PostgresFault.Unavailable);
    assert.equal(postgresFaultOf(new Error('Connection terminated unexpectedly')), PostgresFault.Unavailable);
    assert.equal(postgresFaultOf(pgError('23505')), undefined, 'a unique violation is a bug, not the storage');
    assert.equal(postgresFaultOf(pgError('42P01')), undefined);
    assert.equal(postgresFaultOf(new Error('domain failure')), undefined);
  });
});
