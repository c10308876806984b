// npm run bench [-- --quick | --tiny] [--phases=budget,w1,w2,w3,w4,auth] [--targets=pushhub,baseline] [--out=file.json]
//
// Runs W1-W4 (../shared/bench/workloads.md) against the hub, started as its own process on a
// temp database with production settings, and against a bare grpc-js server-streaming
// baseline in the same run; prints a table with every figure as a ratio to the baseline and
// writes everything to a JSON file. Progress goes to stderr while it runs.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderTable } from './report.js';
import { receiptsBench, receiptsTable } from './receipts.js';
import { TARGETS } from './targets/index.js';
import type { BenchTarget, ServerHandle } from './targets/types.js';
import { sysBusyPct } from './util.js';
import { type BenchParams, type Session, type SubHost, authRun, budget, connectSubscribers, startSubHosts, w1, w2, w3, w4 } from './workloads.js';

const FULL: BenchParams = {
  connectConcurrency: 64,
  connectTimeoutMs: 60_000,
  connectDeadlineMs: 900_000,
  w1: { subscribers: 1000, messages: 50_000, payloadBytes: 200, window: 256, warmup: 2000, drainMs: 10_000 },
  w2: { subscribers: 2000, messages: 200, ratePerSec: 20, payloadBytes: 200, warmup: 3, drainMs: 10_000 },
  w3: { messages: 20_000, payloadBytes: 200, window: 256, catchupDeadlineMs: 60_000, settleMs: 500 },
  w4: { subscribers: 10_000, settleMs: 3000 },
  auth: { messages: 20_000, receivers: 1000, window: 256, payloadBytes: 200 },
  budget: { subscribers: 400, streamPushes: 30_000, unaryPushes: 15_000, broadcasts: 60, ratePerSec: 20, payloadBytes: 200, window: 256, warmup: 2000, drainMs: 10_000 },
  subProcs: 1,
  subProcsLarge: 2,
};

/** scrypt cost of the receivers' stored hashes: production for W1-W3, cheaper for the 10,000 logins of W4. */
const RECEIVER_LOG_N = 15;
const LARGE_RECEIVER_LOG_N = 10;

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k!, v ?? 'true'];
  }),
);
const scale = args.tiny ? 100 : args.quick ? 10 : 1;
const P: BenchParams = structuredClone(FULL);
if (scale > 1) {
  const down = (n: number) => Math.max(1, Math.round(n / scale));
  P.w1.subscribers = down(P.w1.subscribers);
  P.w1.messages = down(P.w1.messages);
  P.w1.warmup = down(P.w1.warmup);
  P.w2.subscribers = down(P.w2.subscribers);
  P.w2.messages = Math.max(10, down(P.w2.messages));
  P.w3.messages = down(P.w3.messages);
  P.w4.subscribers = down(P.w4.subscribers);
  P.w4.settleMs = args.tiny ? 500 : P.w4.settleMs;
  P.auth.messages = down(P.auth.messages);
  P.auth.receivers = down(P.auth.receivers);
  P.budget.subscribers = down(P.budget.subscribers);
  P.budget.streamPushes = down(P.budget.streamPushes);
  P.budget.unaryPushes = down(P.budget.unaryPushes);
  P.budget.warmup = down(P.budget.warmup);
  P.subProcsLarge = 1;
}
// Overrides like --w1.messages=20000 (numbers only), applied after the scale.
for (const [key, value] of Object.entries(args)) {
  if (!key.includes('.')) continue;
  const [section, field] = key.split('.') as [keyof BenchParams, string];
  const holder = P[section] as Record<string, number> | undefined;
  if (!holder || !(field in holder)) throw new Error(`unknown parameter --${key}`);
  holder[field] = Number(value);
}
const w1Modes = (args['w1-modes'] ?? 'stream,unary').split(',') as ('stream' | 'unary')[];
const phases = (args.phases ?? 'budget,w1,w2,w3,w4,auth,receipts').split(',');
const targetNames = (args.targets ?? 'baseline,pushhub').split(',');
const progress = (line: string) => process.stderr.write(`${line}\n`);

const machine = {
  nproc: cpus().length,
  cpu_model: cpus()[0]?.model,
  mem_GiB: Math.round(totalmem() / 2 ** 30),
  kernel: release(),
  node: process.version,
};
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const results: Record<string, unknown> & { targets: Record<string, Record<string, unknown>> } = {
  stamp,
  scale: args.tiny ? 'tiny (counts ÷100)' : args.quick ? 'quick (counts ÷10)' : 'full',
  machine,
  params: P,
  receiver_log_n: { w1_w2_w3: RECEIVER_LOG_N, w4: LARGE_RECEIVER_LOG_N },
  targets: {},
};

let current: { server?: ServerHandle; hosts?: SubHost[] } = {};

/** Other jobs on a shared 2-core machine distort every figure: wait (bounded) for a quiet machine. */
async function quietGate() {
  const t0 = Date.now();
  let busy = await sysBusyPct(1000);
  while (busy > 25 && Date.now() - t0 < (args.tiny ? 0 : 30_000)) busy = await sysBusyPct(2000);
  return { waited_s: Math.round((Date.now() - t0) / 1000), busy_pct_before: Math.round(busy) };
}

