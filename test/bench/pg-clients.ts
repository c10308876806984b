/**
 * Client choice for the PostgreSQL backend (issue 11): node-postgres (`pg`) against
 * `postgres` (postgres.js) on pushhub's own workload, on one embedded PostgreSQL.
 *
 *   npx tsx test/bench/pg-clients.ts [rounds]
 *
 * - commit: one 100-row batch per transaction: head row FOR UPDATE, a multi-row INSERT via
 *   unnest arrays (bytea frames of 200 bytes), the head update and one NOTIFY, on one writer
 *   connection (as the committer does). postgres.js also runs a variant that pipelines the
 *   write statements (its feature; node-postgres sends one statement per round trip).
 * - read: cursor reads `receiver_id IN ($1, '') AND seq > $2 ORDER BY seq LIMIT 100` on a pool
 *   of 4, 8 in flight.
 * Each client runs in turn, several rounds, alternating, on a fresh table; figures are medians.
 * Durable settings (fsync on), so commit figures include the WAL flush, as in production.
 */
import pg from 'pg';
import postgres from 'postgres';
import { startPostgres } from '../support/postgres.js';

const BATCH = 100;
const COMMITS = 200;
const READS = 4000;
const FRAME = Buffer.alloc(200, 7);
const rounds = Number(process.argv[2] ?? 3);

const SCHEMA = `
  DROP TABLE IF EXISTS changes; DROP TABLE IF EXISTS head;
  CREATE TABLE changes (seq bigint PRIMARY KEY, kind smallint NOT NULL, item_id text NOT NULL,
    merchant_id text NOT NULL, receiver_id text NOT NULL, item_key text NOT NULL, frame bytea NOT NULL,
    pushed_at_ms bigint NOT NULL, valid_until_ms bigint NOT NULL);
  CREATE INDEX changes_by_receiver ON changes (receiver_id, seq);
  CREATE TABLE head (id smallint PRIMARY KEY, seq bigint NOT NULL); INSERT INTO head VALUES (1, 0);`;

const INSERT = `INSERT INTO changes (seq, kind, item_id, merchant_id, receiver_id, item_key, frame, pushed_at_ms, valid_until_ms)
  SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[], $8::bigint[], $9::bigint[])`;
const READ = `SELECT seq, kind, item_id, merchant_id, receiver_id, item_key, frame, pushed_at_ms, valid_until_ms FROM changes
  WHERE receiver_id IN ($1, '') AND seq > $2 AND valid_until_ms > $3 ORDER BY seq LIMIT 100`;

function batchColumns(head: number) {
  const seqs = Array.from({ length: BATCH }, (_, i) => head + 1 + i);
  return [
    seqs,
    seqs.map(() => 1),
    seqs.map((s) => `I${s.toString(16).padStart(32, '0')}`),
    seqs.map((s) => `M00-${String(s % 7).padStart(16, '0')}`),
    seqs.map((s) => (s % 4 === 0 ? '' : `R00-${String(s % 500).padStart(16, '0')}`)),
    seqs.map(() => ''),
    seqs.map(() => FRAME),
    seqs.map(() => Date.now()),
    seqs.map(() => Date.now() + 3_600_000),
  ];
}

const receiver = (i: number) => `R00-${String(i % 500).padStart(16, '0')}`;

async function withReaders(run: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < READS) await run(next++);
    }),
  );
  return READS / ((performance.now() - start) / 1000);
}

async function benchPg(url: string) {
  const writer = new pg.Client({ connectionString: url, options: '-c plan_cache_mode=force_custom_plan' });
  await writer.connect();
  await writer.query(SCHEMA);
  let start = performance.now();
  for (let i = 0; i < COMMITS; i++) {
    await writer.query('BEGIN');
    const head = Number((await writer.query({ name: 'h', text: 'SELECT seq FROM head WHERE id = 1 FOR UPDATE' })).rows[0].seq);
    await writer.query({ name: 'i', text: INSERT, values: batchColumns(head) });
    await writer.query({ name: 'u', text: 'UPDATE head SET seq = $1 WHERE id = 1', values: [head + BATCH] });
    await writer.query('NOTIFY bench');
    await writer.query('COMMIT');
  }
  const commitRows = (COMMITS * BATCH) / ((performance.now() - start) / 1000);
  await writer.end();
  return commitRows;
}

