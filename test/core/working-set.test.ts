import assert from 'node:assert/strict';
import { applyBatch } from '../../src/core/apply-batch.js';
import { ChangeKind, type ChangeRecord, PUBLIC_RECEIVER } from '../../src/core/records.js';
import { createWorkingSetView, workingSetQueryOf } from '../../src/core/working-set.js';
import { HubError } from '../../src/core/errors.js';
import type { WriteAck } from '../../src/core/write-ops.js';
import { type WorkingSet, workingSetKey } from '../../src/store/ports.js';
import { newItemId } from '../../src/core/ids.js';
import { pushOp, withdrawOp } from '../support/write-ops.js';

const M1 = 'M00-0000000000000001';
const M2 = 'M00-0000000000000002';
const R1 = 'R00-0000000000000001';
const NOW = 1_000_000;
const limits = { idempotencyWindowMs: 3_600_000, maxPublicItemsPerMerchant: 2 };

const emptySet = (): WorkingSet => ({
  requests: new Map(),
  itemsByKey: new Map(),
  itemsById: new Map(),
  receivers: new Set([R1]),
  publicItemCounts: new Map(),
});

const item = (seq: number, over: Partial<ChangeRecord> = {}): ChangeRecord => ({
  seq,
  kind: ChangeKind.Item,
  itemId: newItemId(seq),
  merchantId: M1,
  receiverId: R1,
  itemKey: '',
  frame: Buffer.from([seq]),
  pushedAtMs: 1,
  validUntilMs: NOW + 1000,
  ...over,
});

const ack = (o: WriteAck | HubError) => {
  assert.ok(!(o instanceof HubError), `expected an ack, got ${o instanceof HubError ? o.message : ''}`);
  return o;
};

