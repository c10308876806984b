import assert from 'node:assert/strict';
import { ClientError, Status } from 'nice-grpc';
import {
  type DeliveryEvent,
  DeliveryState,
  type DeliveryStatus,
  ReceiptPolicy,
  ResetReason,
} from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { type Credentials, type HubClient, StreamReader, TestHub, basicAuth, describeOnBackends } from '../support/hub.js';

/** Reads a WatchDeliveries stream in the background. */
class WatchReader {
  readonly events: DeliveryEvent[] = [];
  error: unknown;
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;

  constructor(client: HubClient, merchant: Credentials, afterCursor = 0n, historyId = '') {
    const stream = client.watchDeliveries({ afterCursor, historyId }, { metadata: basicAuth(merchant), signal: this.abort.signal });
    this.done = (async () => {
      try {
        for await (const response of stream) this.events.push(...response.events);
      } catch (error) {
        this.error = error;
      }
    })();
  }

  delivered() {
    return this.events.flatMap((e) => (e.event?.$case === 'delivered' ? [e.event.value] : []));
  }

  progress() {
    return this.events.flatMap((e) => (e.event?.$case === 'publicProgress' ? [e.event.value] : []));
  }

  caughtUp(): boolean {
    return this.events.some((e) => e.event?.$case === 'caughtUp');
  }

