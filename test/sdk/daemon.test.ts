import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MerchantClient } from '../../sdk/src/merchant.js';
import { createReceiverStore } from '../../sdk/src/receiver.js';
import { TestHub } from '../support/hub.js';
import { waitUntil } from './support.js';

const DAEMON = resolve('sdk/src/bin/pushhub-receiver.ts');

/** The daemon as its own process (through tsx), with its stdout lines and stderr collected. */
class Daemon {
  readonly lines: Record<string, unknown>[] = [];
  stderr = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, ['--import', 'tsx', DAEMON, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let partial = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      const text = partial + chunk.toString();
      const lines = text.split('\n');
      partial = lines.pop()!;
      for (const line of lines) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      }),
    );
  }

  caughtUpCount(): number {
    return this.stderr.split('caught up at').length - 1;
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (!this.exit) this.child.kill(signal);
    await this.exited;
  }
}

describe('sdk: receiver daemon', function () {
  this.timeout(30_000);
  let hub: TestHub;
  let dir: string;
  const daemons: Daemon[] = [];

  beforeEach(async () => {
    hub = await TestHub.start();
    dir = mkdtempSync(join(tmpdir(), 'pushhub-daemon-'));
  });
  afterEach(async () => {
    for (const daemon of daemons.splice(0)) await daemon.kill('SIGKILL');
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const startDaemon = (...extra: string[]) => {
    const daemon = new Daemon([
      '--address', hub.address,
      '--register',
      '--credentials', join(dir, 'credentials.json'),
      '--store', join(dir, 'receiver.db'),
      ...extra,
    ]);
    daemons.push(daemon);
    return daemon;
  };
  const merchantClient = async () => new MerchantClient({ address: hub.address, ...(await MerchantClient.register(hub.address)) });

  it('registers, saves credentials readable only by its owner, prints changes as JSON lines, stops on SIGTERM', async () => {
    const daemon = startDaemon();
    await waitUntil(() => daemon.caughtUpCount() === 1, 'the daemon to catch up');
    const credentialsFile = join(dir, 'credentials.json');
    assert.equal(statSync(credentialsFile).mode & 0o777, 0o600);
    const { id } = JSON.parse(readFileSync(credentialsFile, 'utf8')) as { id: string };
    assert.match(id, /^R00-\d{16}$/);

    const merchant = await merchantClient();
    try {
      const points = await merchant.pushSpecific(id, { key: 'points', title: 'Points: 10', offer: { $case: 'points', value: { balance: 10 } } });
      const more = await merchant.pushSpecific(id, { key: 'points', title: 'Points: 20', offer: { $case: 'points', value: { balance: 20 } } });
      await merchant.withdraw({ itemId: more.itemId });
      await waitUntil(() => daemon.lines.length >= 2, 'two change lines');
      assert.deepEqual(daemon.lines[0], {
        change: 'added',
        itemId: points.itemId,
        item: daemon.lines[0]!.item,
      });
      assert.equal((daemon.lines[0]!.item as { info: { title: string } }).info.title, 'Points: 10');
      // The hub sends the replaced item's tombstone (replaced) before the newer item.
      assert.deepEqual([daemon.lines[1]!.change, daemon.lines[1]!.itemId, daemon.lines[1]!.cause], ['removed', points.itemId, 'replaced']);
      await waitUntil(() => daemon.lines.length === 4, 'the added and removal lines');
      assert.deepEqual([daemon.lines[2]!.change, daemon.lines[2]!.itemId], ['added', more.itemId]);
      assert.deepEqual([daemon.lines[3]!.change, daemon.lines[3]!.itemId, daemon.lines[3]!.cause], ['removed', more.itemId, 'withdrawn']);
    } finally {
      merchant.close();
    }

    await daemon.kill('SIGTERM');
    assert.deepEqual(daemon.exit, { code: 0, signal: null });
    assert.match(daemon.stderr, /SIGTERM: stopping[\s\S]*stopped/);
  });

  it('the store survives a SIGKILLed daemon and converges to the hub state after restart', async () => {
    const first = startDaemon();
    await waitUntil(() => first.caughtUpCount() === 1, 'the daemon to catch up');
    const { id } = JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')) as { id: string };
    const merchant = await merchantClient();
    try {
      const stream = merchant.openPushStream();
      const firstWave = Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          i % 3 === 0 ? stream.pushPublic({ key: `p${i % 30}`, title: `public ${i}` }) : stream.pushSpecific(id, { key: `s${i % 50}`, title: `specific ${i}` }),
        ),
      );
      // Killed while it is busy applying the wave.
      await waitUntil(() => first.lines.length >= 20, 'the daemon to apply some changes');
      await first.kill('SIGKILL');
      assert.equal(first.exit?.signal, 'SIGKILL');
      await firstWave;

      // While it is down: replacements, withdrawals, new items.
      const extra = await stream.pushSpecific(id, { title: 'while down' });
      await stream.withdraw({ key: 's7', receiverId: id });
      await stream.withdraw({ key: 'p3' });
      await stream.close();

      const second = startDaemon();
      await waitUntil(() => second.caughtUpCount() === 1, 'the restarted daemon to catch up');
      const expected: string[] = [];
      for await (const item of merchant.listItems()) if (item.receiverId === id || item.receiverId === '') expected.push(item.itemId);
      const store = createReceiverStore(join(dir, 'receiver.db'));
      try {
        assert.deepEqual(store.items().map((item) => item.itemId).sort(), expected.sort());
        assert.ok(expected.includes(extra.itemId));
        assert.equal(expected.length, 10 + 50 + 1 - 2);
      } finally {
        store.close();
      }
      // Nothing was applied twice: an item id is added at most once across both runs.
      const added = [...first.lines, ...second.lines].filter((l) => l.change === 'added').map((l) => l.itemId);
      assert.equal(new Set(added).size, added.length);
    } finally {
      merchant.close();
    }
  });
  it('confirms what its store committed, so the merchant sees DELIVERED; --receipts off opts out', async () => {
    const daemon = startDaemon();
    await waitUntil(() => daemon.caughtUpCount() === 1, 'the daemon to catch up');
    const { id } = JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')) as { id: string };
    const merchant = await merchantClient();
    try {
      const push = await merchant.pushSpecific(id, { title: 'receipt please' });
      assert.equal((await merchant.waitForDelivery(push.itemId, { timeoutMs: 20_000, pollIntervalMs: 200 })).state, 'DELIVERED');
      await daemon.kill('SIGTERM');
      const quiet = startDaemon('--receipts', 'off');
      await waitUntil(() => quiet.caughtUpCount() === 1, 'the daemon to catch up again');
      assert.match(quiet.stderr, /delivery receipts: off/);
      const [status] = await merchant.deliveryStatus([push.itemId]);
      assert.equal(status!.state, 'UNKNOWN');
    } finally {
      merchant.close();
    }
  });
});
