import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { Metadata, createChannel, createClient } from 'nice-grpc';
import { OPTIONS } from '../../src/config.js';
import { PushHubServiceDefinition, Role } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { HubProcess, REPO_ROOT, freePort } from '../support/hub-process.js';

/** Runs the hub from source with these flags and waits for it to exit (for flags that end it at once). */
const runHub = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });

/** Registers a merchant and a receiver, then pushes from `workers` loops until the hub stops answering. */
async function pushUntilRefused(address: string, onAck: (itemId: string) => void, workers = 8) {
  const channel = createChannel(address);
  const client = createClient(PushHubServiceDefinition, channel);
  const merchant = await client.register({ role: Role.ROLE_MERCHANT, regionCode: '', displayName: 'load' });
  const receiver = await client.register({ role: Role.ROLE_RECEIVER, regionCode: '', displayName: 'load' });
  const metadata = Metadata({ authorization: `Basic ${Buffer.from(`${merchant.id}:${merchant.password}`).toString('base64')}` });
  let n = 0;
  const loop = async () => {
    for (;;) {
      const ack = await client.pushSpecific({ receiverId: receiver.id, info: { title: `load ${n++}` } }, { metadata });
      onAck(ack.itemId);
    }
  };
  const done = Promise.allSettled(Array.from({ length: workers }, loop));
  return { done, close: () => channel.close() };
}

