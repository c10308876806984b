import assert from 'node:assert/strict';
import { ClientError, Status } from 'nice-grpc';
import { type Credentials, type HubClient, StreamReader, TestHub, basicAuth, describeOnBackends } from '../support/hub.js';
import { outcomeOf } from './support.js';

const info = { key: '', title: 'rotation', body: '', data: {}, validUntil: undefined, offer: undefined };
const listAs = (client: HubClient, creds: Credentials) =>
  outcomeOf((o) => client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { ...o, metadata: basicAuth(creds) }));
const subscribeAs = (client: HubClient, creds: Credentials) =>
  outcomeOf(async (o) => {
    for await (const event of client.subscribe({ afterSequence: 0n }, { ...o, metadata: basicAuth(creds) })) {
      if (event.events.some((e) => e.event?.$case === 'caughtUp')) return;
    }
  });

describeOnBackends('password rotation', function () {
  let hub: TestHub;
  let client: HubClient;

  beforeEach(async () => {
    hub = await TestHub.start();
    client = hub.client();
  });
  afterEach(async () => {
    await hub.stop();
  });

  it('a merchant rotates: the old password stops working at once, though it was remembered', async () => {
    const merchant = await hub.register('merchant');
    // Two calls: the second is served from the verified-credential cache.
    assert.equal((await listAs(client, merchant)).code, Status.OK);
    const scryptBefore = hub.hub.probe.authStats.scryptVerifications;
    assert.equal((await listAs(client, merchant)).code, Status.OK);
    assert.equal(hub.hub.probe.authStats.scryptVerifications, scryptBefore, 'second call came from the cache');

    const { password } = await client.rotatePassword({}, { metadata: basicAuth(merchant) });
    assert.notEqual(password, merchant.password);
    assert.ok(password.length >= 32);
    const old = await listAs(client, merchant);
    assert.equal(old.code, Status.UNAUTHENTICATED, 'the cached old password is refused');
    assert.equal((await listAs(client, { id: merchant.id, password })).code, Status.OK);
    // And still refused later: the rotation is stored, not only forgotten from the cache.
    await hub.restart();
    const afterRestart = hub.client();
    assert.equal((await listAs(afterRestart, merchant)).code, Status.UNAUTHENTICATED);
    assert.equal((await listAs(afterRestart, { id: merchant.id, password })).code, Status.OK);
  });

  it('a receiver rotates: the old password cannot subscribe any more, the new one can', async () => {
    const receiver = await hub.register('receiver');
    assert.equal((await subscribeAs(client, receiver)).code, Status.OK);
    const { password } = await client.rotatePassword({}, { metadata: basicAuth(receiver) });
    assert.equal((await subscribeAs(client, receiver)).code, Status.UNAUTHENTICATED);
    assert.equal((await subscribeAs(client, { id: receiver.id, password })).code, Status.OK);
  });

  it('rotation ends streams opened with the old password (UNAUTHENTICATED), and only that account\'s', async () => {
    const merchant = await hub.register('merchant');
    const receiver = await hub.register('receiver');
    const bystander = await hub.register('receiver');
    const stolen = new StreamReader(client, receiver);
    const other = new StreamReader(client, bystander);
    await stolen.waitFor((r) => r.caughtUp(), 'caught up');
    await other.waitFor((r) => r.caughtUp(), 'caught up');

    // A merchant's PushStream opened with the old password ends as well.
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    async function* pushes() {
      yield { entries: [{ ref: 1n, push: { $case: 'public' as const, value: { info, requestId: '' } } }] };
      await hold;
    }
    const pushStream = outcomeOf(async (o) => {
      for await (const _ of client.pushStream(pushes(), { ...o, metadata: basicAuth(merchant) }));
    });
    await other.waitFor((r) => r.items().length === 1, 'public item');

    const { password } = await client.rotatePassword({}, { metadata: basicAuth(receiver) });
    await stolen.waitFor((r) => r.ended, 'stream opened with the old password ends');
    assert.ok(stolen.error instanceof ClientError);
    assert.equal((stolen.error as ClientError).code, Status.UNAUTHENTICATED);
    assert.match((stolen.error as ClientError).details, /rotated/);
    assert.equal(other.ended, false, "another receiver's stream is untouched");

    await client.rotatePassword({}, { metadata: basicAuth(merchant) });
    const ended = await pushStream;
    release();
    assert.equal(ended.code, Status.UNAUTHENTICATED);

    const renewed = new StreamReader(client, { id: receiver.id, password });
    await renewed.waitFor((r) => r.caughtUp(), 'new password subscribes');
    await renewed.close();
    await other.close();
  });

  it('concurrent rotations never answer OK with a password that does not work: one wins, the others get ABORTED', async () => {
    const merchant = await hub.register('merchant');
    assert.equal((await listAs(client, merchant)).code, Status.OK);
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, async () => {
        let password: string | undefined;
        const outcome = await outcomeOf(async (o) => {
          password = (await client.rotatePassword({}, { ...o, metadata: basicAuth(merchant) })).password;
        });
        return { ...outcome, password };
      }),
    );
    const won = outcomes.filter((o) => o.code === Status.OK);
    assert.equal(won.length, 1, outcomes.map((o) => o.reason ?? 'OK').join(' '));
    for (const lost of outcomes.filter((o) => o.code !== Status.OK)) {
      assert.equal(Status[lost.code], 'ABORTED');
      assert.equal(lost.reason, 'ROTATION_CONFLICT');
      assert.match(lost.details, /^authorization: the password was rotated by another call meanwhile/);
    }
    for (const { password } of won) {
      assert.equal((await listAs(hub.client(), { id: merchant.id, password: password! })).code, Status.OK, 'every OK password works');
    }
    assert.equal((await listAs(client, merchant)).code, Status.UNAUTHENTICATED, 'the old password is revoked');
  });
});
