import assert from 'node:assert/strict';
import { ClientError, Status } from 'nice-grpc';
import { type DeliveryEvent, MerchantClient, PushHubError } from '../../sdk/src/merchant.js';
import type { PushResult } from '../../sdk/src/push-types.js';
import { type Credentials, ReceiverClient, type ReceiverEvent } from '../../sdk/src/receiver.js';
import { HubCluster } from '../support/cluster.js';
import { StreamReader, basicAuth } from '../support/hub.js';
import { ModelReceiver } from '../support/model-receiver.js';
import { GrpcProxy } from '../support/nginx.js';
import { waitUntil } from '../sdk/support.js';

/**
 * Three hub processes (A, B, C) on one embedded PostgreSQL database, each on its own port:
 * whatever node a change is decided on, a receiver on any node sees it with the same
 * guarantees as on one hub. Nodes are crashed with SIGKILL where the test says so.
 */

/** An SDK subscription collected in the background (the SDK dedupes and resumes by cursor). */
function collect(receiver: ReceiverClient) {
  const abort = new AbortController();
  const events: ReceiverEvent[] = [];
  const state = { error: undefined as unknown, reconnects: 0 };
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
    caughtUps: () => events.filter((e) => e.type === 'caughtUp').length,
    /** Sequences of the changes of these merchants, in arrival order. */
    sequences: (...merchantIds: string[]) =>
      events.flatMap((e) =>
        e.type === 'item' && merchantIds.includes(e.item.merchantId)
          ? [e.item.sequence]
          : e.type === 'withdrawal' && merchantIds.includes(e.withdrawal.merchantId)
            ? [e.withdrawal.sequence]
            : [],
      ),
    stop: async () => {
      abort.abort();
      await done;
    },
  };
}

/**
 * Receivers subscribe from 0, so their snapshots also hold public items of earlier tests on
 * the same cluster: every check looks only at the merchants of its own test.
 */
const itemsFrom = (reader: StreamReader, ...merchantIds: string[]) => reader.items().filter((i) => merchantIds.includes(i.merchantId));
const sequencesFrom = (reader: StreamReader, ...merchantIds: string[]) =>
  reader.events.flatMap((e) =>
    (e.event?.$case === 'item' || e.event?.$case === 'withdrawal') && merchantIds.includes(e.event.value.merchantId) ? [e.event.value.sequence] : [],
  );