async function readPg(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 4, options: '-c plan_cache_mode=force_custom_plan' });
  const max = COMMITS * BATCH;
  const now = Date.now();
  const reads = await withReaders((i) => pool.query({ name: 'r', text: READ, values: [receiver(i), (i * 7919) % max, now] }));
  await pool.end();
  return reads;
}

async function benchPostgresJs(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => undefined, connection: { plan_cache_mode: 'force_custom_plan' } });
  await sql.unsafe(SCHEMA).simple();
  const commit = async (pipelined: boolean) => {
    const start = performance.now();
    for (let i = 0; i < COMMITS; i++) {
      await sql.begin(async (tx) => {
        const [row] = await tx.unsafe('SELECT seq FROM head WHERE id = 1 FOR UPDATE', [], { prepare: true });
        const head = Number(row!.seq);
        const writes = () => [
          tx.unsafe(INSERT, batchColumns(head).map((column, i) => tx.array(column as never[], i === 6 ? 17 : undefined)) as never[], {
            prepare: true,
          }),
          tx.unsafe('UPDATE head SET seq = $1 WHERE id = 1', [head + BATCH], { prepare: true }),
          tx.unsafe('NOTIFY bench'),
        ];
        if (pipelined) await Promise.all(writes());
        else for (const w of writes()) await w;
      });
    }
    return (COMMITS * BATCH) / ((performance.now() - start) / 1000);
  };
  const commitRows = await commit(false);
  await sql.unsafe(SCHEMA).simple();
  const commitRowsPipelined = await commit(true);
  await sql.end();
  return { commitRows, commitRowsPipelined };
}

async function readPostgresJs(url: string) {
  const readers = postgres(url, { max: 4, connection: { plan_cache_mode: 'force_custom_plan' } });
  const max = COMMITS * BATCH;
  const now = Date.now();
  const reads = await withReaders((i) => readers.unsafe(READ, [receiver(i), (i * 7919) % max, now], { prepare: true }));
  await readers.end();
  return reads;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const server = await startPostgres({ durable: true });
try {
  const admin = new pg.Client(server.adminUrl);
  await admin.connect();
  await admin.query('CREATE DATABASE bench_pg');
  await admin.query('CREATE DATABASE bench_js');
  await admin.query('CREATE DATABASE bench_read');
  await admin.end();
  // The read database: filled once by the pg writer, then analysed; both clients read it.
  await benchPg(server.urlFor('bench_read'));
  const analyse = new pg.Client(server.urlFor('bench_read'));
  await analyse.connect();
  await analyse.query('ANALYZE changes');
  await analyse.end();
  type Round = { commitRows: number; commitRowsPipelined: number; reads: number };
  const results = { pg: [] as Round[], js: [] as Round[] };
  for (let r = 0; r < rounds; r++) {
    const pgCommit = await benchPg(server.urlFor('bench_pg'));
    const js = await benchPostgresJs(server.urlFor('bench_js'));
    results.pg.push({ commitRows: pgCommit, commitRowsPipelined: NaN, reads: await readPg(server.urlFor('bench_read')) });
    results.js.push({ ...js, reads: await readPostgresJs(server.urlFor('bench_read')) });
    console.error(`round ${r + 1}/${rounds}`, JSON.stringify({ pg: results.pg.at(-1), js: results.js.at(-1) }));
  }
  const m = (k: 'pg' | 'js', f: 'commitRows' | 'commitRowsPipelined' | 'reads') => median(results[k].map((x) => x[f]));
  const figures = {
    'pg commit rows/s': Math.round(m('pg', 'commitRows')),
    'postgres.js commit rows/s': Math.round(m('js', 'commitRows')),
    'postgres.js pipelined commit rows/s': Math.round(m('js', 'commitRowsPipelined')),
    'pg cursor reads/s': Math.round(m('pg', 'reads')),
    'postgres.js cursor reads/s': Math.round(m('js', 'reads')),
    'commit ratio postgres.js / pg': +(m('js', 'commitRows') / m('pg', 'commitRows')).toFixed(2),
    'pipelined commit ratio postgres.js / pg': +(m('js', 'commitRowsPipelined') / m('pg', 'commitRows')).toFixed(2),
    'read ratio postgres.js / pg': +(m('js', 'reads') / m('pg', 'reads')).toFixed(2),
  };
  console.log(JSON.stringify(figures, null, 2));
} finally {
  await server.stop();
}
