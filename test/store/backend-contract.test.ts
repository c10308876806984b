import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Status } from 'nice-grpc';
import { HubError, Reason } from '../../src/core/errors.js';
import { ChangeKind, type ChangeRecord, PUBLIC_RECEIVER } from '../../src/core/records.js';
import type { BatchLimits, WriteAck, WriteOp } from '../../src/core/write-ops.js';
import type { HubBackend, ReceiverChangesQuery } from '../../src/store/ports.js';
import { openPostgresBackend } from '../../src/store/postgres/postgres-backend.js';
import { openSqliteBackend } from '../../src/store/sqlite/sqlite-backend.js';
import { freshDatabase } from '../support/postgres.js';
import { pushOp, withdrawOp } from '../support/write-ops.js';

/**
 * The contract every HubBackend meets, through its ports only: every domain rule through
 * committer.commit(ops), the readers, purge, and the feed. Each backend adds one entry.
 */
interface BackendFactory {
  name: string;
  open(limits: BatchLimits): Promise<{ backend: HubBackend; cleanup(): Promise<void> }>;
}

const backends: BackendFactory[] = [
  {
    name: 'postgres',
    async open(limits) {
      const backend = await openPostgresBackend(await freshDatabase(), { limits });
      return { backend, cleanup: async () => undefined };
    },
  },
  {
    name: 'sqlite',
    async open(limits) {
      const dir = mkdtempSync(join(tmpdir(), 'pushhub-contract-'));
      const backend = await openSqliteBackend(join(dir, 'hub.db'), { limits });
      return { backend, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
];

const M1 = 'M00-0000000000000001';
const M2 = 'M00-0000000000000002';
const R1 = 'R00-0000000000000001';
const R2 = 'R00-0000000000000002';
const NOW = 1_000_000;
const FAR = NOW + 3_600_000;
const LIMITS: BatchLimits = { idempotencyWindowMs: 60_000, maxPublicItemsPerMerchant: 3 };

/** Waits until check() holds; fails naming what it waited for (never a timing assertion). */
async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const ack = (o: WriteAck | HubError | undefined): WriteAck => {
  assert.ok(o && !(o instanceof HubError), `expected an ack, got ${o instanceof HubError ? `${o.reason}: ${o.message}` : o}`);
  return o;
};
const refused = (o: WriteAck | HubError | undefined, code: Status, reason: Reason): HubError => {
  assert.ok(o instanceof HubError, `expected ${reason}, got an ack`);
  assert.deepEqual([o.code, o.reason], [code, reason]);
  return o;
};

for (const factory of backends) {
  describe(`backend contract: ${factory.name}`, function () {
    this.timeout(60_000);
    let backend: HubBackend;
    let cleanup: () => Promise<void>;
    let fed: ChangeRecord[];
    const open = async (limits = LIMITS) => {
      ({ backend, cleanup } = await factory.open(limits));
      fed = [];
      backend.feed.onChanges((changes) => fed.push(...changes));
      for (const id of [R1, R2]) {
        await backend.accounts.insertAccount({ id, role: 'receiver', displayName: id, passwordHash: Buffer.from('h'), createdAtMs: 1 });
      }
      await backend.accounts.insertAccount({ id: M1, role: 'merchant', displayName: 'm', passwordHash: Buffer.from('h'), createdAtMs: 1 });
      await backend.committer.ready();
    };
    beforeEach(() => open());
    afterEach(async () => {
      await backend.close();
      await cleanup();
    });

    const commit = (ops: WriteOp[], nowMs = NOW) => backend.committer.commit(ops, nowMs);
    const read = (receiverId: string, over: Partial<ReceiverChangesQuery> = {}) =>
      backend.changes.receiverChanges({ receiverId, afterSeq: 0, upToSeq: Number.MAX_SAFE_INTEGER, nowMs: NOW, limit: 1000, maxBytes: 1 << 20, ...over });
    const seqs = (rows: ChangeRecord[]) => rows.map((r) => r.seq);

    it('commits a batch at consecutive sequences; published is what is stored, and the feed hands it on in order', async () => {
      const r = await commit([pushOp(M1, R1), pushOp(M1), pushOp(M2, R2)]);
      assert.deepEqual(r.outcomes.map((o) => ack(o).seq), [1, 2, 3]);
      assert.equal(r.head, 3);
      assert.deepEqual(seqs(r.published), [1, 2, 3]);
      assert.deepEqual(seqs(await read(R1)), [1, 2]);
      assert.deepEqual(seqs(await read(R2)), [2, 3]);
      const stored = await read(R1);
      assert.deepEqual(Buffer.from(stored[0]!.frame), Buffer.from(r.published[0]!.frame));
      const next = await commit([pushOp(M1, R1)]);
      assert.equal(ack(next.outcomes[0]).seq, 4);
      await until('the feed reaches the head', () => backend.feed.head >= 4);
      assert.deepEqual(seqs(fed), [1, 2, 3, 4]);
      assert.equal(backend.feed.head, 4);
      assert.equal(await backend.changes.headSequence(), 4);
    });

    it('a commit resolves after this node’s feed has published it (a subscriber opened after the ack finds it)', async () => {
      // Many small batches: this node's own wake-ups start catch-up reads between them.
      for (let i = 1; i <= 40; i++) {
        const r = await commit([pushOp(M1, R1)]);
        assert.equal(backend.feed.head, r.head, `feed head after batch ${i}`);
        assert.equal(fed.at(-1)?.seq, r.head);
        if (i % 8 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      assert.deepEqual(seqs(fed), Array.from({ length: 40 }, (_, i) => i + 1));
    });

    it('a replace writes the older item’s tombstone, then the new item; the tombstone lives as long as the item would have', async () => {
      const first = ack((await commit([pushOp(M1, R1, { key: 'k', validUntilMs: NOW + 500 })])).outcomes[0]);
      const r = await commit([pushOp(M1, R1, { key: 'k' })]);
      const second = ack(r.outcomes[0]);
      assert.equal(second.seq, 3);
      const rows = await read(R1);
      assert.deepEqual(rows.map((x) => [x.seq, x.kind, x.itemId]), [
        [2, ChangeKind.Withdrawal, first.itemId],
        [3, ChangeKind.Item, second.itemId],
      ]);
      assert.equal(rows[0]!.validUntilMs, NOW + 500);
      assert.deepEqual(seqs(r.published), [2, 3]);
      // The same key for another receiver or merchant is another item.
      await commit([pushOp(M1, R2, { key: 'k' }), pushOp(M2, R1, { key: 'k' })]);
      assert.equal((await read(R1)).filter((x) => x.kind === ChangeKind.Withdrawal).length, 1);
    });

    it('an item replaced inside its own batch is never stored; its tombstone and the newest item are', async () => {
      const r = await commit([pushOp(M1, R1, { key: 'k' }), pushOp(M1, R1, { key: 'k' }), pushOp(M1, R1, { key: 'k' })]);
      const last = ack(r.outcomes[2]);
      assert.deepEqual(seqs(r.published), [2, 4, 5]);
      assert.deepEqual((await read(R1)).map((x) => [x.seq, x.kind]), [
        [2, ChangeKind.Withdrawal],
        [4, ChangeKind.Withdrawal],
        [5, ChangeKind.Item],
      ]);
      assert.equal((await read(R1)).at(-1)!.itemId, last.itemId);
      await until('the feed reaches the head', () => backend.feed.head >= 5);
      assert.deepEqual(seqs(fed), [2, 4, 5]);
    });

    it('an ended item with the same key is removed without a tombstone', async () => {
      await commit([pushOp(M1, R1, { key: 'k', validUntilMs: NOW + 10 })]);
      const r = await commit([pushOp(M1, R1, { key: 'k' })], NOW + 10);
      assert.deepEqual(seqs(r.published), [2]);
      assert.deepEqual((await read(R1, { nowMs: 0 })).map((x) => [x.seq, x.kind]), [[2, ChangeKind.Item]]);
    });

    it('withdraws by id and by key; another merchant’s item, a missing one and an ended one are NOT_FOUND', async () => {
      const [a, b, c] = (
        await commit([pushOp(M1, R1), pushOp(M1, R1, { key: 'k' }), pushOp(M1, R1, { validUntilMs: NOW + 5 })])
      ).outcomes.map(ack);
      refused((await commit([withdrawOp(M2, { itemId: a!.itemId })])).outcomes[0], Status.NOT_FOUND, Reason.ItemNotFound);
      refused((await commit([withdrawOp(M2, { key: 'k', receiverId: R1 })])).outcomes[0], Status.NOT_FOUND, Reason.ItemNotFound);
      const byId = await commit([withdrawOp(M1, { itemId: a!.itemId })]);
      assert.equal(ack(byId.outcomes[0]).seq, 4);
      const byKey = await commit([withdrawOp(M1, { key: 'k', receiverId: R1 })]);
      assert.equal(ack(byKey.outcomes[0]).itemId, b!.itemId);
      assert.deepEqual((await read(R1)).map((x) => [x.seq, x.kind]), [
        [3, ChangeKind.Item],
        [4, ChangeKind.Withdrawal],
        [5, ChangeKind.Withdrawal],
      ]);
      const again = await commit([withdrawOp(M1, { itemId: a!.itemId }), withdrawOp(M1, { itemId: 'I' + '0'.repeat(32) })]);
      for (const o of again.outcomes) refused(o, Status.NOT_FOUND, Reason.ItemNotFound);
      refused((await commit([withdrawOp(M1, { itemId: c!.itemId })], NOW + 5)).outcomes[0], Status.NOT_FOUND, Reason.ItemNotFound);
    });

    it('a withdrawal of an item pushed in the same batch finds it by id', async () => {
      const first = await commit([pushOp(M1, R1)]);
      const id = ack(first.outcomes[0]).itemId;
      const r = await commit([pushOp(M1, R1, { key: 'x' }), withdrawOp(M1, { key: 'x', receiverId: R1 }), withdrawOp(M1, { itemId: id })]);
      assert.deepEqual(r.outcomes.map((o) => ack(o).seq), [2, 3, 4]);
      assert.deepEqual(seqs(r.published), [3, 4]);
    });

    it('a request id replays its first ack; the same id for another request is REQUEST_ID_REUSED; ids are per merchant', async () => {
      const op = pushOp(M1, R1, { requestId: 'req-1', title: 'a' });
      const first = ack((await commit([op])).outcomes[0]);
      const again = await commit([op, op]);
      assert.deepEqual(again.outcomes, [first, first]);
      assert.deepEqual(again.published, []);
      const other = refused((await commit([pushOp(M1, R1, { requestId: 'req-1', title: 'b' })])).outcomes[0], Status.INVALID_ARGUMENT, Reason.RequestIdReused);
      assert.match(other.message, /^request_id: /);
      const m2 = ack((await commit([pushOp(M2, R1, { requestId: 'req-1', title: 'a' })])).outcomes[0]);
      assert.notEqual(m2.itemId, first.itemId);
      // A withdrawal's request id too; and in one batch, the second op replays the first.
      const w = withdrawOp(M1, { itemId: first.itemId }, { requestId: 'req-2' });
      const ws = await commit([w, w]);
      assert.deepEqual(ws.outcomes.map((o) => ack(o).seq), [3, 3]);
      // Past the window the id is new again.
      const later = ack((await commit([pushOp(M1, R1, { requestId: 'req-1', title: 'b' })], NOW + LIMITS.idempotencyWindowMs)).outcomes[0]);
      assert.equal(later.seq, 4);
    });

    it('caps live public items per merchant; replacing, ending or withdrawing one makes room', async () => {
      const r = await commit([pushOp(M1, PUBLIC_RECEIVER, { key: 'a' }), pushOp(M1), pushOp(M1, PUBLIC_RECEIVER, { validUntilMs: NOW + 10 }), pushOp(M1)]);
      r.outcomes.slice(0, 3).forEach(ack);
      const limit = refused(r.outcomes[3], Status.RESOURCE_EXHAUSTED, Reason.PublicItemLimit);
      assert.match(limit.message, /^info: /);
      ack((await commit([pushOp(M2)])).outcomes[0]); // the cap is per merchant
      ack((await commit([pushOp(M1, PUBLIC_RECEIVER, { key: 'a' })])).outcomes[0]); // a replace adds none
      refused((await commit([pushOp(M1)])).outcomes[0], Status.RESOURCE_EXHAUSTED, Reason.PublicItemLimit);
      ack((await commit([pushOp(M1)], NOW + 10)).outcomes[0]); // one has ended
      const id = ack(r.outcomes[1]).itemId;
      const w = await commit([withdrawOp(M1, { itemId: id }), pushOp(M1), pushOp(M1)], NOW + 10);
      ack(w.outcomes[0]);
      ack(w.outcomes[1]);
      refused(w.outcomes[2], Status.RESOURCE_EXHAUSTED, Reason.PublicItemLimit);
      // Specific items never count.
      ack((await commit([pushOp(M1, R1)], NOW + 10)).outcomes[0]);
    });

    it('a push to an unknown receiver (or to a merchant id) is RECEIVER_NOT_FOUND and stores nothing', async () => {
      const r = await commit([pushOp(M1, 'R00-0000000000000009'), pushOp(M1, M1), pushOp(M1, R1)]);
      refused(r.outcomes[0], Status.NOT_FOUND, Reason.ReceiverNotFound);
      refused(r.outcomes[1], Status.NOT_FOUND, Reason.ReceiverNotFound);
      assert.equal(ack(r.outcomes[2]).seq, 1);
      assert.deepEqual(seqs(r.published), [1]);
    });

    it('reads leave out ended changes, and stop at upToSeq', async () => {
      await commit([pushOp(M1, R1, { validUntilMs: NOW + 5 }), pushOp(M1, R1, { validUntilMs: NOW + 50 }), pushOp(M1, R1)]);
      assert.deepEqual(seqs(await read(R1, { nowMs: NOW + 4 })), [1, 2, 3]);
      assert.deepEqual(seqs(await read(R1, { nowMs: NOW + 5 })), [2, 3]);
      assert.deepEqual(seqs(await read(R1, { nowMs: NOW + 50 })), [3]);
      assert.deepEqual(seqs(await read(R1, { afterSeq: 1, upToSeq: 2 })), [2]);
    });

    it('a snapshot leaves out tombstones at or below its start and keeps later ones', async () => {
      const [a] = (await commit([pushOp(M1, R1), pushOp(M1, R1)])).outcomes.map(ack);
      await commit([withdrawOp(M1, { itemId: a!.itemId })]); // tombstone at 3
      const b = ack((await commit([pushOp(M1, R1)])).outcomes[0]); // 4
      await commit([withdrawOp(M1, { itemId: b.itemId })]); // tombstone at 5
      assert.deepEqual((await read(R1)).map((x) => [x.seq, x.kind]), [[2, 1], [3, 2], [5, 2]]);
      assert.deepEqual((await read(R1, { snapshotFrom: 3 })).map((x) => [x.seq, x.kind]), [[2, 1], [5, 2]]);
    });

    it('pages by rows and by bytes, always at least one row', async () => {
      const r = await commit(Array.from({ length: 6 }, (_, i) => pushOp(M1, R1, { title: 'x'.repeat(100 + i) })));
      const size = r.published[0]!.frame.length;
      assert.deepEqual(seqs(await read(R1, { limit: 2 })), [1, 2]);
      assert.deepEqual(seqs(await read(R1, { afterSeq: 2, limit: 2 })), [3, 4]);
      assert.deepEqual(seqs(await read(R1, { maxBytes: 2 * size + 1 })), [1, 2]);
      assert.deepEqual(seqs(await read(R1, { maxBytes: 1 })), [1]);
      assert.deepEqual(await read(R1, { afterSeq: 6 }), []);
    });

    it('lists a merchant’s live items, optionally for one receiver', async () => {
      const out = (
        await commit([pushOp(M1, R1), pushOp(M1), pushOp(M2, R1), pushOp(M1, R2, { validUntilMs: NOW + 1 }), pushOp(M1, R1)])
      ).outcomes.map(ack);
      await commit([withdrawOp(M1, { itemId: out[4]!.itemId })]);
      const list = (over: { receiverId?: string; afterSeq?: number; limit?: number; nowMs?: number } = {}) =>
        backend.changes.merchantItems({ merchantId: M1, afterSeq: 0, nowMs: NOW, limit: 100, maxBytes: 1 << 20, ...over }).then(seqs);
      assert.deepEqual(await list(), [1, 2, 4]);
      assert.deepEqual(await list({ nowMs: NOW + 1 }), [1, 2]);
      assert.deepEqual(await list({ receiverId: R1 }), [1]);
      assert.deepEqual(await list({ receiverId: PUBLIC_RECEIVER }), [2]);
      assert.deepEqual(await list({ afterSeq: 1, limit: 1 }), [2]);
    });

    it('purge removes ended changes and old request ids and never reuses a sequence', async () => {
      await commit([pushOp(M1, R1, { validUntilMs: NOW + 10, requestId: 'old' }), pushOp(M1, R1)]);
      assert.equal(await backend.committer.purge(NOW + 10, NOW + 1), 2);
      assert.deepEqual(seqs(await read(R1, { nowMs: 0 })), [2]);
      const next = ack((await commit([pushOp(M1, R1, { requestId: 'old', title: 'other' })], NOW + 10)).outcomes[0]);
      assert.equal(next.seq, 3, 'the request id was forgotten and the head kept');
      assert.equal(await backend.changes.headSequence(), 3);
    });

    it('accounts: one per id, a compare-and-set password hash, receivers told from merchants', async () => {
      const acc = { id: 'R00-0000000000000005', role: 'receiver' as const, displayName: 'Ann', passwordHash: Buffer.from('h1'), createdAtMs: 5 };
      assert.equal(await backend.accounts.insertAccount(acc), true);
      assert.equal(await backend.accounts.insertAccount({ ...acc, displayName: 'other' }), false);
      const got = await backend.accounts.getAccount(acc.id);
      assert.deepEqual({ ...got, passwordHash: Buffer.from(got!.passwordHash) }, acc);
      assert.equal(await backend.accounts.getAccount('R00-9999999999999999'), undefined);
      assert.equal(await backend.accounts.isReceiver(acc.id), true);
      assert.equal(await backend.accounts.isReceiver(M1), false);
      assert.equal(await backend.accounts.replacePasswordHash(acc.id, Buffer.from('wrong'), Buffer.from('h2')), false);
      assert.equal(await backend.accounts.replacePasswordHash(acc.id, Buffer.from('h1'), Buffer.from('h2')), true);
      assert.equal(await backend.accounts.replacePasswordHash(acc.id, Buffer.from('h1'), Buffer.from('h3')), false);
    });

    it('an account event reaches this node’s feed once', async () => {
      const events: unknown[] = [];
      backend.feed.onAccountEvent((e) => events.push(e));
      await backend.feed.publishAccountEvent({ kind: 'password-rotated', accountId: R1 });
      await until('the event arrives', () => events.length > 0);
      await commit([pushOp(M1, R1)]); // a later catch-up does not hand it on again
      await until('the feed reaches the head', () => backend.feed.head >= 1);
      assert.deepEqual(events, [{ kind: 'password-rotated', accountId: R1 }]);
    });

    it('receipts: a confirmation moves the cursor up only, appends one event per merchant, names the public items it reached', async () => {
      const r = await commit([pushOp(M1, R1), pushOp(M2, R1), pushOp(M1), pushOp(M1, R2)]);
      const [a, b, pub] = r.outcomes.map((o) => ack(o));
      const events: { id: number }[] = [];
      backend.receiptFeed.onEvents((e) => events.push(...e));
      const first = await backend.receipts.confirm([{ receiverId: R1, upToSeq: 3 }], NOW + 10);
      assert.deepEqual(first.confirmed, [3]);
      assert.deepEqual(first.events.map((e) => [e.merchantId, e.receiverId, e.fromSeq, e.upToSeq, e.atMs]).sort(), [[M1, R1, 0, 3, NOW + 10], [M2, R1, 0, 3, NOW + 10]]);
      assert.deepEqual(first.publicItems.map((p) => p.itemId), [pub!.itemId]);
      assert.equal(first.lagsMs.length, 2);
      backend.receiptFeed.committed(first.events);
      await until('the receipt feed hands the events on', () => events.length === 2);
      assert.equal(backend.receiptFeed.head, Math.max(...first.events.map((e) => e.id)));
      const back = await backend.receipts.confirm([{ receiverId: R1, upToSeq: 1 }, { receiverId: 'R00-9999999999999999', upToSeq: 2 }], NOW + 20);
      assert.deepEqual(back.confirmed, [3, 0], 'backwards is ignored; an unknown receiver records nothing');
      assert.deepEqual(back.events, []);

      const facts = await backend.receipts.itemFacts(M1, [a!.itemId, b!.itemId, pub!.itemId, 'nope'], NOW + 30);
      assert.deepEqual(facts.map((f) => f.found && [f.receiverId, f.end.kind, f.optedOut, f.confirmedAtMs]), [[R1, 'live', false, NOW + 10], false, ['', 'live', false, undefined], false]);
      assert.deepEqual(await backend.receipts.publicCounts(pub!.seq, M1), { delivered: 1, eligible: 2 });
      assert.deepEqual(await backend.receipts.publicCounts(pub!.seq, M1, 0), { delivered: 0, eligible: 0 }, 'nobody was registered before it ended');
      const m1Events = await backend.receipts.eventsAfter(M1, 0, Number.MAX_SAFE_INTEGER, 10);
      assert.equal(m1Events.length, 1);
      assert.deepEqual(await backend.receipts.deliveredItems(m1Events[0]!), [{ itemId: a!.itemId, seq: a!.seq }]);
      assert.equal(await backend.receipts.headEventId(), Math.max(...first.events.map((e) => e.id)));
    });

    it('receipts: withdrawn and expired items, opting out, progress events, and the purge', async () => {
      const r = await commit([pushOp(M1, R1, { key: 'k' }), pushOp(M1, R1, { validUntilMs: NOW + 50 }), pushOp(M1, R2)]);
      const [keyed, short, other] = r.outcomes.map((o) => ack(o));
      await commit([pushOp(M1, R1, { key: 'k', title: 'v2' })], NOW + 1);
      await commit([withdrawOp(M1, { itemId: other!.itemId })], NOW + 2);
      const facts = await backend.receipts.itemFacts(M1, [keyed!.itemId, short!.itemId, other!.itemId], NOW + 100);
      assert.deepEqual(facts.map((f) => f.found && f.end), [{ kind: 'replaced', atMs: NOW + 1 }, { kind: 'expired', atMs: NOW + 50 }, { kind: 'withdrawn', atMs: NOW + 2 }]);
      assert.deepEqual((await backend.receipts.itemFacts(M2, [keyed!.itemId], NOW)).map((f) => f.found), [false], 'another merchant sees nothing');

      const done = await backend.receipts.confirm([{ receiverId: R2, upToSeq: 5 }], NOW + 3);
      assert.equal(done.events.length, 0, 'the withdrawn item was not live: no receipt');
      await backend.receipts.confirm([{ receiverId: R1, upToSeq: 5 }], NOW + 3);
      assert.equal(await backend.receipts.setOptOut(R1, undefined, NOW), false);
      assert.equal(await backend.receipts.setOptOut(R1, true, NOW), true);
      assert.equal(await backend.receipts.setOptOut(R1, undefined, NOW), true);
      assert.deepEqual(await backend.receipts.eventsAfter(M1, 0, Number.MAX_SAFE_INTEGER, 10), [], 'opting out deletes the receiver\'s receipts');
      assert.deepEqual((await backend.receipts.confirm([{ receiverId: R1, upToSeq: 5 }], NOW + 4)).confirmed, [0]);
      assert.equal((await backend.receipts.itemFacts(M1, [short!.itemId], NOW))[0]!.found && (await backend.receipts.itemFacts(M1, [short!.itemId], NOW))[0]!.found, true);
      assert.equal(((await backend.receipts.itemFacts(M1, [short!.itemId], NOW))[0] as { optedOut: boolean }).optedOut, true);

      const progress = await backend.receipts.appendProgress([{ merchantId: M1, itemId: 'Ix', seq: 9, atMs: NOW, deliveredCount: 1, eligibleCount: 2, keepUntilMs: NOW + 10 }]);
      assert.deepEqual(progress.map((e) => [e.receiverId, e.fromSeq, e.deliveredCount, e.eligibleCount, e.itemId]), [['', 9, 1, 2, 'Ix']]);
      await backend.committer.purge(NOW + 20, 0);
      assert.deepEqual(await backend.receipts.eventsAfter(M1, 0, Number.MAX_SAFE_INTEGER, 10), [], 'purged with their items');
      assert.equal(await backend.receipts.headEventId() >= progress[0]!.id, true);
    });

    it('without a public cap, any number of public items is taken', async () => {
      await backend.close();
      await cleanup();
      await open({ ...LIMITS, maxPublicItemsPerMerchant: 0 });
      const r = await commit(Array.from({ length: 10 }, () => pushOp(M1)));
      r.outcomes.forEach(ack);
    });
  });
}
