import assert from 'node:assert/strict';
import { Status } from 'nice-grpc';
import { Role, WithdrawalCause } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { runAdminCommand } from '../../src/admin/cli.js';
import { type Credentials, type HubClient, StreamReader, TestHub, basicAuth, describeOnBackends } from '../support/hub.js';
import { as, refusal } from './support.js';

const info = (title: string) => ({ title });

/** Runs `pushhub admin ARGS` in-process against the hub's database; its exit code and output. */
async function admin(hub: TestHub, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const db = hub.config.databaseUrl !== undefined ? ['--database-url', hub.config.databaseUrl] : ['--db', hub.config.dbPath];
  const code = await runAdminCommand([...args, ...db], {}, (t) => void (out += t), (t) => void (err += t));
  return { code, out, err };
}

describeOnBackends('accounts over their whole life', () => {
  let hub: TestHub;
  let client: HubClient;
  let merchant: Credentials;
  let receiver: Credentials;

  beforeEach(async function () {
    this.timeout(60_000);
    hub = await TestHub.start();
    client = hub.client();
    merchant = await hub.register('merchant');
    receiver = await hub.register('receiver');
  });
  afterEach(() => hub.stop());

  it('DeleteAccount (receiver): its stream ends with ACCOUNT_DELETED and its id is refused', async () => {
    await client.pushSpecific({ receiverId: receiver.id, info: info('for you') }, as(merchant));
    const live = new StreamReader(client, receiver);
    await live.waitFor((r) => r.caughtUp(), 'caught up');
    const wrong = await refusal(client.deleteAccount({ password: 'not-it' }, as(receiver)));
    assert.equal(wrong.code, Status.UNAUTHENTICATED);
    await client.deleteAccount({ password: receiver.password }, as(receiver));
    await live.waitFor((r) => r.ended, 'the stream ended');
    assert.equal((live.error as { code: number }).code, Status.UNAUTHENTICATED);
    assert.match(String((live.error as Error).message), /deleted/);
    assert.equal((await refusal(client.listBlockedMerchants({}, as(receiver)))).code, Status.UNAUTHENTICATED);
    assert.deepEqual(await refusal(client.pushSpecific({ receiverId: receiver.id, info: info('gone') }, as(merchant))), { code: Status.NOT_FOUND, reason: 'RECEIVER_NOT_FOUND' });
    assert.deepEqual((await client.listItems({ receiverId: receiver.id }, as(merchant))).items, []);
  });

  it('DeleteAccount (merchant): its items are withdrawn everywhere and its credentials stop working', async () => {
    const pub = await client.pushPublic({ info: info('public') }, as(merchant));
    const spec = await client.pushSpecific({ receiverId: receiver.id, info: info('specific') }, as(merchant));
    const live = new StreamReader(client, receiver);
    await live.waitFor((r) => r.caughtUp(), 'caught up');
    await client.deleteAccount({ password: merchant.password }, as(merchant));
    await live.waitFor((r) => r.withdrawals().length === 2, 'two withdrawals');
    assert.deepEqual(live.withdrawals().map((w) => [w.itemId, w.cause]).sort(), [
      [pub.itemId, WithdrawalCause.WITHDRAWAL_CAUSE_ACCOUNT_DELETED],
      [spec.itemId, WithdrawalCause.WITHDRAWAL_CAUSE_ACCOUNT_DELETED],
    ].sort());
    assert.equal((await refusal(client.pushPublic({ info: info('again') }, as(merchant)))).code, Status.UNAUTHENTICATED);
    const fresh = new StreamReader(client, await hub.register('receiver'));
    await fresh.waitFor((r) => r.caughtUp(), 'caught up');
    assert.deepEqual(fresh.items(), []);
    await Promise.all([live.close(), fresh.close()]);
  });

  it('Register with a request id: a retry returns the same account with a fresh password that replaces the lost one', async () => {
    const request = { role: Role.ROLE_RECEIVER, displayName: 'phone', requestId: 'b3d1c0e2-9a4f-4c61-8d2e-0f5a6b7c8d9e' };
    const first = await client.register(request);
    const retry = await client.register(request);
    assert.equal(retry.id, first.id);
    assert.notEqual(retry.password, first.password);
    assert.equal((await refusal(client.listBlockedMerchants({}, as({ id: first.id, password: first.password })))).code, Status.UNAUTHENTICATED);
    await client.listBlockedMerchants({}, as(retry));
    const reused = await refusal(client.register({ ...request, role: Role.ROLE_MERCHANT }, { onTrailer: as(retry).onTrailer }));
    assert.deepEqual(reused, { code: Status.INVALID_ARGUMENT, reason: 'REQUEST_ID_REUSED' });
    const short = await refusal(client.register({ ...request, requestId: 'short' }));
    assert.equal(short.code, Status.INVALID_ARGUMENT);
  });

  it('pushhub admin lists, shows, suspends, resumes, rotates and deletes while the hub runs', async function () {
    this.timeout(60_000);
    const pub = await client.pushPublic({ info: info('public') }, as(merchant));
    const live = new StreamReader(client, receiver);
    await live.waitFor((r) => r.caughtUp(), 'caught up');

    const listed = await admin(hub, 'list', '--role', 'merchant', '--json');
    assert.equal(listed.code, 0, listed.err);
    assert.deepEqual(JSON.parse(listed.out).map((a: { id: string; liveItems: number }) => [a.id, a.liveItems]), [[merchant.id, 1]]);
    const table = await admin(hub, 'list');
    assert.match(table.out, /^ID\s+ROLE\s+STATE/);
    assert.ok(table.out.includes(merchant.id) && table.out.includes(receiver.id));

    const suspended = await admin(hub, 'suspend', merchant.id);
    assert.equal(suspended.code, 0, suspended.err);
    // At once: the merchant is refused, and its public item leaves the receiver's stream.
    assert.deepEqual(await refusal(client.pushPublic({ info: info('spam') }, as(merchant))), { code: Status.PERMISSION_DENIED, reason: 'ACCOUNT_SUSPENDED' });
    await live.waitFor((r) => r.withdrawals().some((w) => w.itemId === pub.itemId && w.cause === WithdrawalCause.WITHDRAWAL_CAUSE_SUSPENDED), 'the suspension withdrawal');
    const snapshot = new StreamReader(client, receiver);
    await snapshot.waitFor((r) => r.caughtUp(), 'caught up');
    assert.deepEqual(snapshot.items(), []);
    await snapshot.close();

    const resumed = await admin(hub, 'resume', merchant.id);
    assert.equal(resumed.code, 0, resumed.err);
    await live.waitFor((r) => r.items().filter((i) => i.itemId === pub.itemId).length === 2, 'the item back');
    await client.pushPublic({ info: info('allowed again') }, as(merchant));

    const rotated = await admin(hub, 'rotate', receiver.id, '--json');
    assert.equal(rotated.code, 0, rotated.err);
    const { password } = JSON.parse(rotated.out) as { password: string };
    await live.waitFor((r) => r.ended, 'the stream opened with the old password ended');
    assert.equal((await refusal(client.listBlockedMerchants({}, as(receiver)))).code, Status.UNAUTHENTICATED);
    await client.listBlockedMerchants({}, { metadata: basicAuth({ id: receiver.id, password }) });

    const suspendReceiver = await admin(hub, 'suspend', receiver.id);
    assert.equal(suspendReceiver.code, 0);
    const refused = new StreamReader(client, { id: receiver.id, password });
    await refused.waitFor((r) => r.ended, 'subscribe refused');
    assert.equal((refused.error as { code: number }).code, Status.PERMISSION_DENIED);

    const shown = await admin(hub, 'show', merchant.id);
    assert.match(shown.out, /state\s+active/);
    assert.match(shown.out, /suspend/);
    const stats = await admin(hub, 'stats', '--json');
    assert.equal(JSON.parse(stats.out).merchants, 1);
    assert.equal(JSON.parse(stats.out).suspended, 1);

    const deleted = await admin(hub, 'delete', merchant.id);
    assert.equal(deleted.code, 0, deleted.err);
    assert.equal((await refusal(client.pushPublic({ info: info('x') }, as(merchant)))).code, Status.UNAUTHENTICATED);
    const missing = await admin(hub, 'suspend', merchant.id);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /ACCOUNT_NOT_FOUND/);
    assert.equal((await admin(hub, 'bogus')).code, 2);
    await live.close();
  });
});