describe('the hub process', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pushhub-process-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('--help prints every option with its env var and default, and exits 0', () => {
    const run = runHub(['--help']);
    assert.equal(run.status, 0, run.stderr);
    for (const option of OPTIONS) {
      assert.match(run.stdout, new RegExp(`--${option.flag}\\b`), `--help lists --${option.flag}`);
      if (option.env) assert.ok(run.stdout.includes(option.env), `--help names ${option.env}`);
    }
    assert.match(run.stdout, /--heartbeat-ms <n>\n.*\n\s+env: PUSHHUB_HEARTBEAT_MS\s+default: 30000 ms/);
  });

  it('a bad flag exits 2 with a message naming it, before opening anything', () => {
    const db = join(dir, 'never.db');
    const cases: [string[], RegExp][] = [
      [['--address', '50070'], /^pushhub: --address: must be HOST:PORT .*got "50070"\n/],
      [['--heartbeat-ms', '0'], /^pushhub: --heartbeat-ms: must be an integer from 100 to \d+ \(ms\), got "0"\n/],
      [['--frobnicate'], /^pushhub: Unknown option '--frobnicate'.*; see pushhub --help\n/],
      [['--address', '0.0.0.0:50070'], /^pushhub: --address 0\.0\.0\.0:50070 is reachable from other machines.*--insecure-plaintext/],
    ];
    for (const [args, message] of cases) {
      const run = runHub(['--db', db, ...args]);
      assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.match(run.stderr, /\nusage: pushhub \[options\]   \(pushhub --help lists every option\)\n$/, 'the usage line follows');
    }
    assert.ok(!existsSync(db), 'no database was created');
  });

  it('a port in use names --address (or --metrics-address) and creates no database', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = `127.0.0.1:${(blocker.address() as net.AddressInfo).port}`;
    try {
      const db = join(dir, 'never.db');
      const free = `127.0.0.1:${await freePort()}`;
      for (const [args, flag] of [
        [['--address', taken], '--address'],
        [['--address', free, '--metrics-address', taken], '--metrics-address'],
      ] as const) {
        const run = runHub(['--db', db, '--scrypt-log-n', '4', ...args]);
        assert.equal(run.status, 1, run.stderr);
        const line = JSON.parse(run.stderr.trim().split('\n').at(-1)!) as { msg: string; error: string };
        assert.equal(line.msg, 'failed to start');
        assert.equal(line.error, `${flag} ${taken}: cannot listen: the port is already in use (another hub or program listens there); stop it or choose another port`);
        assert.ok(!existsSync(db), 'nothing was created or migrated before the listeners were checked');
        assert.ok(!existsSync(dirname(db)) || readdirSync(dirname(db)).length === 0, 'no database files');
      }
    } finally {
      blocker.close();
    }
  });

  it('an unreachable PostgreSQL names --database-url with host and port, never the password', async () => {
    const port = await freePort(); // nothing listens there
    const run = runHub(['--database-url', `postgres://hub:s3cret-pw@127.0.0.1:${port}/pushhub`, '--scrypt-log-n', '4', '--address', '127.0.0.1:0']);
    assert.equal(run.status, 1, run.stderr);
    assert.ok(!run.stderr.includes('s3cret-pw'), 'the password is never printed');
    const line = JSON.parse(run.stderr.trim().split('\n').at(-1)!) as { error: string };
    assert.equal(
      line.error,
      `--database-url postgres://127.0.0.1:${port}/pushhub: cannot connect: nothing listens on 127.0.0.1:${port} (is PostgreSQL running, on this host and port?)`,
    );
  });

  it('a database path that cannot be opened is reported with the path and the reason', async () => {
    const hub = new HubProcess(dir, await freePort()); // a directory, not a file
    await assert.rejects(hub.start(), (error: Error) => error.message.includes(`--db ${dir}: cannot open it for writing: it is a directory`));
  });

  it('SIGTERM under load logs stopped, exits 0 and closes the database cleanly with every acked push in it', async () => {
    const dbPath = join(dir, 'hub.db');
    const hub = new HubProcess(dbPath, await freePort());
    await hub.start();
    const acked: string[] = [];
    const load = await pushUntilRefused(hub.address, (id) => acked.push(id));
    try {
      // Under load: stop once pushes are flowing, with more in flight.
      while (acked.length < 300) await new Promise((r) => setTimeout(r, 10));
      const code = await hub.stop();
      await load.done;
      assert.equal(code, 0);
    } finally {
      load.close();
    }
    const messages = hub.lines.map((line) => JSON.parse(line).msg as string);
    assert.deepEqual(messages.slice(-2), ['shutting down', 'stopped'], `log ends with shutting down, stopped: ${messages.slice(-5).join(' | ')}`);

    // Every connection was closed: SQLite checkpointed and removed the write-ahead log.
    assert.ok(!existsSync(`${dbPath}-wal`) || statSync(`${dbPath}-wal`).size === 0, 'no -wal with content is left');
    const db = new Database(dbPath, { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      const stored = new Set(db.prepare('SELECT item_id FROM changes').pluck().all() as string[]);
      const lost = acked.filter((id) => !stored.has(id));
      assert.deepEqual(lost, [], `${lost.length} of ${acked.length} acknowledged pushes are missing`);
    } finally {
      db.close();
    }
  });

  it('the built hub (dist/) runs with plain node, without tsx, and stops cleanly', async function () {
    // Builds into dist/ as `npm run build` does; the hub is then started without any loader.
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'pipe' });
    const dbPath = join(dir, 'hub.db');
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(execFileSync(process.execPath, ['dist/src/main.js', '--version'], { cwd: REPO_ROOT, encoding: 'utf8' }), `pushhub ${version}\n`);
    const hub = new HubProcess(dbPath, await freePort(), [], ['dist/src/main.js']);
    await hub.start();
    const acked: string[] = [];
    const load = await pushUntilRefused(hub.address, (id) => acked.push(id), 2);
    try {
      while (acked.length < 20) await new Promise((r) => setTimeout(r, 10));
      assert.equal(await hub.stop(), 0);
      await load.done;
    } finally {
      load.close();
    }
    assert.equal(JSON.parse(hub.lines.at(-1)!).msg, 'stopped');
    const db = new Database(dbPath, { readonly: true });
    const stored = new Set(db.prepare('SELECT item_id FROM changes').pluck().all() as string[]);
    db.close();
    assert.ok(acked.every((id) => stored.has(id)), 'the commit worker (dist/.../commit-worker.js) stored every acked push');
  });
});
