import assert from 'node:assert/strict';
import { Status } from 'nice-grpc';
import { DEFAULT_CONFIG, loadConfig } from '../../src/config.js';
import { outcomeOf } from '../reliability/support.js';
import { type Credentials, type HubClient, TestHub, basicAuth, describeOnBackends } from '../support/hub.js';

describeOnBackends('hostile-merchant defaults', () => {
  it('defaults: 1,000 pushes/s per merchant and 1,000 live public items per merchant, both overridable', () => {
    assert.equal(DEFAULT_CONFIG.merchantPushRatePerSec, 1000);
    assert.equal(DEFAULT_CONFIG.maxPublicItemsPerMerchant, 1000);
    const off = loadConfig(['--merchant-push-rate', '0', '--max-public-items-per-merchant', '0'], {});
    assert.equal(off.merchantPushRatePerSec, 0);
    assert.equal(off.maxPublicItemsPerMerchant, 0);
    assert.equal(loadConfig([], { PUSHHUB_MAX_PUBLIC_ITEMS_PER_MERCHANT: '50' }).maxPublicItemsPerMerchant, 50);
  });

  describe('live public items per merchant', () => {
    let t: TestHub;
    let client: HubClient;
    let merchant: Credentials;
    const as = (m: Credentials) => ({ metadata: basicAuth(m) });

    beforeEach(async () => {
      t = await TestHub.start({ maxPublicItemsPerMerchant: 3 });
      client = t.client();
      merchant = await t.register('merchant');
    });
    afterEach(() => t.stop());

    const pushPublic = (m: Credentials, title: string, key = '') =>
      outcomeOf((o) => client.pushPublic({ info: { title, key }, requestId: '' }, { ...o, ...as(m) }));

    it('past the cap a public push is RESOURCE_EXHAUSTED (PUBLIC_ITEM_LIMIT) and stores nothing; concurrent pushes cannot pass it', async () => {
      const outcomes = await Promise.all(Array.from({ length: 10 }, (_, i) => pushPublic(merchant, `p${i}`)));
      const accepted = outcomes.filter((o) => o.code === Status.OK);
      const refused = outcomes.filter((o) => o.code !== Status.OK);
      assert.equal(accepted.length, 3);
      for (const o of refused) {
        assert.equal(o.code, Status.RESOURCE_EXHAUSTED);
        assert.equal(o.reason, 'PUBLIC_ITEM_LIMIT');
        assert.match(o.details, /^info: this merchant already has 3 live public items/);
      }
      assert.equal(t.hub.probe.headSequence(), 3, 'only accepted pushes were stored');
      // Specific items and other merchants are not affected.
      const receiver = await t.register('receiver');
      await client.pushSpecific({ receiverId: receiver.id, info: { title: 'mine' } }, as(merchant));
      assert.equal((await pushPublic(await t.register('merchant'), 'other')).code, Status.OK);
    });

    it('replacing by key does not count twice; a withdrawal or an expiry frees a place', async () => {
      assert.equal((await pushPublic(merchant, 'hours', 'hours')).code, Status.OK);
      assert.equal((await pushPublic(merchant, 'a')).code, Status.OK);
      const short = await client.pushPublic({ info: { title: 'short', validUntil: new Date(Date.now() + 300) }, requestId: '' }, as(merchant));
      assert.equal((await pushPublic(merchant, 'hours 2', 'hours')).code, Status.OK, 'a replacement at the cap');
      assert.equal((await pushPublic(merchant, 'b')).reason, 'PUBLIC_ITEM_LIMIT');
      assert.ok(short.sequence > 0n);
      await new Promise((r) => setTimeout(r, 400));
      assert.equal((await pushPublic(merchant, 'b')).code, Status.OK, 'the expired item no longer counts');
      const listed = await client.listItems({}, as(merchant));
      await client.withdraw({ itemId: listed.items[0]!.itemId, requestId: '' }, as(merchant));
      assert.equal((await pushPublic(merchant, 'c')).code, Status.OK, 'the withdrawn item no longer counts');
      assert.equal((await pushPublic(merchant, 'd')).reason, 'PUBLIC_ITEM_LIMIT');
    });
  });
});
