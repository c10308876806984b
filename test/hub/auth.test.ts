import assert from 'node:assert/strict';
import { ClientError, Metadata, Status } from 'nice-grpc';
import { TestHub, basicAuth, StreamReader } from '../support/hub.js';

describe('credentials', () => {
  let t: TestHub;
  before(async () => (t = await TestHub.start()));
  after(() => t.stop());

  const info = { title: 'hello' };

  it('unknown id and wrong password get the same UNAUTHENTICATED', async () => {
    const merchant = await t.register('merchant');
    const client = t.client();
    const errors: ClientError[] = [];
    for (const creds of [
      { id: 'M00-0000000000000000', password: merchant.password },
      { id: merchant.id, password: 'wrong' },
    ]) {
      await assert.rejects(client.pushPublic({ info }, { metadata: basicAuth(creds) }), (e: ClientError) => {
        errors.push(e);
        return e.code === Status.UNAUTHENTICATED;
      });
    }
    assert.equal(errors[0]!.details, errors[1]!.details);
  });

  it('missing or malformed authorization is UNAUTHENTICATED naming the header', async () => {
    const client = t.client();
    await assert.rejects(client.pushPublic({ info }), (e: ClientError) => e.code === Status.UNAUTHENTICATED && /authorization/.test(e.details));
    await assert.rejects(
      client.pushPublic({ info }, { metadata: Metadata({ authorization: 'Bearer x' }) }),
      (e: ClientError) => e.code === Status.UNAUTHENTICATED && /malformed/.test(e.details),
    );
  });

  it('a receiver pushing or a merchant subscribing is PERMISSION_DENIED', async () => {
    const merchant = await t.register('merchant');
    const receiver = await t.register('receiver');
    const client = t.client();
    await assert.rejects(client.pushPublic({ info }, { metadata: basicAuth(receiver) }), (e: ClientError) => e.code === Status.PERMISSION_DENIED);
    await assert.rejects(
      client.pushSpecific({ receiverId: receiver.id, info }, { metadata: basicAuth(receiver) }),
      (e: ClientError) => e.code === Status.PERMISSION_DENIED,
    );
    const reader = new StreamReader(client, merchant);
    await reader.waitFor((r) => r.ended, 'the stream to end');
    assert.equal((reader.error as ClientError).code, Status.PERMISSION_DENIED);
  });

  it('runs scrypt once per credential pair, then remembers only the verified pair', async () => {
    const merchant = await t.register('merchant');
    const client = t.client();
    const stats = t.hub.probe.authStats;
    const before = stats.scryptVerifications;
    await Promise.all(Array.from({ length: 50 }, () => client.pushPublic({ info }, { metadata: basicAuth(merchant) })));
    await client.pushPublic({ info }, { metadata: basicAuth(merchant) });
    assert.equal(stats.scryptVerifications - before, 1);

    // A wrong password is checked by scrypt every time: it is never remembered as good.
    const wrong = { id: merchant.id, password: `${merchant.password}x` };
    for (let i = 0; i < 2; i++) {
      await assert.rejects(client.pushPublic({ info }, { metadata: basicAuth(wrong) }), (e: ClientError) => e.code === Status.UNAUTHENTICATED);
    }
    assert.equal(stats.scryptVerifications - before, 3);
  });

  it('a connection that proved one header is checked again for any other header it sends', async () => {
    const merchant = await t.register('merchant');
    const receiver = await t.register('receiver');
    const client = t.client(); // one connection for every call below
    await client.pushPublic({ info }, { metadata: basicAuth(merchant) });
    await client.pushPublic({ info }, { metadata: basicAuth(merchant) });
    await assert.rejects(
      client.pushPublic({ info }, { metadata: basicAuth({ id: merchant.id, password: `${merchant.password}x` }) }),
      (e: ClientError) => e.code === Status.UNAUTHENTICATED,
    );
    await assert.rejects(client.pushPublic({ info }, { metadata: basicAuth(receiver) }), (e: ClientError) => e.code === Status.PERMISSION_DENIED);
    await assert.rejects(client.pushPublic({ info }), (e: ClientError) => e.code === Status.UNAUTHENTICATED);
    await client.pushPublic({ info }, { metadata: basicAuth(merchant) });
  });

  it('the Basic scheme name is case-insensitive (RFC 7617)', async () => {
    const merchant = await t.register('merchant');
    const client = t.client();
    const encoded = Buffer.from(`${merchant.id}:${merchant.password}`).toString('base64');
    for (const scheme of ['basic', 'BASIC', 'bAsIc']) {
      const reply = await client.pushPublic({ info }, { metadata: Metadata({ authorization: `${scheme} ${encoded}` }) });
      assert.ok(reply.itemId, scheme);
    }
  });

  it('two authorization headers are UNAUTHENTICATED naming the header, even when one is valid', async () => {
    const merchant = await t.register('merchant');
    const client = t.client();
    const valid = `Basic ${Buffer.from(`${merchant.id}:${merchant.password}`).toString('base64')}`;
    for (const pair of [
      [valid, valid],
      [valid, 'Basic bm90OnZhbGlk'],
    ]) {
      const metadata = Metadata();
      for (const value of pair) metadata.append('authorization', value);
      await assert.rejects(
        client.pushPublic({ info }, { metadata }),
        (e: ClientError) => e.code === Status.UNAUTHENTICATED && /^authorization: sent 2 times/.test(e.details),
      );
    }
  });

  it('an id that is not an account id is refused before any scrypt work', async () => {
    const client = t.client();
    const stats = t.hub.probe.authStats;
    const before = stats.scryptVerifications;
    for (const id of ['not-even-an-id', 'M00-123', 'X00-0000000000000000', 'm00-0000000000000000', `M00-${'1'.repeat(16)}\n`]) {
      await assert.rejects(
        client.pushPublic({ info }, { metadata: basicAuth({ id, password: 'whatever' }) }),
        (e: ClientError) => e.code === Status.UNAUTHENTICATED && /^authorization: the id is not an account id/.test(e.details),
        JSON.stringify(id),
      );
    }
    assert.equal(stats.scryptVerifications, before, 'no scrypt ran for a malformed id');
  });
});
