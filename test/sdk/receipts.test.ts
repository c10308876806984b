import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DeliveryEvent, MerchantClient, PushHubError, Status } from '../../sdk/src/merchant.js';
import { ReceiverClient, createReceiverStore } from '../../sdk/src/receiver.js';
import { TestHub, describeOnBackends } from '../support/hub.js';
import { waitUntil } from './support.js';

describeOnBackends('sdk: delivery receipts', () => {
  let hub: TestHub;
  let dir: string;
  const closers: (() => unknown)[] = [];

  beforeEach(async () => {
    hub = await TestHub.start();
    dir = mkdtempSync(join(tmpdir(), 'pushhub-receipts-'));
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const merchantOn = async () => {
    const merchant = new MerchantClient({ address: hub.address, ...(await MerchantClient.register(hub.address)) });
    closers.push(() => merchant.close());
    return merchant;
  };
  const receiverOn = async () => {
    const receiver = new ReceiverClient({ address: hub.address, ...(await ReceiverClient.register(hub.address)) });
    closers.push(() => receiver.close());
    return receiver;
  };
  /** A receiver syncing its local store, which confirms on its own. */
  const syncing = async (receiver: ReceiverClient) => {
    const store = createReceiverStore(join(dir, `${receiver.id}.db`));
    const abort = new AbortController();
    let caughtUp = false;
    const done = store.sync(receiver, { signal: abort.signal, onCaughtUp: () => void (caughtUp = true) });
    closers.push(async () => {
      abort.abort();
      await done;
      store.close();
    });
    await waitUntil(() => caughtUp, 'caught up');
    return store;
  };

  it('a syncing receiver confirms on its own: waitForDelivery resolves DELIVERED, deliveryStatus agrees', async () => {
    const merchant = await merchantOn();
    const receiver = await receiverOn();
    await syncing(receiver);
    const push = await merchant.pushSpecific(receiver.id, { title: 'voucher' });
    const status = await merchant.waitForDelivery(push.itemId, { timeoutMs: 10_000, pollIntervalMs: 200 });
    assert.equal(status.state, 'DELIVERED');
    assert.equal(status.receiverId, receiver.id);
    assert.match(status.confirmedAt!, /^\d{4}-\d\d-\d\dT/);
    const [read] = await merchant.deliveryStatus([push.itemId]);
    assert.deepEqual(read, status);
    assert.deepEqual(JSON.parse(JSON.stringify(read)), read, 'plain data');
  });

  it('watchDeliveries yields live receipts and public progress, and resumes after a cursor', async () => {
    const merchant = await merchantOn();
    const receiver = await receiverOn();
    const abort = new AbortController();
    const events: DeliveryEvent[] = [];
    const watching = (async () => {
      for await (const event of merchant.watchDeliveries({ signal: abort.signal })) events.push(event);
    })();
    closers.push(async () => {
      abort.abort();
      await watching;
    });
    await waitUntil(() => events.some((e) => e.type === 'caughtUp'), 'watch caught up');
    const specific = await merchant.pushSpecific(receiver.id, { title: 'for you' });
    const pub = await merchant.pushPublic({ title: 'for all' });
    await syncing(receiver);
    await waitUntil(() => events.some((e) => e.type === 'delivered' && e.itemId === specific.itemId), 'delivered event');
    await waitUntil(() => events.some((e) => e.type === 'publicProgress' && e.itemId === pub.itemId && e.deliveredCount === 1), 'public progress', 5000);
    const delivered = events.find((e) => e.type === 'delivered')!;
    assert.equal(delivered.type === 'delivered' && delivered.receiverId, receiver.id);

    // Resuming after the delivery's cursor sends what followed it: the public progress.
    const resumed: DeliveryEvent[] = [];
    const again = new AbortController();
    for await (const event of merchant.watchDeliveries({ afterCursor: delivered.cursor, signal: again.signal })) {
      resumed.push(event);
      if (event.type === 'caughtUp') again.abort();
    }
    assert.ok(resumed.some((e) => e.type === 'publicProgress' && e.itemId === pub.itemId && e.cursor > delivered.cursor));
    assert.ok(!resumed.some((e) => e.type === 'delivered'));
  });

  it('an opted-out receiver reads UNKNOWN; waitForDelivery ends with it, honours its deadline and its abort signal', async () => {
    const merchant = await merchantOn();
    const quiet = await receiverOn();
    assert.equal(await quiet.receiptPolicy('opt-out'), 'opt-out');
    assert.equal(await quiet.receiptPolicy(), 'opt-out');
    const hidden = await merchant.pushSpecific(quiet.id, { title: 'hidden' });
    await syncing(quiet);
    assert.equal((await merchant.waitForDelivery(hidden.itemId, { timeoutMs: 5000 })).state, 'UNKNOWN');

    const offline = await receiverOn();
    const pending = await merchant.pushSpecific(offline.id, { title: 'pending' });
    await assert.rejects(merchant.waitForDelivery(pending.itemId, { timeoutMs: 300, pollIntervalMs: 100 }), (e: unknown) => e instanceof PushHubError && e.code === Status.DEADLINE_EXCEEDED);
    const abort = new AbortController();
    const waiting = merchant.waitForDelivery(pending.itemId, { signal: abort.signal, pollIntervalMs: 100 });
    abort.abort(new Error('stop waiting'));
    await assert.rejects(waiting, /stop waiting/);
    await assert.rejects(merchant.deliveryStatus([]), (e: unknown) => e instanceof PushHubError && e.code === Status.INVALID_ARGUMENT && /itemIds/.test(e.message));
  });
});
