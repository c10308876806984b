import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Channel, Status, createChannel, createClient } from 'nice-grpc';
import { PushHubServiceDefinition, Role, WithdrawalCause } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { runAdminCommand } from '../../src/admin/cli.js';
import { type RunningHub, startHub } from '../../src/hub.js';
import { silentLogger } from '../../src/logger.js';
import { type HubClient, StreamReader, testConfig } from '../support/hub.js';
import { freshDatabase } from '../support/postgres.js';
import { as, refusal } from './support.js';

/**
 * Two hub nodes on one PostgreSQL database: a block, a suspension and a deletion made on one
 * node hold on the other at once (its commits read the bars; its streams hear the markers
 * and account events through the feed).
 */
describe('accounts on a cluster (two nodes, one PostgreSQL)', function () {
  this.timeout(90_000);
  let dir: string;
  let url: string;
  let a: RunningHub;
  let b: RunningHub;
  const channels: Channel[] = [];
  const clientOf = (hub: RunningHub): HubClient => {
    const channel = createChannel(hub.address);
    channels.push(channel);
    return createClient(PushHubServiceDefinition, channel);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pushhub-accounts-cluster-'));
    url = await freshDatabase();
    a = await startHub(testConfig(dir, { databaseUrl: url }), { logger: silentLogger });
    b = await startHub(testConfig(dir, { databaseUrl: url }), { logger: silentLogger });
  });
  after(async () => {
    for (const c of channels) c.close();
    await Promise.all([a.stop(), b.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('block on B, push on A: refused on A at once; the merchant\'s items leave and stay away from streams on both nodes', async () => {
    const onA = clientOf(a);
    const onB = clientOf(b);
    const merchant = await onA.register({ role: Role.ROLE_MERCHANT, displayName: 'shop' });
    const receiver = await onB.register({ role: Role.ROLE_RECEIVER, displayName: 'phone' });
    const pub = await onA.pushPublic({ info: { title: 'deal' } }, as(merchant));
    const streamA = new StreamReader(onA, receiver);
    const streamB = new StreamReader(onB, receiver);
    await Promise.all([streamA, streamB].map((s) => s.waitFor((r) => r.items().some((i) => i.itemId === pub.itemId), 'the item')));

    await onB.blockMerchant({ merchantId: merchant.id }, as(receiver));
    assert.deepEqual(await refusal(onA.pushSpecific({ receiverId: receiver.id, info: { title: 'spam' } }, as(merchant))), {
      code: Status.NOT_FOUND,
      reason: 'RECEIVER_BLOCKED_MERCHANT',
    });
    for (const s of [streamA, streamB]) {
      await s.waitFor((r) => r.withdrawals().some((w) => w.itemId === pub.itemId && w.cause === WithdrawalCause.WITHDRAWAL_CAUSE_BLOCKED), 'the block withdrawal');
    }
    // A public push on A after the block reaches neither stream; a marker pushed after it shows
    // each stream has read past it (another merchant's item).
    const spam = await onA.pushPublic({ info: { title: 'more spam' } }, as(merchant));
    const other = await onA.register({ role: Role.ROLE_MERCHANT, displayName: 'other' });
    const mark = await onA.pushPublic({ info: { title: 'mark' } }, as(other));
    for (const s of [streamA, streamB]) {
      await s.waitFor((r) => r.items().some((i) => i.itemId === mark.itemId), 'the marker item');
      assert.ok(!s.items().some((i) => i.itemId === spam.itemId), 'no item of the blocked merchant');
    }
    // Unblock on A: the current public items come back on both nodes' streams.
    await onA.unblockMerchant({ merchantId: merchant.id }, as(receiver));
    for (const s of [streamA, streamB]) await s.waitFor((r) => r.items().some((i) => i.itemId === spam.itemId), 'the item back');
    await Promise.all([streamA.close(), streamB.close()]);
  });

  it('suspend with pushhub admin: the merchant is refused on both nodes at once; delete on A ends streams on B', async () => {
    const onA = clientOf(a);
    const onB = clientOf(b);
    const merchant = await onA.register({ role: Role.ROLE_MERCHANT, displayName: 'shop' });
    const receiver = await onA.register({ role: Role.ROLE_RECEIVER, displayName: 'phone' });
    await onB.pushPublic({ info: { title: 'before' } }, as(merchant));
    const quiet = { out: () => undefined, err: () => undefined };
    assert.equal(await runAdminCommand(['suspend', merchant.id, '--database-url', url], {}, quiet.out, quiet.err), 0);
    for (const client of [onA, onB]) {
      assert.deepEqual(await refusal(client.pushPublic({ info: { title: 'x' } }, as(merchant))), { code: Status.PERMISSION_DENIED, reason: 'ACCOUNT_SUSPENDED' });
    }
    const streamB = new StreamReader(onB, receiver);
    await streamB.waitFor((r) => r.caughtUp(), 'caught up');
    assert.deepEqual(streamB.items().filter((i) => i.merchantId === merchant.id), []);
    await onA.deleteAccount({ password: receiver.password }, as(receiver));
    await streamB.waitFor((r) => r.ended, 'the stream on B ended');
    assert.equal((streamB.error as { code: number }).code, Status.UNAUTHENTICATED);
    assert.equal((await refusal(onB.listBlockedMerchants({}, as(receiver)))).code, Status.UNAUTHENTICATED);
  });
});
