import assert from 'node:assert/strict';
import { changeRowsOf } from '../support/stored-rows.js';
import { ClientError, Status } from 'nice-grpc';
import { Audience, ResetReason } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { type Credentials, type HubClient, StreamReader, TestHub, basicAuth, describeOnBackends } from '../support/hub.js';

describeOnBackends('push and subscribe', () => {
  let t: TestHub;
  let client: HubClient;
  let merchant: Credentials;
  const readers: StreamReader[] = [];
  const open = (creds: Credentials, after = 0n, historyId = '') => {
    const reader = new StreamReader(t.client(), creds, after, historyId);
    readers.push(reader);
    return reader;
  };
  const asMerchant = (m: Credentials = merchant) => ({ metadata: basicAuth(m) });

  before(async () => {
    t = await TestHub.start();
    client = t.client();
    merchant = await t.register('merchant');
  });
  afterEach(async () => {
    await Promise.all(readers.splice(0).map((r) => r.close()));
  });
  after(() => t.stop());

  it('delivers a specific push live, and two receivers never see each other\'s items', async () => {
    const alice = await t.register('receiver');
    const bob = await t.register('receiver');
    const aliceStream = open(alice);
    const bobStream = open(bob);
    await aliceStream.waitFor((r) => r.caughtUp(), 'caught up');
    await bobStream.waitFor((r) => r.caughtUp(), 'caught up');

    const ack = await client.pushSpecific(
      { receiverId: alice.id, info: { title: '10% off', offer: { $case: 'discount', value: { percentOff: 10 } } } },
      asMerchant(),
    );
    await client.pushSpecific({ receiverId: bob.id, info: { title: 'for bob' } }, asMerchant());
    await aliceStream.waitFor((r) => r.items().length === 1, 'alice item');
    await bobStream.waitFor((r) => r.items().length === 1, 'bob item');

    const item = aliceStream.items()[0]!;
    assert.equal(item.itemId, ack.itemId);
    assert.equal(item.sequence, ack.sequence);
    assert.equal(item.merchantId, merchant.id);
    assert.equal(item.audience, Audience.AUDIENCE_SPECIFIC);
    assert.deepEqual(item.info?.offer, { $case: 'discount', value: { percentOff: 10 } });
    assert.equal(bobStream.items()[0]!.info?.title, 'for bob');
    // Snapshots are isolated too.
    const aliceAgain = open(alice);
    await aliceAgain.waitFor((r) => r.caughtUp(), 'caught up');
    assert.deepEqual(aliceAgain.items().map((i) => i.info?.title), ['10% off']);
  });

  it('PushSpecific to an unregistered receiver is NOT_FOUND and missing receiver_id is INVALID_ARGUMENT', async () => {
    await assert.rejects(
      client.pushSpecific({ receiverId: 'R00-1234567890123456', info: { title: 'x' } }, asMerchant()),
      (e: ClientError) => e.code === Status.NOT_FOUND && /receiver_id/.test(e.details),
    );
    await assert.rejects(
      client.pushSpecific({ receiverId: '', info: { title: 'x' } }, asMerchant()),
      (e: ClientError) => e.code === Status.INVALID_ARGUMENT && /^receiver_id: required/.test(e.details),
    );
  });

  it('stores a public push once and delivers it to online, offline and later-registered receivers', async () => {
    // Its own hub: public items reach every receiver, and would show up in the other tests.
    const hub = await TestHub.start();
    const [t, client, merchant] = [hub, hub.client(), await hub.register('merchant')];
    const open = (creds: Credentials, after = 0n) => {
      const reader = new StreamReader(t.client(), creds, after);
      readers.push(reader);
      return reader;
    };
    const asMerchant = () => ({ metadata: basicAuth(merchant) });
    try {
    const online = await t.register('receiver');
    const offline = await t.register('receiver');
    const offlineFirst = open(offline);
    await offlineFirst.waitFor((r) => r.caughtUp(), 'caught up');
    const cursor = offlineFirst.events.find((e) => e.event?.$case === 'caughtUp')!.event!.value as { sequence: bigint };
    await offlineFirst.close();

    const onlineStream = open(online);
    await onlineStream.waitFor((r) => r.caughtUp(), 'caught up');
    const ack = await client.pushPublic({ info: { title: 'public sale', key: 'sale' } }, asMerchant());
    await onlineStream.waitFor((r) => r.items().some((i) => i.itemId === ack.itemId), 'public item live');

    const resumed = open(offline, cursor.sequence);
    await resumed.waitFor((r) => r.caughtUp(), 'caught up');
    assert.ok(resumed.items().some((i) => i.itemId === ack.itemId && i.audience === Audience.AUDIENCE_PUBLIC));

    const newcomer = await t.register('receiver');
    const fresh = open(newcomer);
    await fresh.waitFor((r) => r.caughtUp(), 'caught up');
    assert.ok(fresh.items().some((i) => i.itemId === ack.itemId));

    assert.equal(await changeRowsOf(t.config, ack.itemId), 1);
    } finally {
      await Promise.all(readers.splice(0).map((r) => r.close()));
      await hub.stop();
    }
  });

  it('replaces an item with the same key, live, on resume and for new subscribers', async () => {
    const receiver = await t.register('receiver');
    const live = open(receiver);
    await live.waitFor((r) => r.caughtUp(), 'caught up');
    const first = await client.pushSpecific({ receiverId: receiver.id, info: { key: 'points', title: 'balance 10' } }, asMerchant());
    const second = await client.pushSpecific({ receiverId: receiver.id, info: { key: 'points', title: 'balance 25' } }, asMerchant());
    await live.waitFor((r) => r.items().length === 2, 'both versions live');
    assert.deepEqual(live.items().map((i) => i.info?.key), ['points', 'points']);

    const snapshot = open(receiver);
    await snapshot.waitFor((r) => r.caughtUp(), 'caught up');
    assert.deepEqual(snapshot.items().map((i) => i.itemId), [second.itemId]);

    const resumed = open(receiver, first.sequence - 1n);
    await resumed.waitFor((r) => r.caughtUp(), 'caught up');
    assert.deepEqual(resumed.items().map((i) => i.info?.title), ['balance 25']);

    // An empty key never replaces.
    await client.pushSpecific({ receiverId: receiver.id, info: { title: 'a' } }, asMerchant());
    await client.pushSpecific({ receiverId: receiver.id, info: { title: 'a' } }, asMerchant());
    const again = open(receiver);
    await again.waitFor((r) => r.caughtUp(), 'caught up');
    assert.equal(again.items().length, 3);
  });

  it('withdraws an item by id and by key, live and on resume', async () => {
    const receiver = await t.register('receiver');
    const live = open(receiver);
    await live.waitFor((r) => r.caughtUp(), 'caught up');
    const voucher = await client.pushSpecific(
      { receiverId: receiver.id, info: { title: '5 EUR', offer: { $case: 'voucher', value: { code: 'V1', amountOff: 500n, currency: 'EUR', minSpend: 0n } } } },
      asMerchant(),
    );
    const keyed = await client.pushSpecific({ receiverId: receiver.id, info: { key: 'tier', title: 'gold' } }, asMerchant());
    const w1 = await client.withdraw({ itemId: voucher.itemId }, asMerchant());
    const w2 = await client.withdraw({ key: 'tier', receiverId: receiver.id }, asMerchant());
    assert.equal(w2.itemId, keyed.itemId);
    await live.waitFor((r) => r.withdrawals().length === 2, 'withdrawals live');
    assert.deepEqual(live.withdrawals().map((w) => [w.itemId, w.sequence]), [[voucher.itemId, w1.sequence], [keyed.itemId, w2.sequence]]);
    assert.equal(live.withdrawals()[1]!.key, 'tier');

    const resumed = open(receiver, keyed.sequence);
    await resumed.waitFor((r) => r.caughtUp(), 'caught up');
    assert.deepEqual(resumed.withdrawals().map((w) => w.itemId), [voucher.itemId, keyed.itemId]);
    const snapshot = open(receiver);
    await snapshot.waitFor((r) => r.caughtUp(), 'caught up');
    assert.deepEqual(snapshot.items(), []);

    await assert.rejects(client.withdraw({ itemId: voucher.itemId }, asMerchant()), (e: ClientError) => e.code === Status.NOT_FOUND);
    await assert.rejects(client.withdraw({}, asMerchant()), (e: ClientError) => e.code === Status.INVALID_ARGUMENT && /item_id/.test(e.details));
  });

  it('a merchant cannot withdraw or replace another merchant\'s item', async () => {
    const other = await t.register('merchant');
    const receiver = await t.register('receiver');
    const mine = await client.pushSpecific({ receiverId: receiver.id, info: { key: 'k', title: 'mine' } }, asMerchant());
    await assert.rejects(client.withdraw({ itemId: mine.itemId }, asMerchant(other)), (e: ClientError) => e.code === Status.NOT_FOUND);
    await client.pushSpecific({ receiverId: receiver.id, info: { key: 'k', title: 'theirs' } }, asMerchant(other));
    const snapshot = open(receiver);
    await snapshot.waitFor((r) => r.caughtUp(), 'caught up');
    assert.deepEqual(snapshot.items().map((i) => i.info?.title).sort(), ['mine', 'theirs']);
  });

  it('rejects valid_until in the past, never delivers expired items, and purges them', async () => {
    const receiver = await t.register('receiver');
    await assert.rejects(
      client.pushSpecific({ receiverId: receiver.id, info: { title: 'old', validUntil: new Date(Date.now() - 1000) } }, asMerchant()),
      (e: ClientError) => e.code === Status.INVALID_ARGUMENT && /^info\.valid_until/.test(e.details),
    );
    const shortLived = await client.pushSpecific(
      { receiverId: receiver.id, info: { title: 'flash', validUntil: new Date(Date.now() + 300) } },
      asMerchant(),
    );
    const lasting = await client.pushSpecific({ receiverId: receiver.id, info: { title: 'default lifetime' } }, asMerchant());
    await new Promise((r) => setTimeout(r, 400));
    const snapshot = open(receiver);
    await snapshot.waitFor((r) => r.caughtUp(), 'caught up');
    assert.deepEqual(snapshot.items().map((i) => i.itemId), [lasting.itemId]);
    const validUntil = snapshot.items()[0]!.info!.validUntil!.getTime();
    assert.ok(Math.abs(validUntil - (Date.now() + t.config.defaultItemLifetimeMs)) < 60_000);

    await t.hub.probe.purge(Date.now(), 0);
    assert.equal(await changeRowsOf(t.config, shortLived.itemId), 0);
  });

  it('a repeated request_id returns the original response and delivers once', async () => {
    const receiver = await t.register('receiver');
    const live = open(receiver);
    await live.waitFor((r) => r.caughtUp(), 'caught up');
    const request = { receiverId: receiver.id, info: { title: 'once' }, requestId: 'order-42' };
    const first = await client.pushSpecific(request, asMerchant());
    const again = await client.pushSpecific(request, asMerchant());
    const concurrent = await Promise.all([1, 2, 3].map(() => client.pushSpecific({ ...request, requestId: 'order-43' }, asMerchant())));
    assert.deepEqual(again, first);
    assert.equal(new Set(concurrent.map((c) => c.itemId)).size, 1);
    const marker = await client.pushSpecific({ receiverId: receiver.id, info: { title: 'marker' } }, asMerchant());
    await live.waitFor((r) => r.items().some((i) => i.itemId === marker.itemId), 'marker');
    // One item per request id: order-42 once, order-43 once.
    assert.equal(live.items().filter((i) => i.info?.title === 'once').length, 2);
    assert.equal(live.items().length, 3);
  });

  it('resumes after a cursor with nothing lost or doubled while pushes keep arriving', async () => {
    const receiver = await t.register('receiver');
    const acked: bigint[] = [];
    let pushing = true;
    const pusher = (async () => {
      let n = 0;
      while (pushing || n < 300) {
        const batch = await Promise.all(
          Array.from({ length: 10 }, (_, i) => client.pushSpecific({ receiverId: receiver.id, info: { title: `p${n + i}` } }, asMerchant())),
        );
        acked.push(...batch.map((b) => b.sequence));
        n += 10;
      }
    })();
    const seen: bigint[] = [];
    let cursor = 0n;
    for (let round = 0; round < 5; round++) {
      const reader = open(receiver, cursor);
      await reader.waitFor((r) => r.caughtUp() && r.items().length > 0, 'some items');
      await new Promise((r) => setTimeout(r, 30));
      await reader.close();
      const seqs = reader.sequences();
      seen.push(...seqs);
      if (seqs.length > 0) cursor = seqs[seqs.length - 1]!;
    }
    pushing = false;
    await pusher;
    const final = open(receiver, cursor);
    await final.waitFor((r) => r.caughtUp(), 'caught up');
    seen.push(...final.sequences());

    const sorted = [...seen].sort((a, b) => (a < b ? -1 : 1));
    assert.deepEqual(seen, sorted, 'ascending order');
    assert.equal(new Set(seen).size, seen.length, 'no duplicates');
    assert.deepEqual(new Set(seen), new Set(acked), 'every acknowledged push, nothing else');
  });

  it('a cursor beyond the newest sequence starts a new history: that receiver, open streams and later resumes of the old one are reset', async () => {
    const receiver = await t.register('receiver');
    const other = await t.register('receiver');
    const item = await client.pushSpecific({ receiverId: receiver.id, info: { title: 'kept', body: '' }, requestId: '' }, asMerchant());
    const watching = open(other);
    await watching.waitFor((r) => r.caughtUp(), 'caught up');
    const caughtUp = watching.events.find((e) => e.event?.$case === 'caughtUp')!.event!.value as { sequence: bigint; historyId: string };
    assert.match(caughtUp.historyId, /^H[0-9a-f]{24}$/);

    const ahead = open(receiver, 1_000_000_000n, caughtUp.historyId);
    await ahead.waitFor((r) => r.caughtUp(), 'caught up after the reset');
    const [reset, ...state] = ahead.events.map((e) => e.event);
    assert.equal(reset?.$case, 'reset');
    const { reason, historyId } = reset.value as { reason: ResetReason; historyId: string };
    assert.equal(reason, ResetReason.RESET_REASON_CURSOR_AHEAD);
    assert.notEqual(historyId, caughtUp.historyId);
    // The receiver's full state follows, then CaughtUp in the new history.
    assert.deepEqual(state.map((e) => (e?.$case === 'item' ? e.value.itemId : e?.$case)), [item.itemId, 'caughtUp']);
    assert.equal((state.at(-1)!.value as { historyId: string }).historyId, historyId);

    // The stream open on the old history ends (to be reset on reconnect) ...
    await watching.waitFor((r) => r.ended, 'the old history\'s stream to end');
    assert.equal((watching.error as ClientError).code, Status.UNAVAILABLE);
    // ... and a resume in the old history gets a reset, however low its cursor.
    const resumed = open(other, caughtUp.sequence, caughtUp.historyId);
    await resumed.waitFor((r) => r.caughtUp(), 'caught up');
    const first = resumed.events[0]!.event!;
    assert.equal(first.$case, 'reset');
    assert.deepEqual(first.value, { reason: ResetReason.RESET_REASON_CURSOR_AHEAD, historyId });
    // The new history is the database's: it survives a restart.
    await t.restart();
    const later = open(other, 0n, historyId);
    await later.waitFor((r) => r.caughtUp(), 'caught up after restart');
    assert.deepEqual(later.events.map((e) => e.event?.$case), ['caughtUp']);
    assert.equal((later.events[0]!.event!.value as { historyId: string }).historyId, historyId);
  });

  it('sends heartbeats on a quiet stream', async () => {
    const receiver = await t.register('receiver');
    const reader = open(receiver);
    await reader.waitFor((r) => r.events.filter((e) => e.event?.$case === 'heartbeat').length >= 2, 'two heartbeats', 5000);
    const beat = reader.events.find((e) => e.event?.$case === 'heartbeat')!.event!.value as { intervalMs: number };
    assert.equal(beat.intervalMs, t.config.heartbeatIntervalMs);
  });

  it('a cancelled stream leaves nothing behind in the server', async () => {
    const receiver = await t.register('receiver');
    const before = t.hub.probe.openSubscribeStreams();
    const reader = open(receiver);
    await reader.waitFor((r) => r.caughtUp(), 'caught up');
    assert.equal(t.hub.probe.openSubscribeStreams(), before + 1);
    await reader.close();
    const deadline = Date.now() + 5000;
    while (t.hub.probe.openSubscribeStreams() !== before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(t.hub.probe.openSubscribeStreams(), before);
    assert.equal(t.hub.probe.streamsOf(receiver.id), 0);
  });

  it('concurrent pushes share transactions (group commit)', async () => {
    const receiver = await t.register('receiver');
    const stats = t.hub.probe.commitStats;
    const before = { ...stats };
    await Promise.all(Array.from({ length: 400 }, (_, i) => client.pushSpecific({ receiverId: receiver.id, info: { title: `g${i}` } }, asMerchant())));
    const writes = stats.writes - before.writes;
    const transactions = stats.transactions - before.transactions;
    assert.equal(writes, 400);
    assert.ok(transactions < writes / 4, `${transactions} transactions for ${writes} writes`);
  });
});
