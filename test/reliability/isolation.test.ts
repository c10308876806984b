import assert from 'node:assert/strict';
import { Status } from 'nice-grpc';
import { Audience, type ServiceInfo } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { type Credentials, type HubClient, StreamReader, TestHub, basicAuth, describeOnBackends } from '../support/hub.js';
import { outcomeOf, snapshotItemIds } from './support.js';

const info = (title: string, key = ''): ServiceInfo => ({ key, title, body: '', data: {}, validUntil: undefined, offer: undefined });

/**
 * Two merchants (m1 the victim, m2 the attacker) and two receivers (alice, bob). Every
 * attack is tried through every path, and the victim's data must come through unchanged.
 */
describeOnBackends('isolation between accounts', function () {
  let hub: TestHub;
  let client: HubClient;
  let m1: Credentials;
  let m2: Credentials;
  let alice: Credentials;
  let bob: Credentials;

  beforeEach(async () => {
    hub = await TestHub.start();
    client = hub.client();
    [m1, m2, alice, bob] = await Promise.all([
      hub.register('merchant'),
      hub.register('merchant'),
      hub.register('receiver'),
      hub.register('receiver'),
    ]);
  });
  afterEach(async () => {
    await hub.stop();
  });

  const pushTo = (merchant: Credentials, receiver: Credentials, i: ServiceInfo, requestId = '') =>
    client.pushSpecific({ receiverId: receiver.id, info: i, requestId }, { metadata: basicAuth(merchant) });
  const pushPublic = (merchant: Credentials, i: ServiceInfo) =>
    client.pushPublic({ info: i, requestId: '' }, { metadata: basicAuth(merchant) });

  it("a receiver never gets another receiver's specific items: live, resume or snapshot", async () => {
    const bobLive = new StreamReader(client, bob);
    const aliceLive = new StreamReader(client, alice);
    await bobLive.waitFor((r) => r.caughtUp(), 'bob caught up');
    await aliceLive.waitFor((r) => r.caughtUp(), 'alice caught up');

    const forAlice = await pushTo(m1, alice, info('alice only', 'k'));
    const forAliceReplaced = await pushTo(m1, alice, info('alice only v2', 'k'));
    const forAliceUnkeyed = await pushTo(m1, alice, info('alice unkeyed'));
    await client.withdraw({ itemId: forAliceUnkeyed.itemId, key: '', receiverId: '', requestId: '' }, { metadata: basicAuth(m1) });
    const forBob = await pushTo(m2, bob, info('bob only'));
    const everyone = await pushPublic(m1, info('everyone'));

    // Live: each sees its own and the public item; the public one comes last, so once it
    // has arrived everything before it has too.
    await aliceLive.waitFor((r) => r.items().some((i) => i.itemId === everyone.itemId), 'alice public item');
    await bobLive.waitFor((r) => r.items().some((i) => i.itemId === everyone.itemId), 'bob public item');
    assert.deepEqual(bobLive.items().map((i) => i.itemId), [forBob.itemId, everyone.itemId]);
    assert.deepEqual(bobLive.withdrawals(), [], 'bob sees no withdrawal of alice\'s item');
    assert.deepEqual(
      aliceLive.items().map((i) => i.itemId),
      [forAlice.itemId, forAliceReplaced.itemId, forAliceUnkeyed.itemId, everyone.itemId],
    );
    for (const item of bobLive.items()) assert.ok(item.receiverId === bob.id || item.audience === Audience.AUDIENCE_PUBLIC);
    await bobLive.close();
    await aliceLive.close();

    // Snapshot (cursor 0) and resume from every cursor: never alice's items for bob.
    const aliceItems = new Set([forAlice.itemId, forAliceReplaced.itemId, forAliceUnkeyed.itemId]);
    assert.deepEqual(await snapshotItemIds(client, bob), [forBob.itemId, everyone.itemId]);
    for (let cursor = 1n; cursor < everyone.sequence; cursor++) {
      const resumed = new StreamReader(client, bob, cursor);
      await resumed.waitFor((r) => r.caughtUp(), `bob resumed after ${cursor}`);
      for (const item of resumed.items()) assert.ok(!aliceItems.has(item.itemId), `bob resumed after ${cursor} got alice's ${item.itemId}`);
      for (const w of resumed.withdrawals()) assert.ok(!aliceItems.has(w.itemId), `bob resumed after ${cursor} got alice's withdrawal`);
      await resumed.close();
    }
    assert.deepEqual(await snapshotItemIds(client, alice), [forAliceReplaced.itemId, everyone.itemId]);
  });

  it("a merchant cannot withdraw another merchant's item by id or by key, and learns nothing", async () => {
    const specific = await pushTo(m1, alice, info('m1 specific', 'offer'));
    const pub = await pushPublic(m1, info('m1 public', 'banner'));
    const attacks = [
      { itemId: specific.itemId, key: '', receiverId: '' },
      { itemId: pub.itemId, key: '', receiverId: '' },
      { itemId: '', key: 'offer', receiverId: alice.id },
      { itemId: '', key: 'banner', receiverId: '' },
    ];
    for (const attack of attacks) {
      const outcome = await outcomeOf((o) => client.withdraw({ ...attack, requestId: '' }, { ...o, metadata: basicAuth(m2) }));
      assert.equal(outcome.code, Status.NOT_FOUND, JSON.stringify(attack));
      assert.equal(outcome.reason, 'ITEM_NOT_FOUND');
    }
    // Same answer as for an item that does not exist at all: no existence oracle.
    const missing = await outcomeOf((o) => client.withdraw({ itemId: `I${'0'.repeat(32)}`, key: '', receiverId: '', requestId: '' }, { ...o, metadata: basicAuth(m2) }));
    const foreign = await outcomeOf((o) => client.withdraw({ itemId: specific.itemId, key: '', receiverId: '', requestId: '' }, { ...o, metadata: basicAuth(m2) }));
    assert.equal(foreign.details.replace(specific.itemId, 'ID'), missing.details.replace(`I${'0'.repeat(32)}`, 'ID'));
    // Also through PushStream.
    async function* requests() {
      yield { entries: [{ ref: 1n, push: { $case: 'withdraw' as const, value: { itemId: specific.itemId, key: '', receiverId: '', requestId: '' } } }] };
      yield { entries: [{ ref: 2n, push: { $case: 'withdraw' as const, value: { itemId: '', key: 'banner', receiverId: '', requestId: '' } } }] };
    }
    for await (const response of client.pushStream(requests(), { metadata: basicAuth(m2) })) {
      for (const result of response.results) assert.equal(result.code, Status.NOT_FOUND, `ref ${result.ref}`);
    }
    assert.deepEqual(await snapshotItemIds(client, alice), [specific.itemId, pub.itemId]);
  });

  it("a merchant cannot replace another merchant's item by pushing the same key", async () => {
    const specific = await pushTo(m1, alice, info('m1 specific', 'offer'));
    const pub = await pushPublic(m1, info('m1 public', 'banner'));
    const fakeSpecific = await pushTo(m2, alice, info('m2 specific', 'offer'));
    const fakePublic = await pushPublic(m2, info('m2 public', 'banner'));
    // Both stay: a key is scoped to (merchant, audience).
    assert.deepEqual(await snapshotItemIds(client, alice), [specific.itemId, pub.itemId, fakeSpecific.itemId, fakePublic.itemId]);
    const m1Items = await client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { metadata: basicAuth(m1) });
    assert.deepEqual(m1Items.items.map((i) => i.itemId), [specific.itemId, pub.itemId]);
  });

  it("a merchant lists only its own items, whatever the filter", async () => {
    const specific = await pushTo(m1, alice, info('m1 specific'));
    await pushPublic(m1, info('m1 public'));
    const own = await pushTo(m2, bob, info('m2 own'));
    for (const filter of [
      { receiverId: '', audience: Audience.AUDIENCE_UNSPECIFIED },
      { receiverId: alice.id, audience: Audience.AUDIENCE_UNSPECIFIED },
      { receiverId: alice.id, audience: Audience.AUDIENCE_SPECIFIC },
      { receiverId: '', audience: Audience.AUDIENCE_PUBLIC },
      { receiverId: '', audience: Audience.AUDIENCE_SPECIFIC },
    ]) {
      const listed = await client.listItems({ ...filter, pageSize: 0, pageToken: '' }, { metadata: basicAuth(m2) });
      for (const item of listed.items) assert.equal(item.merchantId, m2.id, JSON.stringify(filter));
    }
    // A page token is only a position: forging one shows nothing of m1's.
    const forged = Buffer.from(String(specific.sequence - 1n)).toString('base64url');
    const page = await client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: forged }, { metadata: basicAuth(m2) });
    assert.deepEqual(page.items.map((i) => i.itemId), [own.itemId]);
  });

  it("a merchant replaying another merchant's request_id gets its own new push, not theirs", async () => {
    const original = await pushTo(m1, alice, info('m1'), 'req-1');
    // A withdrawal under m1's request id is not a replay of m1's acknowledged push.
    const withdrawReplay = await outcomeOf((o) =>
      client.withdraw({ itemId: original.itemId, key: '', receiverId: '', requestId: 'req-1' }, { ...o, metadata: basicAuth(m2) }),
    );
    assert.equal(withdrawReplay.code, Status.NOT_FOUND);
    const replay = await pushTo(m2, alice, info('m2'), 'req-1');
    assert.notEqual(replay.itemId, original.itemId);
    assert.deepEqual(await snapshotItemIds(client, alice), [original.itemId, replay.itemId]);
  });

  it("a receiver cannot push, withdraw or list; a merchant cannot subscribe", async () => {
    const item = await pushTo(m1, alice, info('m1'));
    const asReceiver = basicAuth(alice);
    const outcomes = [
      await outcomeOf((o) => client.pushSpecific({ receiverId: bob.id, info: info('x'), requestId: '' }, { ...o, metadata: asReceiver })),
      await outcomeOf((o) => client.withdraw({ itemId: item.itemId, key: '', receiverId: '', requestId: '' }, { ...o, metadata: asReceiver })),
      await outcomeOf((o) => client.listItems({ receiverId: alice.id, audience: 0, pageSize: 0, pageToken: '' }, { ...o, metadata: asReceiver })),
    ];
    for (const outcome of outcomes) assert.equal(outcome.code, Status.PERMISSION_DENIED);
    const subscribeAsMerchant = await outcomeOf(async (o) => {
      for await (const _ of client.subscribe({ afterSequence: 0n }, { ...o, metadata: basicAuth(m1) })) break;
    });
    assert.equal(subscribeAsMerchant.code, Status.PERMISSION_DENIED);
    assert.deepEqual(await snapshotItemIds(client, alice), [item.itemId]);
  });
});
