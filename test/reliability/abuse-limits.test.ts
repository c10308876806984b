import assert from 'node:assert/strict';
import { Metadata, Status } from 'nice-grpc';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { PushRateLimiter } from '../../src/delivery/rate-limit.js';
import { Role } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { secretsEqual } from '../../src/registry/credentials.js';
import { LoginThrottle } from '../../src/registry/login-throttle.js';
import { type Credentials, type HubClient, StreamReader, TestHub, basicAuth } from '../support/hub.js';
import { outcomeOf, statusName, unknownId } from './support.js';

const info = { key: '', title: 'limits', body: '', data: {}, validUntil: undefined, offer: undefined };
const listAs = (client: HubClient, creds: Credentials) =>
  outcomeOf((o) => client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { ...o, metadata: basicAuth(creds) }));

describe('abuse limits', function () {
  describe('registration tokens', () => {
    it('registration is open by default (no token configured)', async () => {
      assert.equal(DEFAULT_CONFIG.merchantRegistrationToken, undefined);
      assert.equal(DEFAULT_CONFIG.receiverRegistrationToken, undefined);
      const hub = await TestHub.start();
      try {
        const client = hub.client();
        for (const role of [Role.ROLE_MERCHANT, Role.ROLE_RECEIVER]) {
          const registered = await client.register({ role, displayName: '', regionCode: '', registrationToken: '' });
          assert.ok(registered.id);
        }
      } finally {
        await hub.stop();
      }
    });

    it('with a merchant token, merchants need it and receivers still self-register; with both, both need theirs', async () => {
      const hub = await TestHub.start({ merchantRegistrationToken: 'm-secret' });
      try {
        const client = hub.client();
        const register = (role: Role, registrationToken: string) =>
          outcomeOf((o) => client.register({ role, displayName: '', regionCode: '', registrationToken }, o));
        for (const token of ['', 'wrong', 'm-secre', 'm-secret ', 'M-SECRET']) {
          const outcome = await register(Role.ROLE_MERCHANT, token);
          assert.equal(statusName(outcome.code), 'PERMISSION_DENIED', JSON.stringify(token));
          assert.equal(outcome.reason, 'REGISTRATION_CLOSED');
          assert.match(outcome.details, /^registration_token: merchant registration requires a valid token/);
        }
        assert.equal((await register(Role.ROLE_MERCHANT, 'm-secret')).code, Status.OK);
        assert.equal((await register(Role.ROLE_RECEIVER, '')).code, Status.OK);

        await hub.restart({ merchantRegistrationToken: 'm-secret', receiverRegistrationToken: 'r-secret' });
        const closed = hub.client();
        const registerClosed = (role: Role, registrationToken: string) =>
          outcomeOf((o) => closed.register({ role, displayName: '', regionCode: '', registrationToken }, o));
        assert.equal((await registerClosed(Role.ROLE_RECEIVER, '')).code, Status.PERMISSION_DENIED);
        assert.equal((await registerClosed(Role.ROLE_RECEIVER, 'm-secret')).code, Status.PERMISSION_DENIED, "the merchant token is not the receivers'");
        assert.equal((await registerClosed(Role.ROLE_RECEIVER, 'r-secret')).code, Status.OK);
      } finally {
        await hub.stop();
      }
    });

    it('token comparison is constant-time over digests (correct for any lengths)', () => {
      assert.equal(secretsEqual('abc', 'abc'), true);
      assert.equal(secretsEqual('abc', 'abd'), false);
      assert.equal(secretsEqual('', 'abc'), false);
      assert.equal(secretsEqual('a'.repeat(10_000), 'a'), false);
    });
  });

  describe('per-merchant push rate', () => {
    it('the token bucket allows a burst of two seconds, then refills at the rate (explicit clock)', () => {
      const limiter = new PushRateLimiter(5);
      for (let i = 0; i < 10; i++) limiter.take('m', 1000);
      assert.throws(() => limiter.take('m', 1000), /push rate limit: at most 5 pushes\/s per merchant/);
      limiter.take('other', 1000); // each merchant has its own bucket
      limiter.take('m', 1200); // 200 ms later: one more token
      assert.throws(() => limiter.take('m', 1200));
      assert.doesNotThrow(() => new PushRateLimiter(0).take('m', 0), '0 = unlimited');
    });

    it('over the rate: RESOURCE_EXHAUSTED naming the limit, nothing stored, other merchants unaffected, on unary and PushStream', async () => {
      const hub = await TestHub.start({ merchantPushRatePerSec: 1 });
      try {
        const client = hub.client();
        const noisy = await hub.register('merchant');
        const quiet = await hub.register('merchant');
        const outcomes = [];
        for (let i = 0; i < 8; i++) {
          outcomes.push(await outcomeOf((o) => client.pushPublic({ info, requestId: '' }, { ...o, metadata: basicAuth(noisy) })));
        }
        const rejected = outcomes.filter((o) => o.code === Status.RESOURCE_EXHAUSTED);
        const accepted = outcomes.filter((o) => o.code === Status.OK);
        assert.ok(rejected.length > 0 && accepted.length >= 2, outcomes.map((o) => statusName(o.code)).join(' '));
        assert.equal(rejected.length + accepted.length, outcomes.length);
        assert.match(rejected[0]!.details, /^push rate limit: at most 1 pushes\/s per merchant/);
        assert.equal(rejected[0]!.reason, 'PUSH_RATE_EXCEEDED');
        assert.equal(hub.hub.probe.headSequence(), accepted.length, 'only accepted pushes were stored');

        assert.equal((await outcomeOf((o) => client.pushPublic({ info, requestId: '' }, { ...o, metadata: basicAuth(quiet) }))).code, Status.OK);

        async function* pushes() {
          for (let ref = 1n; ref <= 3n; ref++) yield { entries: [{ ref, push: { $case: 'public' as const, value: { info, requestId: '' } } }] };
        }
        const codes: number[] = [];
        for await (const response of client.pushStream(pushes(), { metadata: basicAuth(noisy) })) {
          for (const result of response.results) {
            codes.push(result.code);
            if (result.code !== Status.OK) assert.match(result.message, /push rate limit/);
          }
        }
        assert.ok(codes.includes(Status.RESOURCE_EXHAUSTED), `stream codes ${codes}`);
      } finally {
        await hub.stop();
      }
    });
  });

  describe('per-receiver concurrent streams', () => {
    it('past the cap: RESOURCE_EXHAUSTED naming the limit; a closed stream frees its slot; other receivers unaffected', async () => {
      const hub = await TestHub.start({ maxStreamsPerReceiver: 2 });
      try {
        const client = hub.client();
        const receiver = await hub.register('receiver');
        const other = await hub.register('receiver');
        const first = new StreamReader(client, receiver);
        const second = new StreamReader(client, receiver);
        await first.waitFor((r) => r.caughtUp(), 'first');
        await second.waitFor((r) => r.caughtUp(), 'second');
        const third = new StreamReader(client, receiver);
        await third.waitFor((r) => r.ended, 'third refused');
        const error = third.error as { code: Status; details: string };
        assert.equal(statusName(error.code), 'RESOURCE_EXHAUSTED');
        assert.match(error.details, /already has 2 open streams \(max streams per receiver\)/);

        const bystander = new StreamReader(client, other);
        await bystander.waitFor((r) => r.caughtUp(), 'another receiver subscribes');

        await first.close();
        // The slot frees once the hub has seen the cancellation.
        const deadline = Date.now() + 5000;
        let again: StreamReader;
        for (;;) {
          again = new StreamReader(client, receiver);
          await again.waitFor((r) => r.caughtUp() || r.ended, 'retry');
          if (again.caughtUp() || Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.ok(again.caughtUp(), 'a freed slot can be used again');
        await Promise.all([second.close(), again.close(), bystander.close()]);
      } finally {
        await hub.stop();
      }
    });
  });

  describe('failed-login throttle', () => {
    it('counts failures per (id, source) and per source, in a window (explicit clock)', () => {
      const throttle = new LoginThrottle(3, 5, 1000);
      for (let i = 0; i < 3; i++) {
        assert.equal(throttle.tryBegin('M', 'attacker', 0), undefined);
        throttle.finish('M', 'attacker', 'failed', 0);
      }
      assert.equal(throttle.tryBegin('M', 'attacker', 500), 'pair');
      assert.equal(throttle.tryBegin('M', 'owner', 500), undefined, 'the same id from another source is not throttled');
      throttle.finish('M', 'owner', 'succeeded', 500);
      assert.equal(throttle.tryBegin('R', 'attacker', 500), undefined, 'another id from the attacker counts per source');
      throttle.finish('R', 'attacker', 'failed', 500);
      assert.equal(throttle.tryBegin('X', 'attacker', 500), undefined);
      throttle.finish('X', 'attacker', 'failed', 500);
      assert.equal(throttle.tryBegin('Y', 'attacker', 500), 'source', '5 failures from one source throttle it for every id');
      assert.equal(throttle.tryBegin('M', 'attacker', 1000), undefined, 'lifts when the window passes');
    });

    it('attempts in flight count against the limit before they complete (explicit clock)', () => {
      const throttle = new LoginThrottle(3, 100, 1000);
      const started = Array.from({ length: 10 }, () => throttle.tryBegin('M', 'attacker', 0));
      assert.deepEqual(started, [undefined, undefined, undefined, 'pair', 'pair', 'pair', 'pair', 'pair', 'pair', 'pair']);
      throttle.finish('M', 'attacker', 'not-run', 0);
      assert.equal(throttle.tryBegin('M', 'attacker', 0), undefined, 'an attempt that never ran frees its slot');
    });

    it('throttles guessing with RESOURCE_EXHAUSTED without scrypt work, lets a verified owner in, and lifts after the window', async () => {
      const hub = await TestHub.start({ maxFailedLogins: 3, failedLoginWindowMs: 400 });
      try {
        const client = hub.client();
        const owner = await hub.register('merchant');
        const bystander = await hub.register('merchant');
        assert.equal((await listAs(client, owner)).code, Status.OK); // the owner is verified and remembered
        const wrong = { id: owner.id, password: 'guess' };
        for (let i = 0; i < 3; i++) assert.equal((await listAs(client, wrong)).code, Status.UNAUTHENTICATED);
        const stats = hub.hub.probe.authStats;
        const scryptBefore = stats.scryptVerifications;
        const throttled = await listAs(client, wrong);
        assert.equal(statusName(throttled.code), 'RESOURCE_EXHAUSTED');
        assert.equal(throttled.reason, 'LOGIN_THROTTLED');
        assert.match(throttled.details, /too many failed logins/);
        assert.equal(stats.scryptVerifications, scryptBefore, 'a throttled attempt costs no scrypt');

        assert.equal((await listAs(client, owner)).code, Status.OK, 'the remembered owner is not locked out');
        assert.equal((await listAs(client, bystander)).code, Status.OK, 'other ids are not throttled');

        // After a restart the owner is not remembered: throttled until the window passes, then in.
        await hub.restart({ maxFailedLogins: 3, failedLoginWindowMs: 400 });
        const fresh = hub.client();
        for (let i = 0; i < 4; i++) await listAs(fresh, wrong);
        assert.equal((await listAs(fresh, owner)).code, Status.RESOURCE_EXHAUSTED);
        const deadline = Date.now() + 10_000;
        let outcome = await listAs(fresh, owner);
        while (outcome.code !== Status.OK && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
          outcome = await listAs(fresh, owner);
        }
        assert.equal(outcome.code, Status.OK, 'the throttle lifts: never locked out forever');
      } finally {
        await hub.stop();
      }
    });

    it('an unknown id costs a full scrypt at the configured cost, like a known one (decoy hash)', async () => {
      const hub = await TestHub.start({ scryptLogN: 5 });
      try {
        const client = hub.client();
        const known = await hub.register('merchant');
        const stats = hub.hub.probe.authStats;

        const before = { ...stats };
        assert.equal((await listAs(client, { id: known.id, password: 'wrong' })).code, Status.UNAUTHENTICATED);
        assert.equal(stats.scryptVerifications, before.scryptVerifications + 1);
        assert.equal(stats.decoyVerifications, before.decoyVerifications, 'a known id uses its own hash');
        assert.equal(stats.lastScryptCost, 5);

        for (const id of [unknownId('M'), unknownId('R')]) {
          const at = { ...stats };
          const outcome = await listAs(client, { id, password: 'whatever' });
          assert.equal(outcome.code, Status.UNAUTHENTICATED);
          assert.equal(stats.scryptVerifications, at.scryptVerifications + 1, `${id}: scrypt ran`);
          assert.equal(stats.decoyVerifications, at.decoyVerifications + 1, `${id}: against the decoy`);
          assert.equal(stats.lastScryptCost, 5, 'the decoy costs what a real hash costs');
        }
      } finally {
        await hub.stop();
      }
    });

    it('a flood of distinct unknown ids does not reset the throttle of the id under attack', () => {
      const throttle = new LoginThrottle(3, 1_000_000, 60_000);
      for (let i = 0; i < 3; i++) {
        throttle.tryBegin('victim', 'attacker', 0);
        throttle.finish('victim', 'attacker', 'failed', 0);
      }
      for (let i = 0; i < 150_000; i++) {
        throttle.tryBegin(`junk-${i}`, 'attacker', 1);
        throttle.finish(`junk-${i}`, 'attacker', 'failed', 1);
      }
      assert.equal(throttle.tryBegin('victim', 'attacker', 2), 'pair');
    });
  });

  it('metadata cannot smuggle credentials past the header parser: two authorization headers are UNAUTHENTICATED', async () => {
    const hub = await TestHub.start();
    try {
      const client = hub.client();
      const merchant = await hub.register('merchant');
      const metadata = Metadata();
      metadata.append('authorization', 'Basic bm90OnZhbGlk');
      metadata.append('authorization', `Basic ${Buffer.from(`${merchant.id}:${merchant.password}`).toString('base64')}`);
      const outcome = await outcomeOf((o) => client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { ...o, metadata }));
      assert.equal(statusName(outcome.code), 'UNAUTHENTICATED');
      assert.equal(outcome.reason, 'UNAUTHENTICATED');
      assert.match(outcome.details, /^authorization: sent 2 times/);
    } finally {
      await hub.stop();
    }
  });
});
