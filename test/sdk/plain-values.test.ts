import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Audience as WireAudience, Item as WireItem } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { MerchantClient, PushHubError, Status, type ServiceInfoInput } from '../../sdk/src/merchant.js';
import { computeOffers, validateRules } from '../../sdk/src/offers/index.js';
import { type ReceiverEvent, ReceiverClient, type StoreChange, createReceiverStore } from '../../sdk/src/receiver.js';
import { itemFromWire } from '../../sdk/src/values.js';
import { TestHub } from '../support/hub.js';
import { waitUntil } from './support.js';

/** What an application that logs or stores a value as JSON gets back. */
const throughJson = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const assertPlain = (value: unknown, what: string) => assert.deepStrictEqual(throughJson(value), value, `${what} survives JSON`);

const DAY_MS = 86_400_000;

describe('sdk: results and events are plain data; inputs are checked before the wire', () => {
  let hub: TestHub;
  let dir: string;
  let merchant: MerchantClient;
  let receiverId: string;
  let receiver: ReceiverClient;

  before(async () => {
    hub = await TestHub.start();
    dir = mkdtempSync(join(tmpdir(), 'pushhub-plain-'));
    merchant = new MerchantClient({ address: hub.address, ...(await MerchantClient.register(hub.address)) });
    const credentials = await ReceiverClient.register(hub.address);
    receiverId = credentials.id;
    receiver = new ReceiverClient({ address: hub.address, ...credentials });
  });
  after(async () => {
    receiver.close();
    merchant.close();
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('merchant results, listed items, receiver events and store contents survive JSON.stringify / JSON.parse', async () => {
    const validUntil = new Date(Date.now() + 7 * DAY_MS);
    const points = await merchant.pushSpecific(receiverId, {
      key: 'points',
      title: 'Your points',
      validUntil,
      offer: { $case: 'points', value: { balance: 120, earned: 20 } },
      data: { tier: 'gold' },
    });
    const voucher = await merchant.pushPublic({ title: '5 off', offer: { $case: 'voucher', value: { code: 'V5', amountOff: 500, currency: 'EUR' } } });
    const stream = merchant.openPushStream();
    const streamed = await stream.pushPublic({ key: 'sale', title: '10% off', offer: { $case: 'discount', value: { percentOff: 10 } } });
    const withdrawn = await stream.withdraw({ itemId: voucher.itemId });
    await stream.close();
    for (const result of [points, voucher, streamed, withdrawn]) {
      assertPlain(result, 'a push result');
      assert.equal(typeof result.sequence, 'number');
    }

    const listed = [];
    for await (const item of merchant.listItems()) listed.push(item);
    assertPlain(listed, 'listed items');
    const listedPoints = listed.find((item) => item.itemId === points.itemId)!;
    assert.deepStrictEqual(listedPoints, {
      itemId: points.itemId,
      sequence: points.sequence,
      merchantId: merchant.id,
      audience: 'specific',
      receiverId,
      pushedAt: listedPoints.pushedAt,
      info: {
        key: 'points',
        title: 'Your points',
        body: '',
        validUntil: validUntil.toISOString(),
        offer: { $case: 'points', value: { balance: 120, earned: 20 } },
        data: { tier: 'gold' },
      },
    });
    assert.equal(new Date(listedPoints.pushedAt).toISOString(), listedPoints.pushedAt, 'pushedAt is an ISO-8601 string');
    assert.equal(listed.find((item) => item.itemId === streamed.itemId)?.audience, 'public');

    const events: ReceiverEvent[] = [];
    const abort = new AbortController();
    for await (const event of receiver.subscribe({ signal: abort.signal })) {
      events.push(event);
      if (event.type === 'caughtUp') break;
    }
    assertPlain(events, 'receiver events');
    const received = events.flatMap((event) => (event.type === 'item' ? [event.item] : []));
    // The item a receiver gets is the item its merchant lists: one JSON form.
    assert.deepStrictEqual(
      received.find((item) => item.itemId === points.itemId),
      listedPoints,
    );
    const caughtUp = events.at(-1)!;
    assert.deepStrictEqual(caughtUp, { type: 'caughtUp', sequence: withdrawn.sequence, historyId: (caughtUp as { historyId: string }).historyId });
    assert.match((caughtUp as { historyId: string }).historyId, /^H[0-9a-f]+$/);

    // A resume from before the withdrawal delivers it as plain data too.
    const resumed: ReceiverEvent[] = [];
    for await (const event of receiver.subscribe({ afterSequence: streamed.sequence })) {
      resumed.push(event);
      if (event.type === 'caughtUp') break;
    }
    assertPlain(resumed, 'a withdrawal event');
    assert.deepStrictEqual(resumed[0], {
      type: 'withdrawal',
      withdrawal: { itemId: voucher.itemId, sequence: withdrawn.sequence, merchantId: merchant.id, audience: 'public', key: '', replaced: false, cause: 'withdrawn' },
    });

    const store = createReceiverStore(join(dir, 'store.db'));
    try {
      const changes: StoreChange[] = [];
      store.on('change', (change) => changes.push(change));
      const syncing = store.sync(receiver, { signal: abort.signal });
      await waitUntil(() => store.cursor === withdrawn.sequence, 'the store to catch up');
      await merchant.pushSpecific(receiverId, { key: 'points', title: 'More points', offer: { $case: 'points', value: { balance: 150, earned: 30 } } });
      await waitUntil(() => changes.some((change) => change.type === 'added' && change.item.info.title === 'More points'), 'the replacement');
      abort.abort();
      await syncing;
      assertPlain(changes, 'store changes');
      assertPlain(store.items(), 'stored items');
      assert.equal(typeof store.cursor, 'number');
      // What the store keeps reads back exactly as it arrived.
      const added = changes.filter((change) => change.type === 'added').map((change) => change.item);
      for (const item of added) if (store.item(item.itemId)) assert.deepStrictEqual(store.item(item.itemId), item);
    } finally {
      store.close();
    }
  });

  it('computed offers are plain data, and push as they are', async () => {
    const rules = validateRules({
      version: 1,
      currency: 'EUR',
      timeZone: 'UTC',
      offers: [{ id: 'points', kind: 'points', earn: { points: 1, per: 100 }, validDays: 30 }],
    });
    const now = new Date();
    const offers = computeOffers([{ receiverId, time: new Date(now.getTime() - 1000), place: 'main', amount: 1250, currency: 'EUR' }], rules, now);
    assertPlain(offers, 'computed offers');
    assert.deepStrictEqual(offers[0]?.offer, { $case: 'points', value: { balance: 12, earned: 12 } });
    const pushed = await merchant.pushSpecific(receiverId, offers[0]!);
    const listed = [];
    for await (const item of merchant.listItems({ receiverId })) if (item.itemId === pushed.itemId) listed.push(item);
    assert.deepStrictEqual(listed[0]?.info, offers[0]);
  });

  it('accepts validUntil as a Date, an ISO-8601 string or epoch milliseconds', async () => {
    const when = new Date(Math.ceil((Date.now() + 3 * DAY_MS) / 1000) * 1000);
    const offset = `${when.toISOString().slice(0, 19)}+00:00`;
    const tomorrow = new Date(Date.now() + 2 * DAY_MS).toISOString().slice(0, 10);
    const forms: [string, ServiceInfoInput['validUntil'], string][] = [
      ['Date', when, when.toISOString()],
      ['ISO string', when.toISOString(), when.toISOString()],
      ['ISO string with an offset', offset, when.toISOString()],
      ['ISO string without fraction', when.toISOString().replace('.000Z', 'Z'), when.toISOString()],
      ['date alone (midnight UTC)', tomorrow, `${tomorrow}T00:00:00.000Z`],
      ['epoch ms', when.getTime(), when.toISOString()],
    ];
    for (const [form, validUntil, expected] of forms) {
      const { itemId } = await merchant.pushPublic({ title: form, validUntil });
      let stored: string | undefined;
      for await (const item of merchant.listItems({ audience: 'public' })) if (item.itemId === itemId) stored = item.info.validUntil;
      assert.equal(stored, expected, form);
    }
  });

  it('refuses wrong types and unparsable dates with INVALID_ARGUMENT naming the field, before anything is sent', async () => {
    const head = hub.hub.probe.headSequence();
    const untyped = merchant as unknown as {
      pushSpecific(receiverId: unknown, info: unknown, options?: unknown): Promise<unknown>;
      pushPublic(info: unknown, options?: unknown): Promise<unknown>;
      withdraw(target: unknown): Promise<unknown>;
    };
    const cases: [string, () => Promise<unknown>, string][] = [
      ['unparsable validUntil', () => untyped.pushPublic({ title: 'x', validUntil: 'tomorrow' }), 'info.validUntil'],
      ['ISO date-time without a zone', () => untyped.pushPublic({ title: 'x', validUntil: '2030-01-01T00:00:00' }), 'info.validUntil'],
      ['invalid Date', () => untyped.pushPublic({ title: 'x', validUntil: new Date('nope') }), 'info.validUntil'],
      ['validUntil NaN', () => untyped.pushPublic({ title: 'x', validUntil: Number.NaN }), 'info.validUntil'],
      ['validUntil object', () => untyped.pushPublic({ title: 'x', validUntil: { seconds: 1 } }), 'info.validUntil'],
      ['title a number', () => untyped.pushPublic({ title: 42 }), 'info.title'],
      ['info not an object', () => untyped.pushPublic('hello'), 'info'],
      ['balance a string', () => untyped.pushPublic({ offer: { $case: 'points', value: { balance: '120' } } }), 'info.offer.value.balance'],
      ['balance a bigint', () => untyped.pushPublic({ offer: { $case: 'points', value: { balance: 120n } } }), 'info.offer.value.balance'],
      ['balance beyond the safe range', () => untyped.pushPublic({ offer: { $case: 'points', value: { balance: 2 ** 60 } } }), 'info.offer.value.balance'],
      ['amountOff a fraction', () => untyped.pushPublic({ offer: { $case: 'voucher', value: { amountOff: 1.5 } } }), 'info.offer.value.amountOff'],
      ['percentOff negative', () => untyped.pushPublic({ offer: { $case: 'discount', value: { percentOff: -1 } } }), 'info.offer.value.percentOff'],
      ['unknown offer kind', () => untyped.pushPublic({ offer: { $case: 'coupon', value: {} } }), 'info.offer.$case'],
      ['data value a number', () => untyped.pushPublic({ data: { count: 3 } }), 'info.data.count'],
      ['receiverId a number', () => untyped.pushSpecific(7, { title: 'x' }), 'receiverId'],
      ['requestId a number', () => untyped.pushPublic({ title: 'x' }, { requestId: 7 }), 'options.requestId'],
      ['withdraw itemId a number', () => untyped.withdraw({ itemId: 7 }), 'target.itemId'],
      ['withdraw target empty', () => untyped.withdraw({}), 'target'],
      ['push stream validUntil', () => (merchant.openPushStream() as unknown as typeof untyped).pushPublic({ validUntil: '1 Jan' }), 'info.validUntil'],
      ['listItems pageSize', () => merchant.listItems({ pageSize: 'all' as unknown as number })[Symbol.asyncIterator]().next(), 'filter.pageSize'],
      ['subscribe afterSequence a bigint', () => receiver.subscribe({ afterSequence: 5n as unknown as number }).next(), 'afterSequence'],
      ['subscribe afterSequence negative', () => receiver.subscribe({ afterSequence: -1 }).next(), 'afterSequence'],
      ['register regionCode a number', () => MerchantClient.register(hub.address, { regionCode: 11 as unknown as string }), 'options.regionCode'],
      ['register displayName an object', () => ReceiverClient.register(hub.address, { displayName: {} as unknown as string }), 'options.displayName'],
    ];
    for (const [what, call, field] of cases) {
      await assert.rejects(call(), (error: unknown) => {
        assert.ok(error instanceof PushHubError, `${what}: a PushHubError (${String(error)})`);
        assert.equal(error.code, Status.INVALID_ARGUMENT, `${what}: ${error.message}`);
        assert.equal(error.reason, 'INVALID_ARGUMENT', what);
        assert.ok(error.details.startsWith(`${field} `), `${what}: the message names ${field}: ${error.details}`);
        return true;
      });
    }
    assert.equal(hub.hub.probe.headSequence(), head, 'nothing was committed');
  });

  it('refuses a hub integer beyond Number.MAX_SAFE_INTEGER with OUT_OF_RANGE instead of rounding it', () => {
    const item = WireItem.fromPartial({ itemId: 'I1', sequence: 2n ** 53n + 1n, audience: WireAudience.AUDIENCE_PUBLIC });
    assert.throws(() => itemFromWire(item), (error: unknown) => {
      assert.ok(error instanceof PushHubError);
      assert.equal(error.code, Status.OUT_OF_RANGE);
      assert.equal(error.reason, 'UNSAFE_INTEGER');
      assert.match(error.details, /^item\.sequence 9007199254740993 is beyond Number\.MAX_SAFE_INTEGER/);
      return true;
    });
    const points = WireItem.fromPartial({ sequence: 1n, info: { offer: { $case: 'points', value: { balance: -(2n ** 60n) } } } });
    assert.throws(() => itemFromWire(points), { reason: 'UNSAFE_INTEGER' });
    assert.equal(itemFromWire(WireItem.fromPartial({ sequence: BigInt(Number.MAX_SAFE_INTEGER) })).sequence, Number.MAX_SAFE_INTEGER);
  });
});
