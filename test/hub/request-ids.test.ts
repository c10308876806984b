import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Status } from 'nice-grpc';
import { ServiceInfo } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { canonicalText, pushCanonicalText } from '../../src/api/request-digest.js';
import { type CallOutcome, outcomeOf } from '../reliability/support.js';
import { type Credentials, type HubClient, TestHub, basicAuth, describeOnBackends } from '../support/hub.js';

/** A reused request_id with a different request is refused with its own reason (AIP-155). */
describeOnBackends('request ids', () => {
  let t: TestHub;
  let client: HubClient;
  let merchant: Credentials;
  let alice: Credentials;
  let bob: Credentials;
  const asMerchant = () => ({ metadata: basicAuth(merchant) });

  before(async () => {
    t = await TestHub.start();
    client = t.client();
    merchant = await t.register('merchant');
    alice = await t.register('receiver');
    bob = await t.register('receiver');
  });
  after(() => t.stop());

  const assertReused = (o: CallOutcome) => {
    assert.equal(o.code, Status.INVALID_ARGUMENT, o.details);
    assert.equal(o.details, 'request_id: already used within 24 h for a different request');
    assert.equal(o.reason, 'REQUEST_ID_REUSED');
  };

  it('same request, same id: the first answer again; different content: REQUEST_ID_REUSED', async () => {
    const request = { receiverId: alice.id, info: { title: 'ten off', data: { a: '1', b: '2' } }, requestId: 'r-content' };
    const first = await client.pushSpecific(request, asMerchant());
    assert.deepEqual(await client.pushSpecific(request, asMerchant()), first);
    // Map entries in another order are the same request.
    assert.deepEqual(await client.pushSpecific({ ...request, info: { ...request.info, data: { b: '2', a: '1' } } }, asMerchant()), first);
    assertReused(await outcomeOf((o) => client.pushSpecific({ ...request, info: { title: 'twenty off' } }, { ...o, ...asMerchant() })));
    // The first answer still replays after the refusal.
    assert.deepEqual(await client.pushSpecific(request, asMerchant()), first);
  });

  it('a push to another receiver, or a public push, with a used id is refused', async () => {
    const request = { receiverId: alice.id, info: { title: 'hello' }, requestId: 'r-target' };
    await client.pushSpecific(request, asMerchant());
    assertReused(await outcomeOf((o) => client.pushSpecific({ ...request, receiverId: bob.id }, { ...o, ...asMerchant() })));
    assertReused(await outcomeOf((o) => client.pushPublic({ info: request.info, requestId: 'r-target' }, { ...o, ...asMerchant() })));
    const pub = await client.pushPublic({ info: { title: 'all' }, requestId: 'r-public' }, asMerchant());
    assert.deepEqual(await client.pushPublic({ info: { title: 'all' }, requestId: 'r-public' }, asMerchant()), pub);
  });

  it('a withdrawal\'s digest covers its target; a push id reused for a withdrawal is refused', async () => {
    const one = await client.pushSpecific({ receiverId: alice.id, info: { title: 'one' } }, asMerchant());
    const two = await client.pushSpecific({ receiverId: alice.id, info: { title: 'two' } }, asMerchant());
    const first = await client.withdraw({ itemId: one.itemId, requestId: 'w-1' }, asMerchant());
    assert.deepEqual(await client.withdraw({ itemId: one.itemId, requestId: 'w-1' }, asMerchant()), first);
    assertReused(await outcomeOf((o) => client.withdraw({ itemId: two.itemId, requestId: 'w-1' }, { ...o, ...asMerchant() })));
    assertReused(await outcomeOf((o) => client.withdraw({ itemId: two.itemId, requestId: 'r-content' }, { ...o, ...asMerchant() })));
    // Item two was not withdrawn by the refused request.
    const listed = await client.listItems({ receiverId: alice.id }, asMerchant());
    assert.ok(listed.items.some((i) => i.itemId === two.itemId));
  });

  it('PushStream answers a reused id with REQUEST_ID_REUSED for that push only', async () => {
    const info = (title: string) => ({ key: '', title, body: '', validUntil: undefined, offer: undefined, data: {} });
    async function* pushes() {
      yield { entries: [{ ref: 1n, push: { $case: 'specific' as const, value: { receiverId: alice.id, info: info('s'), requestId: 'r-stream' } } }] };
      yield { entries: [{ ref: 2n, push: { $case: 'specific' as const, value: { receiverId: bob.id, info: info('s'), requestId: 'r-stream' } } }] };
      yield { entries: [{ ref: 3n, push: { $case: 'public' as const, value: { info: info('fine'), requestId: '' } } }] };
    }
    const answers = [];
    for await (const answer of client.pushStream(pushes(), asMerchant())) answers.push(...answer.results);
    assert.equal(answers.length, 3);
    const byRef = new Map(answers.map((a) => [a.ref, a]));
    assert.ok(byRef.get(1n)!.sequence > 0n);
    assert.equal(byRef.get(2n)!.code, Status.INVALID_ARGUMENT);
    assert.equal(byRef.get(2n)!.reason, 'REQUEST_ID_REUSED');
    assert.ok(byRef.get(3n)!.sequence > 0n);
  });
});

// Digests are stored with request ids, so the fixed-order writer must give the generic text.
describe('push request digest', () => {
  it('the fixed-order text equals the generic canonical text for every ServiceInfo shape', () => {
    // A new ServiceInfo field must be added to pushCanonicalText too (this list then fails).
    assert.deepEqual(Object.keys(ServiceInfo.create()).sort(), ['body', 'data', 'key', 'offer', 'title', 'validUntil']);
    const text = fc.string({ unit: 'binary' });
    const big = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n });
    const offer = fc.oneof(
      fc.constant(undefined),
      fc.record({ $case: fc.constant('discount' as const), value: fc.record({ percentOff: fc.double() }) }),
      fc.record({ $case: fc.constant('points' as const), value: fc.record({ balance: big, earned: big }) }),
      fc.record({ $case: fc.constant('voucher' as const), value: fc.record({ code: text, amountOff: big, currency: text, minSpend: big }) }),
    );
    const info = fc.record({
      key: text,
      title: text,
      body: text,
      validUntil: fc.option(fc.date({ noInvalidDate: false }), { nil: undefined }),
      offer,
      data: fc.dictionary(text, text),
    });
    fc.assert(
      fc.property(text, fc.option(info, { nil: undefined }), (receiverId, value) => {
        const decoded = value && ServiceInfo.fromPartial(value);
        assert.equal(pushCanonicalText(receiverId, decoded), canonicalText({ receiverId, info: decoded }));
      }),
      { numRuns: 500 },
    );
  });
});
