import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MerchantClient } from '../../sdk/src/merchant.js';
import { ReceiverClient, type ReceiverEvent } from '../../sdk/src/receiver.js';
import { TestHub } from '../support/hub.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const BUF = join(ROOT, 'node_modules/.bin/buf');

/** The walkthrough's `$CURL`: buf curl speaking gRPC over plaintext HTTP/2. */
const curl = (...args: string[]) => run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args], { cwd: ROOT });

describe('walkthrough (docs/walkthrough.md)', function () {
  this.timeout(60_000);
  let hub: TestHub;

  before(async () => {
    hub = await TestHub.start();
  });
  after(async () => {
    await hub.stop();
  });

  it('runs as written: every `# =>` line is what the reader sees on a new hub', async () => {
    const { script, checks } = walkthroughScript(readFileSync(join(ROOT, 'docs/walkthrough.md'), 'utf8'));
    assert.ok(checks.length >= 10, `the walkthrough shows its output (${checks.length} checks)`);
    // `npx buf` as the reader types it, minus npm's start-up (seconds per call on a busy
    // machine): an `npx` first on PATH runs the installed buf shim directly. The script's
    // mktemp files go to the same directory, removed afterwards.
    const dir = mkdtempSync(join(tmpdir(), 'pushhub-walkthrough-'));
    const npx = (await run('sh', ['-c', 'command -v npx'])).stdout.trim();
    writeFileSync(join(dir, 'npx'), `#!/bin/sh\nif [ "$1" = buf ]; then shift; exec "${BUF}" "$@"; fi\nexec "${npx}" "$@"\n`, { mode: 0o755 });
    let stdout = '';
    try {
      ({ stdout } = await run('bash', ['-c', script], {
        cwd: ROOT,
        env: { ...process.env, HUB: hub.address, PATH: `${dir}:${process.env.PATH}`, TMPDIR: dir },
        maxBuffer: 16 * 1024 * 1024,
      }).catch((error: { code?: number; stdout?: string; stderr?: string }) => {
        throw new Error(`the walkthrough stopped (exit ${error.code}):\n${error.stdout}\n--- stderr:\n${error.stderr}`);
      }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const segments = stdout.split(/^@@CHECK \d+\n/m);
    assert.equal(segments.length, checks.length + 1, `every check was reached:\n${stdout}`);
    checks.forEach((expected, i) => {
      const seen = segments[i]!.split('\n').filter((line) => line !== '');
      const tail = seen.slice(-expected.length);
      assert.equal(tail.length, expected.length, `check ${i + 1}: ${expected.join(' | ')}\nsaw: ${seen.join(' | ')}`);
      expected.forEach((line, j) => assert.match(tail[j]!, pattern(line), `check ${i + 1}, line ${j + 1}\nsaw: ${seen.join(' | ')}`));
    });
  });

  it('buf curl lists the services and methods by reflection', async () => {
    const services = await curl('--list-services', `http://${hub.address}`);
    assert.deepEqual(services.stdout.trim().split('\n'), ['grpc.health.v1.Health', 'pushhub.v1.PushHubService']);
    const methods = (await curl('--list-methods', `http://${hub.address}`)).stdout.trim().split('\n');
    for (const method of ['Register', 'PushSpecific', 'PushPublic', 'PushStream', 'Withdraw', 'ListItems', 'Subscribe', 'RotatePassword']) {
      assert.ok(methods.includes(`pushhub.v1.PushHubService/${method}`), `${method} in ${methods.join(', ')}`);
    }
  });

  it("buf build shows a message's fields (ServiceInfo), as the walkthrough's jq filter reads them", async () => {
    const { stdout } = await run(BUF, ['build', '-o', '-#format=json'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
    const image = JSON.parse(stdout) as { file: { name: string; messageType?: { name: string; field: { name: string }[] }[] }[] };
    const file = image.file.find((f) => f.name === 'pushhub/v1/pushhub.proto');
    const info = file?.messageType?.find((m) => m.name === 'ServiceInfo');
    assert.ok(info, 'ServiceInfo in the schema');
    assert.deepEqual(
      info.field.map((f) => f.name),
      ['key', 'title', 'body', 'valid_until', 'discount', 'points', 'voucher', 'data'],
    );
  });

  it('a resume skips changes superseded after the cursor: the newer item and the withdrawal arrive in their place', async () => {
    const merchant = new MerchantClient({ address: hub.address, ...(await MerchantClient.register(hub.address)) });
    const credentials = await ReceiverClient.register(hub.address);
    const before = await merchant.pushSpecific(credentials.id, { title: 'before the cursor' });
    const v1 = await merchant.pushSpecific(credentials.id, { key: 'points', title: 'v1' });
    const voucher = await merchant.pushSpecific(credentials.id, { title: 'voucher' });
    const v2 = await merchant.pushSpecific(credentials.id, { key: 'points', title: 'v2' });
    const withdrawn = await merchant.withdraw({ itemId: voucher.itemId });
    merchant.close();

    const receiver = new ReceiverClient({ address: hub.address, ...credentials });
    const events: ReceiverEvent[] = [];
    for await (const event of receiver.subscribe({ afterSequence: before.sequence })) {
      events.push(event);
      if (event.type === 'caughtUp') break;
    }
    receiver.close();
    const seen = events.map((e) =>
      e.type === 'item' ? ['item', e.item.sequence, e.item.info?.title] : e.type === 'withdrawal' ? ['withdrawal', e.withdrawal.sequence, e.withdrawal.itemId] : e.type === 'caughtUp' ? ['caughtUp', e.sequence] : [e.type],
    );
    // v1 (replaced by v2) and the voucher (withdrawn) are not replayed; v1's tombstone (written
    // just before v2) is; no sequence is out of order.
    assert.deepEqual(seen, [
      ['withdrawal', v2.sequence - 1, v1.itemId],
      ['item', v2.sequence, 'v2'],
      ['withdrawal', withdrawn.sequence, voucher.itemId],
      ['caughtUp', withdrawn.sequence],
    ]);
    assert.ok(v1.sequence > before.sequence && voucher.sequence < v2.sequence);
  });
});

/**
 * The walkthrough's ```sh blocks as one bash script (stopping at the first failing command),
 * with a marker echoed where each run of `# =>` lines starts, and those lines per marker.
 */
function walkthroughScript(markdown: string): { script: string; checks: string[][] } {
  // A failing command stops the script; streams left in the background end with it.
  const lines = ['set -eu', "trap 'status=$?; kill $(jobs -p) 2>/dev/null || :; exit $status' EXIT"];
  const checks: string[][] = [];
  for (const [, block] of markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    let open = false;
    for (const line of block!.split('\n')) {
      const expected = /^# => (.*)$/.exec(line);
      if (expected && !open) {
        checks.push([]);
        lines.push(`echo '@@CHECK ${checks.length}'`);
      }
      if (expected) checks.at(-1)!.push(expected[1]!);
      open = expected !== null;
      lines.push(line);
    }
  }
  return { script: lines.join('\n'), checks };
}

/** An expected line as a whole-line pattern: `…` stands for anything. */
function pattern(expected: string): RegExp {
  return new RegExp(`^${expected.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}
