// Receipts bench (issue 18), the `receipts` phase of `npm run bench`; alone:
//   npx tsx test/bench/receipts.ts [--quick]
//
// 1. W1 (targeted pushes, acked after commit) with delivery confirmations off and on, in
//    alternating rounds against ONE hub process, so drifting load on this shared machine hits
//    both sides alike. Reported per mode: acked pushes/s and the hub's CPU time per push
//    (/proc/<pid>/stat), and their ratios on/off. "On" subscribers confirm as the SDK does:
//    after each batch, at most about once a second, at once on caughtUp.
// 2. GetDeliveryStatus latency for one public item at 100,000 receivers (the count reads an
//    index range of the confirmed cursors), through the RPC and the bare count query.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { type Channel, ChannelCredentials, Metadata, createChannel, createClient } from 'nice-grpc';
import { PushHubServiceDefinition } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { DeliveryConfirmer } from '../../sdk/src/receipts.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { hashPassword } from '../../src/registry/credentials.js';
import { freePort, procCpuSeconds, publishWindow, spawnWithUlimit, stopChild, waitForPort } from './util.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MERCHANT = { id: 'M00-0000000000000001', password: 'bench-merchant-password' };
const RECEIVER_PASSWORD = 'bench-receiver-password';
const receiverId = (i: number) => `R00-${String(i).padStart(16, '0')}`;
/** Each client on its own HTTP/2 connection (grpc-js otherwise shares one per address), as in W1. */
const connect = (address: string) => createChannel(address, ChannelCredentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
const auth = (id: string, password: string) => Metadata({ authorization: `Basic ${Buffer.from(`${id}:${password}`).toString('base64')}` });

export interface ReceiptsBenchOptions {
  quick?: boolean;
  /** Overrides (e.g. --subscribers=100 --per-round=2000 --rounds=2 on the command line). */
  subscribers?: number;
  perRound?: number;
  rounds?: number;
  progress?: (line: string) => void;
}

async function startHub(dir: string, extra: string[] = []) {
  const port = await freePort();
  const args = ['--import', 'tsx', 'src/main.ts', '--db', join(dir, 'hub.db'), '--address', `127.0.0.1:${port}`, '--scrypt-log-n', '15',
    '--merchant-push-rate', '0', '--max-public-items-per-merchant', '0', '--receipt-status-rate', '0', '--receipt-confirm-rate', '0',
    '--scrypt-queue-limit', '1000000', '--scrypt-queue-per-source', '1000000', '--max-connections-per-source', '100000', '--max-connections', '100000', ...extra];
  const child = spawnWithUlimit(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr = (stderr + c).slice(-4000)));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`hub exited with ${code}: ${stderr}`))));
  await Promise.race([waitForPort(port, 120_000), exited]);
  exited.catch(() => {});
  return { pid: child.pid!, address: `127.0.0.1:${port}`, stop: () => stopChild(child) };
}

