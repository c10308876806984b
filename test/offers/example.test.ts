import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { main } from '../../sdk/src/bin/pushhub-offers.js';
import { TestHub } from '../support/hub.js';

const ROOT = join(import.meta.dirname, '../..');

/** Runs pushhub-offers in process and returns its exit status and output. */
async function runCommand(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => (out += chunk));
  stderr.on('data', (chunk) => (err += chunk));
  const code = await main(args, { stdout, stderr, env });
  return { code, stdout: out, stderr: err };
}

describe('offers: the shipped example against a real hub, on the day it is run', function () {
  this.timeout(60_000);
  let hub: TestHub;
  let dir: string;

  beforeEach(async () => {
    hub = await TestHub.start();
    dir = mkdtempSync(join(tmpdir(), 'pushhub-offers-example-test-'));
  });
  afterEach(async () => {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The example records with the example receiver ids replaced by receivers registered on the hub. */
  async function recordsForHub(): Promise<string> {
    const ids = new Map<string, string>();
    const lines = readFileSync(join(ROOT, 'sdk/examples/records.csv'), 'utf8').trimEnd().split('\n');
    const out = [lines[0]];
    for (const line of lines.slice(1)) {
      const [exampleId, ...rest] = line.split(',');
      if (!ids.has(exampleId!)) ids.set(exampleId!, (await hub.register('receiver')).id);
      out.push([ids.get(exampleId!), ...rest].join(','));
    }
    const path = join(dir, 'records.csv');
    writeFileSync(path, `${out.join('\n')}\n`);
    return path;
  }

  it('old records push nothing, and the command says how many offers were skipped as ended and why', async () => {
    const merchant = await hub.register('merchant');
    const env = { PUSHHUB_MERCHANT_ID: merchant.id, PUSHHUB_MERCHANT_PASSWORD: merchant.password };
    const records = await recordsForHub();
    const args = ['--address', hub.address, '--rules', join(ROOT, 'sdk/examples/rules.json'), '--records', records];
    const { code, stdout, stderr } = await runCommand([...args, '--json'], env);
    assert.equal(code, 0, stderr);
    const summary = JSON.parse(stdout);
    assert.equal(summary.pushed, 0);
    // Points (3 receivers), the visit voucher and the win-back vouchers: all earned in 2025, all ended.
    assert.ok(summary.ended >= 4, stdout);
    assert.match(stderr, new RegExp(`${summary.ended} offers were not sent because they had already ended by `));
    assert.match(stderr, /The newest record is from 2025-05-31T05:50:00\.000Z\./);
    assert.match(stderr, /--records-now/);

    const text = await runCommand(args, env);
    assert.match(text.stdout, new RegExp(`^pushed 0, unchanged 0, withdrawn 0, skipped ${summary.ended} already ended \\(3 receivers, 12 records\\)\\n$`));
  });

  it('with --records-now the records move to today and every offer of docs/offers.md is pushed, once', async () => {
    const merchant = await hub.register('merchant');
    const env = { PUSHHUB_MERCHANT_ID: merchant.id, PUSHHUB_MERCHANT_PASSWORD: merchant.password };
    const records = await recordsForHub();
    const args = ['--address', hub.address, '--rules', join(ROOT, 'sdk/examples/rules.json'), '--records', records, '--records-now', '2025-06-01T12:00:00Z'];
    const first = await runCommand(args, env);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, 'pushed 6, unchanged 0, withdrawn 0 (3 receivers, 12 records)\n');
    assert.equal(first.stderr, '');
    const second = await runCommand(args, env);
    assert.equal(second.stdout, 'pushed 0, unchanged 6, withdrawn 0 (3 receivers, 12 records)\n');
  });

  it('try-offers.ts prints the offers of docs/offers.md, receiver 3 earning 7 points (local times kept across daylight saving)', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'sdk/examples/try-offers.ts', '--address', hub.address], { cwd: ROOT });
    assert.match(stdout, /^first run: pushed 6, unchanged 0, withdrawn 0 \(3 receivers, 12 records\)$/m);
    assert.match(stdout, /^second run: pushed 0, unchanged 6, withdrawn 0 \(3 receivers, 12 records\)$/m);
    const receiver3 = stdout.slice(stdout.indexOf('R00-0000000000000003'));
    assert.match(receiver3, /offer:points {2}Your points: 14 /);
    assert.match(receiver3, /You earned 7 points with your latest purchase\./);
    for (const title of ['Your points: 411', 'Gold member: 10% off everything', '5 visits: 5.00 EUR off', 'Your points: 146', 'We miss you: 10.00 EUR off your next visit']) {
      assert.ok(stdout.includes(title), `${title} in\n${stdout}`);
    }
  });
});
