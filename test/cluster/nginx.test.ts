import assert from 'node:assert/strict';
import { MerchantClient } from '../../sdk/src/merchant.js';
import { PushHubError, ReceiverClient, type ReceiverEvent, Status } from '../../sdk/src/receiver.js';
import { TestHub } from '../support/hub.js';
import { GrpcProxy } from '../support/nginx.js';
import { waitUntil } from '../sdk/support.js';

/** Collects a subscription's events in the background until stopped. */
function collect(receiver: ReceiverClient) {
  const abort = new AbortController();
  const events: ReceiverEvent[] = [];
  const state = { error: undefined as unknown };
  const done = (async () => {
    try {
      for await (const event of receiver.subscribe({ signal: abort.signal })) events.push(event);
    } catch (error) {
      state.error = error;
    }
  })();
  return {
    events,
    state,
    titles: () => events.flatMap((e) => (e.type === 'item' ? [e.item.info?.title ?? ''] : [])),
    stop: async () => {
      abort.abort();
      await done;
    },
  };
}

describe('behind nginx (grpc_pass, the configuration of docs/cluster.md)', function () {
  this.timeout(30_000);
  let hub: TestHub;
  let proxy: GrpcProxy | undefined;
  const closers: (() => unknown)[] = [];

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await proxy?.stop();
    proxy = undefined;
    await hub.stop();
  });

  it('registers, pushes and subscribes through the proxy; rejections keep their reason trailer', async () => {
    hub = await TestHub.start();
    proxy = await GrpcProxy.start([hub.address]);
    const merchant = new MerchantClient({ address: proxy.address, ...(await MerchantClient.register(proxy.address)) });
    const receiver = new ReceiverClient({ address: proxy.address, ...(await ReceiverClient.register(proxy.address)) });
    closers.push(() => merchant.close(), () => receiver.close());

    const stream = collect(receiver);
    closers.push(stream.stop);
    await waitUntil(() => stream.events.some((e) => e.type === 'caughtUp'), 'caught_up through nginx');
    await merchant.pushSpecific(receiver.id, { title: 'through the proxy' });
    await merchant.pushPublic({ title: 'public through the proxy' });
    await waitUntil(() => stream.titles().length === 2, 'both items through nginx');
    assert.deepEqual(stream.titles(), ['through the proxy', 'public through the proxy']);

    const rejected = await merchant.pushSpecific('R00-0000000000000001', { title: 'nobody' }).catch((error: unknown) => error);
    assert.ok(rejected instanceof PushHubError, `got ${String(rejected)}`);
    assert.equal(rejected.code, Status.NOT_FOUND);
    assert.equal(rejected.reason, 'RECEIVER_NOT_FOUND', 'the pushhub-reason trailer passes through nginx');
  });

  it('a quiet Subscribe stream outlives the proxy read timeout because heartbeats keep it busy', async () => {
    // Heartbeat every 1 s (test config) against a 3 s read timeout: the production pairing is
    // 30 s against 1 h, documented in docs/cluster.md.
    hub = await TestHub.start();
    proxy = await GrpcProxy.start([hub.address], { readTimeout: '3s', bodyTimeout: '3s' });
    const merchant = new MerchantClient({ address: proxy.address, ...(await MerchantClient.register(proxy.address)) });
    const receiver = new ReceiverClient({ address: proxy.address, ...(await ReceiverClient.register(proxy.address)) });
    closers.push(() => merchant.close(), () => receiver.close());
    const stream = collect(receiver);
    closers.push(stream.stop);
    await waitUntil(() => stream.events.some((e) => e.type === 'caughtUp'), 'caught_up through nginx');
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    await merchant.pushSpecific(receiver.id, { title: 'after a quiet spell' });
    await waitUntil(() => stream.titles().includes('after a quiet spell'), 'the live item after 6 s of quiet');
    assert.equal(stream.events.filter((e) => e.type === 'caughtUp').length, 1, 'the stream was never cut and resumed');
    assert.equal(stream.state.error, undefined);
  });

  it('a push stream carrying more than 1 MiB in total passes (client_max_body_size 0)', async () => {
    hub = await TestHub.start();
    proxy = await GrpcProxy.start([hub.address]);
    const merchant = new MerchantClient({ address: proxy.address, ...(await MerchantClient.register(proxy.address)) });
    const receiver = await ReceiverClient.register(proxy.address);
    closers.push(() => merchant.close());
    const pushes = merchant.openPushStream();
    const body = 'x'.repeat(4000);
    const results = await Promise.all(
      Array.from({ length: 400 }, (_, i) => pushes.pushSpecific(receiver.id, { title: `push ${i}`, body })),
    );
    await pushes.close();
    assert.equal(results.length, 400);
    assert.equal(new Set(results.map((r) => r.sequence)).size, 400, 'every push committed once');
  });
});
