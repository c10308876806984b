import assert from 'node:assert/strict';
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { TestHub } from '../support/hub.js';

const run = promisify(execFile);
const SDK_DIR = resolve('sdk');
const REPO_NODE_MODULES = resolve('node_modules');
/** The address the README's snippets name; the test's hub listens elsewhere. */
const README_ADDRESS = '127.0.0.1:50051';

/**
 * A consumer written against the published entry points in TypeScript: type-checked against
 * the shipped .d.ts files, compiled and run. `.mts`: an ES module even in the CommonJS project `npm init -y` makes.
 */
const CONSUMER = `
import { MerchantClient, PushHubError, Status, type PushResult } from '@pushhub/sdk/merchant';
import { ReceiverClient, createReceiverStore, type StoreChange } from '@pushhub/sdk/receiver';
import { computeOffers, type Item } from '@pushhub/sdk';

const address = process.argv[2]!;
const merchant = new MerchantClient({ address, ...(await MerchantClient.register(address)) });
const credentials = await ReceiverClient.register(address);
const receiver = new ReceiverClient({ address, ...credentials });
const store = createReceiverStore('./consumer.db');
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
  validUntil: '2099-01-01T00:00:00Z',
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
const points: Item[] = store.itemsByOfferKind('points');
const sequence: number = pushed.sequence;
console.log(JSON.stringify({
  pushed,
  sequence,
  stored: points,
  changes,
  titles: store.items().map((item) => item.info.title),
  reason,
  offers: typeof computeOffers,
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

const NPM_QUIET = ['--no-audit', '--no-fund', '--prefer-offline'];

/** A fenced code block of the SDK README and the marker comment above it. */
interface ReadmeBlock {
  marker: string;
  lang: string;
  code: string;
}

/** Every fenced block of `markdown`; a block must follow an `<!-- file: NAME -->` or `<!-- run: NAME -->` marker. */
function readmeBlocks(markdown: string): ReadmeBlock[] {
  const blocks: ReadmeBlock[] = [];
  const fence = /^(?:<!-- ((?:file|run): [\w.-]+) -->\n)?```(\w*)\n([\s\S]*?)^```$/gm;
  for (const match of markdown.matchAll(fence)) {
    assert.ok(match[1], `every code block in the SDK README says how CI runs it (a <!-- file: --> or <!-- run: --> marker):\n${match[0]}`);
    blocks.push({ marker: match[1], lang: match[2]!, code: match[3]! });
  }
  return blocks;
}

/** The commands of a shell block: its non-comment lines. */
const commandsOf = (block: ReadmeBlock) => block.code.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));

/** A program as a child process, its stdout and stderr collected line by line. */
class Program {
  readonly lines: string[] = [];
  readonly errors: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  /**
   * `group`: the program runs in a process group of its own and a signal goes to the whole
   * group, as Ctrl-C in a terminal does (npx does not pass a SIGINT sent to it alone on).
   */
  constructor(
    cwd: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    private readonly group = false,
  ) {
    this.child = spawn(command, args, { cwd, env: { ...process.env, ...env }, detached: group });
    const collect = (into: string[]) => {
      let partial = '';
      return (chunk: Buffer) => {
        const parts = (partial + chunk.toString()).split('\n');
        partial = parts.pop()!;
        into.push(...parts);
      };
    };
    this.child.stdout!.on('data', collect(this.lines));
    this.child.stderr!.on('data', collect(this.errors));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  private get output(): string {
    return `stdout:\n${this.lines.join('\n')}\nstderr:\n${this.errors.join('\n')}`;
  }

  /** Waits for a line matching `pattern` on stdout (or stderr); bounded, not a timing assertion. */
  async line(pattern: RegExp, stream: 'stdout' | 'stderr' = 'stdout'): Promise<string> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    const lines = stream === 'stdout' ? this.lines : this.errors;
    for (let waited = 0; waited < 30_000; waited += 20) {
      const found = lines.find((line) => pattern.test(line));
      if (found) return found;
      if (exited) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`no line matching ${pattern}; ${this.output}`);
  }

  /** Sends `signal` (if any) and waits for the exit; `okCodes`: the exit statuses that count as success. */
  async finish(signal?: NodeJS.Signals, okCodes: (number | null)[] = [0]): Promise<string[]> {
    if (signal && this.group) process.kill(-this.child.pid!, signal);
    else if (signal) this.child.kill(signal);
    const code = await this.exited;
    assert.ok(okCodes.includes(code), `exit status ${code}; ${this.output}`);
    return this.lines;
  }
}

describe('sdk: packed tarball', function () {
  this.timeout(300_000);
  let hub: TestHub;
  let dir: string;
  let tarball: string;
  let readme: string;
  let blocks: ReadmeBlock[];
  /** The project the README's install block made. */
  let project: string;

  before(async () => {
    hub = await TestHub.start();
    dir = mkdtempSync(join(tmpdir(), 'pushhub-pack-'));
    // The SDK builds on its own: its files as a clean clone holds them (no dist, no hub
    // tooling around it), its own devDependencies, npm pack (prepack builds dist with tsc).
    const clean = join(dir, 'sdk');
    const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '--', '.'], { cwd: SDK_DIR, encoding: 'utf8' })
      .split('\n')
      .filter((file) => file !== '' && existsSync(join(SDK_DIR, file)));
    for (const file of files) {
      mkdirSync(dirname(join(clean, file)), { recursive: true });
      copyFileSync(join(SDK_DIR, file), join(clean, file));
    }
    await run('npm', ['install', ...NPM_QUIET, '--ignore-scripts'], { cwd: clean });
    await run('npm', ['pack', '--pack-destination', dir], { cwd: clean });
    const name = readdirSync(dir).find((file) => file.endsWith('.tgz'));
    assert.ok(name, 'npm pack produced a tarball');
    tarball = join(dir, name);
    readme = readFileSync(join(SDK_DIR, 'README.md'), 'utf8');
    blocks = readmeBlocks(readme);
  });
  after(async () => {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ships the README, LICENSE (Apache-2.0), examples and sample data; every relative README link resolves inside the package', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const files = stdout.split('\n').filter(Boolean);
    for (const file of ['README.md', 'LICENSE', 'package.json', 'examples/merchant.mjs', 'examples/receiver.mjs', 'examples/list.cjs', 'examples/offers.mjs', 'examples/rules.json', 'examples/records.csv', 'dist/index.js', 'dist/index.d.ts']) {
      assert.ok(files.includes(`package/${file}`), `${file} in the tarball:\n${stdout}`);
    }
    assert.ok(!files.some((file) => file.startsWith('package/src/') || file.endsWith('.ts') && !file.endsWith('.d.ts')), 'no sources or dev scripts');
    const manifest = JSON.parse((await run('tar', ['-xzOf', tarball, 'package/package.json'])).stdout) as Record<string, unknown>;
    assert.equal(manifest.license, 'Apache-2.0');
    assert.equal((manifest.engines as { node: string }).node, '^20.19.0 || >=22.12.0', 'engines: where require(esm) works');
    assert.match((await run('tar', ['-xzOf', tarball, 'package/LICENSE'])).stdout, /Apache License\s+Version 2\.0/);
    assert.equal(readFileSync('LICENSE', 'utf8'), readFileSync(join(SDK_DIR, 'LICENSE'), 'utf8'), 'the hub and the SDK: one license');

    // The public declarations never name better-sqlite3's types: a merchant project without
    // @types/better-sqlite3 type-checks with skipLibCheck off too.
    const unpacked = join(dir, 'unpacked');
    mkdirSync(unpacked);
    await run('tar', ['-xzf', tarball, '-C', unpacked]);
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(join(unpacked, 'package/dist', file), 'utf8');
      assert.ok(!/from 'better-sqlite3'/.test(text), `dist/${file} (public) names better-sqlite3`);
      for (const [, next] of text.matchAll(/from '(\.\.?\/[^']+)\.js'/g)) visit(join(dirname(file), `${next}.d.ts`));
    };
    for (const entry of ['index.d.ts', 'merchant.d.ts', 'receiver.d.ts', 'offers/index.d.ts']) visit(entry);
    assert.ok(seen.size > 10, [...seen].join(' '));

    const shipped = (await run('tar', ['-xzOf', tarball, 'package/README.md'])).stdout;
    assert.equal(shipped, readme);
    assert.match(readme.split('\n').slice(0, 4).join('\n'), /ES module/, 'ESM is the first thing the README says');
    for (const [, target] of readme.matchAll(/\]\(([^)]+)\)/g)) {
      if (/^https?:/.test(target!)) continue;
      const path = target!.replace(/#.*$/, '').replace(/\/$/, '');
      assert.ok(files.some((file) => file === `package/${path}` || file.startsWith(`package/${path}/`)), `README link ${target} resolves inside the package`);
    }
  });

  it("the README's install block works in a fresh `npm init -y` project (CommonJS by default)", async () => {
    const [install, ...others] = blocks.filter((block) => block.marker === 'run: install');
    assert.ok(install && others.length === 0);
    const commands = commandsOf(install);
    project = join(dir, 'fresh');
    mkdirSync(project);
    assert.equal(commands[0], 'npm init -y');
    await run('npm', ['init', '-y'], { cwd: project });
    const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')) as { type?: string };
    assert.notEqual(pkg.type, 'module', 'npm init -y makes a CommonJS project');

    // The tarball under the name the README uses.
    const [, tarballName] = /^npm install \.\/(\S+\.tgz)$/.exec(commands[1]!) ?? assert.fail(`install line: ${commands[1]}`);
    assert.equal(tarballName, tarball.split('/').at(-1), 'the README names the tarball npm pack writes');
    copyFileSync(tarball, join(project, tarballName));
    await run('npm', ['install', `./${tarballName}`, ...NPM_QUIET], { cwd: project });
    // better-sqlite3 as the README installs it, but its install script would compile SQLite
    // (or download a binary): the binary this repo already built for the same version and
    // Node is copied in instead.
    assert.equal(commands[2], 'npm install better-sqlite3');
    await run('npm', ['install', `better-sqlite3@${BETTER_SQLITE3_VERSION}`, ...NPM_QUIET, '--ignore-scripts'], { cwd: project });
    const release = join(project, 'node_modules/better-sqlite3/build/Release');
    mkdirSync(release, { recursive: true });
    copyFileSync(join(REPO_NODE_MODULES, 'better-sqlite3/build/Release/better_sqlite3.node'), join(release, 'better_sqlite3.node'));
    assert.equal(commands.length, 3);
  });

  it('a TypeScript consumer type-checks against the shipped types and gets plain JSON data back', async () => {
    writeFileSync(join(project, 'consumer.mts'), CONSUMER);
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
        files: ['consumer.mts'],
      }),
    );
    await run(process.execPath, [join(REPO_NODE_MODULES, 'typescript/bin/tsc'), '-p', project], { cwd: project });
    const { stdout } = await run(process.execPath, ['consumer.mjs', hub.address], { cwd: project });
    const result = JSON.parse(stdout) as { pushed: { itemId: string; sequence: number }; sequence: number; stored: { itemId: string; info: { validUntil: string } }[]; titles: string[]; reason: string; offers: string };
    assert.deepEqual(result.stored.map((item) => item.itemId), [result.pushed.itemId]);
    assert.equal(result.stored[0]!.info.validUntil, '2099-01-01T00:00:00.000Z');
    assert.equal(typeof result.sequence, 'number');
    assert.deepEqual(result.titles, ['Points: 120', 'Open today']);
    assert.equal(result.reason, 'ITEM_NOT_FOUND');
    assert.equal(result.offers, 'function', 'the root export has the offers too');

    // The daemon is installed as a command.
    const help = await run(join(project, 'node_modules/.bin/pushhub-receiver'), ['--help'], { cwd: project });
    assert.match(help.stdout, /usage: pushhub-receiver --address/);
  });

  it("every code block of the SDK README runs as written against a hub, twice, keeping its credentials", async () => {
    // The snippets read the address from PUSHHUB_ADDRESS; shell lines name README_ADDRESS,
    // which is the one thing replaced (the test's hub listens on a port of its own).
    const env = { PUSHHUB_ADDRESS: hub.address };
    const handled = new Set<string>(['run: install']);
    const file = (name: string) => {
      const block = blocks.find((b) => b.marker === `file: ${name}`) ?? assert.fail(`the README shows ${name}`);
      handled.add(block.marker);
      assert.equal(block.code, readFileSync(join(SDK_DIR, 'examples', name), 'utf8'), `the README shows examples/${name} verbatim`);
      writeFileSync(join(project, name), block.code);
      return name;
    };
    const node = (name: string, ...args: string[]) => new Program(project, process.execPath, [name, ...args], env);
    const receiverJs = file('receiver.mjs');
    const merchantJs = file('merchant.mjs');
    const listJs = file('list.cjs');
    const offersJs = file('offers.mjs');

    // The SDK guides in the hub's docs show the same examples, verbatim.
    for (const [name, guide] of [['merchant.mjs', 'docs/sdk-merchant.md'], ['receiver.mjs', 'docs/sdk-receiver.md']] as const) {
      const source = readFileSync(join(SDK_DIR, 'examples', name), 'utf8');
      assert.ok(readFileSync(guide, 'utf8').includes('```js\n' + source + '```\n'), `${guide} shows sdk/examples/${name} verbatim`);
    }
    let receiverId = '';
    for (const round of [1, 2]) {
      const receiver = node(receiverJs);
      const id = (await receiver.line(/^receiver R\d\d-\d{16}$/)).split(' ')[1]!;
      if (round === 1) receiverId = id;
      else assert.equal(id, receiverId, 'the second run reuses the saved receiver');
      await receiver.line(/^caught up at \d+$/);
      assert.equal(statSync(join(project, 'receiver.json')).mode & 0o777, 0o600, 'only its owner can read the saved password');

      // The receiver id: as an argument on the first run, from the environment on the second.
      const merchant =
        round === 1 ? node(merchantJs, receiverId) : new Program(project, process.execPath, [merchantJs], { ...env, PUSHHUB_RECEIVER_ID: receiverId });
      const out = await merchant.finish();
      assert.match(out[0]!, /^merchant M11-\d{16}$/);
      assert.match(out[1]!, /^pushed I[0-9a-f]{32} at sequence \d+$/);
      const pushed = JSON.parse(out[2]!) as { itemId: string; sequence: number };
      assert.equal(`pushed ${pushed.itemId} at sequence ${pushed.sequence}`, out[1], 'the result printed as JSON');
      const live = out.filter((line) => line.startsWith('live '));
      assert.deepEqual(live.map((line) => line.split(' ').slice(2).join(' ')).sort(), ['bread5 5 EUR off', 'deal-1 Deal 1', 'deal-2 Deal 2', 'deal-3 Deal 3']);
      const voucherId = live.find((line) => line.includes(' bread5 '))!.split(' ')[1];
      assert.ok(out.includes(`withdrew ${voucherId}`), out.join('\n'));
      assert.equal(out.at(-1), 'failed 5 ITEM_NOT_FOUND');

      await receiver.line(/^removed 5 EUR off withdrawn$/);
      await receiver.line(/^added Deal 3 $/);
      const lines = await receiver.finish('SIGINT');
      const [, count] = /^(\d+) items; 0 vouchers$/.exec(lines.at(-1) ?? '') ?? assert.fail(lines.join('\n'));
      assert.ok(Number(count) >= 4, lines.join('\n'));
      assert.ok(lines.includes('added Your points '), lines.join('\n'));
    }

    // CommonJS: require() of the SDK in the project npm init made; each item a JSON line.
    const listed = (await node(listJs).finish()).map((line) => JSON.parse(line) as { itemId: string; sequence: number; pushedAt: string });
    assert.ok(listed.length >= 4);
    for (const item of listed) {
      assert.equal(typeof item.sequence, 'number');
      assert.equal(new Date(item.pushedAt).toISOString(), item.pushedAt);
    }

    // Offers for the receiver: the second run finds everything in place.
    const summaries: { pushed: number; unchanged: number }[] = [];
    for (const round of [1, 2]) {
      const out = await node(offersJs, receiverId).finish();
      assert.ok(out.some((line) => line.startsWith('offer offer:')), out.join('\n'));
      summaries.push(JSON.parse(out.at(-1)!) as { pushed: number; unchanged: number });
      void round;
    }
    assert.ok(summaries[0]!.pushed > 0, JSON.stringify(summaries));
    assert.equal(summaries[1]!.pushed, 0, JSON.stringify(summaries));
    assert.equal(summaries[1]!.unchanged, summaries[0]!.pushed);

    // The daemon block: each command until it has caught up, then SIGINT.
    const daemon = blocks.find((b) => b.marker === 'run: daemon') ?? assert.fail('the README shows the daemon');
    handled.add(daemon.marker);
    for (const [index, command] of commandsOf(daemon).entries()) {
      assert.ok(command.includes(README_ADDRESS), command);
      const [program, ...args] = command.replace(README_ADDRESS, hub.address).split(' ');
      assert.equal(program, 'npx');
      const running = new Program(project, 'npx', args, env, true);
      await running.line(/caught up at sequence \d+/, 'stderr');
      // The daemon stops cleanly (its last log line); npm exec itself ends as Ctrl-C ends it
      // in a terminal: 0, the shell's status 130, or killed by the SIGINT (no status).
      const out = await running.finish('SIGINT', [0, 130, null]);
      await running.line(/^pushhub-receiver: stopped$/, 'stderr');
      if (index === 0) {
        assert.ok(existsSync(join(project, 'pushhub-receiver.json')), 'the first run saved its credentials');
        // The public items arrive as JSON lines: the SDK's Item, plain data.
        assert.ok(out.length >= 3, out.join('\n'));
        for (const line of out) {
          const change = JSON.parse(line) as { change: string; item: { sequence: number; audience: string } };
          assert.equal(change.change, 'added');
          assert.equal(typeof change.item.sequence, 'number');
          assert.deepEqual(JSON.parse(JSON.stringify(change)), change);
        }
      }
    }

    // The offline dry run of the example records.
    const dryRun = blocks.find((b) => b.marker === 'run: offers-dry-run') ?? assert.fail('the README shows the dry run');
    handled.add(dryRun.marker);
    const [dryCommand, ...rest] = commandsOf(dryRun);
    assert.equal(rest.length, 0);
    const [program, ...args] = dryCommand!.split(' ');
    assert.equal(program, 'npx');
    const dry = await new Program(project, 'npx', args, {}).finish();
    assert.match(dry.join('\n'), /^would push 6, unchanged 0, would withdraw 0 \(3 receivers, 12 records\)$/m);

    assert.deepEqual(
      blocks.map((b) => b.marker).filter((marker) => !handled.has(marker)),
      [],
      'every README block ran',
    );
    assert.ok(existsSync(join(project, 'merchant.json')));
  });

  it('works for a merchant without better-sqlite3; a receiver store then names the package and the install command', async () => {
    const merchantProject = join(dir, 'merchant-only');
    mkdirSync(merchantProject);
    await run('npm', ['init', '-y'], { cwd: merchantProject });
    await run('npm', ['install', tarball, ...NPM_QUIET], { cwd: merchantProject });
    assert.equal(existsSync(join(merchantProject, 'node_modules/better-sqlite3')), false, 'better-sqlite3 is not installed with the SDK');
    writeFileSync(join(merchantProject, 'merchant.mjs'), MERCHANT_ONLY);
    const { stdout } = await run(process.execPath, ['merchant.mjs', hub.address], { cwd: merchantProject });
    const result = JSON.parse(stdout) as { pushed: string; storeError: string };
    assert.match(result.pushed, /^I[0-9a-f]{32}$/);
    assert.match(result.storeError, /better-sqlite3 is not installed/);
    assert.match(result.storeError, /npm install better-sqlite3/);

    // The daemon says the same and exits before it registers anyone.
    const daemon = await run(join(merchantProject, 'node_modules/.bin/pushhub-receiver'), ['--address', hub.address, '--register'], { cwd: merchantProject }).then(
      () => assert.fail('pushhub-receiver ran without better-sqlite3'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(daemon.code, 1);
    assert.match(daemon.stderr, /^pushhub-receiver: better-sqlite3 is not installed: .*npm install better-sqlite3\n$/);
    assert.equal(existsSync(join(merchantProject, 'pushhub-receiver.json')), false, 'no receiver registered');
  });
});
