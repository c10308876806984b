import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HubError } from '../../src/core/errors.js';
import { ChangeKind, PUBLIC_RECEIVER } from '../../src/core/records.js';
import type { AccountOp, BatchLimits, WriteOp } from '../../src/core/write-ops.js';
import type { HubBackend } from '../../src/store/ports.js';
import { openPostgresBackend } from '../../src/store/postgres/postgres-backend.js';
import { openSqliteBackend } from '../../src/store/sqlite/sqlite-backend.js';
import { freshDatabase } from '../support/postgres.js';
import { pushOp } from '../support/write-ops.js';

/**
 * The account ports' contract (bars, account actions through the committer, registration
 * request ids, the operators' reads), the same on every backend.
 */
const backends: { name: string; open(limits: BatchLimits): Promise<{ backend: HubBackend; cleanup(): Promise<void> }> }[] = [
  {
    name: 'sqlite',
    async open(limits) {
      const dir = mkdtempSync(join(tmpdir(), 'pushhub-accounts-contract-'));
      const backend = await openSqliteBackend(join(dir, 'hub.db'), { limits });
      return { backend, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'postgres',
    async open(limits) {
      const backend = await openPostgresBackend(await freshDatabase(), { limits });
      return { backend, cleanup: async () => undefined };
    },
  },
];

const M = 'M00-0000000000000001';
const R = 'R00-0000000000000001';
const NOW = 1_000_000;
const FAR = NOW + 3_600_000;
const account = (kind: AccountOp['kind'], accountId: string, merchantId = ''): AccountOp => ({ kind, accountId, merchantId, requestId: '', requestDigest: '' });

for (const factory of backends) {
  describe(`accounts contract: ${factory.name}`, function () {
    this.timeout(60_000);
    let backend: HubBackend;
    let cleanup: () => Promise<void>;
    const commit = async (ops: WriteOp[], nowMs = NOW) => backend.committer.commit(ops, nowMs);

    beforeEach(async () => {
      ({ backend, cleanup } = await factory.open({ idempotencyWindowMs: 60_000, maxPublicItemsPerMerchant: 0, maxBlocksPerReceiver: 1 }));
      for (const [id, role] of [[M, 'merchant'], [R, 'receiver'], ['M00-0000000000000002', 'merchant']] as const) {
        await backend.accounts.insertAccount({ id, role, displayName: id, passwordHash: Buffer.from('h'), createdAtMs: NOW });
      }
    });
    afterEach(async () => {
      await backend.close();
      await cleanup();
    });

    it('a block hides (public) and deletes (specific) what the receiver holds, then a marker; an unblock: marker, then copies', async () => {
      const pushed = await commit([pushOp(M, PUBLIC_RECEIVER, { validUntilMs: FAR }), pushOp(M, R, { validUntilMs: FAR })]);
      const block = await commit([account('block', R, M)]);
      assert.deepEqual(block.published.map((c) => [c.kind, c.receiverId]), [
        [ChangeKind.Withdrawal, R],
        [ChangeKind.Withdrawal, R],
        [ChangeKind.Barred, R],
      ]);
      assert.deepEqual((await backend.accounts.listBlocks(R)).map((b) => b.merchantId), [M]);
      const refused = await commit([pushOp(M, R, { validUntilMs: FAR })]);
      assert.equal((refused.outcomes[0] as HubError).reason, 'RECEIVER_BLOCKED_MERCHANT');
      // The reader leaves out the blocked merchant's public item, keeps the tombstones.
      const rows = await backend.changes.receiverChanges({ receiverId: R, afterSeq: 0, upToSeq: 100, nowMs: NOW, limit: 100, maxBytes: 1 << 20 });
      assert.deepEqual(rows.map((c) => c.kind), [ChangeKind.Withdrawal, ChangeKind.Withdrawal]);
      const second = await commit([account('block', R, 'M00-0000000000000002')]);
      assert.equal((second.outcomes[0] as HubError).reason, 'BLOCK_LIMIT');

      const unblock = await commit([account('unblock', R, M)]);
      assert.deepEqual(unblock.published.map((c) => [c.kind, c.itemId]), [
        [ChangeKind.Unbarred, ''],
        [ChangeKind.Copy, pushed.published[0]!.itemId],
      ]);
      assert.deepEqual(await backend.accounts.listBlocks(R), []);
    });

    it('suspend hides public items for everyone and refuses pushes; resume copies them back; delete tombstones every item', async () => {
      await commit([pushOp(M, PUBLIC_RECEIVER, { validUntilMs: FAR }), pushOp(M, R, { validUntilMs: FAR })]);
      const suspended = await commit([account('suspend', M)]);
      assert.deepEqual(suspended.published.map((c) => [c.kind, c.receiverId]), [[ChangeKind.Withdrawal, PUBLIC_RECEIVER], [ChangeKind.Barred, PUBLIC_RECEIVER]]);
      assert.deepEqual(await backend.accounts.suspendedMerchants(), [M]);
      assert.equal(((await commit([pushOp(M)])).outcomes[0] as HubError).reason, 'ACCOUNT_SUSPENDED');
      assert.equal((await backend.accounts.getAccount(M))?.suspendedAtMs, NOW);
      const resumed = await commit([account('resume', M)]);
      assert.deepEqual(resumed.published.map((c) => c.kind), [ChangeKind.Unbarred, ChangeKind.Copy]);
      const deleted = await commit([account('delete', M)]);
      assert.deepEqual(deleted.published.map((c) => c.kind), [ChangeKind.Withdrawal, ChangeKind.Withdrawal]);
      assert.equal(((await commit([pushOp(M)])).outcomes[0] as HubError).reason, 'ACCOUNT_DELETED');
      const gone = await backend.accounts.getAccount(M);
      assert.ok(gone?.deletedAtMs !== undefined && gone.passwordHash.length === 0 && gone.displayName === '');
      // The id stays taken.
      assert.equal(await backend.accounts.insertAccount({ id: M, role: 'merchant', displayName: 'again', passwordHash: Buffer.from('h'), createdAtMs: NOW }), false);
      const totals = await backend.admin.totals(NOW);
      assert.deepEqual([totals.merchants, totals.deleted, totals.liveItems], [1, 1, 0]);
    });

    it('a deleted receiver takes its rows and blocks with it; registration request ids return the same account', async () => {
      await commit([pushOp(M, R, { validUntilMs: FAR }), account('block', R, 'M00-0000000000000002')]);
      await commit([account('delete', R)]);
      assert.equal(await backend.accounts.isReceiver(R), false);
      assert.deepEqual(await backend.accounts.listBlocks(R), []);
      assert.equal(((await commit([pushOp(M, R)])).outcomes[0] as HubError).reason, 'RECEIVER_NOT_FOUND');

      const make = (id: string, hash: string) => ({ id, role: 'receiver' as const, displayName: 'p', passwordHash: Buffer.from(hash), createdAtMs: NOW });
      assert.deepEqual(await backend.accounts.registerWithRequest(make('R00-0000000000000009', 'a'), 'h1', 'd', 0), { outcome: 'created', accountId: 'R00-0000000000000009' });
      assert.deepEqual(await backend.accounts.registerWithRequest(make('R00-0000000000000008', 'b'), 'h1', 'd', 0), { outcome: 'replaced', accountId: 'R00-0000000000000009' });
      assert.equal((await backend.accounts.getAccount('R00-0000000000000009'))?.passwordHash.toString(), 'b');
      assert.equal((await backend.accounts.registerWithRequest(make('R00-0000000000000007', 'c'), 'h1', 'other', 0)).outcome, 'reused');
      assert.equal((await backend.accounts.registerWithRequest(make(M, 'c'), 'h2', 'd', 0)).outcome, 'id-taken');
      const listed = await backend.admin.listAccounts({ role: 'receiver', limit: 10, nowMs: NOW });
      assert.deepEqual(listed.map((a) => a.id), ['R00-0000000000000009']);
      assert.deepEqual((await backend.admin.listAccounts({ search: '0000000000000002', limit: 10, nowMs: NOW })).map((a) => a.id), ['M00-0000000000000002']);
      await backend.admin.logAction({ atMs: NOW, actor: 'op@host', action: 'suspend', accountId: M, outcome: 'ok' });
      assert.deepEqual(await backend.admin.recentActions(1), [{ atMs: NOW, actor: 'op@host', action: 'suspend', accountId: M, outcome: 'ok' }]);
    });
  });
}
