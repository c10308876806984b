import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MerchantClient, type PushResult } from '../../sdk/src/merchant.js';
import {
  PushHubError,
  ReceiverClient,
  type ReceiverEvent,
  type StoreChange,
  Status,
  createReceiverStore,
} from '../../sdk/src/receiver.js';
import { TestHub, describeOnBackends } from '../support/hub.js';
import { TcpProxy, waitUntil } from './support.js';

/** Runs a subscription in the background and records its events. */
function collect(receiver: ReceiverClient, afterSequence = 0) {
  const abort = new AbortController();
  const events: ReceiverEvent[] = [];
  const state = { error: undefined as unknown };
  const done = (async () => {
    try {
      for await (const event of receiver.subscribe({ afterSequence, signal: abort.signal })) events.push(event);
    } catch (error) {
      state.error = error;
    }
  })();
  return {
    events,
    state,
    itemIds: () => events.flatMap((e) => (e.type === 'item' ? [e.item.itemId] : [])),
    withdrawnIds: () => events.flatMap((e) => (e.type === 'withdrawal' ? [e.withdrawal.itemId] : [])),
    caughtUps: () => events.filter((e) => e.type === 'caughtUp').length,
    stop: async () => {
      abort.abort();
      await done;
    },
  };
}

describeOnBackends('sdk: receiver client', () => {
  let hub: TestHub;
  const closers: (() => unknown)[] = [];

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await hub.stop();
  });

  const setup = async (receiverAddress?: string, receiverOptions: { onReconnect?: () => void; heartbeatIntervalMs?: number } = {}) => {
    const merchant = new MerchantClient({ address: hub.address, ...(await MerchantClient.register(hub.address)) });
    const credentials = await ReceiverClient.register(hub.address);
    const receiver = new ReceiverClient({ address: receiverAddress ?? hub.address, ...credentials, ...receiverOptions });
    closers.push(() => merchant.close(), () => receiver.close());
    return { merchant, receiver, credentials };
  };

  it('subscribe delivers the current state, caughtUp, then live events', async () => {
    hub = await TestHub.start();
    const { merchant, receiver } = await setup();
    const before = await merchant.pushSpecific(receiver.id, { key: 'points', title: 'Points: 10' });
    const reader = collect(receiver);
    closers.push(reader.stop);
    await waitUntil(() => reader.caughtUps() === 1, 'caughtUp');
    assert.deepEqual(reader.events.map((e) => e.type), ['item', 'caughtUp']);
    const live = await merchant.pushPublic({ title: 'Open today' });
    await merchant.withdraw({ itemId: before.itemId });
    await waitUntil(() => reader.withdrawnIds().length === 1, 'the withdrawal');
    assert.deepEqual(reader.itemIds(), [before.itemId, live.itemId]);
    assert.deepEqual(reader.withdrawnIds(), [before.itemId]);
  });

  it('subscribe survives hub restarts mid-stream: the receiver ends with exactly the pushed items', async () => {
    hub = await TestHub.start();
    const { merchant, receiver, credentials } = await setup();
    let reconnects = 0;
    const watcher = new ReceiverClient({ address: hub.address, ...credentials, onReconnect: () => reconnects++ });
    closers.push(() => watcher.close());
    const reader = collect(watcher);
    closers.push(reader.stop);
    await waitUntil(() => reader.caughtUps() === 1, 'caughtUp');

    const pushed: PushResult[] = [];
    const pushBatch = async (from: number, to: number) => {
      for (let i = from; i < to; i += 5) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(5, to - i) }, (_, j) =>
            (i + j) % 2 === 0
              ? merchant.pushSpecific(receiver.id, { title: `specific ${i + j}` })
              : merchant.pushPublic({ title: `public ${i + j}` }),
          ),
        );
        pushed.push(...batch);
      }
    };
    // Restarts run while pushes are in flight; pushes that hit the gap are retried.
    await Promise.all([pushBatch(0, 60), (async () => {
      await waitUntil(() => pushed.length >= 20, '20 pushes');
      await hub.restart();
      await waitUntil(() => pushed.length >= 40, '40 pushes');
      await hub.restart();
    })()]);
    await pushBatch(60, 80);

    await waitUntil(() => reader.itemIds().length >= pushed.length, 'every pushed item');
    assert.ok(reconnects >= 2, `the subscription reconnected (${reconnects})`);
    assert.equal(reader.state.error, undefined);
    const received = reader.itemIds();
    assert.equal(received.length, 80, 'no duplicates');
    assert.deepEqual(new Set(received), new Set(pushed.map((p) => p.itemId)), 'no loss');
  });

  it('a silent connection is declared dead after two missed heartbeats and resumed', async () => {
    hub = await TestHub.start({ heartbeatIntervalMs: 100 });
    const proxy = await TcpProxy.start(() => hub.address);
    closers.push(() => proxy.close());
    const { merchant, receiver } = await setup(proxy.address, {
      // The hub's interval, known before its first heartbeat arrives.
      heartbeatIntervalMs: 100,
      onReconnect: () => {
        proxy.swallowReplies = false;
      },
    });
    const reader = collect(receiver);
    closers.push(reader.stop);
    await waitUntil(() => reader.caughtUps() === 1, 'caughtUp');
    await waitUntil(() => reader.events.length >= 1 && proxy.accepted === 1, 'a connection');
    proxy.swallowReplies = true; // the connection stays open but nothing comes back
    const pushed = await merchant.pushSpecific(receiver.id, { title: 'sent while silent' });
    // The item may come in the new connection's backlog (just before its caughtUp) or live
    // after it: wait for both.
    await waitUntil(() => reader.itemIds().includes(pushed.itemId) && reader.caughtUps() === 2, 'the item, on a new connection');
    assert.equal(proxy.accepted, 2);
    assert.equal(reader.caughtUps(), 2, JSON.stringify(reader.events.map((e) => e.type)));
    assert.deepEqual(reader.itemIds(), [pushed.itemId]);
  });

  it('a too-slow subscriber is cut off by the hub and resumes without loss', async () => {
    hub = await TestHub.start({ subscriberBufferLimit: 5 });
    const { merchant, receiver, credentials } = await setup();
    let reconnects = 0;
    const abort = new AbortController();
    const seen: string[] = [];
    const client = new ReceiverClient({ address: hub.address, ...credentials, onReconnect: () => reconnects++ });
    closers.push(() => client.close());
    let caughtUp = false;
    const reading = (async () => {
      for await (const event of client.subscribe({ signal: abort.signal })) {
        if (event.type === 'caughtUp') caughtUp = true;
        if (event.type === 'item') {
          seen.push(event.item.itemId);
          // Stall on the first live item so the hub's queue for this stream overflows.
          if (seen.length === 1) await waitUntil(() => pushes.length === 200, 'all pushes');
        }
      }
    })();
    await waitUntil(() => caughtUp, 'caughtUp');
    const pushes: PushResult[] = [];
    const stream = merchant.openPushStream();
    // 200 items of 3 KiB: more than HTTP/2 flow control and socket buffers hold, so the
    // hub's own queue for the stalled stream overflows.
    const body = 'x'.repeat(3000);
    await Promise.all(Array.from({ length: 200 }, async (_, i) => pushes.push(await stream.pushSpecific(receiver.id, { title: `n${i}`, body }))));
    await stream.close();
    await waitUntil(() => seen.length >= 200, 'all 200 items');
    abort.abort();
    await reading;
    assert.ok(reconnects >= 1, 'the hub cut the stream off');
    assert.deepEqual(new Set(seen), new Set(pushes.map((p) => p.itemId)));
    assert.equal(seen.length, 200);
  });

  it('failures resuming cannot fix are thrown to the caller', async () => {
    hub = await TestHub.start();
    const { receiver } = await setup();
    const wrong = new ReceiverClient({ address: hub.address, id: receiver.id, password: 'wrong' });
    closers.push(() => wrong.close());
    await assert.rejects(wrong.subscribe().next(), { code: Status.UNAUTHENTICATED, reason: 'UNAUTHENTICATED' });
  });
});