describe('working set', () => {
  describe('workingSetQueryOf', () => {
    it('names every request id, key, item id, merchant count and receiver once', () => {
      const q = workingSetQueryOf(
        [
          pushOp(M1, R1, { key: 'k', requestId: 'a' }),
          pushOp(M1, R1, { key: 'k', requestId: 'a' }),
          pushOp(M1, PUBLIC_RECEIVER, { key: 'p' }),
          pushOp(M2),
          withdrawOp(M1, { itemId: 'I1' }),
          withdrawOp(M2, { key: 'w', receiverId: R1 }, { requestId: 'b' }),
          pushOp(M1, R1), // no key: nothing to look up by key
        ],
        NOW,
      );
      assert.deepEqual(q.requests, [
        { merchantId: M1, requestId: 'a' },
        { merchantId: M2, requestId: 'b' },
      ]);
      assert.deepEqual(q.itemKeys, [
        { merchantId: M1, receiverId: R1, itemKey: 'k' },
        { merchantId: M1, receiverId: PUBLIC_RECEIVER, itemKey: 'p' },
        { merchantId: M2, receiverId: R1, itemKey: 'w' },
      ]);
      assert.deepEqual(q.itemIds, ['I1']);
      assert.deepEqual(q.publicCountsFor.sort(), [M1, M2]);
      assert.deepEqual(q.receiverIds, [R1]);
      assert.equal(q.nowMs, NOW);
    });

    it('asks for no public counts when there is no cap', () => {
      const q = workingSetQueryOf([pushOp(M1), withdrawOp(M1, { itemId: 'I1' })], NOW, { ...limits, maxPublicItemsPerMerchant: 0 });
      assert.deepEqual(q.publicCountsFor, []);
    });
  });

  describe('createWorkingSetView', () => {
    it('finds an item the batch inserted by key and by id, and not after the batch removed it', () => {
      const view = createWorkingSetView(emptySet(), 10);
      const pushed = item(11, { itemKey: 'k' });
      view.insertChange(pushed);
      const locator = { merchantId: M1, receiverId: R1, itemKey: 'k' };
      assert.equal(view.findItemByKey(locator), pushed);
      assert.equal(view.findItemById(pushed.itemId), pushed);
      view.deleteChange(11);
      assert.equal(view.findItemByKey(locator), undefined);
      assert.equal(view.findItemById(pushed.itemId), undefined);
      const next = item(13, { itemKey: 'k' });
      view.insertChange(next);
      assert.equal(view.findItemByKey(locator), next);
      view.setHeadSequence(13);
      const writes = view.writes(13);
      assert.deepEqual(writes.inserts.map((c) => c.seq), [13], 'an item removed by its own batch is never stored');
      assert.deepEqual(writes.deletes, []);
      assert.equal(writes.head, 13);
    });

    it('deletes a loaded item from both maps, and lists it for deletion', () => {
      const ws = emptySet();
      const stored = item(3, { itemKey: 'k' });
      ws.itemsByKey.set(workingSetKey(M1, R1, 'k'), stored);
      ws.itemsById.set(stored.itemId, { ...stored });
      const view = createWorkingSetView(ws, 5);
      view.deleteChange(3);
      assert.equal(view.findItemByKey({ merchantId: M1, receiverId: R1, itemKey: 'k' }), undefined);
      assert.equal(view.findItemById(stored.itemId), undefined);
      assert.deepEqual(view.writes(5).deletes, [3]);
    });

    it('makes a saved request visible to later ops of the batch', () => {
      const ws = emptySet();
      ws.requests.set(workingSetKey(M1, 'old'), { itemId: 'I0', seq: 1, createdAtMs: 5, digest: 'd0' });
      const view = createWorkingSetView(ws, 1);
      assert.equal(view.findRequest(M1, 'old')?.itemId, 'I0');
      assert.equal(view.findRequest(M2, 'old'), undefined);
      view.saveRequest(M1, 'new', { itemId: 'I2', seq: 2, createdAtMs: NOW, digest: 'd' });
      assert.equal(view.findRequest(M1, 'new')?.seq, 2);
      assert.deepEqual(view.writes(1).requests.map((r) => r.requestId), ['new']);
    });

    it('counts live public items from the loaded count and the batch’s own writes', () => {
      const ws = emptySet();
      const stored = item(2, { receiverId: PUBLIC_RECEIVER });
      ws.itemsById.set(stored.itemId, stored);
      ws.publicItemCounts.set(M1, 4);
      const view = createWorkingSetView(ws, 2);
      view.insertChange(item(3, { receiverId: PUBLIC_RECEIVER }));
      view.insertChange(item(4, { receiverId: PUBLIC_RECEIVER, validUntilMs: NOW })); // ended at NOW
      view.insertChange(item(5, { kind: ChangeKind.Withdrawal, receiverId: PUBLIC_RECEIVER }));
      assert.equal(view.countPublicItems(M1, NOW), 5);
      view.deleteChange(2);
      assert.equal(view.countPublicItems(M1, NOW), 4);
      assert.throws(() => view.countPublicItems(M2, NOW), /no public item count loaded/);
    });

    it('refuses an insert at a sequence that is taken', () => {
      const view = createWorkingSetView(emptySet(), 7);
      assert.throws(() => view.insertChange(item(7)), /already taken/);
      view.insertChange(item(8));
      assert.throws(() => view.insertChange(item(8)), /already taken/);
    });
  });

  describe('applyBatch over the view', () => {
    const run = (ws: WorkingSet, ops: Parameters<typeof workingSetQueryOf>[0], head = 0) => {
      const view = createWorkingSetView(ws, head);
      const result = applyBatch(view, ops, head, NOW, limits);
      return { result, writes: view.writes(result.head) };
    };

    it('a push, its replacement and a withdrawal in one batch store the tombstones and nothing else', () => {
      const { result, writes } = run(emptySet(), [
        pushOp(M1, R1, { key: 'k' }),
        pushOp(M1, R1, { key: 'k' }),
        withdrawOp(M1, { key: 'k', receiverId: R1 }),
      ]);
      assert.deepEqual(result.outcomes.map((o) => ack(o).seq), [1, 3, 4]);
      assert.deepEqual(writes.inserts.map((c) => [c.seq, c.kind]), [
        [2, ChangeKind.Withdrawal],
        [4, ChangeKind.Withdrawal],
      ]);
      assert.deepEqual(writes.deletes, []);
      assert.equal(writes.head, 4);
      assert.deepEqual(result.published, writes.inserts, 'what is fanned out is what is stored');
    });

    it('a withdrawal of a public item frees one place under the cap, not two', () => {
      // Two live public items (the cap); withdrawing one leaves room for exactly one more.
      const ws = emptySet();
      const stored = item(1, { receiverId: PUBLIC_RECEIVER });
      ws.itemsById.set(stored.itemId, stored);
      ws.publicItemCounts.set(M1, 2);
      const { result } = run(ws, [withdrawOp(M1, { itemId: stored.itemId }), pushOp(M1), pushOp(M1)], 2);
      assert.ok(!(result.outcomes[0] instanceof HubError));
      assert.ok(!(result.outcomes[1] instanceof HubError));
      assert.ok(result.outcomes[2] instanceof HubError && result.outcomes[2].reason === 'PUBLIC_ITEM_LIMIT');
    });

    it('answers RECEIVER_NOT_FOUND for a receiver the working set does not hold', () => {
      const { result, writes } = run(emptySet(), [pushOp(M1, 'R00-0000000000000009'), pushOp(M1, R1)]);
      assert.ok(result.outcomes[0] instanceof HubError && result.outcomes[0].reason === 'RECEIVER_NOT_FOUND');
      assert.match((result.outcomes[0] as HubError).message, /^receiver_id: /);
      assert.deepEqual(writes.inserts.map((c) => c.seq), [1]);
    });
  });
});
