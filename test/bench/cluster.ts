// npm run bench:cluster [-- --receivers=1000 --seconds=5 --rates=1000,10000,max --only=cluster|sqlite]
//
// Three hub nodes (A, B, C) on one embedded PostgreSQL on this machine. A publisher on A pushes
// specific items over PushStream (SDK openPushStream) to 1,000 receivers, half subscribed on B
// and half on C, so every delivery crosses nodes (commit on A, NOTIFY, read and fan-out on
// B or C). Each phase runs at a paced rate (latency from the scheduled send time, so a
// backlog counts) or as fast as the push window allows (`max`: the highest rate the cluster
// sustains). Reports committed pushes/s and delivery latency p50/p99 per phase, and skipped,
// lost and duplicated deliveries; then the same run on one node with SQLite beside it.
// PostgreSQL runs durable (fsync and synchronous_commit on), as in production.
import { type ChildProcess, fork } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import pg from 'pg';
import { MerchantClient } from '../../sdk/src/merchant.js';
import { ReceiverClient } from '../../sdk/src/receiver.js';
import { HubProcess, freePort } from '../support/hub-process.js';
import { startPostgres } from '../support/postgres.js';
import { Hist, type HistJson, nowUs, pool, round, sleep } from './util.js';

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k!, v ?? 'true'];
  }),
);
const RECEIVERS = Number(args.receivers ?? 1000);
const SECONDS = Number(args.seconds ?? 5);
/**
 * Phases: a paced rate per second, `max` (closed loop: as fast as the push window allows;
 * its latency is the window's queue, by Little's law), and `sustained` (paced at 80 % of what
 * `max` committed: the latency at the highest rate the machine keeps up with).
 */
const RATES = (args.rates ?? '1000,10000,max,sustained').split(',').map((r) => (r === 'max' || r === 'sustained' ? r : Number(r)));
const WINDOW = Number(args.window ?? 1024);
/** --durable=false: PostgreSQL without fsync and synchronous_commit (to tell the disk from the rest). */
const DURABLE = args.durable !== 'false';
const progress = (line: string) => process.stderr.write(`${line}\n`);

interface ReceiverSpec {
  idx: number;
  id: string;
  password: string;
}

/** A forked receiver host and a request/response helper over its IPC channel. */
function startReceiverHost(): { child: ChildProcess; ask: (message: object) => Promise<Record<string, unknown>> } {
  const child = fork(new URL('./cluster-receivers.ts', import.meta.url).pathname, [], { execArgv: ['--import', 'tsx'] });
  const waiting: ((reply: Record<string, unknown>) => void)[] = [];
  child.on('message', (reply) => waiting.shift()?.(reply as Record<string, unknown>));
  const ask = (message: object) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      waiting.push((reply) => (reply.ok ? resolve(reply) : reject(new Error(String(reply.error)))));
      child.send(message);
    });
  return { child, ask };
}

interface PhaseResult {
  phase: string;
  target_per_s: number | 'max' | 'sustained';
  committed: number;
  committed_per_s: number | null;
  /** Push to delivery on the receiving node. */
  latency: ReturnType<Hist['summary']>;
  /** Push to the publisher's acknowledgement (the commit). */
  ack: ReturnType<Hist['summary']>;
}

/**
 * One run: the publisher on `publisherAddress`, receivers split over `receiverAddresses`
 * (one host process per address). Returns the figures per phase and the checks.
 */