function seed(dir: string, receivers: number, receiverHash: Buffer, merchantHash: Buffer) {
  const store = openSqliteStore(join(dir, 'hub.db'));
  try {
    const createdAtMs = Date.now() - 60_000;
    store.transaction(() => {
      store.insertAccount({ id: MERCHANT.id, role: 'merchant', displayName: 'bench merchant', passwordHash: merchantHash, createdAtMs });
      for (let i = 0; i < receivers; i++) store.insertAccount({ id: receiverId(i), role: 'receiver', displayName: `r${i}`, passwordHash: receiverHash, createdAtMs });
    });
  } finally {
    store.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** W1 rounds with confirmations off and on against one hub. */
type Resolved = Required<Pick<ReceiptsBenchOptions, 'quick' | 'progress'>> & ReceiptsBenchOptions;

async function confirmationCost(o: Resolved) {
  const subscribers = o.subscribers ?? (o.quick ? 100 : 1000);
  const perRound = o.perRound ?? (o.quick ? 2000 : 5000);
  const rounds = o.rounds ?? (o.quick ? 2 : 3);
  const dir = mkdtempSync(join(tmpdir(), 'pushhub-bench-receipts-'));
  const [merchantHash, receiverHash] = await Promise.all([hashPassword(MERCHANT.password, 15), hashPassword(RECEIVER_PASSWORD, 10)]);
  seed(dir, subscribers, receiverHash, merchantHash);
  const hub = await startHub(dir);
  const channels: Channel[] = [];
  const aborts: AbortController[] = [];
  try {
    let confirming = false;
    let confirmations = 0;
    let received = 0;
    let connected = 0;
    let lastError = '';
    // Each subscriber on its own connection, as in W1.
    const subs = await Promise.all(
      Array.from({ length: subscribers }, async (_, i) => {
        const channel = connect(hub.address);
        channels.push(channel);
        const client = createClient(PushHubServiceDefinition, channel);
        const metadata = auth(receiverId(i), RECEIVER_PASSWORD);
        const confirmer = new DeliveryConfirmer(async (seq) => {
          confirmations++;
          await client.confirmDelivery({ upToSequence: BigInt(seq) }, { metadata });
        });
        const abort = new AbortController();
        aborts.push(abort);
        let caughtUp!: () => void;
        const ready = new Promise<void>((resolve) => (caughtUp = resolve));
        void (async () => {
          // A login refused for load (AUTH_BUSY and the like) is retried, as the SDK does.
          let cursor = 0n;
          while (!abort.signal.aborted) {
          try {
            for await (const response of client.subscribe({ afterSequence: cursor }, { metadata, signal: abort.signal })) {
              let last = 0;
              let flush = false;
              for (const { event } of response.events) {
                if (event?.$case === 'item') {
                  received++;
                  last = Number(event.value.sequence);
                  cursor = event.value.sequence;
                } else if (event?.$case === 'caughtUp') {
                  last = Math.max(last, Number(event.value.sequence));
                  flush = true;
                  caughtUp();
                }
              }
              // What the SDK does after its store commits the batch.
              if (confirming && last > 0) {
                confirmer.note(last);
                if (flush) confirmer.flush();
              }
            }
          } catch (error) {
            if (abort.signal.aborted) return;
            lastError = String((error as Error)?.message ?? error);
            await new Promise((r) => setTimeout(r, 100 + Math.random() * 400));
          }
          }
        })();
        await ready;
        if (++connected % 100 === 0) o.progress(`  receipts: ${connected} subscribers caught up${lastError ? ` (retried after: ${lastError})` : ''}`);
        return client;
      }),
    );
    o.progress(`  receipts: ${subs.length} subscribers connected`);
    const merchant = createClient(PushHubServiceDefinition, (channels[channels.push(connect(hub.address)) - 1])!);
    const metadata = auth(MERCHANT.id, MERCHANT.password);
    await merchant.pushSpecific({ receiverId: receiverId(0), info: { title: 'warm-up' } }, { metadata });
    const results: Record<'off' | 'on', { pushes_per_s: number; cpu_us_per_push: number }[]> = { off: [], on: [] };
    // Round 0 warms both paths up (JIT, statement caches) and is not counted.
    for (let r = 0; r <= rounds; r++) {
      for (const mode of ['off', 'on'] as const) {
        confirming = mode === 'on';
        const cpu0 = procCpuSeconds(hub.pid);
        const before = received;
        const pr = await publishWindow(perRound, 256, 300_000, (i) =>
          merchant.pushSpecific({ receiverId: receiverId(i % subscribers), info: { title: `round ${r} ${mode} ${i}`, body: 'x'.repeat(150) } }, { metadata }),
        );
        // Until every push reached its subscriber (and, on, the last confirmations went out).
        const deadline = Date.now() + 30_000;
        while (received - before < pr.acked && Date.now() < deadline) await new Promise((s) => setTimeout(s, 20));
        if (confirming) await new Promise((s) => setTimeout(s, 1200));
        const cpu = procCpuSeconds(hub.pid) - cpu0;
        const row = { pushes_per_s: round(pr.acked / pr.seconds, 0), cpu_us_per_push: round((cpu * 1e6) / pr.acked, 1) };
        if (r > 0) results[mode].push(row);
        o.progress(`  receipts W1 ${r === 0 ? 'warm-up' : `round ${r}`} confirmations ${mode}: ${row.pushes_per_s} acked pushes/s, hub CPU ${row.cpu_us_per_push} µs/push`);
      }
    }
    const off = { pushes_per_s: median(results.off.map((x) => x.pushes_per_s)), cpu_us_per_push: median(results.off.map((x) => x.cpu_us_per_push)) };
    const on = { pushes_per_s: median(results.on.map((x) => x.pushes_per_s)), cpu_us_per_push: median(results.on.map((x) => x.cpu_us_per_push)) };
    return {
      subscribers, pushes_per_round: perRound, rounds, confirmations_sent: confirmations, rounds_detail: results, off, on,
      pushes_per_s_ratio_on_off: round(on.pushes_per_s / off.pushes_per_s),
      cpu_per_push_ratio_on_off: round(on.cpu_us_per_push / off.cpu_us_per_push),
    };
  } finally {
    for (const a of aborts) a.abort();
    for (const c of channels) c.close();
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** GetDeliveryStatus of one public item with 100,000 receivers, half of them confirmed past it. */
async function statusAtScale(o: Resolved) {
  const receivers = 100_000;
  const dir = mkdtempSync(join(tmpdir(), 'pushhub-bench-receipts-scale-'));
  const merchantHash = await hashPassword(MERCHANT.password, 15);
  const HEAD = 1000;
  seed(dir, receivers, Buffer.from('not a password hash'), merchantHash);
  const db = new Database(join(dir, 'hub.db'));
  db.transaction(() => {
    db.prepare("UPDATE meta SET value = ? WHERE name = 'head_seq'").run(HEAD);
    const insert = db.prepare('INSERT INTO receipt_cursors (receiver_id, confirmed_seq, confirmed_at_ms, opted_out, registered_at_ms) VALUES (?, ?, ?, 0, ?)');
    const now = Date.now() - 60_000;
    // Cursors spread over 1..2*HEAD: about half have reached the item pushed at HEAD + 1.
    for (let i = 0; i < receivers; i++) insert.run(receiverId(i), 1 + ((i * 7919) % (2 * HEAD)), now, now);
  })();
  db.close();
  o.progress(`  receipts: seeded ${receivers} receivers with cursors`);
  const hub = await startHub(dir);
  const channel = connect(hub.address);
  try {
    const client = createClient(PushHubServiceDefinition, channel);
    const metadata = auth(MERCHANT.id, MERCHANT.password);
    const ack = await client.pushPublic({ info: { title: 'public at scale' } }, { metadata });
    const rpcMs: number[] = [];
    let last;
    for (let i = 0; i < (o.quick ? 50 : 300); i++) {
      const t = performance.now();
      last = (await client.getDeliveryStatus({ itemIds: [ack.itemId] }, { metadata })).statuses[0]!;
      rpcMs.push(performance.now() - t);
    }
    // The count queries alone, on a reader connection to the same file.
    const reader = openSqliteStore(join(dir, 'hub.db'));
    const queryMs: number[] = [];
    for (let i = 0; i < (o.quick ? 50 : 300); i++) {
      const t = performance.now();
      reader.receipts.publicCounts(Number(ack.sequence), MERCHANT.id);
      queryMs.push(performance.now() - t);
    }
    reader.close();
    return {
      receivers,
      delivered_count: Number(last!.deliveredCount),
      eligible_count: Number(last!.eligibleCount),
      rpc_ms: { p50: round(median(rpcMs)), p99: round(pct(rpcMs, 0.99)) },
      count_query_ms: { p50: round(median(queryMs)), p99: round(pct(queryMs, 0.99)) },
    };
  } finally {
    channel.close();
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function receiptsBench(options: ReceiptsBenchOptions = {}) {
  const o: Resolved = { ...options, quick: options.quick ?? false, progress: options.progress ?? ((l) => process.stderr.write(`${l}\n`)) };
  const cost = await confirmationCost(o);
  const scale = await statusAtScale(o);
  return { confirmation_cost: cost, status_at_100k: scale };
}

/** Markdown rows for the bench report. */
export function receiptsTable(r: Awaited<ReturnType<typeof receiptsBench>>): string {
  const c = r.confirmation_cost;
  const s = r.status_at_100k;
  return [
    '',
    '### Delivery receipts (issue 18)',
    '',
    '| figure | confirmations off | confirmations on | on/off |',
    '| --- | --- | --- | --- |',
    `| W1 acked pushes/s (median of ${c.rounds} alternating rounds, ${c.subscribers} subscribers) | ${c.off.pushes_per_s} | ${c.on.pushes_per_s} | ${c.pushes_per_s_ratio_on_off} |`,
    `| hub CPU per push, µs | ${c.off.cpu_us_per_push} | ${c.on.cpu_us_per_push} | ${c.cpu_per_push_ratio_on_off} |`,
    '',
    `| GetDeliveryStatus, one public item, ${s.receivers} receivers (${s.delivered_count} of ${s.eligible_count} delivered) | p50 | p99 |`,
    '| --- | --- | --- |',
    `| RPC round trip, ms | ${s.rpc_ms.p50} | ${s.rpc_ms.p99} |`,
    `| count queries alone, ms | ${s.count_query_ms.p50} | ${s.count_query_ms.p99} |`,
    '',
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string) => {
    const a = process.argv.find((x) => x.startsWith(`--${name}=`));
    return a === undefined ? undefined : Number(a.split('=')[1]);
  };
  const r = await receiptsBench({ quick: process.argv.includes('--quick'), subscribers: arg('subscribers'), perRound: arg('per-round'), rounds: arg('rounds') });
  process.stdout.write(receiptsTable(r));
  process.stdout.write(`\n${JSON.stringify(r, null, 2)}\n`);
  process.exit(0);
}
