import assert from 'node:assert/strict';
import { Audience } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { type Credentials, type HubClient, TestHub, basicAuth, describeOnBackends } from '../support/hub.js';

describeOnBackends('ListItems pages', () => {
  let t: TestHub;
  let client: HubClient;
  let merchant: Credentials;
  let receiver: Credentials;
  const asMerchant = () => ({ metadata: basicAuth(merchant) });

  beforeEach(async () => {
    t = await TestHub.start();
    client = t.client();
    merchant = await t.register('merchant');
    receiver = await t.register('receiver');
  });
  afterEach(() => t.stop());

  it('a page is capped by bytes: 600 maximum-size items (> 4 MiB) list in pages, each once', async function () {
    this.timeout(60_000);
    const data = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${String(i).padStart(2, '0')}`, 'v'.repeat(124)]));
    const info = { title: 't'.repeat(200), body: 'b'.repeat(4096), data };
    const pushed: string[] = [];
    for (let batch = 0; batch < 6; batch++) {
      const acks = await Promise.all(Array.from({ length: 100 }, () => client.pushPublic({ info, requestId: '' }, asMerchant())));
      pushed.push(...acks.map((a) => a.itemId));
    }
    const listed: string[] = [];
    let pageToken = '';
    let pages = 0;
    do {
      const page = await client.listItems({ pageSize: 5000, pageToken }, asMerchant());
      pages++;
      assert.ok(page.items.length > 0, 'no empty page');
      listed.push(...page.items.map((i) => i.itemId));
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    assert.deepEqual([...listed].sort(), [...pushed].sort());
    assert.equal(new Set(listed).size, listed.length, "each item once");
    // ~8.5 KiB per item: at most 1 MiB (the hub's LIST_PAGE_BYTES) of them per page.
    assert.ok(pages >= Math.ceil((600 * 8500) / (1024 * 1024)), `pages: ${pages}`);
  });

  it('never returns an empty page with a next token: filtered-out rows do not end a page', async () => {
    for (let i = 0; i < 5; i++) await client.pushPublic({ info: { title: `public ${i}` }, requestId: '' }, asMerchant());
    const specific = await client.pushSpecific({ receiverId: receiver.id, info: { title: 'mine' } }, asMerchant());
    const page = await client.listItems({ audience: Audience.AUDIENCE_SPECIFIC, pageSize: 2 }, asMerchant());
    assert.deepEqual(page.items.map((i) => i.itemId), [specific.itemId]);
    assert.equal(page.nextPageToken, '');

    // Exactly page_size items left: the last full page says there is no more.
    const two = await client.listItems({ audience: Audience.AUDIENCE_PUBLIC, pageSize: 5 }, asMerchant());
    assert.equal(two.items.length, 5);
    assert.equal(two.nextPageToken, '');
    const first = await client.listItems({ pageSize: 3 }, asMerchant());
    const rest = await client.listItems({ pageSize: 3, pageToken: first.nextPageToken }, asMerchant());
    assert.equal(first.items.length + rest.items.length, 6);
    assert.equal(rest.nextPageToken, '');
  });
});
