import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChannelCredentials } from '@grpc/grpc-js';
import { ClientError, Status, createChannel, createClient } from 'nice-grpc';
import { MerchantClient } from '../../sdk/src/merchant.js';
import { ReceiverClient, type ReceiverEvent } from '../../sdk/src/receiver.js';
import { loadConfig } from '../../src/config.js';
import { PushHubServiceDefinition, Role } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { basicAuth } from '../support/hub.js';
import { HubProcess, freePort } from '../support/hub-process.js';

/** A self-signed certificate for localhost and 127.0.0.1, made with openssl for this run. */
function generateCertificate(dir: string): { cert: string; key: string; ca: Buffer } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  return { cert, key, ca: readFileSync(cert) };
}

describe('TLS', function () {
  this.timeout(60_000);
  let dir: string;
  let tls: { cert: string; key: string; ca: Buffer };
  let hub: HubProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pushhub-tls-'));
    tls = generateCertificate(dir);
    // The hub as `npm start -- --tls-cert ... --tls-key ...` runs it.
    hub = new HubProcess(join(dir, 'hub.db'), await freePort(), ['--tls-cert', tls.cert, '--tls-key', tls.key, '--heartbeat-ms', '500']);
    await hub.start();
  });
  after(async () => {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the whole path over TLS with the SDKs trusting the generated CA: register, push, subscribe, withdraw, rotate', async () => {
    const address = `localhost:${hub.port}`;
    const merchantCreds = await MerchantClient.register(address, { tls: { ca: tls.ca } });
    const receiverCreds = await ReceiverClient.register(address, { tls: { ca: tls.ca } });
    const merchant = new MerchantClient({ address, ...merchantCreds, tls: { ca: tls.ca } });
    const receiver = new ReceiverClient({ address, ...receiverCreds, tls: { ca: tls.ca } });
    const abort = new AbortController();
    const events: ReceiverEvent[] = [];
    const following = (async () => {
      for await (const event of receiver.subscribe({ signal: abort.signal })) events.push(event);
    })();
    const waitFor = async (what: string, done: () => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    try {
      await waitFor('caught up', () => events.some((e) => e.type === 'caughtUp'));
      const specific = await merchant.pushSpecific(receiverCreds.id, { title: 'over TLS', key: 'tls' });
      const pub = await merchant.pushPublic({ title: 'public over TLS' });
      await waitFor('two items', () => events.filter((e) => e.type === 'item').length === 2);
      await merchant.withdraw({ itemId: specific.itemId });
      await waitFor('withdrawal', () => events.some((e) => e.type === 'withdrawal'));
      const listed: string[] = [];
      for await (const item of merchant.listItems()) listed.push(item.itemId);
      assert.deepEqual(listed, [pub.itemId]);
      const newPassword = await merchant.rotatePassword();
      const rotated = new MerchantClient({ address, id: merchantCreds.id, password: newPassword, tls: { ca: tls.ca } });
      await rotated.pushPublic({ title: 'after rotation' });
      rotated.close();
    } finally {
      abort.abort();
      await following.catch(() => {});
      merchant.close();
      receiver.close();
    }
  });

  it('the generated client with ChannelCredentials.createSsl(ca) works too', async () => {
    const channel = createChannel(`localhost:${hub.port}`, ChannelCredentials.createSsl(tls.ca));
    try {
      const client = createClient(PushHubServiceDefinition, channel);
      const creds = await client.register({ role: Role.ROLE_RECEIVER });
      const { password } = await client.rotatePassword({}, { metadata: basicAuth(creds) });
      assert.ok(password.length > 0);
    } finally {
      channel.close();
    }
  });

  it('plaintext clients and clients that do not trust the certificate are refused', async () => {
    for (const credentials of [ChannelCredentials.createInsecure(), ChannelCredentials.createSsl()]) {
      const channel = createChannel(`localhost:${hub.port}`, credentials);
      try {
        const client = createClient(PushHubServiceDefinition, channel);
        await assert.rejects(
          client.register({ role: Role.ROLE_RECEIVER }),
          (error: unknown) => error instanceof ClientError && error.code === Status.UNAVAILABLE,
        );
      } finally {
        channel.close();
      }
    }
  });

  it('a certificate without its key (or the reverse) refuses to start rather than serve plaintext', () => {
    assert.throws(() => loadConfig(['--tls-cert', tls.cert], {}), /--tls-cert and --tls-key must be given together/);
    assert.throws(() => loadConfig([], { PUSHHUB_TLS_KEY: tls.key }), /must be given together/);
    const both = loadConfig(['--tls-cert', tls.cert, '--tls-key', tls.key], {});
    assert.equal(both.tlsCertPath, tls.cert);
  });
});