/** One fresh server + fresh subscriber hosts per phase, stopped by PID afterwards. */
async function withServer<T>(target: BenchTarget, receivers: number, subProcs: number, opts: { receiverLogN: number; bypassAuth?: boolean }, fn: (s: Session) => Promise<T>) {
  const dir = mkdtempSync(join(tmpdir(), `pushhub-bench-${target.name}-`));
  const quiet = await quietGate();
  const server = await target.startServer({ dir, receivers, ...opts });
  current = { server };
  let hosts: SubHost[] = [];
  try {
    hosts = await startSubHosts(subProcs, target, server.conn);
    current.hosts = hosts;
    const value = await fn({ target, conn: server.conn, serverPid: server.pid, hosts, P, progress, probeDir: dir });
    const errors = hosts.flatMap((h) => h.errors).slice(0, 5);
    return { value, quiet, server_command: server.command, host_errors: errors.length ? errors : undefined };
  } finally {
    await Promise.all(hosts.map((h) => h.stop()));
    await server.stop();
    current = {};
    rmSync(dir, { recursive: true, force: true });
  }
}

async function phase(name: string, target: BenchTarget, fn: () => Promise<unknown>) {
  progress(`${target.name} ${name} ...`);
  const t0 = Date.now();
  const entry = results.targets[target.name]!;
  try {
    entry[name] = await fn();
    progress(`${target.name} ${name} done (${Math.round((Date.now() - t0) / 1000)} s)`);
  } catch (error) {
    entry[name] = { error: String((error as Error)?.stack ?? error) };
    progress(`${target.name} ${name} FAILED: ${String((error as Error)?.message ?? error)}`);
  }
}

async function cleanupAndExit(signal: string) {
  progress(`\n${signal}: stopping the processes this bench started`);
  await Promise.all((current.hosts ?? []).map((h) => h.stop()));
  await current.server?.stop();
  process.exit(130);
}
process.on('SIGINT', () => void cleanupAndExit('SIGINT'));
process.on('SIGTERM', () => void cleanupAndExit('SIGTERM'));

const t0 = Date.now();
progress(`pushhub bench (${results.scale}): phases ${phases.join(',')}, targets ${targetNames.join(',')}`);
for (const name of targetNames) results.targets[name] = { label: TARGETS[name]!.label };
for (const ph of phases) {
  for (const name of targetNames) {
    const target = TARGETS[name]!;
    const base = { receiverLogN: RECEIVER_LOG_N };
    if (ph === 'budget') {
      // Per-operation costs do not depend on the login cost: the cheaper hashes of W4.
      await phase('budget', target, () => withServer(target, P.budget.subscribers, P.subProcs, { receiverLogN: LARGE_RECEIVER_LOG_N }, (s) => budget(s)));
    } else if (ph === 'w1') {
      await phase('w1', target, () =>
        withServer(target, P.w1.subscribers, P.subProcs, base, async (s) => {
          const connect = await connectSubscribers(s, P.w1.subscribers);
          progress(`  ${P.w1.subscribers} subscribers connected in ${connect.seconds} s`);
          const out: Record<string, unknown> = {};
          for (const mode of w1Modes) out[mode] = await w1(s, mode, connect);
          return out;
        }),
      );
    } else if (ph === 'w2') {
      await phase('w2', target, () =>
        withServer(target, P.w2.subscribers, P.subProcs, base, async (s) => {
          const connect = await connectSubscribers(s, P.w2.subscribers);
          progress(`  ${P.w2.subscribers} subscribers connected in ${connect.seconds} s`);
          return { connect: { ok: connect.ok, failed: connect.failed, seconds: connect.seconds }, ...(await w2(s, P.w2.subscribers, connect.parts)) };
        }),
      );
    } else if (ph === 'w3') {
      await phase('w3', target, () => withServer(target, 1, 1, base, (s) => w3(s)));
    } else if (ph === 'w4') {
      // W4 at the large count, then W2 broadcast to the same (idle) subscribers.
      await phase('w4', target, () =>
        withServer(target, P.w4.subscribers, P.subProcsLarge, { receiverLogN: LARGE_RECEIVER_LOG_N }, async (s) => {
          const idle = await w4(s, P.w4.subscribers);
          progress(`  ${idle.result.connect.ok} subscribers, ${idle.result.server_kib_per_subscriber} KiB each`);
          const broadcast = await w2(s, P.w4.subscribers, idle.parts);
          return { ...idle.result, w2: broadcast };
        }),
      );
    } else if (ph === 'receipts' && target.name === 'pushhub') {
      // Delivery receipts (issue 18): confirmations off/on in alternating rounds on one hub,
      // and GetDeliveryStatus at 100,000 receivers (test/bench/receipts.ts).
      await phase('receipts', target, () => receiptsBench({ quick: scale > 1, progress }));
    } else if (ph === 'auth' && target.name === 'pushhub') {
      // Alternating rounds so drifting machine load hits both sides alike.
      await phase('auth', target, async () => {
        const rounds: { checked: unknown[]; bypassed: unknown[] } = { checked: [], bypassed: [] };
        for (let round = 0; round < 2; round++) {
          for (const bypassAuth of [false, true]) {
            const r = await withServer(target, P.auth.receivers, 1, { ...base, bypassAuth }, (s) => authRun(s, 'unary'));
            (bypassAuth ? rounds.bypassed : rounds.checked).push(r.value);
          }
        }
        return rounds;
      });
    }
  }
}
results.total_wall_s = Math.round((Date.now() - t0) / 1000);

const receiptsResult = results.targets.pushhub?.receipts as Awaited<ReturnType<typeof receiptsBench>> | undefined;
const table = renderTable(results) + (receiptsResult && 'confirmation_cost' in receiptsResult ? receiptsTable(receiptsResult) : '');
const outDir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(outDir, { recursive: true });
const out = args.out ?? join(outDir, `bench-${stamp}.json`);
writeFileSync(out, JSON.stringify(results, null, 2));
if (!args.out) writeFileSync(join(outDir, `latest${scale > 1 ? `-${String(results.scale).split(' ')[0]}` : ''}.md`), table);
process.stdout.write(table);
progress(`wrote ${out} (total ${results.total_wall_s} s)`);
process.exit(0);
