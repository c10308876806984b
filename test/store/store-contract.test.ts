import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newItemId } from '../../src/core/ids.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { type ChangeRecord, ChangeKind, PUBLIC_RECEIVER } from '../../src/core/records.js';
import type { HubStore } from '../../src/store/sqlite/sqlite-store.js';

/**
 * The contract every HubStore implementation must meet. A second backend adds one line at
 * the bottom and runs the same suite.
 */
function describeStoreContract(name: string, open: () => { store: HubStore; cleanup: () => void }) {
  describe(`store contract: ${name}`, () => {
    let store: HubStore;
    let cleanup: () => void;
    beforeEach(() => ({ store, cleanup } = open()));
    afterEach(() => {
      store.close();
      cleanup();
    });

    const change = (seq: number, overrides: Partial<ChangeRecord> = {}): ChangeRecord => ({
      seq,
      kind: ChangeKind.Item,
      itemId: `I${seq.toString(16).padStart(16, '0')}${'0'.repeat(16)}`, // the format of newItemId(seq)
      merchantId: 'M00-0000000000000001',
      receiverId: 'R00-0000000000000001',
      itemKey: '',
      frame: Buffer.from([seq]),
      pushedAtMs: 1000,
      validUntilMs: 10_000,
      ...overrides,
    });

    it('inserts accounts once per id and reads them back', () => {
      const account = { id: 'R00-0000000000000001', role: 'receiver' as const, displayName: 'r', passwordHash: Buffer.from('h'), createdAtMs: 1 };
      assert.equal(store.insertAccount(account), true);
      assert.equal(store.insertAccount(account), false);
      assert.deepEqual(store.getAccount(account.id), account);
      assert.equal(store.isReceiver(account.id), true);
      assert.equal(store.updatePasswordHash(account.id, Buffer.from('h2')), true);
      assert.deepEqual(store.getAccount(account.id)!.passwordHash, Buffer.from('h2'));
      assert.equal(store.getAccount('R00-9999999999999999'), undefined);
    });

    it('replaces a password hash only while it still equals the expected one (compare-and-set)', () => {
      const account = { id: 'M00-0000000000000007', role: 'merchant' as const, displayName: 'm', passwordHash: Buffer.from('h1'), createdAtMs: 1 };
      store.insertAccount(account);
      assert.equal(store.replacePasswordHash(account.id, Buffer.from('h1'), Buffer.from('h2')), true);
      assert.equal(store.replacePasswordHash(account.id, Buffer.from('h1'), Buffer.from('h3')), false, 'a stale expected hash loses');
      assert.deepEqual(store.getAccount(account.id)!.passwordHash, Buffer.from('h2'));
      assert.equal(store.replacePasswordHash('M00-9999999999999999', Buffer.from('h2'), Buffer.from('h3')), false);
    });

    it('reads a receiver\'s own and public changes after a cursor, ascending, unexpired', () => {
      store.transaction(() => {
        store.insertChange(change(1));
        store.insertChange(change(2, { receiverId: 'R00-0000000000000002' }));
        store.insertChange(change(3, { receiverId: PUBLIC_RECEIVER }));
        store.insertChange(change(4, { validUntilMs: 500 }));
        store.insertChange(change(5, { kind: ChangeKind.Withdrawal }));
        store.setHeadSequence(5);
      });
      const seqs = (after: number, tombstonesAfter = after) =>
        store.readChanges('R00-0000000000000001', after, 1000, 100, tombstonesAfter).map((c) => c.seq);
      assert.deepEqual(seqs(0), [1, 3, 5]);
      assert.deepEqual(seqs(0, 5), [1, 3], 'a snapshot started at head 5 skips tombstones up to 5');
      assert.deepEqual(seqs(0, 4), [1, 3, 5], 'a tombstone after the snapshot started is read');
      assert.deepEqual(seqs(1), [3, 5]);
      assert.deepEqual(store.readChanges('R00-0000000000000001', 0, 1000, 2, 0).map((c) => c.seq), [1, 3]);
      assert.equal(store.headSequence(), 5);
    });

    it('finds live items by key and id, and keeps one live item per key', () => {
      store.transaction(() => store.insertChange(change(1, { itemKey: 'k' })));
      const locator = { merchantId: 'M00-0000000000000001', receiverId: 'R00-0000000000000001', itemKey: 'k' };
      assert.equal(store.findItemByKey(locator)?.seq, 1);
      assert.equal(store.findItemById(change(1).itemId)?.seq, 1);
      assert.equal(store.findItemById(`I${'0'.repeat(15)}1${'1'.repeat(16)}`), undefined, 'same sequence, other id');
      assert.throws(() => store.transaction(() => store.insertChange(change(2, { itemKey: 'k' }))));
      store.transaction(() => {
        store.deleteChange(1);
        store.insertChange(change(2, { itemKey: 'k' }));
      });
      assert.equal(store.findItemByKey(locator)?.seq, 2);
    });

    it('finds items by the random ids of older hubs and by new sequence-bearing ids', () => {
      const legacyId = 'I3f2a9c1e7b5d4e2f9a8c7b6d5e4f3a2b'; // a v4 UUID without dashes
      store.transaction(() => {
        store.insertChange(change(7, { itemId: legacyId }));
        store.insertChange(change(8, { itemId: newItemId(8) }));
      });
      assert.equal(store.findItemById(legacyId)?.seq, 7);
      assert.equal(store.findItemById(store.readChanges('R00-0000000000000001', 7, 1000, 1, 8)[0]!.itemId)?.seq, 8);
      assert.equal(store.findItemById(newItemId(7)), undefined, 'another id with the same sequence');
    });

    it('rolls a failed transaction back entirely', () => {
      assert.throws(() =>
        store.transaction(() => {
          store.insertChange(change(1));
          store.setHeadSequence(1);
          throw new Error('boom');
        }),
      );
      assert.equal(store.headSequence(), 0);
      assert.deepEqual(store.readChanges('R00-0000000000000001', 0, 0, 10, 0), []);
    });

    it('remembers request ids and purges old ones and expired changes', () => {
      store.transaction(() => {
        store.saveRequest('M00-0000000000000001', 'r1', { itemId: 'I1', seq: 1, createdAtMs: 100, digest: 'abc' });
        store.insertChange(change(1, { validUntilMs: 200 }));
        store.insertChange(change(2, { validUntilMs: 5000 }));
        store.setHeadSequence(2);
      });
      assert.deepEqual(store.findRequest('M00-0000000000000001', 'r1'), { itemId: 'I1', seq: 1, createdAtMs: 100, digest: 'abc' });
      assert.equal(store.findRequest('M00-0000000000000002', 'r1'), undefined);
      assert.equal(store.purge(1000, 150), 2);
      assert.equal(store.findRequest('M00-0000000000000001', 'r1'), undefined);
      assert.deepEqual(store.readChanges('R00-0000000000000001', 0, 0, 10, 0).map((c) => c.seq), [2]);
      // Purging never lowers the head: sequences are never reused.
      assert.equal(store.headSequence(), 2);
    });

    it('lists a merchant\'s live items, optionally for one receiver', () => {
      store.transaction(() => {
        store.insertChange(change(1));
        store.insertChange(change(2, { merchantId: 'M00-0000000000000002' }));
        store.insertChange(change(3, { receiverId: PUBLIC_RECEIVER }));
        store.insertChange(change(4, { kind: ChangeKind.Withdrawal }));
      });
      const list = (receiverId?: string) => store.listItems('M00-0000000000000001', receiverId, 0, 1000, 10).map((c) => c.seq);
      assert.deepEqual(list(), [1, 3]);
      assert.deepEqual(list('R00-0000000000000001'), [1]);
      assert.deepEqual(list(PUBLIC_RECEIVER), [3]);
    });
  });
}

describeStoreContract('sqlite file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pushhub-store-'));
  return { store: openSqliteStore(join(dir, 'hub.db')), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
});
describeStoreContract('sqlite in memory', () => ({ store: openSqliteStore(':memory:'), cleanup: () => undefined }));
