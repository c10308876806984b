import assert from 'node:assert/strict';
import { Status } from 'nice-grpc';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { type Credentials, type HubClient, TestHub, basicAuth } from '../support/hub.js';
import { type CallOutcome, SourceClient, outcomeOf, statusName, unknownId } from './support.js';

// Attackers and owners on different loopback source addresses (all of 127.0.0.0/8 is
// loopback): the hub's throttles key on the source address, as they would on the internet.

const info = { key: '', title: 'lockout', body: '', data: {}, validUntil: undefined, offer: undefined };
const listAs = (client: HubClient, creds: Credentials) =>
  outcomeOf((o) => client.listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { ...o, metadata: basicAuth(creds) }));
const codes = (outcomes: CallOutcome[]) => outcomes.map((o) => o.reason ?? statusName(o.code));
const count = (outcomes: CallOutcome[], reason: string) => outcomes.filter((o) => o.reason === reason).length;

describe('nobody anonymous can lock a real user out', function () {
  let hub: TestHub;
  const sources: SourceClient[] = [];
  const from = (localAddress: string) => {
    const client = new SourceClient(hub.address, localAddress);
    sources.push(client);
    return client;
  };
  afterEach(async () => {
    for (const source of sources.splice(0)) source.close();
    await hub.stop();
  });

  describe('failed-login throttle', () => {
    it('an attacker who knows an id is throttled at their address; the owner, who never connected, gets in from theirs', async () => {
      hub = await TestHub.start();
      const owner = await hub.register('merchant');
      const attacker = from('127.0.0.2');
      const guesses: CallOutcome[] = [];
      for (let i = 0; i < DEFAULT_CONFIG.maxFailedLogins + 5; i++) guesses.push(await attacker.listItems({ id: owner.id, password: `guess-${i}` }));
      assert.equal(count(guesses, 'UNAUTHENTICATED'), DEFAULT_CONFIG.maxFailedLogins, codes(guesses).join(' '));
      assert.equal(count(guesses, 'LOGIN_THROTTLED'), 5);

      assert.equal(statusName((await listAs(hub.client(), owner)).code), 'OK', 'the owner is not locked out');
      assert.match(guesses.at(-1)!.details, /^authorization: too many failed logins for this id from this address/);
      assert.equal((await from('127.0.0.3').listItems(owner)).code, Status.OK, 'nor from a third address');
    });

    it('under a steady attack, an owner who rotates gets in with the new password', async () => {
      hub = await TestHub.start();
      const owner = await hub.register('merchant');
      const attacker = from('127.0.0.2');
      let attacking = true;
      const attack = (async () => {
        const outcomes: CallOutcome[] = [];
        // Bounded, and it stops once the hub is gone: a failed assertion must not leave it spinning.
        for (let i = 0; attacking && i < 100_000; i++) {
          const outcome = await attacker.listItems({ id: owner.id, password: `guess-${i}` });
          outcomes.push(outcome);
          if (outcome.code === Status.UNAVAILABLE) break;
        }
        return outcomes;
      })();
      try {
        // Let the attack reach the throttle first.
        const deadline = Date.now() + 10_000;
        while (hub.hub.probe.authStats.scryptVerifications < DEFAULT_CONFIG.maxFailedLogins && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 10));
        }
        const client = hub.client();
        const { password } = await client.rotatePassword({}, { metadata: basicAuth(owner) });
        const rotated = { id: owner.id, password };
        assert.equal(statusName((await listAs(client, rotated)).code), 'OK', 'the new password gets in during the attack');
        assert.equal((await from('127.0.0.3').listItems(rotated)).code, Status.OK, 'from another address too');
        assert.equal((await listAs(client, owner)).code, Status.UNAUTHENTICATED, 'the old password is revoked');
      } finally {
        attacking = false;
      }
      const outcomes = await attack;
      assert.ok(count(outcomes, 'LOGIN_THROTTLED') > 0, codes(outcomes).slice(0, 20).join(' '));
      assert.ok(outcomes.every((o) => o.code !== Status.OK), 'no guess got in');
    });

    it('concurrent wrong passwords from one address run at most the limit of scrypt verifications', async () => {
      hub = await TestHub.start();
      const owner = await hub.register('merchant');
      const attacker = from('127.0.0.2');
      const stats = hub.hub.probe.authStats;
      const before = stats.scryptVerifications;
      // Distinct passwords: identical ones would share one verification anyway.
      const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => attacker.listItems({ id: owner.id, password: `guess-${i}` })));
      assert.ok(stats.scryptVerifications - before <= DEFAULT_CONFIG.maxFailedLogins, `${stats.scryptVerifications - before} scrypt runs`);
      assert.ok(outcomes.every((o) => o.code === Status.UNAUTHENTICATED || o.reason === 'LOGIN_THROTTLED' || o.reason === 'AUTH_BUSY'), codes(outcomes).join(' '));
      assert.ok(count(outcomes, 'LOGIN_THROTTLED') >= 50 - DEFAULT_CONFIG.maxFailedLogins);
    });

    it('guessing across many ids from one address is throttled per address', async () => {
      hub = await TestHub.start({ maxFailedLoginsPerSource: 20 });
      const attacker = from('127.0.0.2');
      const outcomes: CallOutcome[] = [];
      for (let i = 0; i < 25; i++) outcomes.push(await attacker.listItems({ id: unknownId('M'), password: 'guess' }));
      assert.equal(count(outcomes, 'UNAUTHENTICATED'), 20, codes(outcomes).join(' '));
      assert.equal(count(outcomes, 'LOGIN_THROTTLED'), 5);
      assert.match(outcomes.at(-1)!.details, /^authorization: too many failed logins from this address/);
      const owner = await hub.register('merchant');
      assert.equal((await listAs(hub.client(), owner)).code, Status.OK, 'another address is unaffected');
    });
  });

  describe('scrypt work in flight is bounded', () => {
    it('a flood of anonymous logins and registrations gets AUTH_BUSY past the queue cap; a remembered owner keeps pushing within deadlines', async () => {
      // A real cost, so the flood is real work that queues.
      hub = await TestHub.start({ scryptLogN: 12 });
      const owner = await hub.register('merchant');
      const client = hub.client();
      assert.equal((await listAs(client, owner)).code, Status.OK); // verified once, then remembered

      const attackers = Array.from({ length: 8 }, (_, i) => from(`127.0.0.${10 + i}`));
      const flood = Promise.all(
        attackers.flatMap((attacker) =>
          Array.from({ length: 40 }, (_, i) => (i % 4 === 0 ? attacker.register('receiver') : attacker.listItems({ id: unknownId('M'), password: 'x' }))),
        ),
      );
      const pushes: CallOutcome[] = [];
      for (let i = 0; i < 20; i++) {
        pushes.push(await outcomeOf((o) => client.pushPublic({ info, requestId: '' }, { ...o, metadata: basicAuth(owner), signal: AbortSignal.timeout(3000) })));
      }
      const outcomes = await flood;
      assert.deepEqual(codes(pushes), Array(20).fill('OK'), 'every push of the remembered owner succeeded within its deadline');
      const busy = outcomes.filter((o) => o.reason === 'AUTH_BUSY');
      assert.ok(busy.length > 0, `no AUTH_BUSY in ${outcomes.length} flood calls`);
      assert.equal(statusName(busy[0]!.code), 'RESOURCE_EXHAUSTED');
      assert.match(busy.map((o) => o.details).join('\n'), /^(authorization|registration): the hub is busy checking credentials/m);
      const ran = outcomes.filter((o) => o.code === Status.UNAUTHENTICATED || o.code === Status.OK);
      assert.ok(ran.length > 0, 'some flood calls were served');
      assert.ok(hub.hub.probe.scryptQueue.queued <= DEFAULT_CONFIG.scryptQueueLimit);
    });

    it('one address cannot fill the whole queue: another address is still queued and served', async () => {
      // A queue of 16, so the 60 calls fill it (the share applies only to a full queue).
      hub = await TestHub.start({ scryptLogN: 12, scryptQueueLimit: 16, scryptQueuePerSource: 4 });
      const noisy = from('127.0.0.2');
      const quiet = from('127.0.0.3');
      const owner = await hub.register('merchant');
      const flood = Promise.all(Array.from({ length: 60 }, () => noisy.listItems({ id: unknownId('M'), password: 'x' })));
      const quietLogin = await quiet.listItems(owner);
      const outcomes = await flood;
      assert.equal(statusName(quietLogin.code), 'OK', 'the quiet address got its turn');
      assert.ok(count(outcomes, 'AUTH_BUSY') > 0, codes(outcomes).join(' '));
    });
  });

  describe('registration throttle', () => {
    it('is on by default', () => {
      assert.ok(DEFAULT_CONFIG.registrationRatePerSourcePerSec > 0);
      assert.ok(DEFAULT_CONFIG.registrationBurstPerSource > 0);
    });

    it('past the burst one address gets REGISTRATION_THROTTLED; another address still registers', async () => {
      hub = await TestHub.start({ registrationRatePerSourcePerSec: 0.01, registrationBurstPerSource: 5 });
      const busy = from('127.0.0.2');
      const outcomes: CallOutcome[] = [];
      for (let i = 0; i < 8; i++) outcomes.push(await busy.register(i % 2 ? 'merchant' : 'receiver'));
      assert.deepEqual(codes(outcomes), [...Array(5).fill('OK'), ...Array(3).fill('REGISTRATION_THROTTLED')]);
      assert.equal(statusName(outcomes[5]!.code), 'RESOURCE_EXHAUSTED');
      assert.match(outcomes[5]!.details, /^registration: too many registrations or wrong registration tokens from this address; retry in \d+ s/);
      const other = await from('127.0.0.3').register('receiver');
      assert.equal(other.code, Status.OK);
      assert.equal((await from('127.0.0.3').listItems(other.credentials!)).code, Status.PERMISSION_DENIED, 'a real account (a receiver may not list items)');
    });

    it('concurrent registrations from one address cannot all slip past the limit', async () => {
      hub = await TestHub.start({ registrationRatePerSourcePerSec: 0.01, registrationBurstPerSource: 5 });
      const busy = from('127.0.0.2');
      const outcomes = await Promise.all(Array.from({ length: 30 }, () => busy.register('receiver')));
      assert.equal(outcomes.filter((o) => o.code === Status.OK).length, 5, codes(outcomes).join(' '));
    });

    it('a wrong registration token costs more than a registration', async () => {
      hub = await TestHub.start({ merchantRegistrationToken: 'm-secret', registrationRatePerSourcePerSec: 0.01, registrationBurstPerSource: 20 });
      const guesser = from('127.0.0.2');
      const outcomes: CallOutcome[] = [];
      for (const token of ['a', 'b', 'm-secret']) outcomes.push(await guesser.register('merchant', token));
      assert.deepEqual(codes(outcomes), ['REGISTRATION_CLOSED', 'REGISTRATION_CLOSED', 'REGISTRATION_THROTTLED'], 'two wrong guesses spend a burst of 20');
      assert.equal((await from('127.0.0.3').register('merchant', 'm-secret')).code, Status.OK, 'another address still registers');
    });
  });
});