describeOnBackends('sdk: receiver store', () => {
  let hub: TestHub;
  let dir: string;
  const closers: (() => unknown)[] = [];

  beforeEach(async () => {
    hub = await TestHub.start();
    dir = mkdtempSync(join(tmpdir(), 'pushhub-store-'));
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const setup = async () => {
    const merchant = new MerchantClient({ address: hub.address, ...(await MerchantClient.register(hub.address)) });
    const credentials = await ReceiverClient.register(hub.address);
    closers.push(() => merchant.close());
    return { merchant, credentials };
  };

  /** Opens the store and syncs it in the background. */
  const startSync = (credentials: { id: string; password: string }) => {
    const store = createReceiverStore(join(dir, 'receiver.db'));
    const receiver = new ReceiverClient({ address: hub.address, ...credentials });
    const changes: StoreChange[] = [];
    store.on('change', (change) => changes.push(change));
    const abort = new AbortController();
    const syncing = store.sync(receiver, { signal: abort.signal, purgeIntervalMs: 50 });
    const stop = async () => {
      abort.abort();
      await syncing;
      receiver.close();
      store.close();
    };
    closers.push(stop);
    return { store, changes, stop: async () => { closers.splice(closers.indexOf(stop), 1); await stop(); } };
  };

  it('replace, withdraw and expiry are reflected in the store, with change events', async () => {
    const { merchant, credentials } = await setup();
    const { store, changes } = startSync(credentials);
    // Live from here: pushed before the first caughtUp, A would arrive replaced in the snapshot.
    await waitUntil(() => store.historyId !== '', 'the first caughtUp');
    const a = await merchant.pushSpecific(credentials.id, { key: 'points', title: 'Points: 10', offer: { $case: 'points', value: { balance: 10 } } });
    const b = await merchant.pushSpecific(credentials.id, { key: 'points', title: 'Points: 30', offer: { $case: 'points', value: { balance: 30 } } });
    const voucher = await merchant.pushPublic({ title: '5 off', offer: { $case: 'voucher', value: { code: 'V5', amountOff: 500, currency: 'EUR' } } });
    const short = await merchant.pushPublic({ title: 'flash sale', validUntil: new Date(Date.now() + 400) });
    await waitUntil(() => store.cursor >= short.sequence, 'the store to catch up');
    assert.deepEqual(store.items().map((i) => i.itemId).sort(), [b.itemId, voucher.itemId, short.itemId].sort());
    assert.deepEqual(store.itemsByOfferKind('points').map((i) => i.info?.title), ['Points: 30']);
    assert.deepEqual(store.itemsByOfferKind('voucher').map((i) => i.itemId), [voucher.itemId]);
    assert.equal(store.itemsByMerchant(merchant.id).length, 3);
    // The hub sends A's tombstone (replaced) before B, so A leaves first and B simply arrives.
    assert.deepEqual(changes.slice(0, 3).map((c) => [c.type, c.type !== 'reset' && c.item.itemId, c.type === 'removed' && c.cause]), [
      ['added', a.itemId, false],
      ['removed', a.itemId, 'replaced'],
      ['added', b.itemId, false],
    ]);
    assert.deepEqual(changes.find((c) => c.type === 'added' && c.item.itemId === b.itemId), { type: 'added', item: store.item(b.itemId) });

    await merchant.withdraw({ itemId: voucher.itemId });
    await waitUntil(() => store.item(voucher.itemId) === undefined, 'the withdrawal');
    await merchant.withdraw({ key: 'points', receiverId: credentials.id });
    await waitUntil(() => store.item(b.itemId) === undefined, 'the withdrawal by key');
    await waitUntil(() => changes.some((c) => c.type === 'removed' && c.cause === 'expired'), 'the expiry');
    assert.deepEqual(store.items(), []);
    assert.deepEqual(
      changes.filter((c) => c.type === 'removed').map((c) => [c.item.itemId, c.type === 'removed' && c.cause]),
      [[a.itemId, 'replaced'], [voucher.itemId, 'withdrawn'], [b.itemId, 'withdrawn'], [short.itemId, 'expired']],
    );
  });

  it('a backlog reaches the store in batches, each applied in one transaction with the cursor', async () => {
    const { merchant, credentials } = await setup();
    const stream = merchant.openPushStream();
    const acks = await Promise.all(Array.from({ length: 300 }, (_, i) => stream.pushSpecific(credentials.id, { title: `n${i}` })));
    await stream.close();
    const last = acks.at(-1)!.sequence;
    // Batches as the client hands them out: fewer than events, none empty, in order.
    const receiver = new ReceiverClient({ address: hub.address, ...credentials });
    closers.push(async () => receiver.close());
    const abort = new AbortController();
    const batches: ReceiverEvent[][] = [];
    for await (const batch of receiver.subscribeBatches({ signal: abort.signal })) {
      batches.push(batch);
      if (batch.some((e) => e.type === 'caughtUp')) break;
    }
    abort.abort();
    assert.ok(batches.every((b) => b.length > 0));
    assert.ok(batches.length < 30, `${batches.length} batches for 301 events`);
    assert.equal(batches.flat().filter((e) => e.type === 'item').length, 300);
    // The store: by the time a batch's first change is emitted, the whole batch is committed.
    const store = createReceiverStore(join(dir, 'batch.db'));
    closers.push(async () => store.close());
    const seen: { cursor: number; items: number }[] = [];
    store.on('change', () => {
      if (seen.length === 0) seen.push({ cursor: store.cursor, items: store.items().length });
    });
    store.applyBatch(batches[0]!);
    const lastOfFirst = batches[0]!.flatMap((e) => (e.type === 'item' ? [e.item.sequence] : [])).at(-1)!;
    assert.deepEqual(seen, [{ cursor: lastOfFirst, items: batches[0]!.filter((e) => e.type === 'item').length }]);
    for (const batch of batches.slice(1)) store.applyBatch(batch);
    assert.equal(store.cursor, last);
    assert.equal(store.items().length, 300);
    assert.deepEqual(store.applyBatch(batches[0]!), [], 'a batch at or below the cursor changes nothing');
  });

  it('the store resumes from its cursor after a restart: nothing lost, nothing applied twice', async () => {
    const { merchant, credentials } = await setup();
    const first = startSync(credentials);
    const kept = await merchant.pushPublic({ key: 'hours', title: 'Open 9-5' });
    const gone = await merchant.pushSpecific(credentials.id, { title: 'one-off' });
    await waitUntil(() => first.store.cursor >= gone.sequence, 'the first session to catch up');
    await first.stop();

    // While the receiver is down: a replacement, a withdrawal and a new item.
    const replacement = await merchant.pushPublic({ key: 'hours', title: 'Open 8-6' });
    await merchant.withdraw({ itemId: gone.itemId });
    const fresh = await merchant.pushSpecific(credentials.id, { title: 'new' });

    const second = startSync(credentials);
    await waitUntil(() => second.store.cursor >= fresh.sequence, 'the second session to catch up');
    assert.deepEqual(second.store.items().map((i) => i.itemId), [replacement.itemId, fresh.itemId]);
    assert.deepEqual(
      second.changes.map((c) => `${c.type}:${c.type !== 'reset' && c.item.itemId}`),
      [`removed:${kept.itemId}`, `added:${replacement.itemId}`, `removed:${gone.itemId}`, `added:${fresh.itemId}`],
    );
    assert.equal((second.changes[0] as { cause?: string }).cause, 'replaced');
  });
});
