import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { MerchantClient } from '../../sdk/src/merchant.js';
import { ReceiverClient, type ReceiverEvent } from '../../sdk/src/receiver.js';
import { REPO_ROOT } from '../support/hub-process.js';
import { waitUntil } from '../sdk/support.js';

/** Whether nothing listens on 127.0.0.1:port right now. */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A first port of `count` consecutive free ones (the command numbers its nodes from it). */
async function freePortRun(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all(Array.from({ length: count }, (_, i) => isFree(base + i)));
    if (free.every(Boolean)) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

describe('npm run cluster (the one-line cluster for newcomers)', function () {
  this.timeout(120_000);
  let child: ChildProcess | undefined;

  afterEach(() => {
    // The whole group: the command and the copy of itself it runs detached stop on SIGTERM.
    if (child?.exitCode === null) child.kill('SIGTERM');
  });

  it('starts PostgreSQL and three hubs, prints the address list; a push on A reaches a receiver on B; Ctrl-C stops the hubs, then PostgreSQL, without a warning', async () => {
    const base = await freePortRun(3);
    // What `npm run cluster -- --temp --port=N` runs, without npm in between (so the signal reaches it).
    // In a process group of its own, like a command in a terminal, so the test can press Ctrl-C.
    child = spawn(process.execPath, ['--import', 'tsx', 'scripts/cluster.ts', '--temp', `--port=${base}`], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    await waitUntil(() => /SDK address list: (\[.*\])/.test(stdout) || child!.exitCode !== null, 'the address list', 90_000);
    const list = /SDK address list: (\[.*\])/.exec(stdout);
    assert.ok(list, `the command printed no address list; stderr: ${stderr}\nstdout tail: ${stdout.slice(-2000)}`);
    const addresses = JSON.parse(list[1]!) as string[];
    assert.deepEqual(addresses, [0, 1, 2].map((i) => `127.0.0.1:${base + i}`));
    const dataDir = /data in ([^,)\s]+)/.exec(stdout)?.[1];

    const [a, b] = addresses as [string, string];
    const merchant = new MerchantClient({ address: a, ...(await MerchantClient.register(a)) });
    const receiver = new ReceiverClient({ address: b, ...(await ReceiverClient.register(b)) });
    const abort = new AbortController();
    const events: ReceiverEvent[] = [];
    const done = (async () => {
      for await (const event of receiver.subscribe({ signal: abort.signal })) events.push(event);
    })();
    try {
      await waitUntil(() => events.some((e) => e.type === 'caughtUp'), 'caught up on B');
      const pushed = await merchant.pushSpecific(receiver.id, { title: 'hello from A' });
      await waitUntil(() => events.some((e) => e.type === 'item' && e.item.itemId === pushed.itemId), 'the push on B');
    } finally {
      abort.abort();
      await done;
      merchant.close();
      receiver.close();
    }

    // Ctrl-C: SIGINT to the terminal's whole foreground process group.
    process.kill(-child.pid!, 'SIGINT');
    assert.equal(await exited, 0, stderr);
    assert.match(stdout, /stopping the hubs, then PostgreSQL/);
    const shutdown = stdout.slice(stdout.indexOf('stopping the hubs, then PostgreSQL'));
    const warnings = shutdown.split('\n').filter((line) => /"level":"(warn|error)"/.test(line));
    assert.deepEqual(warnings, [], 'the hubs stopped before PostgreSQL: no connection warning');
    assert.equal((shutdown.match(/"msg":"stopped"/g) ?? []).length, 3, 'every hub stopped cleanly');
    for (const port of [base, base + 1, base + 2]) assert.equal(await isFree(port), true, `port ${port} is free again`);
    if (dataDir) assert.equal(existsSync(dataDir), false, 'the temp directory is removed');
  });
});
