import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { ClientError, Status } from 'nice-grpc';
import type { PushSpecificRequest } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { type Credentials, type HubClient, TestHub, basicAuth } from '../support/hub.js';

describe('validation', () => {
  let t: TestHub;
  let client: HubClient;
  let merchant: Credentials;
  let receiver: Credentials;

  before(async () => {
    t = await TestHub.start();
    client = t.client();
    merchant = await t.register('merchant');
    receiver = await t.register('receiver');
  });
  after(() => t.stop());

  const changeCount = () => {
    const db = new Database(t.config.dbPath, { readonly: true });
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM changes').get() as { n: number }).n;
    } finally {
      db.close();
    }
  };

  const bigData = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']));
  const heavyData = { a: 'x'.repeat(3000), b: 'y'.repeat(1200) };
  const cases: [string, (r: string) => Partial<PushSpecificRequest>, RegExp][] = [
    ['missing receiver id', () => ({ receiverId: '', info: { title: 't' } }), /^receiver_id: required/],
    ['malformed receiver id', () => ({ receiverId: 'bob', info: { title: 't' } }), /^receiver_id: not a receiver id/],
    ['a merchant id as receiver', () => ({ receiverId: merchant.id, info: { title: 't' } }), /^receiver_id:/],
    ['missing info', (r) => ({ receiverId: r }), /^info: required/],
    ['title over 200 characters', (r) => ({ receiverId: r, info: { title: 't'.repeat(201) } }), /^info\.title: at most 200/],
    ['body over 4 KiB', (r) => ({ receiverId: r, info: { title: 't', body: 'é'.repeat(2049) } }), /^info\.body: at most 4096 bytes/],
    ['key over 128 characters', (r) => ({ receiverId: r, info: { title: 't', key: 'k'.repeat(129) } }), /^info\.key: at most 128/],
    ['more than 32 data entries', (r) => ({ receiverId: r, info: { title: 't', data: bigData } }), /^info\.data: at most 32 entries/],
    ['more than 4 KiB of data', (r) => ({ receiverId: r, info: { title: 't', data: heavyData } }), /^info\.data: at most 4096 bytes/],
    ['request id over 128 characters', (r) => ({ receiverId: r, info: { title: 't' }, requestId: 'r'.repeat(129) }), /^request_id: at most 128/],
    ['valid_until in the past', (r) => ({ receiverId: r, info: { title: 't', validUntil: new Date(1000) } }), /^info\.valid_until: must be in the future/],
    ['no title (empty content)', (r) => ({ receiverId: r, info: {} }), /^info\.title: required/],
    ['a blank title even with a body', (r) => ({ receiverId: r, info: { title: ' \t\n', body: 'b' } }), /^info\.title: required/],
    ['discount over 100 percent', (r) => ({ receiverId: r, info: { title: 't', offer: { $case: 'discount', value: { percentOff: 101 } } } }), /^info\.discount\.percent_off/],
  ];

  for (const [what, build, message] of cases) {
    it(`rejects ${what} with INVALID_ARGUMENT naming the field, storing nothing`, async () => {
      const before = changeCount();
      await assert.rejects(client.pushSpecific(build(receiver.id), { metadata: basicAuth(merchant) }), (e: ClientError) => {
        assert.equal(e.code, Status.INVALID_ARGUMENT, e.details);
        assert.match(e.details, message);
        return true;
      });
      assert.equal(changeCount(), before);
    });
  }

  it('accepts content exactly at the limits', async () => {
    const atLimit = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${String(i).padStart(2, '0')}`, 'v'.repeat(100)]));
    await client.pushSpecific(
      {
        receiverId: receiver.id,
        info: { title: 't'.repeat(200), body: 'b'.repeat(4096), key: 'k'.repeat(128), data: atLimit },
        requestId: 'r'.repeat(128),
      },
      { metadata: basicAuth(merchant) },
    );
  });

  it('applies the same checks to public pushes, and the server keeps serving', async () => {
    await assert.rejects(
      client.pushPublic({ info: { title: 't'.repeat(201) } }, { metadata: basicAuth(merchant) }),
      (e: ClientError) => e.code === Status.INVALID_ARGUMENT && /^info\.title/.test(e.details),
    );
    const ack = await client.pushPublic({ info: { title: 'fine' } }, { metadata: basicAuth(merchant) });
    assert.ok(ack.sequence > 0n);
  });
});
