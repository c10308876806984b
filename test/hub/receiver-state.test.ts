import assert from 'node:assert/strict';
import type { Item, SubscribeEvent } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { ModelReceiver, eventsOf } from '../support/model-receiver.js';
import { type Credentials, type HubClient, TestHub, basicAuth, describeOnBackends } from '../support/hub.js';

describeOnBackends('receiver state stays right', () => {
  let t: TestHub;
  let client: HubClient;
  let merchant: Credentials;
  const asMerchant = () => ({ metadata: basicAuth(merchant) });

  beforeEach(async () => {
    t = await TestHub.start();
    client = t.client();
    merchant = await t.register('merchant');
  });
  afterEach(() => t.stop());

  it('a withdrawal committed while a multi-page snapshot is being sent reaches the receiver', async function () {
    this.timeout(60_000);
    const receiver = await t.register('receiver');
    // Three backlog pages (2,048 rows each) of 4 KiB items: the stream blocks on flow control
    // inside the first page while the test does not read.
    const body = 'x'.repeat(4000);
    const ids: string[] = [];
    for (let batch = 0; batch < 11; batch++) {
      const acks = await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          client.pushSpecific({ receiverId: receiver.id, info: { title: `item ${batch}/${i}`, body } }, asMerchant()),
        ),
      );
      ids.push(...acks.map((a) => a.itemId));
    }
    const abort = new AbortController();
    const stream = eventsOf(client.subscribe({ afterSequence: 0n }, { metadata: basicAuth(receiver), signal: abort.signal }));
    const events = stream[Symbol.asyncIterator]();
    const model = new ModelReceiver();
    const first = await events.next();
    model.apply(first.value as SubscribeEvent);
    assert.equal(first.value.event?.$case, 'item');

    // The first item is in the page already sent (or being sent): withdraw it now.
    const withdrawn = (first.value as SubscribeEvent).event!.value as Item;
    const ack = await client.withdraw({ itemId: withdrawn.itemId, requestId: '' }, asMerchant());

    let caughtUpAt: bigint | undefined;
    let sawWithdrawal = false;
    while (!sawWithdrawal) {
      const next = await events.next();
      assert.equal(next.done, false, 'stream ended early');
      const event = next.value as SubscribeEvent;
      model.apply(event);
      if (event.event?.$case === 'caughtUp') caughtUpAt = event.event.value.sequence;
      if (event.event?.$case === 'withdrawal' && event.event.value.itemId === withdrawn.itemId) sawWithdrawal = true;
      // Past caught_up, a heartbeat with the cursor beyond the withdrawal means it was skipped.
      if (event.event?.$case === 'heartbeat' && caughtUpAt !== undefined) {
        assert.fail(`withdrawal at ${ack.sequence} never sent (caught up at ${caughtUpAt})`);
      }
    }
    abort.abort();
    assert.equal(model.items.has(withdrawn.itemId), false);
    assert.equal(model.items.size, ids.length - 1);
  });

  /** Reads a Subscribe stream from a cursor up to caught_up into the model. */
  const resume = async (receiver: Credentials, model: ModelReceiver): Promise<SubscribeEvent[]> => {
    const abort = new AbortController();
    const seen: SubscribeEvent[] = [];
    const stream = eventsOf(client.subscribe({ afterSequence: model.cursor }, { metadata: basicAuth(receiver), signal: abort.signal }));
    try {
      for await (const event of stream) {
        seen.push(event);
        model.apply(event);
        if (event.event?.$case === 'caughtUp') break;
      }
    } finally {
      abort.abort();
    }
    return seen;
  };

  for (const ending of ['withdrawn', 'expired'] as const) {
    it(`an item replaced while the receiver was offline leaves it on resume, also when the newer one was ${ending}`, async () => {
      const receiver = await t.register('receiver');
      const model = new ModelReceiver();
      const a = await client.pushSpecific({ receiverId: receiver.id, info: { key: 'points', title: 'A: 10 points' } }, asMerchant());
      await resume(receiver, model);
      assert.deepEqual([...model.items.keys()], [a.itemId]);

      // Offline: A is replaced by B, then B ends.
      const soon = new Date(Date.now() + 300);
      const b = await client.pushSpecific(
        { receiverId: receiver.id, info: { key: 'points', title: 'B: 20 points', validUntil: ending === 'expired' ? soon : undefined } },
        asMerchant(),
      );
      if (ending === 'withdrawn') await client.withdraw({ itemId: b.itemId, requestId: '' }, asMerchant());
      else while (Date.now() <= soon.getTime()) await new Promise((r) => setTimeout(r, 50));

      const seen = await resume(receiver, model);
      assert.deepEqual([...model.items.keys()], [], 'the receiver holds neither A nor B');
      const tombstone = seen.find((e) => e.event?.$case === 'withdrawal' && e.event.value.itemId === a.itemId);
      assert.ok(tombstone?.event?.$case === 'withdrawal', 'A\'s tombstone is sent');
      assert.equal(tombstone.event.value.replaced, true, 'A\'s tombstone says replaced');
      assert.ok(tombstone.event.value.sequence < b.sequence, 'the tombstone precedes B');

      // A new receiver state from 0 agrees: nothing live, and no stray tombstones.
      const fresh = new ModelReceiver();
      const snapshot = await resume(receiver, fresh);
      assert.deepEqual([...fresh.items.keys()], []);
      assert.deepEqual(snapshot.map((e) => e.event?.$case), ['caughtUp']);
    });
  }
});
