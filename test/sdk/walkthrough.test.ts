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

  /**
   * Runs a page's ```sh blocks (after `preamble`) against `address` and checks every `# =>`
   * line against what the reader sees.
   */
  const runPage = async (page: string, address: string, preamble = '', minChecks = 3) => {
    const { script, checks } = walkthroughScript(readFileSync(join(ROOT, page), 'utf8'), preamble);
    assert.ok(checks.length >= minChecks, `${page} shows its output (${checks.length} checks)`);
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
        env: { ...process.env, HUB: address, PATH: `${dir}:${process.env.PATH}`, TMPDIR: dir },
        maxBuffer: 16 * 1024 * 1024,
      }).catch((error: { code?: number; stdout?: string; stderr?: string }) => {
        throw new Error(`${page} stopped (exit ${error.code}):\n${error.stdout}\n--- stderr:\n${error.stderr}`);
      }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const segments = stdout.split(/^@@CHECK \d+\n/m);
    assert.equal(segments.length, checks.length + 1, `every check was reached:\n${stdout}`);
    checks.forEach((expected, i) => {
      const seen = segments[i]!.split('\n').filter((line) => line !== '');
      const tail = seen.slice(-expected.length);
      assert.equal(tail.length, expected.length, `${page} check ${i + 1}: ${expected.join(' | ')}\nsaw: ${seen.join(' | ')}`);
      expected.forEach((line, j) => assert.match(tail[j]!, pattern(line), `${page} check ${i + 1}, line ${j + 1}\nsaw: ${seen.join(' | ')}`));
    });
  };

  it('runs as written: every `# =>` line is what the reader sees on a new hub', async () => {
    await runPage('docs/walkthrough.md', hub.address, '', 10);
  });

  // The receipts and accounts pages continue from the walkthrough's variables, on a hub of their own.
  const pagePreamble = (extra = '') => `
CURL="npx buf curl --protocol grpc --http2-prior-knowledge"
API=http://$HUB/pushhub.v1.PushHubService
MERCHANT=$($CURL -d '{"role":"ROLE_MERCHANT"}' $API/Register)
RECEIVER=$($CURL -d '{"role":"ROLE_RECEIVER"}' $API/Register)
M_ID=$(jq -r .id <<<"$MERCHANT"); M_PASSWORD=$(jq -r .password <<<"$MERCHANT")
R_ID=$(jq -r .id <<<"$RECEIVER"); R_PASSWORD=$(jq -r .password <<<"$RECEIVER")
M_AUTH="authorization: Basic $(printf '%s:%s' "$M_ID" "$M_PASSWORD" | base64 -w0)"
R_AUTH="authorization: Basic $(printf '%s:%s' "$R_ID" "$R_PASSWORD" | base64 -w0)"
${extra}`;

  it('docs/receipts.md runs as written (a receipt, then a live watch and its resume, with buf curl)', async () => {
    const own = await TestHub.start();
    try {
      await runPage('docs/receipts.md', own.address, pagePreamble());
    } finally {
      await own.stop();
    }
  });

  it('docs/accounts.md runs as written (block, list, refused push, withdrawal, unblock, with buf curl)', async () => {
    const own = await TestHub.start();
    try {
      // "after the merchant pushed one public item at sequence 1"
      await runPage('docs/accounts.md', own.address, pagePreamble(`$CURL -H "$M_AUTH" -d '{"info":{"title":"Fresh bread"}}' $API/PushPublic > /dev/null`));
    } finally {
      await own.stop();
    }
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
 * A page's ```sh blocks as one bash script (stopping at the first failing command),
 * with a marker echoed where each run of `# =>` lines starts, and those lines per marker.
 */
function walkthroughScript(markdown: string, preamble = ''): { script: string; checks: string[][] } {
  // A failing command stops the script; streams left in the background end with it.
  const lines = ['set -eu', "trap 'status=$?; kill $(jobs -p) 2>/dev/null || :; exit $status' EXIT", preamble];
  const checks: string[][] = [];
  for (const [, block] of markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    let open = false;
    const blockLines = block!.split('\n');
    blockLines.forEach((line, i) => {
      const expected = /^# => (.*)$/.exec(line);
      if (expected && !open) {
        checks.push([]);
        lines.push(`echo '@@CHECK ${checks.length}'`);
      }
      if (expected) checks.at(-1)!.push(expected[1]!);
      open = expected !== null;
      // A command whose shown output is an error status: buf curl prints it on stderr and
      // exits non-zero, which the reader sees in the terminal and the script must go past.
      const next = blockLines[i + 1] ?? '';
      const error = !expected && /^# => \{\s*$/.test(next) && /^# => +"code":/.test(blockLines[i + 2] ?? '');
      lines.push(error ? `${line} 2>&1 || :` : line);
    });
  }
  return { script: lines.join('\n'), checks };
}

/** An expected line as a whole-line pattern: `…` stands for anything. */
function pattern(expected: string): RegExp {
  return new RegExp(`^${expected.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}
