import assert from 'node:assert/strict';
import { MerchantClient } from '../../sdk/src/merchant.js';
import type { PushResult } from '../../sdk/src/push-types.js';
import { type Credentials, PushHubError, ReceiverClient, type ReceiverEvent } from '../../sdk/src/receiver.js';
import { HubCluster } from '../support/cluster.js';
import { GrpcProxy } from '../support/nginx.js';
import { SourceForwarder } from '../support/source-forwarder.js';
import { waitUntil } from '../sdk/support.js';

/**
 * Issue 21's "Done when": three hubs on one PostgreSQL, nginx in front of B and C (the
 * configuration of docs/cluster.md, which sets X-Real-IP), every hub run with
 * `--trusted-proxy 127.0.0.1/32`. 30 receivers, each on its own loopback address, subscribe
 * through nginx; a merchant on A pushes a storm and B is killed in the middle of it.
 *
 * The hubs keep the production scrypt cost and queue shares (64 waiting, 8 per source): the
 * receivers B held all verify their passwords on C within one reconnect backoff (50-100 ms).
 * Seen as one source (nginx's address, as without --trusted-proxy), that burst overflowed the
 * per-source share and was refused with AUTH_BUSY while the per-source share applied to a queue
 * with room; it now applies only to a full queue, but seen as 30 sources the burst also keeps
 * its place when the queue is full.
 */

const RECEIVERS = 30;
const PUSHES_PER_RECEIVER = 8;

/** An SDK subscription collected in the background, with the reason of every reconnect. */
function collect(receiver: ReceiverClient, reconnectReasons: string[]) {
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
    reconnectReasons,
    caughtUps: () => events.filter((e) => e.type === 'caughtUp').length,
    sequences: (merchantId: string) =>
      events.flatMap((e) => (e.type === 'item' && e.item.merchantId === merchantId ? [e.item.sequence] : [])),
    stop: async () => {
      abort.abort();
      await done;
    },
  };
}

describe('cluster behind nginx with --trusted-proxy: a node killed under a push storm', function () {
  this.timeout(90_000);
  let cluster: HubCluster | undefined;
  let proxy: GrpcProxy | undefined;
  const forwarders: SourceForwarder[] = [];
  const closers: (() => unknown)[] = [];

  after(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    for (const forwarder of forwarders.splice(0)) await forwarder.stop();
    await proxy?.stop();
    await cluster?.stop();
  });

  it('30 receivers on their own addresses resume through nginx: nothing lost, duplicated or out of order, no AUTH_BUSY', async () => {
    cluster = await HubCluster.start({
      // After the harness defaults, so they win: production scrypt cost and queue shares.
      extraArgs: ['--heartbeat-ms', '1000', '--trusted-proxy', '127.0.0.1/32', '--scrypt-log-n', '15', '--scrypt-queue-limit', '64', '--scrypt-queue-per-source', '8'],
    });
    proxy = await GrpcProxy.start(cluster.addresses('B', 'C'));

    const a = cluster.node('A').address;
    const merchant = new MerchantClient({ address: a, ...(await MerchantClient.register(a)) });
    closers.push(() => merchant.close());
    // One at a time: from one address, the production queue share would refuse a burst.
    const credentials: Credentials[] = [];
    for (let i = 0; i < RECEIVERS; i++) credentials.push(await ReceiverClient.register(a));

    const subscriptions: ReturnType<typeof collect>[] = [];
    for (const [i, credential] of credentials.entries()) {
      const forwarder = await SourceForwarder.start(proxy.address, `127.0.0.${10 + i}`);
      forwarders.push(forwarder);
      const reasons: string[] = [];
      const receiver = new ReceiverClient({
        address: forwarder.address,
        ...credential,
        heartbeatIntervalMs: 1000,
        onReconnect: ({ error }) => void reasons.push(error instanceof PushHubError ? (error.reason ?? PushHubError.name) : String(error)),
      });
      closers.push(() => receiver.close());
      const subscription = collect(receiver, reasons);
      closers.push(subscription.stop);
      subscriptions.push(subscription);
    }
    await waitUntil(() => subscriptions.every((s) => s.caughtUps() === 1), `every receiver caught up through nginx (${proxy.errorLog()})`, 30_000);

    const stream = merchant.openPushStream({ window: 64 });
    const acked: PushResult[] = [];
    const storm = (from: number, to: number) =>
      Promise.all(
        Array.from({ length: to - from }, async (_, offset) => {
          const i = from + offset;
          const result = await stream.pushSpecific(credentials[i % RECEIVERS]!.id, { title: `storm ${i}` });
          acked.push(result);
        }),
      );
    const total = RECEIVERS * PUSHES_PER_RECEIVER;
    await storm(0, total / 4);
    // The rest of the storm is handed over in the kill's turn, so changes are in flight when B dies.
    const rest = storm(total / 4, total);
    await cluster.node('B').kill();
    await rest;
    await stream.close();
    assert.equal(acked.length, total);

    for (const [i, credential] of credentials.entries()) {
      const expected: number[] = [];
      for await (const item of merchant.listItems({ receiverId: credential.id, pageSize: 5000 })) expected.push(item.sequence);
      expected.sort((x, y) => x - y);
      assert.equal(expected.length, PUSHES_PER_RECEIVER);
      const subscription = subscriptions[i]!;
      await waitUntil(() => subscription.sequences(merchant.id).length >= expected.length, `receiver ${i} has every push`, 30_000);
      assert.deepEqual(subscription.sequences(merchant.id), expected, `receiver ${i}: 0 lost, 0 duplicated, in order`);
      assert.equal(subscription.state.error, undefined, `receiver ${i} never gave up`);
    }

    const resumed = subscriptions.filter((s) => s.caughtUps() >= 2).length;
    assert.ok(resumed > 0, 'the kill cut the streams B held, and they resumed through nginx (on C)');
    const reasons = subscriptions.flatMap((s) => s.reconnectReasons);
    assert.ok(reasons.length >= resumed, `a reconnect for each stream cut: ${reasons.join(', ')}`);
    assert.deepEqual(reasons.filter((r) => r === 'AUTH_BUSY'), [], `no reconnect refused with AUTH_BUSY (${resumed} resumed; reasons: ${reasons.join(', ')})`);
    const busy = cluster.nodes.flatMap((n) => n.lines.filter((line) => line.includes('AUTH_BUSY')).map((line) => `${n.name}: ${line}`));
    assert.deepEqual(busy, [], 'no hub refused a login with AUTH_BUSY');
  });
});
