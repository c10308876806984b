import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DatabaseTooNewError, MIGRATIONS, migrate } from '../../src/store/sqlite/migrations.js';
import { applyBatch } from '../../src/core/apply-batch.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { HubProcess, freePort } from '../support/hub-process.js';

const tables = (db: Database.Database) =>
  (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[]);

describe('database migrations', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pushhub-migrations-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('a database from a newer version is refused with a clear message, and left untouched', () => {
    const path = join(dir, 'hub.db');
    openSqliteStore(path).close();
    const db = new Database(path);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();

    assert.throws(
      () => openSqliteStore(path),
      (error: unknown) =>
        error instanceof DatabaseTooNewError &&
        error.message ===
          `database schema version ${MIGRATIONS.length + 1} is newer than this pushhub understands (${MIGRATIONS.length}); upgrade pushhub or point --db at another file`,
    );
    const after = new Database(path, { readonly: true });
    assert.equal(after.pragma('user_version', { simple: true }), MIGRATIONS.length + 1);
    after.close();
  });

  it('npm start on a newer database exits with that message instead of serving', async () => {
    const path = join(dir, 'hub.db');
    const db = new Database(path);
    db.pragma(`user_version = ${MIGRATIONS.length + 5}`);
    db.close();
    const hub = new HubProcess(path, await freePort());
    await assert.rejects(hub.start(), /hub exited \(1\) before listening: .*newer than this pushhub understands/);
  });

  it('each migration runs in a transaction with its version bump: a failing one leaves the previous version intact', () => {
    const db = new Database(join(dir, 'hub.db'));
    const broken = [...MIGRATIONS, 'CREATE TABLE half_done (x INTEGER); CREATE TABLE oops (;'];
    assert.throws(() => migrate(db, broken), /syntax error/);
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length, 'the good migrations stand');
    assert.ok(!tables(db).includes('half_done'), 'nothing of the failed migration remains');

    const fixed = [...MIGRATIONS, 'CREATE TABLE half_done (x INTEGER);'];
    migrate(db, fixed);
    assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length + 1);
    assert.ok(tables(db).includes('half_done'));
    db.close();
  });

  it('reopening a current database runs nothing and keeps its data', () => {
    const path = join(dir, 'hub.db');
    const store = openSqliteStore(path);
    store.insertAccount({ id: 'R00-0000000000000001', role: 'receiver', displayName: '', passwordHash: Buffer.alloc(96), createdAtMs: 1 });
    store.close();
    const again = openSqliteStore(path);
    assert.equal(again.getAccount('R00-0000000000000001')?.role, 'receiver');
    again.close();
  });

  it('items pushed before migration 2 (random ids) can still be found by id after it', () => {
    const path = join(dir, 'hub.db');
    const db = new Database(path);
    migrate(db, MIGRATIONS.slice(0, 1));
    const legacyId = 'I3f2a9c1e7b5d4e2f9a8c7b6d5e4f3a2b'; // what version 1 made: a v4 UUID without dashes
    db.prepare(
      `INSERT INTO changes (seq, kind, item_id, merchant_id, receiver_id, item_key, frame, pushed_at_ms, valid_until_ms)
       VALUES (1, 1, ?, 'M00-0000000000000001', 'R00-0000000000000001', '', x'00', 1, 9e15)`,
    ).run(legacyId);
    db.close();

    const store = openSqliteStore(path);
    assert.equal(store.findItemById(legacyId)?.seq, 1);
    store.close();
    const after = new Database(path, { readonly: true });
    const indexes = after.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'changes'").pluck().all();
    assert.ok(!indexes.includes('items_by_id') && indexes.includes('legacy_items_by_id'));
    after.close();
  });

  it('request ids remembered before migration 4 have no digest and still replay their first answer', () => {
    const path = join(dir, 'hub.db');
    const db = new Database(path);
    migrate(db, MIGRATIONS.slice(0, 2));
    db.prepare("INSERT INTO requests (merchant_id, request_id, item_id, seq, created_at_ms) VALUES ('M00-0000000000000001', 'r1', 'I1', 1, 5)").run();
    db.close();

    const store = openSqliteStore(path);
    assert.deepEqual(store.findRequest('M00-0000000000000001', 'r1'), { itemId: 'I1', seq: 1, createdAtMs: 5, digest: '' });
    // Any request with that id replays (the old behaviour) until the record ages out.
    const result = store.transaction(() =>
      applyBatch(
        store,
        [{ kind: 'withdraw', merchantId: 'M00-0000000000000001', itemId: 'I0000000000000009aaaaaaaaaaaaaaaa', key: '', receiverId: '', requestId: 'r1', requestDigest: 'ff' }],
        1,
        10,
        { idempotencyWindowMs: 1000, maxPublicItemsPerMerchant: 0 },
      ),
    );
    assert.deepEqual(result.outcomes, [{ itemId: 'I1', seq: 1 }]);
    store.close();
  });
});