async function runOnce(label: string, publisherAddress: string, receiverAddresses: string[]) {
  // The machine may be shared: the 1-minute load average before and after says how much.
  const loadBefore = round(loadavg()[0], 2);
  progress(`[${label}] registering 1 merchant and ${RECEIVERS} receivers`);
  const merchantCredentials = await MerchantClient.register(publisherAddress);
  const specs: ReceiverSpec[] = [];
  const registered = await pool(
    Array.from({ length: RECEIVERS }, (_, idx) => idx),
    32,
    async (idx) => {
      const address = receiverAddresses[idx % receiverAddresses.length]!;
      specs.push({ idx, ...(await ReceiverClient.register(address)) });
    },
  );
  if (registered.failed > 0) throw new Error(`registration failed: ${registered.errors.join('; ')}`);
  specs.sort((a, b) => a.idx - b.idx);

  const hosts = receiverAddresses.map(() => startReceiverHost());
  try {
    progress(`[${label}] subscribing ${RECEIVERS} receivers over ${receiverAddresses.join(', ')}`);
    await Promise.all(
      hosts.map((host, h) =>
        host.ask({ cmd: 'subscribe', address: receiverAddresses[h], receivers: specs.filter((s) => s.idx % hosts.length === h) }),
      ),
    );

    const merchant = new MerchantClient({ address: publisherAddress, ...merchantCredentials });
    const stream = merchant.openPushStream({ window: WINDOW });
    /** Acknowledged sequences per receiver index: what each receiver must get. */
    const expected = new Map<number, number[]>();
    let pushFailures = 0;
    let firstFailure = '';
    let counter = 0;
    let acks = 0;
    const ackLatency = new Map<string, Hist>();
    // The bench keeps its own queue in front of the push window and hands a freed slot to
    // exactly one waiting push. (Thousands of callers waiting inside the SDK's window are all
    // woken on every acknowledgement, which collapses the publisher: see docs/performance-history.md.)
    let inFlightCount = 0;
    const slotWaiters: (() => void)[] = [];
    let slotHead = 0;
    const acquire = (): Promise<void> | undefined => {
      if (inFlightCount < WINDOW) {
        inFlightCount++;
        return undefined;
      }
      return new Promise<void>((resolve) => slotWaiters.push(resolve));
    };
    const release = () => {
      if (slotHead < slotWaiters.length) {
        slotWaiters[slotHead++]!(); // the slot passes on; the count stays
        if (slotHead > 65_536) {
          slotWaiters.splice(0, slotHead);
          slotHead = 0;
        }
      } else inFlightCount--;
    };
    const push = async (phase: string, sentUs: number): Promise<void> => {
      await acquire();
      const idx = counter++ % RECEIVERS;
      let hist = ackLatency.get(phase);
      if (!hist) ackLatency.set(phase, (hist = new Hist()));
      try {
        const result = await stream.pushSpecific(specs[idx]!.id, { title: `${phase}|${sentUs}`, body: 'x'.repeat(100) });
        let list = expected.get(idx);
        if (!list) expected.set(idx, (list = []));
        list.push(Number(result.sequence));
        acks++;
        hist.add(nowUs() - sentUs);
      } catch (error) {
        pushFailures++;
        firstFailure ||= String((error as Error)?.message ?? error);
      } finally {
        release();
      }
    };

    // Warm-up: connections, JIT, the plan caches.
    await Promise.all(Array.from({ length: 2000 }, () => push('warm', nowUs())));

    const phases: PhaseResult[] = [];
    for (const wanted of RATES) {
      const maxRate = phases.find((p) => p.phase === 'max')?.committed_per_s;
      if (wanted === 'sustained' && !maxRate) throw new Error('--rates: sustained needs a max phase before it');
      const rate = wanted === 'sustained' ? Math.round((maxRate! * 0.8) / 100) * 100 : wanted;
      const phase = rate === 'max' ? 'max' : wanted === 'sustained' ? `sustained ${rate / 1000}k` : `${rate / 1000}k`;
      progress(`[${label}] phase ${phase}: ${SECONDS} s`);
      const inFlight: Promise<void>[] = [];
      const acksBefore = acks;
      const t0 = nowUs();
      const endUs = t0 + SECONDS * 1e6;
      if (rate === 'max') {
        // Closed loop: as many pushes in flight as the window allows, for SECONDS.
        const lanes = Array.from({ length: WINDOW }, async () => {
          while (nowUs() < endUs) await push(phase, nowUs());
        });
        await Promise.all(lanes);
      } else {
        // Open loop: push i is due at t0 + i / rate; its latency counts from then.
        // Every push of the phase is sent, also when the loop falls behind the clock.
        const total = rate * SECONDS;
        let sent = 0;
        for (let now = nowUs(); sent < total; now = nowUs()) {
          const due = Math.min(total, Math.floor(((now - t0) / 1e6) * rate));
          while (sent < due) inFlight.push(push(phase, t0 + (sent++ / rate) * 1e6));
          // A timer, not setImmediate: a spinning publisher would take a core from the hubs.
          await sleep(1);
          if (inFlight.length > 50_000) await Promise.all(inFlight.splice(0));
        }
      }
      await Promise.all(inFlight);
      const seconds = (nowUs() - t0) / 1e6;
      const committed = acks - acksBefore;
      phases.push({ phase, target_per_s: rate, committed, committed_per_s: round(committed / seconds, 0), latency: { n: 0 }, ack: ackLatency.get(phase)?.summary() ?? { n: 0 } });
      await sleep(1000); // let deliveries of this phase land before the next one starts
    }
    await stream.close();
    merchant.close();

    // Drain: wait until every acknowledged push has arrived (or 20 s of no progress).
    const acked = acks;
    let last = -1;
    let stillSince = Date.now();
    for (;;) {
      const counts = await Promise.all(hosts.map((h) => h.ask({ cmd: 'count' })));
      const received = counts.reduce((n, c) => n + Number(c.received), 0);
      if (received >= acked) break;
      if (received !== last) {
        last = received;
        stillSince = Date.now();
      } else if (Date.now() - stillSince > 20_000) break;
      await sleep(200);
    }

    const reports = await Promise.all(hosts.map((h) => h.ask({ cmd: 'report' })));
    const latency = new Map<string, Hist>();
    let duplicated = 0;
    let skipped = 0;
    let streamErrors = 0;
    const received = new Map<number, Set<number>>();
    for (const report of reports) {
      duplicated += Number(report.duplicated);
      skipped += Number(report.skipped);
      streamErrors += Number(report.streamErrors);
      for (const [phase, hist] of Object.entries(report.latency as Record<string, HistJson>)) {
        latency.set(phase, (latency.get(phase) ?? new Hist()).merge(hist));
      }
      for (const [idx, sequences] of Object.entries(report.received as Record<string, number[]>)) received.set(Number(idx), new Set(sequences));
    }
    let lost = 0;
    for (const [idx, sequences] of expected) {
      const got = received.get(idx) ?? new Set();
      for (const sequence of sequences) if (!got.has(sequence)) lost++;
    }
    for (const phase of phases) phase.latency = latency.get(phase.phase)?.summary() ?? { n: 0 };
    const load = { before: loadBefore, after: round(loadavg()[0], 2) };
    return { label, phases, acked, lost, duplicated, skipped, streamErrors, pushFailures, firstFailure, load };
  } finally {
    await Promise.all(hosts.map((h) => h.ask({ cmd: 'close' }).catch(() => undefined)));
  }
}