const ascending = (values: Iterable<bigint>) => [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** Every change a receiver must hold: each merchant's live specific items for it plus every public item. */
async function expectedSequences(merchants: MerchantClient[], receiverId: string): Promise<bigint[]> {
  const sequences: bigint[] = [];
  for (const merchant of merchants) {
    for await (const item of merchant.listItems({ receiverId, pageSize: 5000 })) sequences.push(BigInt(item.sequence));
    for await (const item of merchant.listItems({ audience: 'public', pageSize: 5000 })) sequences.push(BigInt(item.sequence));
  }
  return ascending(sequences);
}

describe('cluster: three hubs on one PostgreSQL', function () {
  this.timeout(120_000);
  let cluster: HubCluster;
  const closers: (() => unknown)[] = [];

  before(async function () {
    this.timeout(120_000);
    cluster = await HubCluster.start({ extraArgs: ['--heartbeat-ms', '1000'] });
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await cluster.startAll();
  });
  after(async () => {
    await cluster?.stop();
  });

  /** A merchant client on the named nodes, closed after the test. */
  const merchantOn = (credentials: Credentials, ...nodes: string[]) => {
    const merchant = new MerchantClient({ address: cluster.addresses(...nodes), ...credentials });
    closers.push(() => merchant.close());
    return merchant;
  };
  const receiverOn = (credentials: Credentials, ...nodes: string[]) => {
    const receiver = new ReceiverClient({ address: cluster.addresses(...nodes), ...credentials, heartbeatIntervalMs: 1000 });
    closers.push(() => receiver.close());
    return receiver;
  };
  const readerOn = (node: string, credentials: Credentials, afterSequence = 0n) => {
    const reader = new StreamReader(cluster.client(node), credentials, afterSequence);
    closers.push(() => reader.close());
    return reader;
  };
  const register = (role: 'merchant' | 'receiver', node = 'A') =>
    role === 'merchant' ? MerchantClient.register(cluster.node(node).address) : ReceiverClient.register(cluster.node(node).address);

  it('a push on A reaches receivers on B and C live, and on resume from their cursors', async () => {
    const merchant = merchantOn(await register('merchant'), 'A');
    const onB = await register('receiver', 'B');
    const onC = await register('receiver', 'C');
    const liveB = readerOn('B', onB);
    const liveC = readerOn('C', onC);
    await liveB.waitFor((r) => r.caughtUp(), 'B caught up');
    await liveC.waitFor((r) => r.caughtUp(), 'C caught up');

    const toB = await merchant.pushSpecific(onB.id, { title: 'to the receiver on B' });
    const toC = await merchant.pushSpecific(onC.id, { title: 'to the receiver on C' });
    const toAll = await merchant.pushPublic({ title: 'to everyone' });
    const m = merchant.id;
    await liveB.waitFor((r) => itemsFrom(r, m).length === 2, 'two live items on B', 10_000);
    await liveC.waitFor((r) => itemsFrom(r, m).length === 2, 'two live items on C', 10_000);
    assert.deepEqual(itemsFrom(liveB, m).map((i) => i.itemId), [toB.itemId, toAll.itemId]);
    assert.deepEqual(itemsFrom(liveC, m).map((i) => i.itemId), [toC.itemId, toAll.itemId]);
    assert.deepEqual(sequencesFrom(liveB, m), [BigInt(toB.sequence), BigInt(toAll.sequence)], 'the sequences A assigned');
    const cursorB = liveB.sequences().at(-1)!;
    const cursorC = liveC.sequences().at(-1)!;
    await liveB.close();
    await liveC.close();

    // Offline on both: more changes on A, then each resumes on its node from its cursor.
    const later = [await merchant.pushSpecific(onB.id, { title: 'later for B' }), await merchant.pushSpecific(onC.id, { title: 'later for C' })];
    const laterAll = await merchant.pushPublic({ title: 'later for everyone' });
    const resumedB = readerOn('B', onB, cursorB);
    const resumedC = readerOn('C', onC, cursorC);
    await resumedB.waitFor((r) => r.caughtUp(), 'B resumed');
    await resumedC.waitFor((r) => r.caughtUp(), 'C resumed');
    assert.deepEqual(resumedB.items().map((i) => i.itemId), [later[0]!.itemId, laterAll.itemId], 'B gets exactly what it missed');
    assert.deepEqual(resumedC.items().map((i) => i.itemId), [later[1]!.itemId, laterAll.itemId], 'C gets exactly what it missed');
    // From 0 on the other node: the receiver's whole state.
    const fromScratch = readerOn('C', onB);
    await fromScratch.waitFor((r) => r.caughtUp(), 'snapshot on C');
    assert.deepEqual(itemsFrom(fromScratch, m).map((i) => i.itemId), [toB.itemId, toAll.itemId, later[0]!.itemId, laterAll.itemId]);
  });

  it('replace, withdraw and expiry decided on A are seen on C, live and on resume', async () => {
    const merchant = merchantOn(await register('merchant'), 'A');
    const receiver = await register('receiver', 'C');
    const first = await merchant.pushSpecific(receiver.id, { key: 'points', title: '10 points' });
    const live = readerOn('C', receiver);
    const m = merchant.id;
    await live.waitFor((r) => r.caughtUp() && itemsFrom(r, m).length === 1, 'the first item on C');
    const cursor = BigInt(first.sequence);

    const replaced = await merchant.pushSpecific(receiver.id, { key: 'points', title: '20 points' });
    const doomed = await merchant.pushSpecific(receiver.id, { title: 'withdrawn soon' });
    const flashUntil = new Date(Date.now() + 500);
    const flash = await merchant.pushSpecific(receiver.id, { title: 'expires soon', validUntil: flashUntil });
    await merchant.withdraw({ itemId: doomed.itemId });
    await live.waitFor((r) => r.withdrawals().some((w) => w.itemId === doomed.itemId), 'the withdrawal on C', 10_000);

    const model = new ModelReceiver();
    for (const event of live.events) model.apply(event);
    assert.deepEqual(model.liveIds(Date.now(), m), [replaced.itemId, flash.itemId].sort(), 'live on C: the replacement and the flash item');
    assert.equal(itemsFrom(live, m).find((i) => i.itemId === flash.itemId)?.info?.validUntil?.getTime(), flashUntil.getTime(), 'C carries the expiry A set');

    while (Date.now() <= flashUntil.getTime()) await new Promise((resolve) => setTimeout(resolve, 50));
    // A receiver that was offline since the first item resumes on C: the older item is gone
    // (its tombstone says replaced), the withdrawn and the expired ones are not live.
    const offline = new ModelReceiver();
    offline.apply({ event: { $case: 'item', value: itemsFrom(live, m)[0]! } });
    const resumed = readerOn('C', receiver, cursor);
    await resumed.waitFor((r) => r.caughtUp(), 'resumed on C');
    for (const event of resumed.events) offline.apply(event);
    assert.deepEqual(offline.liveIds(Date.now(), m), [replaced.itemId]);
    const tombstone = resumed.withdrawals().find((w) => w.itemId === first.itemId);
    assert.equal(tombstone?.replaced, true, "the first item's tombstone says replaced");
    // From scratch on C: only the replacement.
    const fresh = readerOn('C', receiver);
    await fresh.waitFor((r) => r.caughtUp(), 'snapshot on C');
    assert.deepEqual(itemsFrom(fresh, m).map((i) => i.itemId), [replaced.itemId]);
  });

  it('a request id retried against B after A acknowledged it is answered from the record', async () => {
    const credentials = await register('merchant');
    const onA = merchantOn(credentials, 'A');
    const onB = merchantOn(credentials, 'B');
    const receiver = await register('receiver', 'C');
    const first = await onA.pushSpecific(receiver.id, { title: 'once only' }, { requestId: 'order-1' });
    const retried = await onB.pushSpecific(receiver.id, { title: 'once only' }, { requestId: 'order-1' });
    assert.deepEqual(retried, first, 'same item id and sequence');
    const reused = await onB.pushSpecific(receiver.id, { title: 'something else' }, { requestId: 'order-1' }).catch((error: unknown) => error);
    assert.ok(reused instanceof PushHubError, `got ${String(reused)}`);
    assert.equal(reused.reason, 'REQUEST_ID_REUSED', 'B compares the content with what A recorded');

    const items = [];
    for await (const item of onB.listItems({ receiverId: receiver.id })) items.push(item);
    assert.deepEqual(items.map((i) => i.itemId), [first.itemId], 'committed once');
    const snapshot = readerOn('C', receiver);
    await snapshot.waitFor((r) => r.caughtUp(), 'snapshot on C');
    assert.deepEqual(itemsFrom(snapshot, credentials.id).map((i) => i.itemId), [first.itemId], 'delivered once');
  });

  it("RotatePassword on A: B refuses the old password and ends B's streams opened with it", async () => {
    const receiver = await register('receiver');
    const bystander = await register('receiver');
    const merchant = await register('merchant');
    const onB = cluster.client('B');
    const stolen = readerOn('B', receiver);
    const other = readerOn('B', bystander);
    await stolen.waitFor((r) => r.caughtUp(), 'caught up on B');
    await other.waitFor((r) => r.caughtUp(), 'caught up on B');
    // B has verified both old passwords (and remembers them).
    await onB.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { metadata: basicAuth(merchant) });

    const onA = cluster.client('A');
    const { password } = await onA.rotatePassword({}, { metadata: basicAuth(receiver) });
    await stolen.waitFor((r) => r.ended, "B ends the stream opened with the old password", 10_000);
    assert.ok(stolen.error instanceof ClientError, String(stolen.error));
    assert.equal(stolen.error.code, Status.UNAUTHENTICATED);
    assert.equal(other.ended, false, "another receiver's stream on B is untouched");

    const again = readerOn('B', receiver);
    await again.waitFor((r) => r.ended, 'the old password refused on B');
    assert.equal((again.error as ClientError).code, Status.UNAUTHENTICATED);
    const renewed = readerOn('B', { id: receiver.id, password });
    await renewed.waitFor((r) => r.caughtUp(), 'the new password subscribes on B');

    // B remembers the merchant's old password; the rotation reaches it through the feed (one
    // NOTIFY after A's commit), so B refuses it as soon as the event arrives, not before.
    const rotated = await onA.rotatePassword({}, { metadata: basicAuth(merchant) });
    const listOnB = (credentials: Credentials) =>
      onB.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { metadata: basicAuth(credentials) }).then(
        () => Status.OK,
        (error: unknown) => (error instanceof ClientError ? error.code : Status.UNKNOWN),
      );
    let outcome = await listOnB(merchant);
    for (const deadline = Date.now() + 10_000; outcome === Status.OK && Date.now() < deadline; outcome = await listOnB(merchant)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(Status[outcome], 'UNAUTHENTICATED', "B refuses the merchant's old password once the rotation reached it");
    assert.equal(Status[await listOnB(merchant)], 'UNAUTHENTICATED', 'and keeps refusing it');
    assert.equal(Status[await listOnB({ id: merchant.id, password: rotated.password })], 'OK', 'the new password works on B');
  });

  it('two merchants pushing on A and B at once: every receiver sees every sequence once, in order', async () => {
    const merchants = [merchantOn(await register('merchant'), 'A'), merchantOn(await register('merchant', 'B'), 'B')];
    const receivers = await Promise.all(['A', 'B', 'C', 'C'].map((node) => register('receiver', node)));
    const readers = receivers.map((r, i) => readerOn(['A', 'B', 'C', 'C'][i]!, r));
    for (const reader of readers) await reader.waitFor((r) => r.caughtUp(), 'caught up');

    const perMerchant = 300;
    const acked = await Promise.all(
      merchants.map(async (merchant) => {
        const stream = merchant.openPushStream({ window: 32 });
        const results = await Promise.all(
          Array.from({ length: perMerchant }, (_, i) =>
            i % 3 === 0 ? stream.pushPublic({ title: `public ${i}` }) : stream.pushSpecific(receivers[i % receivers.length]!.id, { title: `specific ${i}` }),
          ),
        );
        await stream.close();
        return results;
      }),
    );
    const all = acked.flat();
    assert.equal(new Set(all.map((r) => r.sequence)).size, 2 * perMerchant, 'every push got its own sequence');

    for (const [index, receiver] of receivers.entries()) {
      const expected = await expectedSequences(merchants, receiver.id);
      const reader = readers[index]!;
      const ids = merchants.map((mc) => mc.id);
      await reader.waitFor((r) => sequencesFrom(r, ...ids).length >= expected.length, `receiver ${index} has every change`, 20_000);
      assert.deepEqual(sequencesFrom(reader, ...ids), expected, `receiver ${index}: every sequence once, in order`);
    }
  });

  it('SIGKILL of B during a push storm: its receivers move to C and resume with 0 lost, 0 duplicated, 0 gaps', async () => {
    // C is down while B's receivers connect, so every one of them starts on B.
    await cluster.node('C').stop();
    const merchantA = merchantOn(await register('merchant'), 'A');
    const merchantBCredentials = await register('merchant', 'B');
    // Enough retries for a push stream cut by the kill to find C (the SDK's default is six).
    const merchantB = new MerchantClient({ address: cluster.addresses('B', 'C'), ...merchantBCredentials, retry: { maxAttempts: 50, maxBackoffMs: 1000 } });
    closers.push(() => merchantB.close());
    const moving = await Promise.all(Array.from({ length: 6 }, () => register('receiver', 'B')));
    const staying = await Promise.all(Array.from({ length: 2 }, () => register('receiver', 'A')));
    const subscriptions = [...moving.map((r) => collect(receiverOn(r, 'B', 'C'))), ...staying.map((r) => collect(receiverOn(r, 'A')))];
    closers.push(() => Promise.all(subscriptions.map((s) => s.stop())));
    await waitUntil(() => subscriptions.every((s) => s.caughtUps() === 1), 'every receiver caught up');
    const streamB = merchantB.openPushStream({ window: 64 });
    await streamB.pushPublic({ title: 'B opens its push stream while C is down' });
    await cluster.node('C').start();

    const receivers = [...moving, ...staying];
    const perMerchant = 1500;
    const ackedByB: PushResult[] = [];
    const storm = (stream: ReturnType<MerchantClient['openPushStream']>, acked: PushResult[], from: number, to: number) =>
      Promise.all(
        Array.from({ length: to - from }, async (_, offset) => {
          const i = from + offset;
          const result = await (i % 10 === 0
            ? stream.pushPublic({ title: `public ${i}` })
            : stream.pushSpecific(receivers[i % receivers.length]!.id, { title: `specific ${i}` }));
          acked.push(result);
          return result;
        }),
      );
    const streamA = merchantA.openPushStream({ window: 64 });
    const ackedByA: PushResult[] = [];
    const stormA = storm(streamA, ackedByA, 0, perMerchant);
    // B's first third is acknowledged before the kill; the rest is handed to the stream in the
    // same turn as the SIGKILL, so pushes are certainly in flight when B dies, however fast the
    // machine (waiting for a count raced the storm's end on a quick run).
    await storm(streamB, ackedByB, 0, perMerchant / 3);
    const stormB = storm(streamB, ackedByB, perMerchant / 3, perMerchant);
    const ackedBeforeKill = [...ackedByA, ...ackedByB];
    await cluster.node('B').kill();
    assert.ok(ackedByB.length < perMerchant, 'B died with pushes of its merchant still unanswered');
    const storms = [stormA, stormB];
    await Promise.all(storms);
    await streamA.close();
    await streamB.close();

    const acked = [...ackedByA, ...ackedByB];
    assert.equal(acked.length, 2 * perMerchant, "every push was acknowledged (B's unanswered ones by C, by request id)");
    const merchants = [merchantA, merchantOn(merchantBCredentials, 'A')];
    const committed = new Set<bigint>();
    for (const [index, receiver] of receivers.entries()) {
      const expected = await expectedSequences(merchants, receiver.id);
      for (const s of expected) committed.add(s);
      const subscription = subscriptions[index]!;
      const ids = [merchantA.id, merchantB.id];
      await waitUntil(() => subscription.sequences(...ids).length >= expected.length, `receiver ${index} has every change`, 30_000);
      const seen = subscription.sequences(...ids).map(BigInt);
      assert.equal(seen.length - new Set(seen).size, 0, `receiver ${index}: 0 duplicated`);
      assert.deepEqual(seen, expected, `receiver ${index}: 0 lost, 0 gaps, in order`);
      assert.equal(subscription.state.error, undefined);
    }
    for (const result of ackedBeforeKill) assert.ok(committed.has(BigInt(result.sequence)), `acknowledged before the kill and kept: ${result.sequence}`);
    for (const result of acked) assert.ok(committed.has(BigInt(result.sequence)), `acknowledged and kept: ${result.sequence}`);
    for (const [index, subscription] of subscriptions.slice(0, moving.length).entries()) {
      assert.ok(subscription.caughtUps() >= 2, `receiver ${index} on B reconnected (to C) and caught up again`);
    }
  });

  it('behind nginx in front of B and C, a receiver keeps receiving when a node is killed', async () => {
    const proxy = await GrpcProxy.start(cluster.addresses('B', 'C'));
    closers.push(() => proxy.stop());
    const merchant = merchantOn(await register('merchant'), 'A');
    const credentials = await ReceiverClient.register(proxy.address);
    const receiver = new ReceiverClient({ address: proxy.address, ...credentials, heartbeatIntervalMs: 1000 });
    closers.push(() => receiver.close());
    const subscription = collect(receiver);
    closers.push(subscription.stop);
    await waitUntil(() => subscription.caughtUps() === 1, 'caught up through nginx');

    const pushed: PushResult[] = [];
    const pushBatch = async (label: string) => {
      for (let i = 0; i < 20; i++) pushed.push(await merchant.pushSpecific(credentials.id, { title: `${label} ${i}` }));
      await waitUntil(() => subscription.sequences(merchant.id).length === pushed.length, `${label}: every push through nginx (${proxy.errorLog()})`, 30_000);
    };
    await pushBatch('both up');
    // The stream runs through one of the two nodes: kill each in turn, so one kill hits it.
    await cluster.node('B').kill();
    await pushBatch('B killed');
    await cluster.node('B').start();
    await cluster.node('C').kill();
    await pushBatch('C killed');
    assert.deepEqual(subscription.sequences(merchant.id), pushed.map((p) => p.sequence), 'every push once, in order');
    assert.ok(subscription.caughtUps() >= 2, 'the stream was cut by a kill and resumed through the proxy');
    assert.equal(subscription.state.error, undefined);
  });

  it('receipts: a receiver confirms on B, the merchant watching on A sees it live and reads it on C', async () => {
    const merchantCredentials = await register('merchant');
    const merchant = merchantOn(merchantCredentials, 'A');
    const receiverCredentials = await register('receiver', 'B');
    const events: DeliveryEvent[] = [];
    const abort = new AbortController();
    const watching = (async () => {
      for await (const event of merchant.watchDeliveries({ signal: abort.signal })) events.push(event);
    })();
    closers.push(async () => {
      abort.abort();
      await watching;
    });
    await waitUntil(() => events.some((e) => e.type === 'caughtUp'), 'watch on A caught up');
    const push = await merchant.pushSpecific(receiverCredentials.id, { title: 'voucher' });
    const pub = await merchant.pushPublic({ title: 'for everyone' });
    const onB = receiverOn(receiverCredentials, 'B');
    assert.equal(await onB.confirmDelivery(pub.sequence), pub.sequence);
    await waitUntil(() => events.some((e) => e.type === 'delivered' && e.itemId === push.itemId), 'delivered event on A', 10_000);
    await waitUntil(() => events.some((e) => e.type === 'publicProgress' && e.itemId === pub.itemId && e.deliveredCount >= 1), 'public progress on A', 10_000);
    const onC = merchantOn(merchantCredentials, 'C');
    const [status] = await onC.deliveryStatus([push.itemId]);
    assert.equal(status!.state, 'DELIVERED');
    assert.equal(status!.receiverId, receiverCredentials.id);
  });

  it('no node logged an unexpected error, and no log line holds the database password', () => {
    const password = decodeURIComponent(new URL(cluster.databaseUrl).password);
    assert.ok(password.length > 0);
    const leaks = cluster.nodes.flatMap((n) => n.lines.filter((line) => line.includes(password)).map((line) => `${n.name}: ${line}`));
    assert.deepEqual(leaks, []);
    assert.deepEqual(cluster.errorLines(), []);
  });
});
