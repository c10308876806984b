import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { MerchantClient } from '../../sdk/src/merchant.js';
import { TestHub } from '../support/hub.js';
import { REPO_ROOT } from '../support/hub-process.js';

/** The `sh` block right after `<!-- tls-guide:NAME -->` in docs/tls.md. */
function guideBlock(name: string): string {
  const text = readFileSync(join(REPO_ROOT, 'docs/tls.md'), 'utf8');
  const match = new RegExp(`<!-- tls-guide:${name} -->\\n\`\`\`sh\\n([\\s\\S]*?)\\n\`\`\``).exec(text);
  assert.ok(match, `docs/tls.md has a sh block marked tls-guide:${name}`);
  return match[1]!;
}

/** Runs a block of the guide with bash in dir, stopping at the first failing command. */
const runBlock = (dir: string, script: string) =>
  execFileSync('bash', ['-euo', 'pipefail', '-c', script], {
    cwd: dir,
    env: { ...process.env, HUB_DNS: 'localhost', HUB_IP: '127.0.0.1' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });

/** The serial number of the certificate the hub at port serves. */
function servedSerial(port: number, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: 'localhost', port, ca, ALPNProtocols: ['h2'] }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}
const fileSerial = (path: string) => execFileSync('openssl', ['x509', '-in', path, '-noout', '-serial'], { encoding: 'utf8' }).trim().replace(/^serial=/, '');

describe('docs/tls.md: the TLS guide, run as written', function () {
  this.timeout(60_000);
  let dir: string;
  let hub: TestHub | undefined;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pushhub-tls-guide-'));
  });
  after(async () => {
    await hub?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('its openssl commands make a CA and a certificate the SDK accepts by name and by IP; rotation keeps clients working', async () => {
    const made = runBlock(dir, guideBlock('make'));
    assert.match(made, /DNS:localhost, IP Address:127\.0\.0\.1/, 'the SANs hold the name and the address');
    assert.match(made, /hub\.pem: OK/);
    const ca = readFileSync(join(dir, 'ca.pem'));
    hub = await TestHub.start({ tlsCertPath: join(dir, 'hub.pem'), tlsKeyPath: join(dir, 'hub.key') });
    const port = hub.hub.port;

    const merchants = [];
    for (const address of [`localhost:${port}`, `127.0.0.1:${port}`]) {
      const merchant = new MerchantClient({ address, ...(await MerchantClient.register(address, { tls: { ca } })), tls: { ca } });
      await merchant.pushPublic({ title: `over TLS to ${address}` });
      merchants.push(merchant);
    }
    assert.equal(await servedSerial(port, ca), fileSerial(join(dir, 'hub.pem')));

    // Rotation: new key and certificate from the same CA, then a restart.
    const before = fileSerial(join(dir, 'hub.pem'));
    const rotated = runBlock(dir, guideBlock('rotate'));
    assert.match(rotated, /hub-next\.pem: OK/);
    assert.notEqual(fileSerial(join(dir, 'hub.pem')), before, 'a new certificate');
    await hub.restart();
    assert.equal(await servedSerial(port, ca), fileSerial(join(dir, 'hub.pem')), 'the hub serves the new certificate');
    try {
      for (const merchant of merchants) await merchant.pushPublic({ title: 'after rotation' }); // the same clients, the same CA
    } finally {
      for (const merchant of merchants) merchant.close();
    }
  });
});
