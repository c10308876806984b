import assert from 'node:assert/strict';
import type { HubBackend } from '../../src/store/ports.js';
import pg from 'pg';
import { connectionConfig } from '../../src/store/postgres/connection.js';
import { openPostgresBackend } from '../../src/store/postgres/postgres-backend.js';
import { type AccountRecord, ChangeKind, PUBLIC_RECEIVER } from '../../src/core/records.js';
import { freshDatabase } from '../support/postgres.js';
import { FAR, NOW, type Op, type Outcome, queryFor, standInDecide } from './postgres-stand-in.js';

const M1 = 'M00-0000000000000001';
const M2 = 'M00-0000000000000002';
const R1 = 'R00-0000000000000001';
const R2 = 'R00-0000000000000002';

describe('postgres backend (one node)', function () {
  this.timeout(60_000);
  let backend: HubBackend;
  let url: string;
  beforeEach(async () => {
    url = await freshDatabase();
    backend = await openPostgresBackend(url);
  });
  afterEach(() => backend.close());

  const commit = async (ops: Op[], opts: { publicCap?: number; nowMs?: number } = {}): Promise<Outcome[]> =>
    (await backend.committer.commit(queryFor(ops, opts.nowMs), standInDecide(ops, opts))).outcomes;
  const read = (receiverId: string, over: { afterSeq?: number; upToSeq?: number; nowMs?: number; limit?: number; maxBytes?: number; snapshotFrom?: number } = {}) =>
    backend.changes.receiverChanges({
      receiverId,
      afterSeq: 0,
      upToSeq: Number.MAX_SAFE_INTEGER,
      nowMs: NOW,
      limit: 1000,
      maxBytes: 1 << 20,
      ...over,
    });
  const itemId = (o: Outcome) => (assert.ok(o.ok), o.itemId);

  describe('accounts', () => {
    const account: AccountRecord = { id: R1, role: 'receiver', displayName: 'Ann', passwordHash: Buffer.from('h1'), createdAtMs: 5 };

    it('inserts once, reads back, and reports an id collision', async () => {
      assert.equal(await backend.accounts.insertAccount(account), true);
      assert.equal(await backend.accounts.insertAccount({ ...account, displayName: 'other' }), false);
      const got = await backend.accounts.getAccount(R1);
      assert.deepEqual({ ...got, passwordHash: Buffer.from(got!.passwordHash) }, account);
      assert.equal(await backend.accounts.getAccount(R2), undefined);
      assert.equal(await backend.accounts.isReceiver(R1), true);
      assert.equal(await backend.accounts.isReceiver(R2), false);
      await backend.accounts.insertAccount({ ...account, id: M1, role: 'merchant' });
      assert.equal(await backend.accounts.isReceiver(M1), false);
    });

    it('replaces a password hash only while it is still the expected one', async () => {
      await backend.accounts.insertAccount(account);
      assert.equal(await backend.accounts.replacePasswordHash(R1, Buffer.from('wrong'), Buffer.from('h2')), false);
      assert.equal(await backend.accounts.replacePasswordHash(R1, Buffer.from('h1'), Buffer.from('h2')), true);
      assert.equal(await backend.accounts.replacePasswordHash(R1, Buffer.from('h1'), Buffer.from('h3')), false);
      assert.equal(Buffer.from((await backend.accounts.getAccount(R1))!.passwordHash).toString(), 'h2');
    });
  });

  describe('committer', () => {
    it('writes a batch at consecutive sequences and persists the head', async () => {
      const out = await commit([{ push: { merchantId: M1, receiverId: R1 } }, { push: { merchantId: M1 } }, { push: { merchantId: M2, receiverId: R2 } }]);
      assert.deepEqual(out.map((o) => o.ok && o.seq), [1, 2, 3]);
      const rows = await read(R1);
      assert.deepEqual(rows.map((r) => [r.seq, r.receiverId]), [[1, R1], [2, PUBLIC_RECEIVER]]);
      assert.equal(Buffer.from(rows[0]!.frame).toString(), 'item 1');
      const next = await commit([{ push: { merchantId: M1, receiverId: R1 } }]);
      assert.equal(next[0]!.ok && next[0]!.seq, 4);
    });

    it('a push with a key deletes the live item, writes its tombstone, then the new item', async () => {
      const [first] = await commit([{ push: { merchantId: M1, receiverId: R1, itemKey: 'k', validUntilMs: NOW + 500 } }]);
      const [second] = await commit([{ push: { merchantId: M1, receiverId: R1, itemKey: 'k' } }]);
      assert.ok(second!.ok && second!.seq === 3);
      const rows = await read(R1);
      assert.deepEqual(
        rows.map((r) => [r.seq, r.kind, r.itemId]),
        [
          [2, ChangeKind.Withdrawal, itemId(first!)],
          [3, ChangeKind.Item, itemId(second!)],
        ],
      );
      assert.equal(rows[0]!.validUntilMs, NOW + 500, 'the tombstone lives as long as the item would have');
      // The same key for another receiver or merchant is another item.
      await commit([{ push: { merchantId: M1, receiverId: R2, itemKey: 'k' } }, { push: { merchantId: M2, receiverId: R1, itemKey: 'k' } }]);
      assert.equal((await read(R1)).filter((r) => r.kind === ChangeKind.Withdrawal).length, 1);
    });

    it('replaces twice inside one batch', async () => {
      const out = await commit([
        { push: { merchantId: M1, receiverId: R1, itemKey: 'k' } },
        { push: { merchantId: M1, receiverId: R1, itemKey: 'k' } },
        { push: { merchantId: M1, receiverId: R1, itemKey: 'k' } },
      ]);
      assert.ok(out.every((o) => o.ok));
      const items = (await read(R1)).filter((r) => r.kind === ChangeKind.Item);
      assert.deepEqual(items.map((r) => r.itemId), [itemId(out[2]!)]);
    });

    it('withdraw by id deletes the item and writes a tombstone; another merchant gets not-found', async () => {
      const [pushed] = await commit([{ push: { merchantId: M1, receiverId: R1 } }]);
      const id = itemId(pushed!);
      assert.deepEqual(await commit([{ withdraw: { merchantId: M2, itemId: id } }]), [{ ok: false, reason: 'not-found' }]);
      const [withdrawn] = await commit([{ withdraw: { merchantId: M1, itemId: id } }]);
      assert.ok(withdrawn!.ok && withdrawn!.seq === 2);
      assert.deepEqual((await read(R1)).map((r) => [r.seq, r.kind]), [[2, ChangeKind.Withdrawal]]);
      assert.deepEqual(await commit([{ withdraw: { merchantId: M1, itemId: id } }]), [{ ok: false, reason: 'not-found' }]);
      assert.deepEqual(await commit([{ withdraw: { merchantId: M1, itemId: 'not-an-item-id' } }]), [{ ok: false, reason: 'not-found' }]);
    });

    it('a request id replays its first ack with the same digest, and refuses another', async () => {
      const op: Op = { push: { merchantId: M1, receiverId: R1, requestId: 'req-1', body: 'a' } };
      const [first] = await commit([op]);
      const [again] = await commit([op]);
      assert.deepEqual(again, { ...first, replayed: true });
      const [other] = await commit([{ push: { ...op.push, body: 'b' } }] as Op[]);
      assert.deepEqual(other, { ok: false, reason: 'request-id-reused' });
      // The same request id of another merchant is another request.
      const [m2] = await commit([{ push: { merchantId: M2, receiverId: R1, requestId: 'req-1', body: 'a' } }]);
      assert.ok(m2!.ok && !m2!.replayed);
      assert.equal((await read(R1)).length, 2);
    });

    it('counts live public items per merchant inside the commit', async () => {
      const pub = (merchantId: string): Op => ({ push: { merchantId } });
      assert.ok((await commit([pub(M1), pub(M1)], { publicCap: 2 })).every((o) => o.ok));
      assert.deepEqual(await commit([pub(M1)], { publicCap: 2 }), [{ ok: false, reason: 'public-cap' }]);
      assert.ok((await commit([pub(M2)], { publicCap: 2 }))[0]!.ok, 'the cap is per merchant');
      // Expired items are not live.
      await commit([{ push: { merchantId: M2, validUntilMs: NOW + 10 } }], { publicCap: 2 });
      const later = await commit([pub(M2)], { publicCap: 2, nowMs: NOW + 10 });
      assert.ok(later[0]!.ok);
    });

    it('stores nothing when decide throws, and keeps working', async () => {
      await assert.rejects(
        backend.committer.commit(queryFor([]), () => {
          throw new Error('domain failure');
        }),
        /domain failure/,
      );
      const ops: Op[] = [{ push: { merchantId: M1, receiverId: R1 } }];
      // decide writes and then the batch is refused by the database (a seq collision).
      await commit(ops);
      await assert.rejects(
        backend.committer.commit(queryFor(ops), (ws, head) => {
          const r = standInDecide(ops)(ws, head);
          r.writes.inserts.push({ ...r.writes.inserts[0]!, seq: head + 2 });
          r.writes.inserts[1]!.seq = head + 1;
          r.writes.head = head + 2;
          return r;
        }),
      );
      assert.deepEqual((await read(R1)).map((r) => r.seq), [1]);
      assert.equal((await commit(ops))[0]!.ok && (await read(R1)).length, 2);
    });

    it('refuses a decision whose rows fall outside its sequence range', async () => {
      await assert.rejects(
        backend.committer.commit(queryFor([]), (_ws, head) => ({
          writes: { inserts: [], deletes: [], requests: [], head: head - 1 },
        })),
        /moved the head back/,
      );
    });

    it('purge deletes expired changes and old request ids, never reuses a sequence', async () => {
      await commit([
        { push: { merchantId: M1, receiverId: R1, validUntilMs: NOW + 10, requestId: 'old' } },
        { push: { merchantId: M1, receiverId: R1 } },
      ]);
      const removed = await backend.committer.purge(NOW + 10, NOW + 1);
      assert.equal(removed, 2);
      assert.deepEqual((await read(R1, { nowMs: 0 })).map((r) => r.seq), [2]);
      const [next] = await commit([{ push: { merchantId: M1, receiverId: R1, requestId: 'old' } }]);
      assert.ok(next!.ok && next!.seq === 3 && !next!.replayed);
    });
  });

  describe('change reader', () => {
    it('runs on sessions that force custom plans (no cached sequential-scan plan for the cursor read)', async () => {
      const client = new pg.Client(connectionConfig(url, 'pushhub-test'));
      await client.connect();
      try {
        assert.equal((await client.query('SHOW plan_cache_mode')).rows[0].plan_cache_mode, 'force_custom_plan');
        // bigint columns come back as numbers.
        assert.equal((await client.query('SELECT seq FROM head')).rows[0].seq, 0);
      } finally {
        await client.end();
      }
    });

    it('reads a receiver’s own and public changes after a cursor, up to a head, in order', async () => {
      await commit([
        { push: { merchantId: M1, receiverId: R1 } },
        { push: { merchantId: M1, receiverId: R2 } },
        { push: { merchantId: M1 } },
        { push: { merchantId: M2, receiverId: R1 } },
        { push: { merchantId: M2, receiverId: R1 } },
      ]);
      assert.deepEqual((await read(R1)).map((r) => r.seq), [1, 3, 4, 5]);
      assert.deepEqual((await read(R1, { afterSeq: 1, upToSeq: 4 })).map((r) => r.seq), [3, 4]);
      assert.deepEqual((await read(R2)).map((r) => r.seq), [2, 3]);
    });

    it('pages by row count and by bytes, always at least one row', async () => {
      const ops: Op[] = Array.from({ length: 10 }, (_, i) => ({ push: { merchantId: M1, receiverId: R1, body: 'x'.repeat(100 + i) } }));
      await commit(ops);
      assert.deepEqual((await read(R1, { limit: 3 })).map((r) => r.seq), [1, 2, 3]);
      assert.deepEqual((await read(R1, { afterSeq: 3, limit: 3 })).map((r) => r.seq), [4, 5, 6]);
      assert.deepEqual((await read(R1, { maxBytes: 250 })).map((r) => r.seq), [1, 2]);
      assert.deepEqual((await read(R1, { maxBytes: 1 })).map((r) => r.seq), [1]);
      assert.deepEqual(await read(R1, { afterSeq: 10 }), []);
    });

    it('leaves out expired changes', async () => {
      await commit([
        { push: { merchantId: M1, receiverId: R1, validUntilMs: NOW + 5 } },
        { push: { merchantId: M1, receiverId: R1, validUntilMs: NOW + 50 } },
      ]);
      assert.deepEqual((await read(R1, { nowMs: NOW + 4 })).map((r) => r.seq), [1, 2]);
      assert.deepEqual((await read(R1, { nowMs: NOW + 5 })).map((r) => r.seq), [2]);
      assert.deepEqual(await read(R1, { nowMs: NOW + 50 }), []);
    });

    it('a snapshot leaves out tombstones at or below its start, and keeps later ones', async () => {
      const [a] = await commit([{ push: { merchantId: M1, receiverId: R1 } }, { push: { merchantId: M1, receiverId: R1 } }]);
      await commit([{ withdraw: { merchantId: M1, itemId: itemId(a!) } }]); // tombstone at 3
      const snapshotFrom = 3;
      const [b] = await commit([{ push: { merchantId: M1, receiverId: R1 } }]); // 4
      await commit([{ withdraw: { merchantId: M1, itemId: itemId(b!) } }]); // tombstone at 5
      assert.deepEqual((await read(R1)).map((r) => [r.seq, r.kind]), [[2, 1], [3, 2], [5, 2]]);
      assert.deepEqual((await read(R1, { snapshotFrom })).map((r) => [r.seq, r.kind]), [[2, 1], [5, 2]]);
    });

    it('lists a merchant’s live items, optionally for one receiver', async () => {
      const out = await commit([
        { push: { merchantId: M1, receiverId: R1 } },
        { push: { merchantId: M1 } },
        { push: { merchantId: M2, receiverId: R1 } },
        { push: { merchantId: M1, receiverId: R2, validUntilMs: NOW + 1 } },
        { push: { merchantId: M1, receiverId: R1 } },
      ]);
      await commit([{ withdraw: { merchantId: M1, itemId: itemId(out[4]!) } }]);
      const list = (over: { receiverId?: string; afterSeq?: number; limit?: number; nowMs?: number } = {}) =>
        backend.changes.merchantItems({ merchantId: M1, afterSeq: 0, nowMs: NOW, limit: 100, maxBytes: 1 << 20, ...over });
      assert.deepEqual((await list()).map((r) => r.seq), [1, 2, 4]);
      assert.deepEqual((await list({ nowMs: NOW + 1 })).map((r) => r.seq), [1, 2]);
      assert.deepEqual((await list({ receiverId: R1 })).map((r) => r.seq), [1]);
      assert.deepEqual((await list({ receiverId: PUBLIC_RECEIVER })).map((r) => r.seq), [2]);
      assert.deepEqual((await list({ afterSeq: 1, limit: 1 })).map((r) => r.seq), [2]);
    });
  });
});
