// Throughput of offers from consumption records (issue 4): N receivers with M records
// computed and synced against a local hub. Reports records/s (compute alone; parsing a CSV of
// them; a full sync) and pushes/s (the first sync, which pushes every offer).
//
//   npx tsx test/bench/offers-throughput.ts [--receivers 100000] [--records 1000000] [--window 512]
//
// Setup, not measured: the hub runs as its own process on a temp database with
// `--scrypt-log-n 4`, so that registering the receivers through the Register RPC (64 in
// parallel) takes seconds rather than the ~100 minutes 100,000 scrypt hashes at the production
// cost (logN 15) would take. The merchant's single login also runs at logN 4; pushes do not
// hash (a verified credential is cached), so the measured phases are unaffected by the setting.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createChannel, createClient } from 'nice-grpc';
import { PushHubServiceDefinition, Role } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { MerchantClient } from '../../sdk/src/merchant.js';
import { type ConsumptionRecord, computeOffers, readRecordFile, syncOffers, validateRules } from '../../sdk/src/offers/index.js';
import { freePort, stopChild, waitForPort } from './util.js';
import { prng } from '../support/prng.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const DAY = 86_400_000;

const { values } = parseArgs({
  options: {
    receivers: { type: 'string', default: '100000' },
    records: { type: 'string', default: '1000000' },
    window: { type: 'string', default: '512' },
    'register-concurrency': { type: 'string', default: '64' },
  },
});
const RECEIVERS = Number(values.receivers);
const RECORDS = Number(values.records);
const WINDOW = Number(values.window);
const REGISTER_CONCURRENCY = Number(values['register-concurrency']);

/** The example rules of docs/offers.md: all four kinds, multipliers with time of day in a real time zone. */
const RULES = validateRules({
  version: 1,
  currency: 'EUR',
  timeZone: 'Europe/Berlin',
  voucherCodePrefix: 'CAFE-',
  offers: [
    { id: 'tier', kind: 'spend-tier', windowDays: 90, tiers: [{ name: 'Silver', minSpend: 10_000, percentOff: 5 }, { name: 'Gold', minSpend: 30_000, percentOff: 10 }] },
    {
      id: 'points',
      kind: 'points',
      earn: { points: 1, per: 100 },
      multipliers: [{ factor: 2, places: ['airport'] }, { factor: 1.5, categories: ['coffee'], from: '07:00', to: '10:00' }],
      validDays: 365,
    },
    { id: 'visits', kind: 'visit-milestone', milestones: [5, 10, 25], voucher: { amountOff: 500, minSpend: 1_500 }, validDays: 30 },
    { id: 'winback', kind: 'win-back', afterDays: 30, voucher: { amountOff: 1_000, minSpend: 2_000 }, validDays: 21 },
  ],
});


const PLACES = ['main', 'airport', 'station', 'mall', 'kiosk', 'harbour', 'campus', 'market'];
const CATEGORIES = ['coffee', 'food', 'books', 'gifts'];

function generateRecords(receiverIds: string[], count: number, now: number): Map<string, ConsumptionRecord[]> {
  const random = prng(4);
  const byReceiver = new Map<string, ConsumptionRecord[]>(receiverIds.map((id) => [id, []]));
  for (let i = 0; i < count; i++) {
    // Skewed: some customers come far more often than others.
    const receiverId = receiverIds[Math.floor(random() ** 1.5 * receiverIds.length)]!;
    const refund = random() < 0.02;
    const amount = Math.floor(200 + random() ** 2 * 20_000);
    byReceiver.get(receiverId)!.push({
      receiverId,
      time: new Date(now - Math.floor(random() * 180 * DAY) - 60_000),
      place: PLACES[Math.floor(random() * PLACES.length)]!,
      amount: refund ? -amount : amount,
      currency: 'EUR',
      category: CATEGORIES[Math.floor(random() * CATEGORIES.length)]!,
    });
  }
  for (const [id, list] of byReceiver) if (list.length === 0) byReceiver.delete(id);
  return byReceiver;
}

