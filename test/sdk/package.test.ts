import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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
  offer: { $case: 'points', value: { balance: 120n, earned: 20n } },
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

describe('sdk: packed tarball', function () {
  this.timeout(120_000);
  let hub: TestHub;
  let dir: string;

  before(async () => {
    hub = await TestHub.start();
    dir = mkdtempSync(join(tmpdir(), 'pushhub-pack-'));
  });
  after(async () => {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('installs into a fresh project outside the repo, and a script there pushes and receives', async () => {
    // npm pack runs the package's prepack script, which builds dist/ with tsc.
    await run('npm', ['pack', '--pack-destination', dir], { cwd: SDK_DIR });
    const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack produced a tarball');

    const project = join(dir, 'consumer');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    // --ignore-scripts: better-sqlite3's install script would compile SQLite from source when
    // no prebuilt binary can be downloaded (minutes); the binary this repo already built for
    // the same better-sqlite3 version and Node is copied in instead. Everything else comes from
    // the tarball and the registry (or npm's cache).
    await run('npm', ['install', join(dir, tarball), '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts'], { cwd: project });
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
  });
});