  async waitFor(predicate: (r: WatchReader) => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(this.events, (_, v) => (typeof v === 'bigint' ? String(v) : v))}, error: ${String(this.error)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeOnBackends('delivery receipts', () => {
  let t: TestHub;
  let client: HubClient;
  let merchant: Credentials;
  const closers: { close(): Promise<void> }[] = [];
  const as = (c: Credentials) => ({ metadata: basicAuth(c) });
  const statusOf = async (itemId: string, m: Credentials = merchant): Promise<DeliveryStatus> =>
    (await client.getDeliveryStatus({ itemIds: [itemId] }, as(m))).statuses[0]!;
  const push = (receiver: Credentials, title: string, extra: { key?: string; validUntil?: Date } = {}) =>
    client.pushSpecific({ receiverId: receiver.id, info: { title, ...extra } }, as(merchant));
  const watch = (m: Credentials, after = 0n, historyId = '') => {
    const w = new WatchReader(t.client(), m, after, historyId);
    closers.push(w);
    return w;
  };

  before(async () => {
    t = await TestHub.start();
    client = t.client();
    merchant = await t.register('merchant');
  });
  afterEach(async () => {
    for (const c of closers.splice(0)) await c.close();
  });
  after(() => t.stop());

  it('a specific push is PENDING, then DELIVERED with the time its receiver confirmed it', async () => {
    const receiver = await t.register('receiver');
    const ack = await push(receiver, 'voucher');
    const pending = await statusOf(ack.itemId);
    assert.equal(pending.state, DeliveryState.DELIVERY_STATE_PENDING);
    assert.equal(pending.receiverId, receiver.id);
    assert.equal(pending.sequence, ack.sequence);

    const before = Date.now();
    const confirmed = await client.confirmDelivery({ upToSequence: ack.sequence }, as(receiver));
    assert.equal(confirmed.confirmedSequence, ack.sequence);
    const delivered = await statusOf(ack.itemId);
    assert.equal(delivered.state, DeliveryState.DELIVERY_STATE_DELIVERED);
    assert.ok(delivered.confirmedAt && delivered.confirmedAt.getTime() >= before - 1000);
  });

  it('a confirmation beyond the head is INVALID_ARGUMENT; one going backwards is ignored', async () => {
    const receiver = await t.register('receiver');
    const first = await push(receiver, 'one');
    const second = await push(receiver, 'two');
    let reason: string | undefined;
    await assert.rejects(
      client.confirmDelivery({ upToSequence: second.sequence + 1000n }, { ...as(receiver), onTrailer: (tr) => (reason = tr.get('pushhub-reason')) }),
      (e: unknown) => e instanceof ClientError && e.code === Status.INVALID_ARGUMENT && /up_to_sequence/.test(e.details),
    );
    assert.equal(reason, 'CONFIRMATION_AHEAD');
    await client.confirmDelivery({ upToSequence: second.sequence }, as(receiver));
    const back = await client.confirmDelivery({ upToSequence: first.sequence }, as(receiver));
    assert.equal(back.confirmedSequence, second.sequence, 'the cursor never moves back');
    assert.equal((await statusOf(second.itemId)).state, DeliveryState.DELIVERY_STATE_DELIVERED);
  });

  it('a resume with after_sequence = N confirms N', async () => {
    const receiver = await t.register('receiver');
    const ack = await push(receiver, 'resume');
    const reader = new StreamReader(t.client(), receiver, ack.sequence);
    closers.push(reader);
    await reader.waitFor((r) => r.caughtUp(), 'caught up');
    const deadline = Date.now() + 5000;
    while ((await statusOf(ack.itemId)).state !== DeliveryState.DELIVERY_STATE_DELIVERED) {
      assert.ok(Date.now() < deadline, 'the resume was stored as a confirmation');
      await sleep(20);
    }
  });

  it('withdrawn, replaced and expired items that were never confirmed say so; a confirmed one stays DELIVERED', async () => {
    const receiver = await t.register('receiver');
    const kept = await push(receiver, 'kept');
    await client.confirmDelivery({ upToSequence: kept.sequence }, as(receiver));
    await client.withdraw({ itemId: kept.itemId }, as(merchant));
    const withdrawn = await push(receiver, 'withdrawn');
    await client.withdraw({ itemId: withdrawn.itemId }, as(merchant));
    const replaced = await push(receiver, 'v1', { key: 'card' });
    const replacement = await push(receiver, 'v2', { key: 'card' });
    const expiring = await push(receiver, 'short', { validUntil: new Date(Date.now() + 300) });
    await sleep(350);
    // Confirmed after they ended: proves nothing about them.
    await client.confirmDelivery({ upToSequence: replacement.sequence + 1n }, as(receiver));
    const { statuses } = await client.getDeliveryStatus({ itemIds: [withdrawn.itemId, replaced.itemId, expiring.itemId, kept.itemId] }, as(merchant));
    assert.deepEqual(statuses.map((s) => s.state), [
      DeliveryState.DELIVERY_STATE_WITHDRAWN_BEFORE_DELIVERY,
      DeliveryState.DELIVERY_STATE_REPLACED_BEFORE_DELIVERY,
      DeliveryState.DELIVERY_STATE_EXPIRED_BEFORE_DELIVERY,
      DeliveryState.DELIVERY_STATE_DELIVERED,
    ]);
  });

  it('an opted-out receiver\'s items are UNKNOWN, and it counts in no public item', async () => {
    const receiver = await t.register('receiver');
    const ack = await push(receiver, 'private');
    await client.confirmDelivery({ upToSequence: ack.sequence }, as(receiver));
    assert.equal((await statusOf(ack.itemId)).state, DeliveryState.DELIVERY_STATE_DELIVERED);
    const set = await client.setReceiptPolicy({ policy: ReceiptPolicy.RECEIPT_POLICY_OPT_OUT }, as(receiver));
    assert.equal(set.policy, ReceiptPolicy.RECEIPT_POLICY_OPT_OUT);
    assert.equal((await client.setReceiptPolicy({}, as(receiver))).policy, ReceiptPolicy.RECEIPT_POLICY_OPT_OUT, 'the setting is stored');
    assert.equal((await statusOf(ack.itemId)).state, DeliveryState.DELIVERY_STATE_UNKNOWN, 'never a guess, even for what was confirmed');
    const later = await push(receiver, 'later');
    const confirmed = await client.confirmDelivery({ upToSequence: later.sequence }, as(receiver));
    assert.equal(confirmed.confirmedSequence, 0n, 'nothing is recorded');
    assert.equal((await statusOf(later.itemId)).state, DeliveryState.DELIVERY_STATE_UNKNOWN);

    const back = await client.setReceiptPolicy({ policy: ReceiptPolicy.RECEIPT_POLICY_SHARE }, as(receiver));
    assert.equal(back.policy, ReceiptPolicy.RECEIPT_POLICY_SHARE);
    assert.equal((await statusOf(ack.itemId)).state, DeliveryState.DELIVERY_STATE_PENDING, 'receipts from before the opt-out were deleted');
  });

  it('a public item\'s delivered_count rises as receivers catch up, out of the receivers registered', async () => {
    const fresh = await TestHub.start();
    closers.push({ close: () => fresh.stop() });
    const c = fresh.client();
    const m = await fresh.register('merchant');
    const receivers = [await fresh.register('receiver'), await fresh.register('receiver'), await fresh.register('receiver')];
    const optedOut = await fresh.register('receiver');
    await c.setReceiptPolicy({ policy: ReceiptPolicy.RECEIPT_POLICY_OPT_OUT }, as(optedOut));
    const ack = await c.pushPublic({ info: { title: 'sale' } }, as(m));
    const counts = async () => {
      const s = (await c.getDeliveryStatus({ itemIds: [ack.itemId] }, as(m))).statuses[0]!;
      assert.equal(s.state, DeliveryState.DELIVERY_STATE_PUBLIC);
      return [Number(s.deliveredCount), Number(s.eligibleCount)];
    };
    assert.deepEqual(await counts(), [0, 3]);
    await c.confirmDelivery({ upToSequence: ack.sequence }, as(receivers[0]!));
    assert.deepEqual(await counts(), [1, 3]);
    await c.confirmDelivery({ upToSequence: ack.sequence }, as(receivers[1]!));
    await c.confirmDelivery({ upToSequence: ack.sequence }, as(optedOut));
    assert.deepEqual(await counts(), [2, 3]);

    const w = new WatchReader(fresh.client(), m);
    closers.unshift(w);
    await w.waitFor((r) => r.caughtUp(), 'caught up');
    await c.confirmDelivery({ upToSequence: ack.sequence }, as(receivers[2]!));
    await w.waitFor((r) => r.progress().some((p) => p.deliveredCount === 3n), 'public progress 3 of 3');
    const last = w.progress().at(-1)!;
    assert.equal(last.itemId, ack.itemId);
    assert.equal(last.eligibleCount, 3n);
  });

  it('WatchDeliveries sends one event per delivered item live, and resumes from a cursor', async () => {
    const m = await t.register('merchant');
    const receiver = await t.register('receiver');
    const w = watch(m);
    await w.waitFor((r) => r.caughtUp(), 'caught up');
    const a = await client.pushSpecific({ receiverId: receiver.id, info: { title: 'a' } }, as(m));
    const b = await client.pushSpecific({ receiverId: receiver.id, info: { title: 'b' } }, as(m));
    await client.confirmDelivery({ upToSequence: b.sequence }, as(receiver));
    await w.waitFor((r) => r.delivered().length === 2, 'two deliveries');
    assert.deepEqual(w.delivered().map((d) => d.itemId), [a.itemId, b.itemId]);
    assert.equal(w.delivered()[0]!.receiverId, receiver.id);
    const cursor = w.events.find((e) => e.event?.$case === 'delivered')!.cursor;

    const c = await client.pushSpecific({ receiverId: receiver.id, info: { title: 'c' } }, as(m));
    await client.confirmDelivery({ upToSequence: c.sequence }, as(receiver));
    await w.waitFor((r) => r.delivered().length === 3, 'third delivery');

    const resumed = watch(m, cursor - 1n);
    await resumed.waitFor((r) => r.caughtUp(), 'resumed caught up');
    assert.deepEqual(resumed.delivered().map((d) => d.itemId), [a.itemId, b.itemId, c.itemId]);
    const after = watch(m, cursor);
    await after.waitFor((r) => r.caughtUp(), 'resumed after caught up');
    assert.deepEqual(after.delivered().map((d) => d.itemId), [c.itemId]);
  });

  it('WatchDeliveries cursors belong to the history: caughtUp and heartbeats name it; a cursor of another history or beyond the newest gets a Reset, then live receipts', async () => {
    const m = await t.register('merchant');
    const receiver = await t.register('receiver');
    const history = t.hub.context.backend.history.current().id;
    const w = watch(m);
    await w.waitFor((r) => r.caughtUp(), 'caught up');
    const caughtUp = w.events.find((e) => e.event?.$case === 'caughtUp')!.event;
    assert.equal(caughtUp?.$case === 'caughtUp' && caughtUp.value.historyId, history);
    const a = await client.pushSpecific({ receiverId: receiver.id, info: { title: 'a' } }, as(m));
    await client.confirmDelivery({ upToSequence: a.sequence }, as(receiver));
    await w.waitFor((r) => r.delivered().length === 1, 'a delivery');
    const cursor = w.events.find((e) => e.event?.$case === 'delivered')!.cursor;

    // Same history: resumes as without one.
    const same = watch(m, cursor - 1n, history);
    await same.waitFor((r) => r.caughtUp(), 'same history caught up');
    assert.deepEqual(same.delivered().map((d) => d.itemId), [a.itemId]);
    // Another database's history: a Reset, then nothing replayed.
    const other = watch(m, cursor, 'H000000000000000000000000');
    await other.waitFor((r) => r.caughtUp(), 'other history caught up');
    const [reset, after] = other.events;
    assert.deepEqual(reset, { cursor: 0n, event: { $case: 'reset', value: { reason: ResetReason.RESET_REASON_UNKNOWN_HISTORY, historyId: history } } });
    assert.equal(after?.event?.$case, 'caughtUp');
    // Beyond the newest receipt: OUT_OF_RANGE without a history id, a Reset with one.
    const ahead = watch(m, cursor + 1000n, history);
    await ahead.waitFor((r) => r.caughtUp(), 'ahead caught up');
    assert.equal(ahead.events[0]!.event?.$case === 'reset' && ahead.events[0]!.event.value.reason, ResetReason.RESET_REASON_CURSOR_AHEAD);
    const legacy = watch(m, cursor + 1000n);
    await legacy.waitFor((r) => r.error !== undefined, 'the error');
    assert.equal((legacy.error as ClientError).code, Status.OUT_OF_RANGE);
    // Live receipts reach the reset streams.
    const b = await client.pushSpecific({ receiverId: receiver.id, info: { title: 'b' } }, as(m));
    await client.confirmDelivery({ upToSequence: b.sequence }, as(receiver));
    await other.waitFor((r) => r.delivered().length === 1, 'a live delivery after the reset');
    assert.equal(other.delivered()[0]!.itemId, b.itemId);
  });

  it('no merchant can read another merchant\'s receipts', async () => {
    const rival = await t.register('merchant');
    const receiver = await t.register('receiver');
    const rivalWatch = watch(rival);
    await rivalWatch.waitFor((r) => r.caughtUp(), 'caught up');
    const ack = await push(receiver, 'mine');
    const pub = await client.pushPublic({ info: { title: 'mine too' } }, as(merchant));
    await client.confirmDelivery({ upToSequence: pub.sequence }, as(receiver));
    assert.equal((await statusOf(ack.itemId)).state, DeliveryState.DELIVERY_STATE_DELIVERED);

    // Another merchant's item reads exactly like an item that does not exist.
    const { statuses } = await client.getDeliveryStatus({ itemIds: [ack.itemId, pub.itemId, 'I00000000000000010000000000000000'] }, as(rival));
    for (const s of statuses) {
      assert.equal(s.state, DeliveryState.DELIVERY_STATE_NOT_FOUND);
      assert.equal(s.receiverId, '');
      assert.equal(s.confirmedAt, undefined);
      assert.equal(s.sequence, 0n);
    }
    // Its watch stream, resumed from the start, holds nothing of the other merchant's.
    const resumed = watch(rival, 1n);
    await resumed.waitFor((r) => r.caughtUp(), 'caught up');
    await sleep(1200); // one public progress interval
    assert.deepEqual([...rivalWatch.delivered(), ...rivalWatch.progress(), ...resumed.delivered(), ...resumed.progress()], []);
    // Receivers read no receipts at all.
    await assert.rejects(client.getDeliveryStatus({ itemIds: [ack.itemId] }, as(receiver)), (e: unknown) => e instanceof ClientError && e.code === Status.PERMISSION_DENIED);
  });

  it('a merchant a receiver blocks sees nothing of that receiver\'s receipts', async () => {
    const fresh = await TestHub.start();
    closers.push({ close: () => fresh.stop() });
    const c = fresh.client();
    const m = await fresh.register('merchant');
    const blocker = await fresh.register('receiver');
    const other = await fresh.register('receiver');
    const item = await c.pushSpecific({ receiverId: blocker.id, info: { title: 'before the block' } }, as(m));
    const pub = await c.pushPublic({ info: { title: 'public' } }, as(m));
    await c.confirmDelivery({ upToSequence: pub.sequence }, as(blocker));
    await c.confirmDelivery({ upToSequence: pub.sequence }, as(other));
    const counts = async () => {
      const s = (await c.getDeliveryStatus({ itemIds: [pub.itemId] }, as(m))).statuses[0]!;
      return [Number(s.deliveredCount), Number(s.eligibleCount)];
    };
    assert.deepEqual(await counts(), [2, 2]);
    await c.blockMerchant({ merchantId: m.id }, as(blocker));
    const [status] = (await c.getDeliveryStatus({ itemIds: [item.itemId] }, as(m))).statuses;
    assert.equal(status!.state, DeliveryState.DELIVERY_STATE_NOT_FOUND);
    assert.equal(status!.receiverId, '');
    assert.deepEqual(await counts(), [1, 1], 'the blocking receiver counts in neither');
    const w = new WatchReader(fresh.client(), m, 1n);
    closers.unshift(w);
    await w.waitFor((r) => r.caughtUp(), 'caught up');
    assert.ok(!w.delivered().some((d) => d.receiverId === blocker.id), 'its receipts are gone from the log');
  });

  it('GetDeliveryStatus takes 1 to 1,000 item ids', async () => {
    const bad = (itemIds: string[]) =>
      assert.rejects(client.getDeliveryStatus({ itemIds }, as(merchant)), (e: unknown) => e instanceof ClientError && e.code === Status.INVALID_ARGUMENT && /item_ids/.test(e.details));
    await bad([]);
    await bad(Array.from({ length: 1001 }, () => 'I00000000000000010000000000000000'));
    const { statuses } = await client.getDeliveryStatus({ itemIds: Array.from({ length: 1000 }, () => 'nope') }, as(merchant));
    assert.equal(statuses.length, 1000);
  });
});
