import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestHub } from '../support/hub.js';
import { REPO_ROOT, freePort } from '../support/hub-process.js';
import { waitUntil } from '../sdk/support.js';

/**
 * `npx pushhub` runs `npm exec`, then `sh -c pushhub …`, then node. A SIGTERM to npx ends npm
 * and the shell but was never passed on, so the hub lived on as an orphan (issue 16, item 5).
 * Here the launcher is a shell that does not exec its command (`…; exit $?`), as npm's does
 * not, with npm's `npm_command` in the environment; the test kills the shell only.
 */
class Launched {
  output = '';
  private readonly shell: ChildProcess;
  constructor(command: string[], env: NodeJS.ProcessEnv) {
    const line = command.map((a) => `'${a}'`).join(' ');
    this.shell = spawn('sh', ['-c', `${line}; exit $?`], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [this.shell.stdout!, this.shell.stderr!]) stream.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
  }
  killLauncher(): void {
    this.shell.kill('SIGTERM');
  }
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

/** The pid of the node process that reports `marker` in its command line, or undefined. */
const pidOf = async (marker: string) => {
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  return out.length ? Number(out[out.length - 1]) : undefined;
};

describe('hub and daemon started by npx stop when npx is stopped', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'pushhub-launcher-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const startHub = (port: number, env: NodeJS.ProcessEnv) =>
    new Launched([process.execPath, '--import', 'tsx', 'src/main.ts', '--address', `127.0.0.1:${port}`, '--db', join(dir, 'hub.db')], env);

  it('the hub shuts down cleanly when the npm process that started it is gone', async () => {
    const port = await freePort();
    const hub = startHub(port, { npm_command: 'exec' });
    await waitUntil(() => hub.output.includes('pushhub listening'), 'the hub to listen', 20_000);
    hub.killLauncher();
    await waitUntil(() => hub.output.includes('"msg":"stopped"'), 'the hub to stop', 10_000);
    assert.match(hub.output, /"signal":"launcher exited","msg":"shutting down"/);
    assert.equal(await accepts(port), false, 'the port is free again');
  });

  it('started by anything but npm (a shell, systemd, nohup), the hub outlives its parent', async () => {
    const port = await freePort();
    const hub = startHub(port, { npm_command: '' });
    await waitUntil(() => hub.output.includes('pushhub listening'), 'the hub to listen', 20_000);
    hub.killLauncher();
    // Several of the watch's polls (500 ms) pass; the hub is still serving.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(await accepts(port), true);
    assert.doesNotMatch(hub.output, /shutting down/);
    const pid = await pidOf(`127.0.0.1:${port}`);
    assert.ok(pid, 'the hub process is found');
    process.kill(pid, 'SIGTERM');
    await waitUntil(() => hub.output.includes('"msg":"stopped"'), 'the hub to stop on SIGTERM', 10_000);
  });

  it('the receiver daemon stops cleanly when the npm process that started it is gone', async () => {
    const hub = await TestHub.start();
    try {
      const daemon = new Launched(
        [process.execPath, '--import', 'tsx', 'sdk/src/bin/pushhub-receiver.ts', '--address', hub.address, '--register',
          '--credentials', join(dir, 'credentials.json'), '--store', join(dir, 'receiver.db')],
        { npm_command: 'exec' },
      );
      await waitUntil(() => daemon.output.includes('caught up at'), 'the daemon to catch up', 20_000);
      daemon.killLauncher();
      await waitUntil(() => /the npm process that started the daemon exited: stopping[\s\S]*stopped/.test(daemon.output), 'the daemon to stop', 10_000);
      await waitUntil(() => hub.hub.probe.openSubscribeStreams() === 0, 'its stream to end');
    } finally {
      await hub.stop();
    }
  });
});
