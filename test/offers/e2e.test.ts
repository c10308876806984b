import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { main } from '../../sdk/src/bin/pushhub-offers.js';
import type { ServiceInfo } from '../../sdk/src/types.js';
import { MerchantClient } from '../../sdk/src/merchant.js';
import { type ConsumptionRecord, type OfferRules, computeOffers, offerFingerprint } from '../../sdk/src/offers/index.js';
import { ReceiverClient, type ReceiverEvent, type ReceiverStore, createReceiverStore } from '../../sdk/src/receiver.js';
import { type Credentials, TestHub } from '../support/hub.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

const RULES: OfferRules = {
  version: 1,
  currency: 'EUR',
  voucherCodePrefix: 'E2E-',
  offers: [
    { id: 'tier', kind: 'spend-tier', windowDays: 30, tiers: [{ name: 'Silver', minSpend: 10_000, percentOff: 5 }, { name: 'Gold', minSpend: 30_000, percentOff: 10 }] },
    { id: 'points', kind: 'points', earn: { points: 1, per: 100 }, multipliers: [{ factor: 2, places: ['airport'] }], validDays: 365 },
    { id: 'visits', kind: 'visit-milestone', every: 3, voucher: { amountOff: 500, minSpend: 2_000 }, validDays: 30 },
    { id: 'winback', kind: 'win-back', afterDays: 30, voucher: { amountOff: 1_000 }, validDays: 14 },
  ],
};

/** Runs the command in process and returns its exit status and output. */
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

/** Brings a receiver's local store up to date: applies events until the hub says caught up. */
async function catchUp(store: ReceiverStore, client: ReceiverClient): Promise<ReceiverEvent[]> {
  store.bindReceiver(client.id);
  const events: ReceiverEvent[] = [];
  for await (const event of client.subscribe({ afterSequence: store.cursor })) {
    store.apply(event);
    if (event.type === 'caughtUp') break;
    events.push(event);
  }
  return events;
}

const byKey = (infos: ServiceInfo[]) => new Map(infos.map((info) => [info.key, info]));

