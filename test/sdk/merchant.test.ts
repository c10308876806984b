import assert from 'node:assert/strict';
import { MerchantClient, PushHubError, Status } from '../../sdk/src/merchant.js';
import { ReceiverClient } from '../../sdk/src/receiver.js';
import { TestHub, describeOnBackends } from '../support/hub.js';
import { TcpProxy, waitUntil } from './support.js';

describeOnBackends('sdk: merchant client', () => {
  let hub: TestHub;
  const closers: (() => unknown)[] = [];

  beforeEach(async () => {
    hub = await TestHub.start();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await hub.stop();
  });

  const merchantOn = async (address = hub.address, options: Partial<ConstructorParameters<typeof MerchantClient>[0]> = {}) => {
    const credentials = await MerchantClient.register(hub.address, { displayName: 'Bakery', regionCode: '11' });
    const merchant = new MerchantClient({ address, ...credentials, ...options });
    closers.push(() => merchant.close());
    return merchant;
  };
  const receiverId = async () => (await ReceiverClient.register(hub.address)).id;
  const listAll = async (merchant: MerchantClient, filter?: Parameters<MerchantClient['listItems']>[0]) => {
    const items = [];
    for await (const item of merchant.listItems(filter)) items.push(item);
    return items;
  };

  it('register returns credentials; pushes, listItems and withdraw work end to end', async () => {
    const merchant = await merchantOn();
    assert.match(merchant.id, /^M11-\d{16}$/);
    const receiver = await receiverId();
    const specific = await merchant.pushSpecific(receiver, {
      key: 'points',
      title: 'Your points',
      offer: { $case: 'points', value: { balance: 120, earned: 20 } },
    });
    const publicPush = await merchant.pushPublic({ title: 'Fresh bread', offer: { $case: 'discount', value: { percentOff: 10 } } });
    assert.match(specific.itemId, /^I[0-9a-f]{32}$/);
    assert.ok(publicPush.sequence > specific.sequence);

    assert.deepEqual((await listAll(merchant)).map((i) => i.itemId), [specific.itemId, publicPush.itemId]);
    assert.deepEqual((await listAll(merchant, { audience: 'public' })).map((i) => i.itemId), [publicPush.itemId]);
    assert.deepEqual((await listAll(merchant, { receiverId: receiver })).map((i) => i.itemId), [specific.itemId]);

    const byKey = await merchant.withdraw({ key: 'points', receiverId: receiver });
    assert.equal(byKey.itemId, specific.itemId);
    await merchant.withdraw({ itemId: publicPush.itemId });
    assert.deepEqual(await listAll(merchant), []);
  });

  it('listItems pages through more than one page', async () => {
    const merchant = await merchantOn();
    const stream = merchant.openPushStream();
    await Promise.all(Array.from({ length: 600 }, (_, i) => stream.pushPublic({ title: `item ${i}` })));
    await stream.close();
    const items = await listAll(merchant);
    assert.equal(items.length, 600);
    assert.equal(new Set(items.map((i) => i.itemId)).size, 600);
  });

  it('failures surface as PushHubError with the gRPC status and the hub reason, without retries', async () => {
    const proxy = await TcpProxy.start(() => hub.address);
    closers.push(() => proxy.close());
    const merchant = await merchantOn(proxy.address);
    await assert.rejects(merchant.pushSpecific('R00-0000000000000000', { title: 'x' }), (error: unknown) => {
      assert.ok(error instanceof PushHubError);
      assert.equal(error.code, Status.NOT_FOUND);
      assert.equal(error.reason, 'RECEIVER_NOT_FOUND');
      return true;
    });
    await assert.rejects(merchant.withdraw({ key: 'nothing' }), { code: Status.NOT_FOUND, reason: 'ITEM_NOT_FOUND' });
    await assert.rejects(merchant.pushPublic({ title: 'x'.repeat(201) }), { code: Status.INVALID_ARGUMENT, reason: 'INVALID_ARGUMENT' });
    const wrong = new MerchantClient({ address: proxy.address, id: merchant.id, password: 'wrong' });
    closers.push(() => wrong.close());
    await assert.rejects(wrong.pushPublic({ title: 'x' }), { code: Status.UNAUTHENTICATED, reason: 'UNAUTHENTICATED' });
    // grpc-js shares one connection between channels to the same address; a retry would have needed a new one.
    assert.equal(proxy.accepted, 1, 'nothing was retried on a new connection');
  });

  it('a retried push after a dropped reply is delivered once', async () => {
    const proxy = await TcpProxy.start(() => hub.address);
    closers.push(() => proxy.close());
    const merchant = await merchantOn(proxy.address);
    const receiver = await receiverId();
    await merchant.pushPublic({ title: 'warm-up' }); // the connection is up before replies vanish

    const headBefore = hub.hub.probe.headSequence();
    proxy.swallowReplies = true;
    const pushing = merchant.pushSpecific(receiver, { key: 'balance', title: 'Balance: 10' });
    // The hub received and committed the push; its reply is lost on the way back.
    await waitUntil(() => hub.hub.probe.headSequence() > headBefore, 'the hub to commit the push');
    proxy.swallowReplies = false;
    proxy.dropAll();
    const result = await pushing;

    assert.equal(proxy.accepted, 2, 'the push was retried on a new connection');
    assert.equal(result.sequence, headBefore + 1, 'the retry returned the original commit');
    assert.equal(hub.hub.probe.headSequence(), headBefore + 1, 'nothing else was committed');
    const items = await listAll(merchant, { receiverId: receiver });
    assert.deepEqual(items.map((i) => i.itemId), [result.itemId]);
  });

  it('gives up after bounded attempts when the hub stays unreachable', async () => {
    const proxy = await TcpProxy.start(() => '127.0.0.1:1');
    closers.push(() => proxy.close());
    const merchant = new MerchantClient({
      address: proxy.address,
      id: 'M00-0000000000000000',
      password: 'x',
      retry: { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 20 },
    });
    closers.push(() => merchant.close());
    await assert.rejects(merchant.pushPublic({ title: 'x' }), { code: Status.UNAVAILABLE });
  });

  it('push stream acknowledges each push and rejects bad ones without ending the stream', async () => {
    const merchant = await merchantOn();
    const receiver = await receiverId();
    const stream = merchant.openPushStream({ window: 8 });
    const results = await Promise.allSettled([
      stream.pushSpecific(receiver, { key: 'a', title: 'A' }),
      stream.pushSpecific('R00-0000000000000000', { title: 'nobody' }),
      stream.pushPublic({ title: 'P' }),
      stream.withdraw({ key: 'a', receiverId: receiver }),
      ...Array.from({ length: 40 }, (_, i) => stream.pushPublic({ title: `bulk ${i}` })),
    ]);
    await stream.close();
    assert.equal(results[0]!.status, 'fulfilled');
    assert.equal(results[1]!.status, 'rejected');
    const rejection = (results[1] as PromiseRejectedResult).reason;
    assert.ok(rejection instanceof PushHubError);
    assert.equal(rejection.code, Status.NOT_FOUND);
    assert.equal(rejection.reason, 'RECEIVER_NOT_FOUND');
    assert.ok(results.every((r, i) => i === 1 || r.status === 'fulfilled'));
    const withdrawn = (results[3] as PromiseFulfilledResult<{ itemId: string }>).value;
    assert.equal(withdrawn.itemId, (results[0] as PromiseFulfilledResult<{ itemId: string }>).value.itemId);
    assert.equal((await listAll(merchant)).length, 41);
  });

  it('push stream re-sends unacknowledged pushes after a network drop, delivering each once', async () => {
    const proxy = await TcpProxy.start(() => hub.address);
    closers.push(() => proxy.close());
    const merchant = await merchantOn(proxy.address);
    await merchant.pushPublic({ title: 'warm-up' });
    const stream = merchant.openPushStream({ window: 64 });
    const headBefore = hub.hub.probe.headSequence();
    proxy.swallowReplies = true;
    const pushes = Array.from({ length: 50 }, (_, i) => stream.pushPublic({ key: `k${i}`, title: `item ${i}` }));
    await waitUntil(() => hub.hub.probe.headSequence() >= headBefore + 50, 'the hub to commit all 50 pushes');
    proxy.swallowReplies = false;
    proxy.dropAll();
    const results = await Promise.all(pushes);
    await stream.close();

    assert.ok(proxy.accepted >= 2, 'the stream reconnected');
    assert.equal(hub.hub.probe.headSequence(), headBefore + 50, 'no push was committed twice');
    assert.equal(new Set(results.map((r) => r.itemId)).size, 50);
    assert.equal((await listAll(merchant)).length, 51);
  });

  it('push stream survives a hub restart with pushes in flight', async () => {
    const merchant = await merchantOn();
    const stream = merchant.openPushStream({ window: 16 });
    const pushes: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) pushes.push(stream.pushPublic({ key: `r${i}`, title: `item ${i}` }));
    await Promise.all(pushes.slice(0, 5));
    await hub.restart();
    for (let i = 30; i < 60; i++) pushes.push(stream.pushPublic({ key: `r${i}`, title: `item ${i}` }));
    await Promise.all(pushes);
    await stream.close();
    const items = await listAll(merchant);
    assert.equal(items.length, 60);
    assert.equal(new Set(items.map((i) => i.info?.key)).size, 60);
  });

  it('rotatePassword switches the client to the new password', async () => {
    const merchant = await merchantOn();
    const password = await merchant.rotatePassword();
    assert.ok(password.length > 0);
    await merchant.pushPublic({ title: 'after rotation' });
  });
});
