import assert from 'node:assert/strict';
import type { AccountEvent, HubBackend } from '../../src/store/ports.js';
import { type PostgresBackendOptions, openPostgresBackend } from '../../src/store/postgres/postgres-backend.js';
import { LOCK_NAMESPACE, LockKey } from '../../src/store/postgres/connection.js';
import type { ChangeRecord } from '../../src/core/records.js';
import { prng } from '../support/prng.js';
import { adminQuery, freshDatabase } from '../support/postgres.js';
import type { WriteOp } from '../../src/core/write-ops.js';
import { HubError } from '../../src/core/errors.js';
import { pushOp } from '../support/write-ops.js';

/** Waits until check() holds; fails with what it was waiting for (never a timing assertion). */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const databaseName = (url: string) => new URL(url).pathname.slice(1);
const NOW = 1_000_000;
const limits = { idempotencyWindowMs: 60_000, maxPublicItemsPerMerchant: 0 };
const RECEIVERS = Array.from({ length: 5 }, (_, i) => `R00-000000000000000${i}`);

describe('postgres backend: several nodes on one database', function () {
  this.timeout(90_000);
  let url: string;
  const open: HubBackend[] = [];
  const node = async (options: Partial<PostgresBackendOptions> = {}) => {
    const backend = await openPostgresBackend(url, { limits, leaderRetryMs: 20, reconnectDelayMs: 20, ...options });
    open.push(backend);
    for (const id of RECEIVERS) {
      // Every node registers the same receivers: the second insert of an id is refused, harmlessly.
      await backend.accounts.insertAccount({ id, role: 'receiver', displayName: id, passwordHash: Buffer.from('h'), createdAtMs: 1 });
    }
    return backend;
  };
  const record = (backend: HubBackend) => {
    const seen: ChangeRecord[] = [];
    backend.feed.onChanges((changes) => seen.push(...changes));
    return seen;
  };
  const commit = async (backend: HubBackend, ops: WriteOp[]) => {
    const result = await backend.committer.commit(ops, NOW);
    for (const o of result.outcomes) if (o instanceof HubError) throw o;
    return result;
  };

  beforeEach(async () => {
    url = await freshDatabase();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((b) => b.close()));
  });

  it('two nodes committing interleaved batches: every feed sees every sequence once, in order', async () => {
    const a = await node();
    const b = await node();
    const c = await node({ feedPageSize: 7 }); // only reads, in small catch-up pages
    const feeds = [a, b, c].map(record);
    const random = prng(11);
    let total = 0;
    const writer = async (backend: HubBackend, merchantId: string) => {
      for (let batch = 0; batch < 40; batch++) {
        const size = 1 + Math.floor(random() * 25);
        total += size;
        const ops: WriteOp[] = Array.from({ length: size }, (_, i) => pushOp(merchantId, i % 3 === 0 ? '' : RECEIVERS[i % 5], { title: `t${i}` }));
        await commit(backend, ops);
      }
    };
    await Promise.all([writer(a, 'M00-0000000000000001'), writer(b, 'M00-0000000000000002')]);
    await until('every feed reaches the head', () => feeds.every((f) => f.length >= total));
    const expected = Array.from({ length: total }, (_, i) => i + 1);
    for (const [i, seen] of feeds.entries()) {
      assert.deepEqual(seen.map((x) => x.seq), expected, `feed of node ${i}`);
    }
    assert.deepEqual([a, b, c].map((x) => x.feed.head), [total, total, total]);
    // Both merchants' rows are in every feed, with their frames.
    assert.ok(feeds[2]!.some((x) => x.merchantId === 'M00-0000000000000001'));
    assert.ok(feeds[2]!.some((x) => x.merchantId === 'M00-0000000000000002'));
    // Every node hands on the same rows, frames included.
    assert.deepEqual(feeds[1]!.map((x) => Buffer.from(x.frame).toString('hex')), feeds[0]!.map((x) => Buffer.from(x.frame).toString('hex')));
  });

  it('a replace on one node reaches the other as its tombstone and the new item', async () => {
    const a = await node();
    const b = await node();
    const seen = record(b);
    const push = pushOp('M00-0000000000000001', 'R00-0000000000000001', { key: 'k' });
    await commit(a, [push]);
    await until('node b sees the first item', () => seen.length === 1);
    await commit(a, [push]);
    await until('node b sees the replacement', () => seen.length === 3);
    assert.deepEqual(seen.map((x) => [x.seq, x.kind, x.itemId === seen[0]!.itemId]), [
      [1, 1, true],
      [2, 2, true],
      [3, 1, false],
    ]);
  });

  it('the domain decides on the shared rows: a request id, a receiver and an item of one node are known to the other', async () => {
    const a = await node();
    const b = await node();
    const M = 'M00-0000000000000001';
    const op = pushOp(M, RECEIVERS[1], { requestId: 'req', title: 'a' });
    const first = await commit(a, [op]);
    const replay = await b.committer.commit([op], NOW);
    assert.deepEqual(replay.outcomes, first.outcomes, 'B answers A’s request id from the record');
    assert.deepEqual(replay.published, []);
    // A receiver registered through B is known to a commit on A.
    await b.accounts.insertAccount({ id: 'R00-0000000000000077', role: 'receiver', displayName: 'x', passwordHash: Buffer.from('h'), createdAtMs: 1 });
    await commit(a, [pushOp(M, 'R00-0000000000000077')]);
    // B withdraws by key what A pushed, and the public cap counts both nodes' items.
    await commit(a, [pushOp(M, RECEIVERS[2], { key: 'k' })]);
    const withdrawn = await b.committer.commit([{ kind: 'withdraw', merchantId: M, itemId: '', key: 'k', receiverId: RECEIVERS[2]!, requestId: '', requestDigest: '' }], NOW);
    assert.ok(!(withdrawn.outcomes[0] instanceof HubError));
    assert.deepEqual(withdrawn.published.map((c) => c.kind), [2]);
  });

  it('the public item cap holds across nodes', async () => {
    const capped = { ...limits, maxPublicItemsPerMerchant: 3 };
    const a = await node({ limits: capped });
    const b = await node({ limits: capped });
    const M = 'M00-0000000000000001';
    const results = await Promise.all([a, b, a, b, a, b].map((n) => n.committer.commit([pushOp(M)], NOW)));
    const refused = results.filter((r) => r.outcomes[0] instanceof HubError).map((r) => (r.outcomes[0] as HubError).reason);
    assert.deepEqual(refused, ['PUBLIC_ITEM_LIMIT', 'PUBLIC_ITEM_LIMIT', 'PUBLIC_ITEM_LIMIT']);
  });

  it('an account event published on one node reaches every node once', async () => {
    const a = await node();
    const b = await node();
    const events: Record<string, AccountEvent[]> = { a: [], b: [] };
    a.feed.onAccountEvent((e) => events.a!.push(e));
    b.feed.onAccountEvent((e) => events.b!.push(e));
    await a.feed.publishAccountEvent({ kind: 'password-rotated', accountId: 'R00-0000000000000007' });
    await b.feed.publishAccountEvent({ kind: 'password-rotated', accountId: 'R00-0000000000000008' });
    await until('both nodes see both events', () => events.a!.length === 2 && events.b!.length === 2);
    // A catch-up after that (the poll) does not hand them on again.
    await commit(a, [pushOp('M00-0000000000000001')]);
    await until('node b sees the push', () => b.feed.head === 1);
    for (const seen of [events.a!, events.b!]) {
      assert.deepEqual(seen, [
        { kind: 'password-rotated', accountId: 'R00-0000000000000007' },
        { kind: 'password-rotated', accountId: 'R00-0000000000000008' },
      ]);
    }
  });

  it('the leader is exactly one of two nodes, and moves when its connection closes', async () => {
    const a = await node();
    const b = await node();
    await until('one node leads', () => a.leader.isLeader || b.leader.isLeader);
    assert.notEqual(a.leader.isLeader, b.leader.isLeader);
    const [leader, follower] = a.leader.isLeader ? [a, b] : [b, a];
    await leader.close();
    open.splice(open.indexOf(leader), 1);
    await until('the other node leads', () => follower.leader.isLeader);
  });

  it('a leader whose session is killed stops leading; exactly one node leads again', async () => {
    const a = await node();
    const b = await node();
    await until('one node leads', () => a.leader.isLeader || b.leader.isLeader);
    const holder = async () =>
      (
        await adminQuery<{ pid: number }>(
          `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
           WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.granted AND d.datname = $3`,
          [LOCK_NAMESPACE, LockKey.Leader, databaseName(url)],
        )
      ).map((r) => r.pid);
    const [pid] = await holder();
    assert.ok(pid);
    const leaderBefore = a.leader.isLeader ? a : b;
    await adminQuery('SELECT pg_terminate_backend($1)', [pid]);
    await until('the killed leader notices', () => !leaderBefore.leader.isLeader || b.leader.isLeader === a.leader.isLeader);
    await until('a new session holds the lock and its node leads', async () => {
      const pids = await holder();
      return pids.length === 1 && pids[0] !== pid && a.leader.isLeader !== b.leader.isLeader;
    });
  });

  it('the feed recovers after its listener connection is killed', async () => {
    // No fallback poll during the test: only the reconnected listener can bring the change.
    const a = await node({ feedPollIntervalMs: 600_000 });
    const b = await node({ feedPollIntervalMs: 600_000 });
    const seen = record(b);
    const listeners = () =>
      adminQuery<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'pushhub-listener' AND datname = $1",
        [databaseName(url)],
      );
    const before = (await listeners()).map((r) => r.pid);
    assert.equal(before.length, 2);
    await adminQuery('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [before]);
    await commit(a, [pushOp('M00-0000000000000001')]);
    await until('node b gets the change committed while it had no listener', () => seen.length === 1);
    await until('both listeners are back', async () => {
      const now = (await listeners()).map((r) => r.pid);
      return now.length === 2 && now.every((p) => !before.includes(p));
    });
    await commit(a, [pushOp('M00-0000000000000001')]);
    await until('node b gets a change after the reconnect', () => seen.length === 2);
    assert.deepEqual(seen.map((x) => x.seq), [1, 2]);
  });

  it('the writer opens a new connection after its own is killed', async () => {
    const a = await node();
    const seen = record(a);
    await commit(a, [pushOp('M00-0000000000000001')]);
    await adminQuery(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pushhub-writer' AND datname = $1",
      [databaseName(url)],
    );
    // The first commit may meet the dead connection (and fail, storing nothing); one after it succeeds.
    let stored = 0;
    for (let attempt = 0; attempt < 3 && stored === 0; attempt++) {
      await commit(a, [pushOp('M00-0000000000000001')]).then(
        () => stored++,
        () => undefined,
      );
    }
    assert.equal(stored, 1);
    await until('the feed has both changes', () => seen.length === 2);
    assert.deepEqual(seen.map((x) => x.seq), [1, 2]);
  });
});
