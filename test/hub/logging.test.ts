import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientError, Metadata, Status, createChannel, createClient } from 'nice-grpc';
import { PushHubServiceDefinition, Role } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { type RunningHub, startHub } from '../../src/hub.js';
import { createLogger } from '../../src/logger.js';
import { testConfig } from '../support/hub.js';

interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

const basic = (id: string, password: string) => `Basic ${Buffer.from(`${id}:${password}`).toString('base64')}`;

describe('hub logs', function () {
  this.timeout(30_000);
  const MERCHANT_TOKEN = 'merchant-token-7f3a9c41d2';
  let dir: string;
  let hub: RunningHub;
  let raw: string;
  const lines = () => raw.trim().split('\n').map((line) => JSON.parse(line) as LogLine);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pushhub-logs-'));
    raw = '';
    // The real logger (pino, redaction on), at debug so every rejection is written, into a string.
    const logger = createLogger({ level: 'debug', destination: { write: (chunk: string) => void (raw += chunk) } });
    hub = await startHub(testConfig(dir, { merchantRegistrationToken: MERCHANT_TOKEN, maxFailedLogins: 2 }), { logger });
  });
  afterEach(async () => {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('no password, authorization value or registration token reaches the log, and each rejected RPC is logged once with its reason', async () => {
    const channel = createChannel(hub.address);
    const client = createClient(PushHubServiceDefinition, channel);
    const secrets: string[] = [MERCHANT_TOKEN];
    const expectReject = async (call: Promise<unknown>, code: Status) =>
      assert.rejects(call, (e: unknown) => e instanceof ClientError && e.code === code);
    try {
      const wrongToken = 'wrong-token-5b8e2d11aa';
      secrets.push(wrongToken);
      await expectReject(client.register({ role: Role.ROLE_MERCHANT, displayName: 'm', regionCode: '', registrationToken: wrongToken }), Status.PERMISSION_DENIED);
      const merchant = await client.register({ role: Role.ROLE_MERCHANT, displayName: 'm', regionCode: '', registrationToken: MERCHANT_TOKEN });
      const receiver = await client.register({ role: Role.ROLE_RECEIVER, displayName: 'r', regionCode: '' });
      secrets.push(merchant.password, receiver.password, basic(merchant.id, merchant.password), basic(receiver.id, receiver.password));

      // A wrong password (twice: the second trips the throttle), with other secrets in the metadata.
      const wrongPassword = 'not-the-password-c0ffee';
      const wrongAuth = basic(receiver.id, wrongPassword); // the throttle is per id: spend the receiver's
      secrets.push(wrongPassword, wrongAuth, 'x-api-secret-93d1e0');
      const withWrong = { metadata: Metadata({ authorization: wrongAuth, 'x-api-key': 'x-api-secret-93d1e0' }) };
      await expectReject(client.pushPublic({ info: { title: 'x' } }, withWrong), Status.UNAUTHENTICATED);
      await expectReject(client.pushPublic({ info: { title: 'x' } }, withWrong), Status.UNAUTHENTICATED);
      await expectReject(client.pushPublic({ info: { title: 'x' } }, withWrong), Status.RESOURCE_EXHAUSTED);

      // A bad field from an authenticated merchant; then a rotation whose new password is a secret too.
      const asMerchant = { metadata: Metadata({ authorization: basic(merchant.id, merchant.password) }) };
      await expectReject(client.pushSpecific({ receiverId: '', info: { title: 'x' } }, asMerchant), Status.INVALID_ARGUMENT);
      const rotated = await client.rotatePassword({}, asMerchant);
      secrets.push(rotated.password);
      await client.pushPublic({ info: { title: 'accepted' } }, { metadata: Metadata({ authorization: basic(merchant.id, rotated.password) }) });
    } finally {
      channel.close();
    }

    for (const secret of secrets) assert.ok(!raw.includes(secret), `the log contains a secret: ${secret.slice(0, 12)}...`);
    // base64 of the bare password would be the same secret in disguise.
    for (const secret of secrets) assert.ok(!raw.includes(Buffer.from(secret).toString('base64')), 'the log contains a base64 secret');

    const rejected = lines().filter((l) => l.msg === 'rpc rejected');
    const summary = rejected.map((l) => `${l.level} ${l.method} ${l.code} ${l.reason}`);
    assert.deepEqual(summary, [
      'warn Register PERMISSION_DENIED REGISTRATION_CLOSED',
      'warn PushPublic UNAUTHENTICATED UNAUTHENTICATED',
      'warn PushPublic UNAUTHENTICATED UNAUTHENTICATED',
      'warn PushPublic RESOURCE_EXHAUSTED LOGIN_THROTTLED',
      'debug PushSpecific INVALID_ARGUMENT INVALID_ARGUMENT',
    ]);
    assert.match(String(rejected[4]!.message), /^receiver_id: /, 'the message names the field');
  });

  it('redaction catches a secret field logged by mistake', () => {
    let out = '';
    const logger = createLogger({ destination: { write: (chunk: string) => void (out += chunk) } });
    logger.info('oops', {
      password: 'p-1',
      authorization: 'Basic cC0y',
      request: { registrationToken: 't-3', password: 'p-4' },
      call: { metadata: { authorization: 'Basic cC01' } },
      config: { merchantRegistrationToken: 't-6', receiverRegistrationToken: 't-7' },
    });
    for (const secret of ['p-1', 'cC0y', 't-3', 'p-4', 'cC01', 't-6', 't-7']) assert.ok(!out.includes(secret), secret);
    assert.equal(JSON.parse(out).password, '[redacted]');
  });

  it('--log-level warn drops routine rejections and keeps warnings', async () => {
    let out = '';
    const logger = createLogger({ level: 'warn', destination: { write: (chunk: string) => void (out += chunk) } });
    logger.debug('routine', { reason: 'INVALID_ARGUMENT' });
    logger.info('started');
    logger.warn('throttled', { reason: 'LOGIN_THROTTLED' });
    assert.deepEqual(out.trim().split('\n').map((l) => JSON.parse(l).msg), ['throttled']);
  });
});
