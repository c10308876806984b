import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MerchantClient, PushHubError, Status } from '../../sdk/src/merchant.js';
import { ReceiverClient } from '../../sdk/src/receiver.js';
import { TestHub } from '../support/hub.js';
import { REPO_ROOT, freePort } from '../support/hub-process.js';

/** Runs openssl quietly in `dir`. */
const openssl = (dir: string, args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });

/** A CA, and a certificate it signs for `sans` (e.g. DNS:localhost,IP:127.0.0.1), as files in dir. */
function makeCa(dir: string): void {
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=test CA']);
}
function makeCert(dir: string, name: string, sans: string): { cert: string; key: string } {
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', writeExt(dir, name, sans)]);
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}
function writeExt(dir: string, name: string, sans: string): string {
  const path = join(dir, `${name}.ext`);
  writeFileSync(path, `subjectAltName=${sans}\n`);
  return path;
}

/** The PushHubError a call failed with. */
async function failure(call: () => Promise<unknown>): Promise<PushHubError> {
  try {
    await call();
  } catch (error) {
    assert.ok(error instanceof PushHubError, `a PushHubError, got ${String(error)}`);
    return error;
  }
  assert.fail('the call succeeded');
}

describe('sdk: connection and TLS failures name their cause', function () {
  this.timeout(60_000);
  let dir: string;
  let ca: Buffer;
  let tlsHub: TestHub;
  let otherNameHub: TestHub;
  let plainHub: TestHub;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pushhub-conn-errors-'));
    makeCa(dir);
    ca = readFileSync(join(dir, 'ca.pem'));
    const hubCert = makeCert(dir, 'hub', 'DNS:localhost,IP:127.0.0.1');
    const otherCert = makeCert(dir, 'other', 'DNS:other.example');
    tlsHub = await TestHub.start({ tlsCertPath: hubCert.cert, tlsKeyPath: hubCert.key });
    otherNameHub = await TestHub.start({ tlsCertPath: otherCert.cert, tlsKeyPath: otherCert.key });
    plainHub = await TestHub.start();
  });
  after(async () => {
    await Promise.all([tlsHub?.stop(), otherNameHub?.stop(), plainHub?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const port = (hub: TestHub) => hub.hub.port;

  it('the CA passed: by name and by IP address the hub is reached over TLS', async () => {
    for (const address of [`localhost:${port(tlsHub)}`, `127.0.0.1:${port(tlsHub)}`]) {
      const credentials = await MerchantClient.register(address, { tls: { ca } });
      assert.match(credentials.id, /^M/);
    }
  });

  it('a plaintext client at a TLS hub: "the hub speaks TLS", pass a CA (not retried)', async () => {
    const error = await failure(() => MerchantClient.register(`127.0.0.1:${port(tlsHub)}`));
    assert.equal(error.code, Status.UNAVAILABLE);
    assert.equal(error.reason, 'TLS_REQUIRED');
    assert.equal(
      error.details,
      `the hub at 127.0.0.1:${port(tlsHub)} speaks TLS and this client connected in plaintext: pass the CA certificate that signed it (SDK: \`tls: { ca }\`; pushhub-receiver and pushhub-offers: \`--ca FILE\`)`,
    );
  });

  it('a TLS client at a plaintext hub: "the hub is plaintext"', async () => {
    const error = await failure(() => MerchantClient.register(`127.0.0.1:${port(plainHub)}`, { tls: { ca } }));
    assert.equal(error.reason, 'HUB_IS_PLAINTEXT');
    assert.equal(error.details, `the hub at 127.0.0.1:${port(plainHub)} is plaintext (it does not answer TLS): connect without TLS, or start the hub with --tls-cert and --tls-key`);
  });

  it('a certificate for other names: "certificate is for X, not Y", by name and by IP', async () => {
    const byName = await failure(() => MerchantClient.register(`localhost:${port(otherNameHub)}`, { tls: { ca } }));
    assert.equal(byName.reason, 'TLS_NAME_MISMATCH');
    assert.match(byName.details, /^the hub's certificate is for DNS:other\.example, not localhost: dial a name the certificate has, or add localhost to its subject alternative names/);
    const byIp = await failure(() => MerchantClient.register(`127.0.0.1:${port(otherNameHub)}`, { tls: { ca } }));
    assert.equal(byIp.reason, 'TLS_NAME_MISMATCH');
    assert.match(byIp.details, /^the hub's certificate is for no IP address, not IP 127\.0\.0\.1: .*add IP:127\.0\.0\.1 to its subject alternative names/);
  });

  it('a CA the client does not trust (system roots, or another CA): "pass the CA"', async () => {
    const systemRoots = await failure(() => MerchantClient.register(`localhost:${port(tlsHub)}`, { tls: {} }));
    assert.equal(systemRoots.reason, 'TLS_UNTRUSTED');
    assert.match(systemRoots.details, /^the hub at localhost:\d+ has a certificate signed by an unknown CA, not signed by a CA this client trusts \(the system roots\): pass the CA certificate/);
    const wrongCa = await failure(() => MerchantClient.register(`localhost:${port(tlsHub)}`, { tls: { ca: readFileSync(join(dir, 'other.pem')) } }));
    assert.equal(wrongCa.reason, 'TLS_UNTRUSTED');
    assert.match(wrongCa.details, /not signed by the CA you passed: pass the CA certificate that signed it/);
  });

  it('nothing listening: "nothing listens on host:port", retried first (a hub restart looks the same)', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const merchant = new MerchantClient({ address, id: 'M00-1', password: 'x', retry: { maxAttempts: 2, initialBackoffMs: 10, maxBackoffMs: 10 } });
    try {
      const error = await failure(() => merchant.pushPublic({ title: 'x' }));
      assert.equal(error.reason, 'HUB_UNREACHABLE');
      assert.equal(error.details, `nothing listens on ${address} (is the hub running, and is this its host and port?)`);
    } finally {
      merchant.close();
    }
  });

  it('an address without a port is refused at once, naming the fix (no silent port 80)', () => {
    for (const [address, message] of [
      ['hub.example.com', /^INVALID_ARGUMENT \(INVALID_ADDRESS\): address: "hub\.example\.com" has no port: write HOST:PORT, e.g\. hub\.example\.com:50051/],
      ['127.0.0.1', /"127\.0\.0\.1" has no port/],
      ['::1', /"::1" is an IPv6 address without brackets and port: write \[::1\]:50051/],
      ['dns:hubs.internal', /"dns:hubs\.internal" has no port/],
    ] as const) {
      assert.throws(() => new MerchantClient({ address, id: 'M00-1', password: 'x' }), (error: unknown) => error instanceof PushHubError && error.reason === 'INVALID_ADDRESS' && message.test(error.message), address);
    }
  });

  it('the receiver client explains too: its subscription fails with the cause', async () => {
    const credentials = await ReceiverClient.register(`localhost:${port(tlsHub)}`, { tls: { ca } });
    const receiver = new ReceiverClient({ address: `127.0.0.1:${port(tlsHub)}`, ...credentials, reconnect: { maxAttempts: 1 } });
    try {
      const error = await failure(async () => {
        for await (const _ of receiver.subscribe()) break;
      });
      assert.equal(error.reason, 'TLS_REQUIRED');
    } finally {
      receiver.close();
    }
  });

  it('the daemon says what is wrong, and prints no deprecation warning for a hub dialled by IP', async () => {
    const daemon = (args: string[]) =>
      spawn(process.execPath, ['--import', 'tsx', 'sdk/src/bin/pushhub-receiver.ts', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (child: ReturnType<typeof daemon>) => {
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return { stderr: () => stderr, exited };
    };
    // No --ca at a TLS hub: the daemon stops with the cause.
    const plain = daemon(['--address', `127.0.0.1:${port(tlsHub)}`, '--register', '--credentials', join(dir, 'r1.json'), '--store', join(dir, 'r1.db')]);
    const plainRun = collect(plain);
    assert.equal(await plainRun.exited, 1);
    assert.match(plainRun.stderr(), /pushhub-receiver: UNAVAILABLE \(TLS_REQUIRED\): the hub at 127\.0\.0\.1:\d+ speaks TLS and this client connected in plaintext: .*--ca FILE/);

    // With --ca, by IP address: registers, syncs, and stderr holds no warning.
    const ok = daemon(['--address', `127.0.0.1:${port(tlsHub)}`, '--ca', join(dir, 'ca.pem'), '--register', '--credentials', join(dir, 'r2.json'), '--store', join(dir, 'r2.db')]);
    const okRun = collect(ok);
    const deadline = Date.now() + 30_000;
    while (!/caught up/.test(okRun.stderr()) && Date.now() < deadline && ok.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    ok.kill('SIGTERM');
    assert.equal(await okRun.exited, 0, okRun.stderr());
    assert.match(okRun.stderr(), /caught up at sequence/);
    assert.doesNotMatch(okRun.stderr(), /Warning|DEP0123/);
  });
});
