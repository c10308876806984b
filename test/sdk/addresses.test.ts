import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { hubTarget } from '../../sdk/src/connection.js';
import { MerchantClient } from '../../sdk/src/merchant.js';
import { ReceiverClient, type ReceiverEvent } from '../../sdk/src/receiver.js';
import { TestHub } from '../support/hub.js';
import { waitUntil } from './support.js';

/** A loopback port with nothing listening on it (a dead hub node). */
async function deadAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

describe('sdk: hub addresses', () => {
  it('hubTarget passes one address or a grpc-js target through and joins several IP literals', () => {
    assert.equal(hubTarget('127.0.0.1:50051'), '127.0.0.1:50051');
    assert.equal(hubTarget('hub.internal:50051'), 'hub.internal:50051');
    assert.equal(hubTarget('dns:hubs.internal:50051'), 'dns:hubs.internal:50051');
    assert.equal(hubTarget('ipv4:10.0.0.1:1,10.0.0.2:2'), 'ipv4:10.0.0.1:1,10.0.0.2:2');
    assert.equal(hubTarget(['10.0.0.1:1', '10.0.0.2:2']), 'ipv4:10.0.0.1:1,10.0.0.2:2');
    assert.equal(hubTarget('10.0.0.1:1, 10.0.0.2:2'), 'ipv4:10.0.0.1:1,10.0.0.2:2');
    assert.equal(hubTarget(['[::1]:1', '[::1]:2']), 'ipv6:[::1]:1,[::1]:2');
    assert.throws(() => hubTarget(['a.internal:1', 'b.internal:2']), /address: several addresses .* dns:/);
    assert.throws(() => hubTarget([]), /address: at least one/);
  });

  it('with several addresses, calls and subscriptions go to a node that is up', async function () {
    this.timeout(20_000);
    const hub = await TestHub.start();
    const addresses = [await deadAddress(), hub.address, await deadAddress()];
    const merchant = new MerchantClient({ address: addresses, ...(await MerchantClient.register(addresses)) });
    const receiver = new ReceiverClient({ address: addresses, ...(await ReceiverClient.register(addresses)) });
    const abort = new AbortController();
    const events: ReceiverEvent[] = [];
    const done = (async () => {
      for await (const event of receiver.subscribe({ signal: abort.signal })) events.push(event);
    })();
    try {
      await waitUntil(() => events.some((e) => e.type === 'caughtUp'), 'caught_up');
      for (let i = 0; i < 5; i++) await merchant.pushSpecific(receiver.id, { title: `push ${i}` });
      await waitUntil(() => events.filter((e) => e.type === 'item').length === 5, 'five items');
    } finally {
      abort.abort();
      await done;
      merchant.close();
      receiver.close();
      await hub.stop();
    }
  });
});
