import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type DeliveryEvent, MerchantClient, type WatchDeliveriesOptions } from '../../sdk/src/merchant.js';
import { type Item, ReceiverClient, type StoreChange, createReceiverStore } from '../../sdk/src/receiver.js';
import type { HubConfig } from '../../src/config.js';
import { type RunningHub, startHub } from '../../src/hub.js';
import { silentLogger } from '../../src/logger.js';
import { describeOnBackends, testConfig } from '../support/hub.js';
import { waitUntil } from '../sdk/support.js';
import { runPushhub } from '../support/hub-process.js';

const DAEMON = resolve('sdk/src/bin/pushhub-receiver.ts');

/** pushhub-receiver as its own process: its JSON lines and stderr. */
class Daemon {
  readonly lines: Record<string, unknown>[] = [];
  stderr = '';
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, ['--import', 'tsx', DAEMON, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let partial = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  caughtUpAt(sequence: number): boolean {
    return this.stderr.includes(`caught up at sequence ${sequence}\n`);
  }

  stop(): Promise<number | null> {
    this.child.kill('SIGTERM');
    return this.exited;
  }
}

/**
 * Issue 16's restore scenario, end to end on each backend: receivers store items the backup
 * does not have, the hub's database goes back to the backup, a merchant pushes new items
 * (which reuse the receivers' sequence numbers), and the receivers resume. Each must end with
 * exactly what ListItems shows for it, and report a reset (never withdrawals).
 */
describeOnBackends('restore: receivers converge to the restored database', function (backend) {
  this.timeout(120_000);
  let dir: string;
  let hub: RunningHub | undefined;
  let database: Partial<HubConfig> = {};

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pushhub-restore-'));
    if (backend === 'postgres') {
      const { freshDatabase } = await import('../support/postgres.js');
      database = { databaseUrl: await freshDatabase() };
    } else {
      database = {};
    }
  });
  afterEach(async () => {
    await hub?.stop();
    hub = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async (overrides: Partial<HubConfig> = {}, port = 0) => {
    hub = await startHub(testConfig(dir, { ...database, ...overrides, address: `127.0.0.1:${port}` }), { logger: silentLogger });
    return hub;
  };
  const stop = async () => {
    await hub!.stop();
    hub = undefined;
  };

  /** A merchant's receipt stream in the background: its events, and an error if it failed. */
  const watchReceipts = (merchant: MerchantClient, options: WatchDeliveriesOptions = {}) => {
    const abort = new AbortController();
    const events: DeliveryEvent[] = [];
    const state = { error: undefined as unknown };
    const done = (async () => {
      try {
        for await (const event of merchant.watchDeliveries({ ...options, signal: abort.signal })) events.push(event);
      } catch (error) {
        state.error = error;
      }
    })();
    const deliveredIds = () => events.flatMap((e) => (e.type === 'delivered' ? [e.itemId] : []));
    return { events, state, deliveredIds, stop: async () => (abort.abort(), await done) };
  };

  /** A backup at this moment, and how to put it back: the documented path on each backend. */
  const backUp = async (): Promise<() => Promise<Partial<HubConfig>>> => {
    if (backend === 'sqlite') {
      const db = testConfig(dir).dbPath;
      const copy = join(dir, 'backup.db');
      // Online: the hub keeps running (and owning the file) while the copy is taken.
      const backup = await runPushhub(['backup', '--db', db, '--to', copy]);
      assert.equal(backup.code, 0, backup.stderr);
      return async () => {
        const restore = await runPushhub(['restore', '--db', db, '--from', copy]);
        assert.equal(restore.code, 0, restore.stderr);
        assert.match(restore.stdout, /with a new history H[0-9a-f]{24}; receivers reset/);
        return {};
      };
    }
    // PostgreSQL: a copy of the database as a dump restored into a new database would be
    // (CREATE DATABASE ... TEMPLATE needs the source idle: the hub stops for the copy).
    const { adminQuery } = await import('../support/postgres.js');
    const url = new URL(database.databaseUrl!);
    const source = url.pathname.slice(1);
    const copy = `${source}_backup`;
    const port = hub!.port;
    await stop();
    await adminQuery(`CREATE DATABASE ${copy} TEMPLATE ${source}`);
    await start({}, port);
    return async () => {
      url.pathname = `/${copy}`;
      return { databaseUrl: url.toString() };
    };
  };

  /** The receiver's state as the hub has it: its specific items and the public ones, by sequence. */
  const expectedState = async (merchant: MerchantClient, receiverId: string): Promise<Item[]> => {
    const items: Item[] = [];
    for await (const item of merchant.listItems({ receiverId })) items.push(item);
    for await (const item of merchant.listItems({ audience: 'public' })) items.push(item);
    // ListItems names the receiver of a specific item; a stream names it too (its own id), and '' for public.
    return items.sort((a, b) => a.sequence - b.sequence);
  };

  it('a restored database resets every receiver to it: the SDK store and the daemon end equal to ListItems, and report a reset', async () => {
    await start();
    const address = hub!.address;
    const port = hub!.port;
    const merchantCredentials = await MerchantClient.register(address);
    let merchant = new MerchantClient({ address, ...merchantCredentials });
    const sdkReceiver = await ReceiverClient.register(address);
    const daemonReceiver = await ReceiverClient.register(address);
    const credentialsFile = join(dir, 'daemon.json');
    writeFileSync(credentialsFile, JSON.stringify(daemonReceiver), { mode: 0o600 });
    const storeFile = join(dir, 'sdk-store.db');
    const daemonStore = join(dir, 'daemon-store.db');

    // The state the backup holds.
    for (const id of [sdkReceiver.id, daemonReceiver.id]) {
      await merchant.pushSpecific(id, { key: 'points', title: 'Points: 10' });
      await merchant.pushSpecific(id, { title: 'welcome' });
    }
    await merchant.pushPublic({ key: 'sale', title: 'sale (old)' });
    const putBack = await backUp();

    // After the backup: the receivers store items the restored database will not have.
    const extra = [];
    for (const id of [sdkReceiver.id, daemonReceiver.id]) {
      extra.push(await merchant.pushSpecific(id, { key: 'points', title: 'Points: 40' }));
      extra.push(await merchant.pushSpecific(id, { title: 'only before the restore' }));
    }
    extra.push(await merchant.pushPublic({ title: 'public, before the restore' }));
    const headBefore = extra.at(-1)!.sequence;

    const sync = (changes: StoreChange[]) => {
      const store = createReceiverStore(storeFile);
      const receiver = new ReceiverClient({ address, ...sdkReceiver });
      store.on('change', (change) => changes.push(change));
      const abort = new AbortController();
      const running = store.sync(receiver, { signal: abort.signal });
      return {
        store,
        async stop() {
          abort.abort();
          await running;
          receiver.close();
          store.close();
        },
      };
    };
    const daemonArgs = ['--address', address, '--credentials', credentialsFile, '--store', daemonStore];

    // The merchant watches receipts; it keeps its last cursor and history, as a client would.
    const receiptsBefore = watchReceipts(merchant);
    await waitUntil(() => receiptsBefore.events.some((e) => e.type === 'caughtUp'), 'the receipt stream to start');
    const extraSpecific = extra.slice(0, 4).map((p) => p.itemId);

    const before: StoreChange[] = [];
    const first = sync(before);
    let daemon = new Daemon(daemonArgs);
    await waitUntil(() => first.store.cursor >= headBefore && daemon.caughtUpAt(headBefore), 'both receivers to store everything');
    const historyBefore = first.store.historyId;
    assert.match(historyBefore, /^H[0-9a-f]{24}$/);
    await waitUntil(() => extraSpecific.every((id) => receiptsBefore.deliveredIds().includes(id)), 'receipts of the items the receivers stored');
    await receiptsBefore.stop();
    const lastReceipt = receiptsBefore.events.at(-1)!;
    const receiptCursor = lastReceipt.type === 'reset' ? 0 : lastReceipt.cursor;
    const receiptHistory = receiptsBefore.events.find((e) => e.type === 'caughtUp')!;
    assert.equal(receiptHistory.type === 'caughtUp' && receiptHistory.historyId, historyBefore, 'receipt cursors belong to the same history');
    await first.stop();
    assert.equal(await daemon.stop(), 0);
    merchant.close();

    // The restore, then new pushes: their sequences are ones the receivers already hold.
    await stop();
    const restored = await putBack();
    await start(restored, port);
    merchant = new MerchantClient({ address, ...merchantCredentials });
    const fresh = [];
    for (const id of [sdkReceiver.id, daemonReceiver.id]) {
      fresh.push(await merchant.pushSpecific(id, { title: 'after the restore 1' }));
      fresh.push(await merchant.pushSpecific(id, { title: 'after the restore 2' }));
    }
    fresh.push(await merchant.pushPublic({ key: 'sale', title: 'sale (new)' }));
    const headAfter = fresh.at(-1)!.sequence;
    assert.ok(fresh[0]!.sequence <= headBefore, 'the new pushes reuse sequences the receivers hold');

    // The merchant resumes its receipts from its stored cursor: receipt ids were reissued by
    // the restored database, so it gets a reset, then receipts of the new history.
    const receiptsAfter = watchReceipts(merchant, { afterCursor: receiptCursor, historyId: historyBefore });
    await waitUntil(() => receiptsAfter.events.some((e) => e.type === 'caughtUp') || receiptsAfter.state.error !== undefined, 'the receipt stream to resume');
    assert.equal(receiptsAfter.state.error, undefined);
    const freshSpecific = fresh.slice(0, 4).map((p) => p.itemId);

    const after: StoreChange[] = [];
    const second = sync(after);
    daemon = new Daemon(daemonArgs);
    await waitUntil(() => second.store.cursor === headAfter && daemon.caughtUpAt(headAfter), 'both receivers to resume');
    const sdkItems = second.store.items();
    const historyAfter = second.store.historyId;
    await waitUntil(() => freshSpecific.every((id) => receiptsAfter.deliveredIds().includes(id)), 'receipts of the new items');
    await receiptsAfter.stop();
    assert.deepEqual(receiptsAfter.events.slice(0, 2).map((e) => [e.type, 'historyId' in e ? e.historyId : undefined]), [['reset', historyAfter], ['caughtUp', historyAfter]]);
    assert.equal(receiptsAfter.events[0]!.type === 'reset' && receiptsAfter.events[0]!.reason, 'restored');
    assert.deepEqual(receiptsAfter.deliveredIds().filter((id) => extraSpecific.includes(id)), [], 'no receipt of an item the restore removed');
    await second.stop();
    assert.equal(await daemon.stop(), 0);

    // The SDK: one reset (restored), then the new state as additions; nothing withdrawn.
    assert.notEqual(historyAfter, historyBefore);
    assert.deepEqual(after[0], { type: 'reset', reason: 'restored', historyId: historyAfter });
    assert.deepEqual(after.slice(1).map((change) => change.type), after.slice(1).map(() => 'added'));
    assert.deepEqual(sdkItems, await expectedState(merchant, sdkReceiver.id));

    // The daemon: a reset line of its own, before the state that follows; its store equals ListItems.
    const resumed = daemon.lines;
    assert.deepEqual(resumed[0], { change: 'reset', reason: 'restored', historyId: resumed[0]!.historyId });
    assert.ok(resumed.slice(1).every((line) => line.change === 'added'), JSON.stringify(resumed));
    const stored = createReceiverStore(daemonStore);
    try {
      assert.deepEqual(stored.items(), await expectedState(merchant, daemonReceiver.id));
      assert.equal(stored.historyId, resumed[0]!.historyId);
    } finally {
      stored.close();
      merchant.close();
    }
  });
});
