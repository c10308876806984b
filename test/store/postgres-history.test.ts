import assert from 'node:assert/strict';
import pg from 'pg';
import type { HubBackend } from '../../src/store/ports.js';
import { openPostgresBackend } from '../../src/store/postgres/postgres-backend.js';
import { freshDatabase } from '../support/postgres.js';

/**
 * The PostgreSQL history (docs/backups.md): a fingerprint of the database's physical timeline
 * is stored with it, and a start on a database whose fingerprint changed (a dump restored
 * elsewhere, point-in-time recovery, a promoted standby) starts a new history. The full
 * restore scenario is in test/reliability/restore.test.ts.
 */
describe('postgres history: a restored database is detected at start', function () {
  this.timeout(60_000);
  const limits = { idempotencyWindowMs: 60_000, maxPublicItemsPerMerchant: 0 };
  const opened: HubBackend[] = [];
  afterEach(async () => {
    for (const backend of opened.splice(0)) await backend.close();
  });
  const open = async (url: string, onRestoreDetected?: (changed: string[]) => void) => {
    const backend = await openPostgresBackend(url, { limits, onRestoreDetected });
    opened.push(backend);
    return backend;
  };
  const sql = async (url: string, text: string) => {
    const client = new pg.Client(url);
    await client.connect();
    try {
      return (await client.query(text)).rows;
    } finally {
      await client.end();
    }
  };

  it('keeps its history across restarts, records every fingerprint part it can read, and rotates when the timeline changed', async () => {
    const url = await freshDatabase();
    const first = await open(url);
    const created = first.history.current();
    assert.equal(created.start, 'created');
    assert.match(created.id, /^H[0-9a-f]{24}$/);
    await first.close();
    opened.length = 0;

    // Restarts on the same database keep the history.
    const detected: string[][] = [];
    const again = await open(url, (changed) => detected.push(changed));
    assert.equal(again.history.current().id, created.id);
    const [{ fingerprint }] = await sql(url, 'SELECT fingerprint FROM history');
    assert.match(fingerprint, /^system=\d+;timeline=[0-9A-F]{8};database=\d+;table=\d+$/);
    await again.close();
    opened.length = 0;

    // As after point-in-time recovery: the stored timeline is not the live one.
    await sql(url, "UPDATE history SET fingerprint = regexp_replace(fingerprint, 'timeline=[0-9A-F]+', 'timeline=000000FF')");
    const restored = await open(url, (changed) => detected.push(changed));
    const history = restored.history.current();
    assert.notEqual(history.id, created.id);
    assert.equal(history.start, 'restored');
    assert.deepEqual(detected, [['timeline']]);
    // The new fingerprint is stored: the next start is quiet.
    await restored.close();
    opened.length = 0;
    const quiet = await open(url, (changed) => detected.push(changed));
    assert.equal(quiet.history.current().id, history.id);
    assert.equal(detected.length, 1);
  });

  it('a rotation by one node reaches the other nodes', async () => {
    const url = await freshDatabase();
    const a = await openPostgresBackend(url, { limits, feedPollIntervalMs: 50 });
    opened.push(a);
    const b = await openPostgresBackend(url, { limits, feedPollIntervalMs: 50 });
    opened.push(b);
    const seen: string[] = [];
    b.history.onChange((history) => seen.push(history.id));
    const old = a.history.current().id;
    const next = await a.history.rotate(old, 'cursor-ahead', Date.now());
    assert.notEqual(next.id, old);
    // A second rotation from the old id (a node that had not seen the first) changes nothing.
    assert.equal((await b.history.rotate(old, 'cursor-ahead', Date.now())).id, next.id);
    const deadline = Date.now() + 10_000;
    while (seen.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(seen, [next.id]);
    assert.equal(b.history.current().start, 'cursor-ahead');
  });
});