/** Hub flags for the bench: production settings but for the harness limits of HubProcess. */
const HUB_ARGS = ['--log-level', 'info'];

async function clusterRun() {
  progress(`[cluster] starting PostgreSQL (${DURABLE ? 'durable' : 'fsync off'}) and three hubs`);
  const server = await startPostgres({ durable: DURABLE });
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  await admin.query('CREATE DATABASE bench');
  await admin.end();
  const url = server.urlFor('bench');
  const nodes = [new HubProcess(url, await freePort(), HUB_ARGS), new HubProcess(url, await freePort(), HUB_ARGS), new HubProcess(url, await freePort(), HUB_ARGS)];
  try {
    for (const node of nodes) await node.start();
    const result = await runOnce('cluster', nodes[0]!.address, [nodes[1]!.address, nodes[2]!.address]);
    return { ...result, errorLines: nodes.flatMap((n) => n.errorLines).slice(0, 5) };
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await server.stop();
  }
}

async function sqliteRun() {
  progress('[sqlite] starting one hub on SQLite');
  const dir = mkdtempSync(join(tmpdir(), 'pushhub-bench-sqlite-'));
  const node = new HubProcess(join(dir, 'hub.db'), await freePort(), HUB_ARGS);
  try {
    await node.start();
    // Two receiver hosts on the one node, so the receiving side costs the same as in the cluster.
    const result = await runOnce('sqlite', node.address, [node.address, node.address]);
    return { ...result, errorLines: node.errorLines.slice(0, 5) };
  } finally {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const runs = [];
if (args.only !== 'sqlite') runs.push(await clusterRun());
if (args.only !== 'cluster') runs.push(await sqliteRun());

const line = (cells: (string | number | null | undefined)[]) => cells.map((c) => String(c ?? '-').padEnd(16)).join('');
const out: string[] = [];
out.push(`cluster bench: ${RECEIVERS} receivers, ${SECONDS} s per phase, push window ${WINDOW}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'})`);
out.push(line(['run', 'phase', 'target/s', 'committed/s', 'p50 ms', 'p99 ms', 'max ms', 'ack p50 ms', 'ack p99 ms']));
for (const run of runs) {
  for (const p of run.phases) out.push(line([run.label, p.phase, p.target_per_s, p.committed_per_s, p.latency.p50_ms, p.latency.p99_ms, p.latency.max_ms, p.ack.p50_ms, p.ack.p99_ms]));
}
for (const run of runs) {
  out.push(
    `${run.label}: acked ${run.acked}, skipped ${run.skipped}, lost ${run.lost}, duplicated ${run.duplicated}, ` +
      `push failures ${run.pushFailures}${run.firstFailure ? ` (${run.firstFailure})` : ''}, stream errors ${run.streamErrors}, ` +
      `load average ${run.load.before} before, ${run.load.after} after` +
      (run.errorLines.length ? `\n  hub errors: ${run.errorLines.join('\n  ')}` : ''),
  );
}
process.stdout.write(`${out.join('\n')}\n`);
process.stdout.write(`${JSON.stringify(runs.map(({ errorLines, ...rest }) => rest))}\n`);
const failed = runs.some((r) => r.lost > 0 || r.skipped > 0 || r.duplicated > 0 || r.pushFailures > 0);
process.exit(failed ? 1 : 0);
