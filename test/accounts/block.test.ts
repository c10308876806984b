import assert from 'node:assert/strict';
import { Status } from 'nice-grpc';
import { WithdrawalCause } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { type Credentials, type HubClient, StreamReader, TestHub, describeOnBackends } from '../support/hub.js';
import { as, refusal } from './support.js';

const info = (title: string, key = '') => ({ title, key });

describeOnBackends('blocks', () => {
  let hub: TestHub;
  let client: HubClient;
  let merchant: Credentials;
  let other: Credentials;
  let receiver: Credentials;

  beforeEach(async function () {
    this.timeout(60_000);
    hub = await TestHub.start();
    client = hub.client();
    merchant = await hub.register('merchant');
    other = await hub.register('merchant');
    receiver = await hub.register('receiver');
  });
  afterEach(() => hub.stop());

  it('a blocked merchant is refused for specific pushes with RECEIVER_BLOCKED_MERCHANT', async () => {
    await client.blockMerchant({ merchantId: merchant.id }, as(receiver));
    const refused = await refusal(client.pushSpecific({ receiverId: receiver.id, info: info('spam') }, as(merchant)));
    assert.deepEqual(refused, { code: Status.NOT_FOUND, reason: 'RECEIVER_BLOCKED_MERCHANT' });
    // Another merchant still reaches the receiver.
    await client.pushSpecific({ receiverId: receiver.id, info: info('fine') }, as(other));
  });

  it('held items leave the stream with cause BLOCKED; public items stay away live, on resume and after unblock come back', async () => {
    const spam = await client.pushPublic({ info: info('spam public', 'k') }, as(merchant));
    const specific = await client.pushSpecific({ receiverId: receiver.id, info: info('spam specific') }, as(merchant));
    const kept = await client.pushPublic({ info: info('kept') }, as(other));
    const live = new StreamReader(client, receiver);
    await live.waitFor((r) => r.caughtUp(), 'caught up');
    assert.equal(live.items().length, 3);

    const blocked = await client.blockMerchant({ merchantId: merchant.id }, as(receiver));
    await live.waitFor((r) => r.withdrawals().length === 2, 'two withdrawals');
    assert.deepEqual(live.withdrawals().map((w) => [w.itemId, w.cause]).sort(), [
      [spam.itemId, WithdrawalCause.WITHDRAWAL_CAUSE_BLOCKED],
      [specific.itemId, WithdrawalCause.WITHDRAWAL_CAUSE_BLOCKED],
    ].sort());
    assert.ok(blocked.sequence > kept.sequence);

    // Live: a new public item of the blocked merchant does not arrive; the other's does.
    await client.pushPublic({ info: info('more spam') }, as(merchant));
    const after = await client.pushPublic({ info: info('after') }, as(other));
    await live.waitFor((r) => r.items().some((i) => i.itemId === after.itemId), 'the other merchant\'s item');
    assert.ok(!live.items().some((i) => i.merchantId === merchant.id && i.sequence > blocked.sequence));

    // Snapshot and a resume from every cursor: nothing of the blocked merchant remains.
    const state = async (from: bigint) => {
      const r = new StreamReader(client, receiver, from);
      await r.waitFor((x) => x.caughtUp(), 'caught up');
      await r.close();
      return r;
    };
    const held = (r: StreamReader, start: Set<string>) => {
      const items = new Set(start);
      for (const e of r.events) {
        if (e.event?.$case === 'item') items.add(e.event.value.itemId);
        if (e.event?.$case === 'withdrawal') items.delete(e.event.value.itemId);
      }
      return items;
    };
    const snapshot = await state(0n);
    assert.deepEqual([...held(snapshot, new Set())].sort(), [kept.itemId, after.itemId].sort());
    for (const cursor of [spam.sequence, specific.sequence, kept.sequence]) {
      const before = held(await state(0n), new Set()); // not used as start: rebuild what a receiver at cursor held
      void before;
      const start = new Set([spam.itemId, specific.itemId, kept.itemId].slice(0, Number(cursor - spam.sequence) + 1));
      const resumed = held(await state(cursor), start);
      assert.deepEqual([...resumed].sort(), [kept.itemId, after.itemId].sort(), `resumed from ${cursor}`);
    }
    assert.deepEqual((await client.listBlockedMerchants({}, as(receiver))).merchants.map((m) => m.merchantId), [merchant.id]);

    // Unblock: the merchant's current public items come back (not the specific one, nor what ended).
    await client.withdraw({ itemId: spam.itemId }, as(merchant));
    const current = (await client.listItems({ pageSize: 100 }, as(merchant))).items.filter((i) => i.receiverId === '').map((i) => i.itemId);
    assert.equal(current.length, 1);
    await client.unblockMerchant({ merchantId: merchant.id }, as(receiver));
    await live.waitFor((r) => r.items().some((i) => i.itemId === current[0]), 'the current public item back');
    assert.ok(!live.items().some((i) => i.itemId === spam.itemId && i.sequence > blocked.sequence));
    const again = held(await state(0n), new Set());
    assert.deepEqual([...again].sort(), [kept.itemId, after.itemId, current[0]!].sort());
    assert.deepEqual((await client.listBlockedMerchants({}, as(receiver))).merchants, []);
    await client.pushSpecific({ receiverId: receiver.id, info: info('welcome back') }, as(merchant));
    await live.close();
  });

  it('blocking an unknown merchant is MERCHANT_NOT_FOUND; blocking twice is one block', async () => {
    const unknown = await refusal(client.blockMerchant({ merchantId: 'M00-0000000000000001' }, as(receiver)));
    assert.deepEqual(unknown, { code: Status.NOT_FOUND, reason: 'MERCHANT_NOT_FOUND' });
    const first = await client.blockMerchant({ merchantId: merchant.id }, as(receiver));
    const second = await client.blockMerchant({ merchantId: merchant.id }, as(receiver));
    assert.ok(second.sequence >= first.sequence);
    assert.equal((await client.listBlockedMerchants({}, as(receiver))).merchants.length, 1);
    const asMerchant = await refusal(client.blockMerchant({ merchantId: other.id }, as(merchant)));
    assert.equal(asMerchant.code, Status.PERMISSION_DENIED);
  });
});
