import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { ClientError, Status } from 'nice-grpc';
import { Role } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { TestHub } from '../support/hub.js';

describe('Register', () => {
  let t: TestHub;
  before(async () => (t = await TestHub.start()));
  after(() => t.stop());

  it('gives merchants and receivers ids of role letter, region code and 16 digits', async () => {
    const merchant = await t.register('merchant', '11');
    const receiver = await t.register('receiver');
    assert.match(merchant.id, /^M11-\d{16}$/);
    assert.match(receiver.id, /^R00-\d{16}$/);
  });

  it('returns a random password of at least 128 bits and stores only its scrypt hash', async () => {
    // One after another: 20 at once from one address would exceed its share of the scrypt queue.
    const accounts = [];
    for (let i = 0; i < 20; i++) accounts.push(await t.register('receiver', '42'));
    assert.equal(new Set(accounts.map((a) => a.id)).size, 20);
    assert.equal(new Set(accounts.map((a) => a.password)).size, 20);
    for (const { password } of accounts) assert.ok(Buffer.from(password, 'base64url').length * 8 >= 128);

    const db = new Database(t.config.dbPath, { readonly: true });
    try {
      const row = db.prepare('SELECT password_hash FROM accounts WHERE id = ?').get(accounts[0]!.id) as { password_hash: Buffer };
      assert.equal(row.password_hash.subarray(0, 6).toString(), 'scrypt');
      const dump = db.prepare('SELECT * FROM accounts').all();
      assert.ok(!JSON.stringify(dump).includes(accounts[0]!.password));
    } finally {
      db.close();
    }
  });

  it('rejects an unknown role and a malformed region code, naming the field', async () => {
    const client = t.client();
    await assert.rejects(client.register({ role: Role.ROLE_UNSPECIFIED }), (e: ClientError) => {
      assert.equal(e.code, Status.INVALID_ARGUMENT);
      assert.match(e.details, /^role:/);
      return true;
    });
    await assert.rejects(client.register({ role: 7 as Role }), (e: ClientError) => e.code === Status.INVALID_ARGUMENT && /^role:/.test(e.details));
    await assert.rejects(
      client.register({ role: Role.ROLE_MERCHANT, regionCode: '1a' }),
      (e: ClientError) => e.code === Status.INVALID_ARGUMENT && /^region_code:/.test(e.details),
    );
  });
});
