import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { TestHub } from '../support/hub.js';

const run = promisify(execFile);
const SDK_DIR = resolve('sdk');
const REPO_NODE_MODULES = resolve('node_modules');

/** A consumer written against the published entry points; type-checked, compiled and run. */
const CONSUMER = `
import { MerchantClient, PushHubError, Status, type PushResult } from '@pushhub/sdk/merchant';
import { ReceiverClient, createReceiverStore, type StoreChange } from '@pushhub/sdk/receiver';

const address = process.argv[2]!;
const merchant = new MerchantClient({ address, ...(await MerchantClient.register(address)) });
const credentials = await ReceiverClient.register(address);
const receiver = new ReceiverClient({ address, ...credentials });
const store = createReceiverStore('./receiver.db');
const abort = new AbortController();
const changes: StoreChange[] = [];
const arrived = new Promise<void>((resolve) =>
  store.on('change', (change) => {
    changes.push(change);
    if (changes.length === 2) resolve();
  }),
);
const syncing = store.sync(receiver, { signal: abort.signal });
const pushed: PushResult = await merchant.pushSpecific(credentials.id, {
  key: 'points',
  title: 'Points: 120',
  offer: { $case: 'points', value: { balance: 120, earned: 20 } },
});
await merchant.pushPublic({ title: 'Open today' });
let reason = '';
try {
  await merchant.withdraw({ key: 'nothing' });
} catch (error) {
  if (error instanceof PushHubError && error.code === Status.NOT_FOUND) reason = error.reason;
}
await arrived;
abort.abort();
await syncing;
const points = store.itemsByOfferKind('points');
console.log(JSON.stringify({
  pushed: pushed.itemId,
  stored: points.map((item) => item.itemId),
  titles: store.items().map((item) => item.info?.title),
  reason,
}));
store.close();
receiver.close();
merchant.close();
`;

/** A consumer that only pushes: it must run without better-sqlite3 installed. */
const MERCHANT_ONLY = `
import { MerchantClient } from '@pushhub/sdk/merchant';
const address = process.argv[2];
const merchant = new MerchantClient({ address, ...(await MerchantClient.register(address)) });
const pushed = await merchant.pushPublic({ title: 'No SQLite here' });
let storeError = '';
try {
  const { createReceiverStore } = await import('@pushhub/sdk/receiver');
  createReceiverStore('./receiver.db');
} catch (error) {
  storeError = error.message;
}
console.log(JSON.stringify({ pushed: pushed.itemId, storeError }));
merchant.close();
`;

const BETTER_SQLITE3_VERSION = (JSON.parse(readFileSync(join(REPO_NODE_MODULES, 'better-sqlite3/package.json'), 'utf8')) as { version: string }).version;

/** Runs `npm install` in `project`, offline when npm's cache allows. */
const npmInstall = (project: string, ...specs: string[]) =>
  run('npm', ['install', ...specs, '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts'], { cwd: project });

const newProject = (dir: string, name: string) => {
  const project = join(dir, name);
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  return project;
};

/** A README example as a child process, its stdout collected line by line. */
class Example {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private stderr = '';

  constructor(cwd: string, script: string, args: string[], address: string) {
    this.child = spawn(process.execPath, [script, ...args], { cwd, env: { ...process.env, PUSHHUB_ADDRESS: address } });
    let partial = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split('\n');
      partial = parts.pop()!;
      this.lines.push(...parts);
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  /** Waits for a line matching `pattern` (bounded, not a timing assertion); fails with the output so far if the script exits first. */
  async line(pattern: RegExp): Promise<string> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    for (let waited = 0; waited < 20_000; waited += 20) {
      const found = this.lines.find((line) => pattern.test(line));
      if (found) return found;
      if (exited) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`no line matching ${pattern}; stdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`);
  }

  async finish(signal?: NodeJS.Signals): Promise<string[]> {
    if (signal) this.child.kill(signal);
    const code = await this.exited;
    assert.equal(code, 0, `exit status ${code}; stdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`);
    return this.lines;
  }
}