const seconds = (fromMs: number) => (performance.now() - fromMs) / 1000;
const rate = (n: number, s: number) => Math.round(n / s);
const log = (line: string) => process.stderr.write(`${line}\n`);

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'pushhub-offers-bench-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const hub = spawn(
    process.execPath,
    [
      ...['--import', 'tsx', 'src/main.ts', '--db', join(dir, 'hub.db'), '--address', address, '--scrypt-log-n', '4'],
      // It registers its receivers through Register, 64 at once from 127.0.0.1: no per-source
      // registration limit, and room for all of them in the scrypt queue.
      ...['--merchant-push-rate', '0', '--max-public-items-per-merchant', '0', '--registration-rate-per-source', '0', '--scrypt-queue-per-source', '1000', '--scrypt-queue-limit', '1000'],
    ],
    {
      cwd: REPO,
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  try {
    await waitForPort(port);
    const channel = createChannel(address);
    const raw = createClient(PushHubServiceDefinition, channel);

    let t = performance.now();
    const merchant = await raw.register({ role: Role.ROLE_MERCHANT, displayName: 'bench merchant' });
    const receiverIds: string[] = new Array(RECEIVERS);
    let next = 0;
    await Promise.all(
      Array.from({ length: REGISTER_CONCURRENCY }, async () => {
        while (next < RECEIVERS) {
          const i = next++;
          receiverIds[i] = (await raw.register({ role: Role.ROLE_RECEIVER })).id;
        }
      }),
    );
    channel.close();
    const registerS = seconds(t);
    log(`setup: registered ${RECEIVERS} receivers in ${registerS.toFixed(1)} s (scrypt logN 4)`);

    const now = new Date();
    const byReceiver = generateRecords(receiverIds, RECORDS, now.getTime());
    log(`setup: generated ${RECORDS} records for ${byReceiver.size} receivers`);

    // Parsing: the command's path from a CSV file.
    const csvPath = join(dir, 'records.csv');
    const lines = ['receiver_id,time,place,amount,currency,category'];
    for (const list of byReceiver.values()) for (const r of list) lines.push(`${r.receiverId},${r.time.toISOString()},${r.place},${r.amount},${r.currency},${r.category}`);
    writeFileSync(csvPath, `${lines.join('\n')}\n`);
    lines.length = 0;
    t = performance.now();
    let parsed = 0;
    for await (const line of readRecordFile(csvPath)) if ('record' in line) parsed++;
    const parseS = seconds(t);
    log(`parse: ${parsed} CSV records (${(statSync(csvPath).size / 1e6).toFixed(0)} MB) in ${parseS.toFixed(1)} s`);

    // Compute alone: the pure engine.
    t = performance.now();
    let offers = 0;
    for (const records of byReceiver.values()) offers += computeOffers(records, RULES, now).length;
    const computeS = seconds(t);
    log(`compute: ${offers} offers from ${RECORDS} records in ${computeS.toFixed(1)} s`);

    const client = new MerchantClient({ address, id: merchant.id, password: merchant.password, deadlineMs: 60_000 });
    const sync = async (label: string, records: Map<string, ConsumptionRecord[]>, count: number) => {
      const start = performance.now();
      let lastLog = start;
      const summary = await syncOffers(client, records, RULES, {
        now,
        window: WINDOW,
        onProgress: ({ phase, done, total }) => {
          if (performance.now() - lastLog > 5000) {
            lastLog = performance.now();
            log(`  ${label}: ${phase} ${done}${total ? `/${total} receivers` : ' items'}`);
          }
        },
      });
      const s = seconds(start);
      const changes = summary.pushed + summary.withdrawn;
      log(`${label}: ${JSON.stringify({ ...summary, errors: summary.errors.slice(0, 3) })} in ${s.toFixed(1)} s`);
      return { label, seconds: +s.toFixed(2), recordsPerSec: rate(count, s), changesPerSec: changes > 0 ? rate(changes, s) : 0, ...summary, errors: summary.errors.length };
    };

    const first = await sync('sync 1 (empty hub: every offer pushed)', byReceiver, RECORDS);
    const second = await sync('sync 2 (same records: nothing to send)', byReceiver, RECORDS);
    // One more purchase (today) for 1% of the receivers.
    const random = prng(7);
    const ids = [...byReceiver.keys()];
    const touched = new Map<string, ConsumptionRecord[]>();
    for (let i = 0; i < Math.ceil(ids.length / 100); i++) {
      const id = ids[Math.floor(random() * ids.length)]!;
      const list = byReceiver.get(id)!;
      list.push({ receiverId: id, time: new Date(now.getTime() - 1000), place: 'main', amount: 2_500, currency: 'EUR', category: 'food' });
      touched.set(id, list);
    }
    const third = await sync('sync 3 (1% of receivers with one more record; full file)', byReceiver, RECORDS + touched.size);
    client.close();

    const result = {
      receivers: RECEIVERS,
      records: RECORDS,
      window: WINDOW,
      hubScryptLogN: 4,
      registerSeconds: +registerS.toFixed(1),
      parse: { seconds: +parseS.toFixed(2), recordsPerSec: rate(parsed, parseS) },
      compute: { seconds: +computeS.toFixed(2), recordsPerSec: rate(RECORDS, computeS), offers },
      syncs: [first, second, third],
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(
      `\noffers throughput: ${RECEIVERS} receivers, ${RECORDS} records\n` +
        `  parse CSV       ${result.parse.recordsPerSec} records/s\n` +
        `  compute         ${result.compute.recordsPerSec} records/s (${offers} offers)\n` +
        [first, second, third]
          .map((s) => `  ${s.label}: ${s.seconds} s, ${s.recordsPerSec} records/s, ${s.pushed} pushed (${s.changesPerSec} pushes+withdrawals/s), ${s.withdrawn} withdrawn, ${s.unchanged} unchanged, ${s.failed} failed`)
          .join('\n') +
        '\n',
    );
  } finally {
    await stopChild(hub);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