describe('offers: end to end through pushhub-offers to a real hub', () => {
  let hub: TestHub;
  let merchant: Credentials;
  const closers: (() => unknown)[] = [];

  beforeEach(async () => {
    hub = await TestHub.start();
    merchant = await hub.register('merchant');
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await hub.stop();
  });

  it('each receiver stores exactly the offers the rules give; one more record changes only the affected offers', async () => {
    // A fixed instant for the whole test; close to the real time, because the hub refuses
    // offers that are already past their valid_until.
    const now = new Date();
    const ago = (ms: number) => new Date(now.getTime() - ms);
    const [a, b, c] = await Promise.all([hub.register('receiver'), hub.register('receiver'), hub.register('receiver')]);
    const records: ConsumptionRecord[] = [
      // a: 36 700 in 30 days (Gold), 4 visits (milestone 3), points 120 + 180 + 150 + 7.
      { receiverId: a.id, time: ago(20 * DAY), place: 'main', amount: 12_000, currency: 'EUR' },
      { receiverId: a.id, time: ago(10 * DAY), place: 'airport', amount: 9_000, currency: 'EUR', category: 'coffee' },
      { receiverId: a.id, time: ago(5 * DAY), place: 'main', amount: 15_000, currency: 'EUR' },
      { receiverId: a.id, time: ago(2 * DAY), place: 'kiosk', amount: 700, currency: 'EUR' },
      // b: lapsed 40 days ago: win-back and points only.
      { receiverId: b.id, time: ago(45 * DAY), place: 'main', amount: 3_000, currency: 'EUR' },
      { receiverId: b.id, time: ago(40 * DAY), place: 'main', amount: 5_000, currency: 'EUR' },
      // c: one small purchase: points only.
      { receiverId: c.id, time: ago(DAY), place: 'main', amount: 500, currency: 'EUR' },
    ];
    const dir = hub.dir;
    const rulesPath = join(dir, 'rules.json');
    const recordsPath = join(dir, 'records.csv');
    writeFileSync(rulesPath, JSON.stringify(RULES, null, 2));
    const csvLine = (r: ConsumptionRecord) => `${r.receiverId},${r.time.toISOString()},${r.place},${r.amount},${r.currency},${r.category ?? ''}\n`;
    writeFileSync(recordsPath, `receiver_id,time,place,amount,currency,category\n${records.map(csvLine).join('')}`);

    // Before the run, the hub holds a stale offer for a (its rule was removed) and a message
    // outside the offers (must be left alone).
    const client = new MerchantClient({ address: hub.address, ...merchant });
    closers.push(() => client.close());
    const future = new Date(now.getTime() + 10 * DAY);
    await client.pushSpecific(a.id, { key: 'offer:old-rule', title: 'Old', validUntil: future });
    await client.pushSpecific(a.id, { key: 'welcome', title: 'Welcome!', validUntil: future });

    const env = { PUSHHUB_MERCHANT_ID: merchant.id, PUSHHUB_MERCHANT_PASSWORD: merchant.password };
    const args = ['--address', hub.address, '--rules', rulesPath, '--records', recordsPath, '--now', now.toISOString(), '--no-progress'];
    const expected1 = new Map([a, b, c].map((r) => [r.id, computeOffers(records.filter((x) => x.receiverId === r.id), RULES, now)]));
    const offerCount = [...expected1.values()].reduce((n, offers) => n + offers.length, 0);
    assert.deepEqual(
      [...expected1.values()].map((offers) => offers.map((o) => o.key)),
      [['offer:points', 'offer:tier', 'offer:visits:3'], ['offer:points', 'offer:winback'], ['offer:points']],
    );

    const first = await runCommand(args, env);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, `pushed ${offerCount}, unchanged 0, withdrawn 1 (3 receivers, ${records.length} records)\n`);

    const stores = new Map<string, { store: ReceiverStore; client: ReceiverClient }>();
    for (const r of [a, b, c]) {
      const store = createReceiverStore(':memory:');
      const receiver = new ReceiverClient({ address: hub.address, ...r });
      closers.push(() => store.close(), () => receiver.close());
      stores.set(r.id, { store, client: receiver });
    }
    const offersIn = (id: string) =>
      stores
        .get(id)!
        .store.itemsByMerchant(merchant.id)
        .map((item) => item.info!)
        .filter((info) => info.key.startsWith('offer:'))
        .sort((x, y) => (x.key < y.key ? -1 : 1));
    for (const r of [a, b, c]) {
      await catchUp(stores.get(r.id)!.store, stores.get(r.id)!.client);
      assert.deepEqual(offersIn(r.id), expected1.get(r.id), `offers of ${r.id}`);
    }
    assert.deepEqual(stores.get(a.id)!.store.itemsByMerchant(merchant.id).map((i) => i.info!.key).sort(), ['offer:points', 'offer:tier', 'offer:visits:3', 'welcome']);

    // The same records again: nothing is sent.
    const again = await runCommand(args, env);
    assert.equal(again.stdout, `pushed 0, unchanged ${offerCount}, withdrawn 0 (3 receivers, ${records.length} records)\n`);
    for (const r of [a, b, c]) assert.deepEqual(await catchUp(stores.get(r.id)!.store, stores.get(r.id)!.client), []);

    // One more record: b comes back. Affected: b's tier (new: Silver), points (changed),
    // visit 3 voucher (new) and win-back (withdrawn). Nothing of a's or c's.
    const comeback: ConsumptionRecord = { receiverId: b.id, time: ago(HOUR), place: 'airport', amount: 11_000, currency: 'EUR' };
    appendFileSync(recordsPath, csvLine(comeback));
    const expectedB = computeOffers([...records.filter((x) => x.receiverId === b.id), comeback], RULES, now);
    const before = byKey(expected1.get(b.id)!);
    const changedKeys = expectedB.filter((o) => before.get(o.key) === undefined || offerFingerprint(before.get(o.key)!) !== offerFingerprint(o)).map((o) => o.key);
    assert.deepEqual(changedKeys, ['offer:points', 'offer:tier', 'offer:visits:3']);

    const second = await runCommand(args, env);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, `pushed 3, unchanged ${offerCount - 2}, withdrawn 1 (3 receivers, ${records.length + 1} records)\n`);
    const eventsB = await catchUp(stores.get(b.id)!.store, stores.get(b.id)!.client);
    assert.deepEqual(
      eventsB
        .map((e) =>
          e.type === 'item'
            ? `item ${e.item.info!.key}`
            : e.type === 'withdrawal'
              ? `withdrawal ${e.withdrawal.key}${e.withdrawal.replaced ? ' (replaced)' : ''}`
              : e.type,
        )
        .sort(),
      // The changed points offer replaces the old one by key: its tombstone comes first.
      ['item offer:points', 'item offer:tier', 'item offer:visits:3', 'withdrawal offer:points (replaced)', 'withdrawal offer:winback'],
    );
    assert.deepEqual(offersIn(b.id), expectedB);
    for (const r of [a, c]) {
      assert.deepEqual(await catchUp(stores.get(r.id)!.store, stores.get(r.id)!.client), [], `no events for ${r.id}`);
      assert.deepEqual(offersIn(r.id), expected1.get(r.id));
    }
  });

  it('reports rejected pushes (an unknown receiver) with exit status 1 and bad input with status 2', async () => {
    const dir = hub.dir;
    writeFileSync(join(dir, 'rules.json'), JSON.stringify(RULES));
    const now = new Date();
    const line = (id: string) => JSON.stringify({ receiverId: id, time: now.getTime() - DAY, place: 'main', amount: 500, currency: 'EUR' });
    writeFileSync(join(dir, 'records.jsonl'), `${line('R00-0000000000000009')}\n`);
    const env = { PUSHHUB_MERCHANT_ID: merchant.id, PUSHHUB_MERCHANT_PASSWORD: merchant.password };
    const base = ['--address', hub.address, '--rules', join(dir, 'rules.json'), '--now', now.toISOString(), '--no-progress'];
    const rejected = await runCommand([...base, '--records', join(dir, 'records.jsonl')], env);
    assert.equal(rejected.code, 1);
    assert.match(rejected.stdout, /^pushed 0, unchanged 0, withdrawn 0, failed 1 \(1 receivers, 1 records\)/);
    assert.match(rejected.stderr, /R00-0000000000000009 offer:points: .*receiver/);

    writeFileSync(join(dir, 'bad.jsonl'), `${line('R00-0000000000000009')}\n{"receiverId":"R1","time":"yesterday","place":"x","amount":1,"currency":"EUR"}\n`);
    const bad = await runCommand([...base, '--records', join(dir, 'bad.jsonl')], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad\.jsonl:2: time: must be ISO 8601 with a zone/);

    writeFileSync(join(dir, 'bad-rules.json'), JSON.stringify({ ...RULES, currency: 'eur' }));
    const badRules = await runCommand(['--rules', join(dir, 'bad-rules.json'), '--records', join(dir, 'records.jsonl')], env);
    assert.equal(badRules.code, 2);
    assert.match(badRules.stderr, /currency: must be an ISO 4217 code/);
  });

  it('runs as a real process on the example files (offline dry run, progress bar forced on)', async () => {
    const root = join(import.meta.dirname, '../..');
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'sdk/src/bin/pushhub-offers.ts', '--rules', 'sdk/examples/rules.json', '--records', 'sdk/examples/records.csv', '--now', '2025-06-01T12:00:00Z', '--dry-run', '--progress', '--json'],
      { cwd: root, env: { ...process.env, PUSHHUB_MERCHANT_ID: '', PUSHHUB_MERCHANT_PASSWORD: '' } },
    );
    const summary = JSON.parse(stdout);
    assert.equal(summary.dryRun, true);
    assert.equal(summary.receivers, 3);
    assert.ok(summary.pushed > 0 && summary.failed === 0 && summary.invalidLines === 0, stdout);
    assert.match(stderr, /syncing +\[#+\] 100% 3\/3 receivers/);
  });
});