describe('sdk: packed tarball', function () {
  this.timeout(180_000);
  let hub: TestHub;
  let dir: string;
  let tarball: string;

  before(async () => {
    hub = await TestHub.start();
    dir = mkdtempSync(join(tmpdir(), 'pushhub-pack-'));
    // npm pack runs the package's prepack script, which builds dist/ with tsc.
    await run('npm', ['pack', '--pack-destination', dir], { cwd: SDK_DIR });
    const name = readdirSync(dir).find((file) => file.endsWith('.tgz'));
    assert.ok(name, 'npm pack produced a tarball');
    tarball = join(dir, name);
  });
  after(async () => {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ships README.md with merchant, receiver, daemon and offers usage', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball]);
    assert.ok(stdout.split('\n').includes('package/README.md'), `README.md in the tarball:\n${stdout}`);
    const { stdout: readme } = await run('tar', ['-xzOf', tarball, 'package/README.md']);
    for (const usage of ["from '@pushhub/sdk/merchant'", "from '@pushhub/sdk/receiver'", "from '@pushhub/sdk/offers'", 'pushhub-receiver --address', 'pushhub-offers --address', 'npm install better-sqlite3']) {
      assert.ok(readme.includes(usage), `the SDK README shows ${usage}`);
    }
  });

  it('installs into a fresh project outside the repo, and a script there pushes and receives', async () => {
    const project = newProject(dir, 'consumer');
    // --ignore-scripts: better-sqlite3's install script would compile SQLite from source when
    // no prebuilt binary can be downloaded (minutes); the binary this repo already built for
    // the same better-sqlite3 version and Node is copied in instead. Everything else comes from
    // the tarball and the registry (or npm's cache). better-sqlite3 is an optional peer
    // dependency, installed by a receiver project itself.
    await npmInstall(project, tarball, `better-sqlite3@${BETTER_SQLITE3_VERSION}`);
    const release = join(project, 'node_modules/better-sqlite3/build/Release');
    mkdirSync(release, { recursive: true });
    copyFileSync(join(REPO_NODE_MODULES, 'better-sqlite3/build/Release/better_sqlite3.node'), join(release, 'better_sqlite3.node'));

    // The consumer type-checks against the shipped .d.ts files, then runs as plain ESM.
    writeFileSync(join(project, 'consumer.ts'), CONSUMER);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          skipLibCheck: true,
          typeRoots: [join(REPO_NODE_MODULES, '@types')],
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    await run(process.execPath, [join(REPO_NODE_MODULES, 'typescript/bin/tsc'), '-p', project], { cwd: project });
    const { stdout } = await run(process.execPath, ['consumer.js', hub.address], { cwd: project });
    const result = JSON.parse(stdout) as { pushed: string; stored: string[]; titles: string[]; reason: string };
    assert.deepEqual(result.stored, [result.pushed]);
    assert.deepEqual(result.titles, ['Points: 120', 'Open today']);
    assert.equal(result.reason, 'ITEM_NOT_FOUND');

    // The daemon is installed as a command.
    const help = await run(join(project, 'node_modules/.bin/pushhub-receiver'), ['--help'], { cwd: project });
    assert.match(help.stdout, /usage: pushhub-receiver --address/);

    // The SDK guides' merchant.mjs and receiver.mjs, verbatim, each run twice against the hub.
    // Their own directory (they resolve the SDK from the project's node_modules): their
    // credential and store files must not meet the consumer's.
    const examples = join(project, 'examples');
    mkdirSync(examples);
    for (const [name, guide] of [['merchant.mjs', 'docs/sdk-merchant.md'], ['receiver.mjs', 'docs/sdk-receiver.md']] as const) {
      const source = readFileSync(join(SDK_DIR, 'examples', name), 'utf8');
      assert.ok(readFileSync(guide, 'utf8').includes('```js\n' + source + '```\n'), `${guide} shows sdk/examples/${name} verbatim`);
      copyFileSync(join(SDK_DIR, 'examples', name), join(examples, name));
    }
    let receiverId = '';
    for (const run of [1, 2]) {
      const receiver = new Example(examples, 'receiver.mjs', [], hub.address);
      const id = (await receiver.line(/^receiver R\d\d-\d{16}$/)).split(' ')[1]!;
      if (run === 1) receiverId = id;
      else assert.equal(id, receiverId, 'the second run reuses the saved receiver');
      await receiver.line(/^caught up at \d+$/);
      // Only its owner can read the saved password.
      assert.equal(statSync(join(examples, 'receiver.json')).mode & 0o777, 0o600);

      const merchant = new Example(examples, 'merchant.mjs', [receiverId], hub.address);
      const out = await merchant.finish();
      assert.match(out[0]!, /^merchant M11-\d{16}$/);
      assert.match(out[1]!, /^pushed I[0-9a-f]{32} at sequence \d+$/);
      // What it describes: the live public items (the voucher and three deals), then the withdrawal.
      const live = out.filter((line) => line.startsWith('live '));
      assert.deepEqual(live.map((line) => line.split(' ').slice(2).join(' ')).sort(), ['bread5 5 EUR off', 'deal-1 Deal 1', 'deal-2 Deal 2', 'deal-3 Deal 3']);
      const voucherId = live.find((line) => line.includes(' bread5 '))!.split(' ')[1];
      assert.ok(out.includes(`withdrew ${voucherId}`), out.join('\n'));
      assert.equal(out.at(-1), 'failed 5 ITEM_NOT_FOUND');

      // The receiver saw the voucher arrive and go, and holds the points and the deals.
      await receiver.line(/^removed 5 EUR off withdrawn$/);
      await receiver.line(/^added Deal 3 $/);
      const lines = await receiver.finish('SIGINT');
      // The points, the three deals, and public items of other merchants on this hub; the voucher is gone.
      const [, count] = /^(\d+) items; 0 vouchers$/.exec(lines.at(-1) ?? '') ?? assert.fail(lines.join('\n'));
      assert.ok(Number(count) >= 4, lines.join('\n'));
      assert.ok(lines.includes('added Your points '), lines.join('\n'));
    }
    assert.ok(existsSync(join(examples, 'merchant.json')));
  });

  it('works for a merchant without better-sqlite3; a receiver store then names the package and the install command', async () => {
    const project = newProject(dir, 'merchant-only');
    await npmInstall(project, tarball);
    assert.equal(existsSync(join(project, 'node_modules/better-sqlite3')), false, 'better-sqlite3 is not installed with the SDK');
    writeFileSync(join(project, 'merchant.mjs'), MERCHANT_ONLY);
    const { stdout } = await run(process.execPath, ['merchant.mjs', hub.address], { cwd: project });
    const result = JSON.parse(stdout) as { pushed: string; storeError: string };
    assert.match(result.pushed, /^I[0-9a-f]{32}$/);
    assert.match(result.storeError, /better-sqlite3 is not installed/);
    assert.match(result.storeError, /npm install better-sqlite3/);

    // The daemon says the same and exits before it registers anyone.
    const daemon = await run(join(project, 'node_modules/.bin/pushhub-receiver'), ['--address', hub.address, '--register'], { cwd: project }).then(
      () => assert.fail('pushhub-receiver ran without better-sqlite3'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(daemon.code, 1);
    assert.match(daemon.stderr, /^pushhub-receiver: better-sqlite3 is not installed: .*npm install better-sqlite3\n$/);
    assert.equal(existsSync(join(project, 'pushhub-receiver.json')), false, 'no receiver registered');
  });
});
