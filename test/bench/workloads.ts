// W1-W4 as ../shared/bench/workloads.md defines them, run against one target. This process
// hosts the publisher; subscribers live in separate host processes (sub-host.ts), each
// subscriber on its own connection.
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import type { BenchTarget, Conn, PublishMode } from './targets/types.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AllocationWindow } from './probe.js';
import {
  Hist,
  KIND,
  encodePayload,
  nowUs,
  procCpuSeconds,
  procStatusKB,
  procTable,
  publishWindow,
  round,
  selfCpuSeconds,
  sleep,
  spawnWithUlimit,
  sysBusySeconds,
  threadCpuSeconds,
  withTimeout,
} from './util.js';

const SUB_HOST = fileURLToPath(new URL('./sub-host.ts', import.meta.url));

export interface BenchParams {
  connectConcurrency: number;
  connectTimeoutMs: number;
  connectDeadlineMs: number;
  w1: { subscribers: number; messages: number; payloadBytes: number; window: number; warmup: number; drainMs: number };
  w2: { subscribers: number; messages: number; ratePerSec: number; payloadBytes: number; warmup: number; drainMs: number };
  w3: { messages: number; payloadBytes: number; window: number; catchupDeadlineMs: number; settleMs: number };
  w4: { subscribers: number; settleMs: number };
  auth: { messages: number; receivers: number; window: number; payloadBytes: number };
  budget: { subscribers: number; streamPushes: number; unaryPushes: number; broadcasts: number; ratePerSec: number; payloadBytes: number; window: number; warmup: number; drainMs: number };
  /** Subscriber host processes for up to 2,000 subscribers / for more. */
  subProcs: number;
  subProcsLarge: number;
}

export type Progress = (line: string) => void;

// ---------------------------------------------------------------- subscriber hosts
export class SubHost {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  doneAt: number | null = null;
  connected = 0;
  readonly errors: string[] = [];
  private rid = 0;
  private readonly waiting = new Map<number, { resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void }>();

  constructor(readonly index: number) {
    this.child = spawnWithUlimit(process.execPath, ['--max-old-space-size=8192', '--import', 'tsx', SUB_HOST], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let markReady!: () => void;
    this.ready = new Promise((resolve) => (markReady = resolve));
    this.child.on('message', (m: Record<string, unknown>) => {
      if (m.ev === 'ready') return markReady();
      if (m.ev === 'done') return void (this.doneAt = m.tLast as number);
      if (m.ev === 'progress') return void (this.connected = m.connected as number);
      if (m.ev === 'error') return void this.errors.push(String(m.error));
      const w = this.waiting.get(m.rid as number);
      if (!w) return;
      this.waiting.delete(m.rid as number);
      if (m.ok) w.resolve(m);
      else w.reject(new Error(String(m.error)));
    });
    this.child.on('exit', () => {
      for (const w of this.waiting.values()) w.reject(new Error(`subscriber host ${index} exited`));
      this.waiting.clear();
    });
  }

  call(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 600_000): Promise<Record<string, unknown>> {
    const rid = ++this.rid;
    const reply = new Promise<Record<string, unknown>>((resolve, reject) => this.waiting.set(rid, { resolve, reject }));
    this.child.send({ rid, cmd, ...args });
    return withTimeout(reply, timeoutMs, `subscriber host ${this.index} ${cmd}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    try {
      this.child.send({ cmd: 'exit' });
    } catch {
      // channel already closed
    }
    if (await Promise.race([exited.then(() => true), sleep(3000).then(() => false)])) return;
    try {
      process.kill(this.child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

export async function startSubHosts(k: number, target: BenchTarget, conn: Conn): Promise<SubHost[]> {
  const hosts = Array.from({ length: k }, (_, i) => new SubHost(i));
  await Promise.all(hosts.map((h) => withTimeout(h.ready, 30_000, 'subscriber host ready')));
  await Promise.all(hosts.map((h) => h.call('init', { target: target.name, conn })));
  return hosts;
}

const split = (n: number, k: number) => Array.from({ length: k }, (_, w) => Array.from({ length: n }, (_, i) => i).filter((i) => i % k === w));

async function connectAll(hosts: SubHost[], n: number, P: BenchParams, progress: Progress) {
  const parts = split(n, hosts.length);
  const t0 = Date.now();
  const ticker = setInterval(() => progress(`  connecting: ${hosts.reduce((a, h) => a + h.connected, 0)}/${n} (${Math.round((Date.now() - t0) / 1000)} s)`), 5000);
  try {
    const rs = await Promise.all(
      hosts.map((h, i) =>
        h.call(
          'connect',
          { ids: parts[i], concurrency: P.connectConcurrency, perConnTimeoutMs: P.connectTimeoutMs, deadlineMs: P.connectDeadlineMs },
          P.connectDeadlineMs + 60_000,
        ),
      ),
    );
    const sum = (key: string) => rs.reduce((a, r) => a + (r[key] as number), 0);
    return { ok: sum('ok'), failed: sum('failed'), seconds: round((Date.now() - t0) / 1000, 2)!, errors: rs.flatMap((r) => r.errors as string[]).slice(0, 5), parts };
  } finally {
    clearInterval(ticker);
  }
}

// ---------------------------------------------------------------- CPU accounting
interface CpuSnap {
  t: number;
  ours: Set<number>;
  procs: Map<number, { comm: string; cpu: number }>;
  sys: number;
  server: number;
  pub: number;
  sub: number;
  subRssKB: number;
}

async function cpuSnap(hosts: SubHost[], serverPid: number): Promise<CpuSnap> {
  const sub = await Promise.all(hosts.map((h) => h.call('cpu')));
  return {
    t: nowUs(),
    ours: new Set([serverPid, process.pid, ...hosts.map((h) => h.child.pid!)]),
    procs: procTable(),
    sys: sysBusySeconds(),
    server: procCpuSeconds(serverPid),
    pub: selfCpuSeconds(),
    sub: sub.reduce((a, r) => a + (r.cpu as number), 0),
    subRssKB: sub.reduce((a, r) => a + (r.rssKB as number), 0),
  };
}

export interface CpuWindow {
  window_s: number | null;
  server_pct: number | null;
  publisher_pct: number | null;
  subscribers_pct: number | null;
  machine_busy_pct: number | null;
  other_pct: number | null;
  other_top: string[];
}

function cpuDelta(a: CpuSnap, b: CpuSnap): CpuWindow {
  const sec = (b.t - a.t) / 1e6;
  const pct = (x: number, y: number) => round(((y - x) / sec) * 100, 0);
  const ours = b.server - a.server + (b.pub - a.pub) + (b.sub - a.sub);
  const top: [string, number][] = [];
  for (const [pid, p] of b.procs) {
    if (a.ours.has(pid)) continue;
    const pc = ((p.cpu - (a.procs.get(pid)?.cpu ?? 0)) / sec) * 100;
    if (pc >= 3) top.push([`${p.comm}(${pid})`, round(pc, 0)!]);
  }
  top.sort((x, y) => y[1] - x[1]);
  return {
    window_s: round(sec, 2),
    server_pct: pct(a.server, b.server),
    publisher_pct: pct(a.pub, b.pub),
    subscribers_pct: pct(a.sub, b.sub),
    machine_busy_pct: pct(a.sys, b.sys),
    other_pct: round(Math.max(0, ((b.sys - a.sys - ours) / sec) * 100), 0),
    other_top: top.slice(0, 5).map(([name, v]) => `${name} ${v}%`),
  };
}

// ---------------------------------------------------------------- helpers
async function waitDone(hosts: SubHost[], deadlineMs: number): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline && hosts.some((h) => h.doneAt === null)) await sleep(5);
  return hosts.every((h) => h.doneAt !== null);
}

async function collect(hosts: SubHost[], perMsg = false) {
  const rs = await Promise.all(hosts.map((h) => h.call('stats', { perMsg })));
  const hist = new Hist();
  for (const r of rs) hist.merge(r.hist as never);
  const sum = (key: string) => rs.reduce((a, r) => a + (r[key] as number), 0);
  return { rs, hist, unique: sum('unique'), dups: sum('dups'), misrouted: sum('misrouted'), other: sum('other'), tLast: Math.max(...rs.map((r) => (r.tLast as number) ?? 0)) };
}

async function waitWarm(hosts: SubHost[], n: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  let got = 0;
  while (Date.now() < deadline) {
    got = (await Promise.all(hosts.map((h) => h.call('warmCount')))).reduce((a, r) => a + (r.n as number), 0);
    if (got >= n) break;
    await sleep(50);
  }
  return got;
}

/** Prints acked pushes every 2 s while fn runs. */
async function withTicker<T>(progress: Progress, label: string, counter: () => number, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const ticker = setInterval(() => progress(`  ${label}: ${counter()} (${Math.round((Date.now() - t0) / 1000)} s)`), 2000);
  try {
    return await fn();
  } finally {
    clearInterval(ticker);
  }
}

// ---------------------------------------------------------------- workloads
export interface Session {
  target: BenchTarget;
  conn: Conn;
  serverPid: number;
  hosts: SubHost[];
  P: BenchParams;
  progress: Progress;
  /** Where the server's probe (probe.ts) writes its windows. */
  probeDir: string;
}

export async function connectSubscribers(s: Session, n: number) {
  return connectAll(s.hosts, n, s.P, s.progress);
}

/** W1 targeted over one publish mode, on subscribers 0..n-1 already connected. */
export async function w1(s: Session, mode: PublishMode, connect: Awaited<ReturnType<typeof connectSubscribers>>) {
  const p = s.P.w1;
  const N = p.subscribers;
  const M = p.messages;
  const pub = await s.target.connectPublisher(s.conn, mode);
  let acked = 0;
  const push = (kind: number) => (seq: number) => {
    const idx = seq % N;
    return pub.publishTargeted(idx, encodePayload(p.payloadBytes, seq, kind, idx)).then(() => void acked++);
  };
  const warmSent = await publishWindow(p.warmup, p.window, 60_000, push(KIND.WARM));
  const warmGot = await waitWarm(s.hosts, warmSent.acked, 10_000);
  const perHost = new Array(s.hosts.length).fill(0);
  for (let seq = 0; seq < M; seq++) perHost[(seq % N) % s.hosts.length]++;
  await Promise.all(s.hosts.map((h, i) => ((h.doneAt = perHost[i] === 0 ? 0 : null), h.call('arm', { expected: perHost[i], seenSize: M }))));
  acked = 0;
  const c0 = await cpuSnap(s.hosts, s.serverPid);
  const t0 = nowUs();
  const pr = await withTicker(s.progress, `W1 ${mode} acked`, () => acked, () => publishWindow(M, p.window, 300_000, push(KIND.TARGETED)));
  const tPubEnd = nowUs();
  const complete = await waitDone(s.hosts, p.drainMs);
  const c1 = await cpuSnap(s.hosts, s.serverPid);
  const r = await collect(s.hosts);
  await pub.close().catch(() => {});
  return {
    mode,
    params: { subscribers: N, messages: M, payload_bytes: p.payloadBytes, window: p.window, warmup: p.warmup, sub_procs: s.hosts.length },
    connect: { ok: connect.ok, failed: connect.failed, seconds: connect.seconds, errors: connect.errors },
    warmup: { sent: warmSent.acked, received: warmGot },
    publish: { attempted: pr.attempted, acked: pr.acked, errors: pr.errors, first_error: pr.firstError, seconds: round(pr.seconds, 3), acked_per_s: round(pr.acked / pr.seconds, 0) },
    delivered: { unique: r.unique, dups: r.dups, misrouted: r.misrouted, per_s: round(r.unique / ((r.tLast - t0) / 1e6), 0), last_after_publish_end_ms: round((r.tLast - tPubEnd) / 1000, 1), complete },
    lost: pr.attempted - r.unique,
    dups: r.dups,
    latency: r.hist.summary(),
    cpu: cpuDelta(c0, c1),
    server_rss_MiB: round((procStatusKB(s.serverPid, 'VmRSS') ?? 0) / 1024, 1),
    client_rss_MiB: { subs: round(c1.subRssKB / 1024, 0), pub: round(process.memoryUsage().rss / 1048576, 0) },
  };
}

/** W2 broadcast on n subscribers already connected (parts = which host holds which). */
export async function w2(s: Session, n: number, parts: number[][]) {
  const p = s.P.w2;
  const M = p.messages;
  const pub = await s.target.connectPublisher(s.conn, 'stream');
  for (let i = 0; i < p.warmup; i++) await pub.publishBroadcast(encodePayload(p.payloadBytes, i, KIND.WARM, 0));
  const warmGot = await waitWarm(s.hosts, p.warmup * n, 20_000);
  await Promise.all(
    s.hosts.map((h, i) => {
      h.doneAt = null;
      const local = parts[i]!;
      return h.call('arm', { expected: local.length * M, nMsgs: M, localIdx: local, seenSize: local.length * M });
    }),
  );
  const c0 = await cpuSnap(s.hosts, s.serverPid);
  const sent = new Float64Array(M);
  const acks: Promise<void>[] = [];
  let ackErrors = 0;
  let ackLatencyMax = 0;
  const t0 = nowUs();
  for (let i = 0; i < M; i++) {
    const wait = (t0 + (i * 1e6) / p.ratePerSec - nowUs()) / 1000;
    if (wait > 1) await sleep(wait);
    const ts = nowUs();
    sent[i] = ts;
    acks.push(
      pub.publishBroadcast(encodePayload(p.payloadBytes, i, KIND.BROADCAST, 0, ts)).then(
        () => void (ackLatencyMax = Math.max(ackLatencyMax, nowUs() - ts)),
        () => void ackErrors++,
      ),
    );
    if (i % 40 === 39) s.progress(`  W2 ${n}: broadcast ${i + 1}/${M}`);
  }
  const tPubEnd = nowUs();
  await withTimeout(Promise.all(acks), p.drainMs + 5000, 'broadcast acks').catch(() => {});
  const complete = await waitDone(s.hosts, p.drainMs);
  const c1 = await cpuSnap(s.hosts, s.serverPid);
  const r = await collect(s.hosts, true);
  await pub.close().catch(() => {});
  const fan = new Hist();
  let incomplete = 0;
  for (let i = 0; i < M; i++) {
    let count = 0;
    let last = 0;
    for (const x of r.rs) {
      count += (x.perMsgCount as number[])[i]!;
      last = Math.max(last, (x.perMsgLast as number[])[i]!);
    }
    if (count >= n) fan.add(last - sent[i]!);
    else incomplete++;
  }
  return {
    params: { subscribers: n, messages: M, rate_per_s: p.ratePerSec, payload_bytes: p.payloadBytes, warmup: p.warmup, sub_procs: s.hosts.length },
    warmup: { expected: p.warmup * n, received: warmGot },
    publish: { sent: M, ack_errors: ackErrors, seconds: round((tPubEnd - t0) / 1e6, 2), ack_latency_max_ms: round(ackLatencyMax / 1000, 1) },
    deliveries: { expected: n * M, unique: r.unique, dups: r.dups, complete, last_after_publish_end_ms: round((r.tLast - tPubEnd) / 1000, 1) },
    lost: n * M - r.unique,
    dups: r.dups,
    fanout_completion: { ...fan.summary(), incomplete_messages: incomplete },
    delivery_latency: r.hist.summary(),
    cpu: cpuDelta(c0, c1),
    server_rss_MiB: round((procStatusKB(s.serverPid, 'VmRSS') ?? 0) / 1024, 1),
  };
}

/** W3 offline catch-up: one subscriber connects, leaves, M pushes wait for it, it reconnects. */
export async function w3(s: Session) {
  const p = s.P.w3;
  const M = p.messages;
  const h = s.hosts[0]!;
  const first = await h.call('connect', { ids: [0], concurrency: 1, perConnTimeoutMs: s.P.connectTimeoutMs, deadlineMs: s.P.connectDeadlineMs });
  await h.call('close', { ids: [0] });
  await sleep(p.settleMs);
  const pub = await s.target.connectPublisher(s.conn, 'stream');
  let acked = 0;
  const cp0 = await cpuSnap(s.hosts, s.serverPid);
  const pr = await withTicker(s.progress, 'W3 offline pushes acked', () => acked, () =>
    publishWindow(M, p.window, 300_000, (seq) => pub.publishTargeted(0, encodePayload(p.payloadBytes, seq, KIND.CATCHUP, 0)).then(() => void acked++)),
  );
  const cp1 = await cpuSnap(s.hosts, s.serverPid);
  await pub.close().catch(() => {});
  await sleep(p.settleMs);
  await h.call('arm', { expected: pr.acked, seenSize: M });
  const c0 = await cpuSnap(s.hosts, s.serverPid);
  const rc = await h.call('reconnect', { idx: 0, perConnTimeoutMs: s.P.connectTimeoutMs, deadlineMs: p.catchupDeadlineMs }, p.catchupDeadlineMs + 60_000);
  const c1 = await cpuSnap(s.hosts, s.serverPid);
  const ms = (a: unknown, b: unknown) => (a == null || b == null ? null : round(((b as number) - (a as number)) / 1000, 1));
  const unique = rc.unique as number;
  return {
    params: { messages: M, payload_bytes: p.payloadBytes, window: p.window },
    first_connect: { ok: first.ok, errors: first.errors },
    offline_publish: { acked: pr.acked, errors: pr.errors, first_error: pr.firstError, seconds: round(pr.seconds, 3), acked_per_s: round(pr.acked / pr.seconds, 0), cpu: cpuDelta(cp0, cp1) },
    reconnect_to_first_ms: ms(rc.tStart, rc.tFirst),
    reconnect_to_all_ms: unique >= pr.acked ? ms(rc.tStart, rc.tLast) : null,
    catchup_msgs_per_s: rc.tLast && rc.tFirst ? round(unique / (((rc.tLast as number) - (rc.tStart as number)) / 1e6), 0) : null,
    received: unique,
    lost: pr.acked - unique,
    dups: rc.dups,
    misrouted: rc.misrouted,
    cpu: cpuDelta(c0, c1),
  };
}

/** W4 idle memory: RSS of a fresh server, then n idle subscribers (targeted + broadcast), settle, RSS again. */
export async function w4(s: Session, n: number) {
  await sleep(s.P.w4.settleMs);
  const before = procStatusKB(s.serverPid, 'VmRSS')!;
  const c0 = await cpuSnap(s.hosts, s.serverPid);
  const con = await connectAll(s.hosts, n, s.P, s.progress);
  const c1 = await cpuSnap(s.hosts, s.serverPid);
  await sleep(s.P.w4.settleMs);
  const after = procStatusKB(s.serverPid, 'VmRSS')!;
  const c2 = await cpuSnap(s.hosts, s.serverPid);
  return {
    result: {
      params: { subscribers: n, settle_ms: s.P.w4.settleMs, sub_procs: s.hosts.length },
      connect: { ok: con.ok, failed: con.failed, seconds: con.seconds, per_s: round(con.ok / con.seconds, 0), errors: con.errors },
      server_rss_before_MiB: round(before / 1024, 1),
      server_rss_after_MiB: round(after / 1024, 1),
      server_kib_per_subscriber: con.ok ? round((after - before) / con.ok, 1) : null,
      connect_cpu: cpuDelta(c0, c1),
      idle_cpu: cpuDelta(c1, c2),
      client_rss_MiB: round(c2.subRssKB / 1024, 0),
    },
    parts: con.parts,
  };
}

/** Unary pushes to `receivers` receivers (no subscribers): throughput and server CPU per push. */
export async function authRun(s: Session, mode: PublishMode) {
  const p = s.P.auth;
  const pub = await s.target.connectPublisher(s.conn, mode);
  const push = (seq: number) => pub.publishTargeted(seq % p.receivers, encodePayload(p.payloadBytes, seq, KIND.TARGETED, seq % p.receivers));
  await publishWindow(Math.min(2000, p.messages), p.window, 60_000, push); // warm-up, incl. the one scrypt login
  const c0 = await cpuSnap(s.hosts, s.serverPid);
  const pr = await publishWindow(p.messages, p.window, 300_000, push);
  const c1 = await cpuSnap(s.hosts, s.serverPid);
  await pub.close().catch(() => {});
  const serverCpuSec = c1.server - c0.server;
  return {
    mode,
    acked: pr.acked,
    errors: pr.errors,
    first_error: pr.firstError,
    acked_per_s: round(pr.acked / pr.seconds, 0),
    server_cpu_us_per_push: round((serverCpuSec / pr.acked) * 1e6, 1),
    cpu: cpuDelta(c0, c1),
  };
}

// ---------------------------------------------------------------- CPU and allocation budget
interface ProbeState {
  windows: number;
  running: boolean;
  startupThreads: number[];
  result?: AllocationWindow;
}

const readProbe = (s: Session): ProbeState | undefined => {
  try {
    return JSON.parse(readFileSync(join(s.probeDir, `${s.serverPid}.json`), 'utf8')) as ProbeState;
  } catch {
    return undefined; // not written yet, or being written
  }
};

/** SIGUSR2 to the server's probe, then wait until it wrote the state that signal leads to. */
async function toggleProbe(s: Session, running: boolean): Promise<ProbeState> {
  const before = readProbe(s);
  if (!before) throw new Error('the server has no bench probe (test/bench/probe.ts)');
  process.kill(s.serverPid, 'SIGUSR2');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = readProbe(s);
    if (now && now.running === running && (running || now.windows > before.windows)) return now;
    if (Date.now() > deadline) throw new Error('the server probe did not answer SIGUSR2');
    await sleep(5);
  }
}

interface BudgetSnap {
  threads: Map<number, number>;
  sub: number;
  t: number;
}

async function budgetSnap(s: Session): Promise<BudgetSnap> {
  const sub = await Promise.all(s.hosts.map((h) => h.call('cpu')));
  return { threads: threadCpuSeconds(s.serverPid), sub: sub.reduce((a, r) => a + (r.cpu as number), 0), t: nowUs() };
}

/**
 * Runs fn as one measured window and divides its costs by ops (server side) and events
 * (subscriber side). Server threads: the main thread, the threads it had at start (V8's
 * platform threads: GC helpers and the concurrent compiler), the busiest thread started later
 * (the hub's commit worker), and the rest (libuv's pool).
 */
async function budgetWindow(s: Session, fn: () => Promise<{ ops: number; events: number }>) {
  const startup = new Set(readProbe(s)?.startupThreads ?? []);
  await Promise.all(s.hosts.map((h) => h.call('allocStart')));
  await toggleProbe(s, true);
  const a = await budgetSnap(s);
  const { ops, events } = await fn();
  const b = await budgetSnap(s);
  const serverAlloc = (await toggleProbe(s, false)).result!;
  const subAlloc = (await Promise.all(s.hosts.map((h) => h.call('allocStop')))) as unknown as AllocationWindow[];
  const used = (tid: number) => (b.threads.get(tid) ?? 0) - (a.threads.get(tid) ?? 0);
  let main = 0;
  let helpers = 0;
  const later: number[] = [];
  for (const tid of b.threads.keys()) {
    if (tid === s.serverPid) main = used(tid);
    else if (startup.has(tid)) helpers += used(tid);
    else later.push(used(tid));
  }
  later.sort((x, y) => y - x);
  const worker = later[0] ?? 0;
  const rest = later.slice(1).reduce((x, y) => x + y, 0);
  const us = (sec: number, n: number) => round((sec / n) * 1e6, 1);
  const subBytes = subAlloc.reduce((x, r) => x + r.bytes, 0);
  return {
    ops,
    events,
    window_s: round((b.t - a.t) / 1e6, 2),
    server_cpu_us: {
      total: us(main + helpers + worker + rest, ops),
      main: us(main, ops),
      v8_helpers: us(helpers, ops),
      commit_worker: us(worker, ops),
      other_threads: us(rest, ops),
    },
    server_alloc_bytes: round(serverAlloc.bytes / ops, 0),
    server_gcs: serverAlloc.gcs,
    subscriber_cpu_us_per_event: us(b.sub - a.sub, events),
    subscriber_alloc_bytes_per_event: round(subBytes / events, 0),
  };
}

/**
 * The CPU and allocation budget: per acked push (PushStream, unary), per delivery (broadcast),
 * per subscriber event, for one target; run.ts runs it against the hub and the bare grpc-js
 * baseline in the same run and reports the ratios. One event per gRPC message throughout (the
 * W1 shape), subscribers on their own connections.
 */
export async function budget(s: Session) {
  const p = s.P.budget;
  const N = p.subscribers;
  const connect = await connectAll(s.hosts, N, s.P, s.progress);
  const perHost = (count: (seq: number) => boolean, M: number) => {
    const counts = new Array(s.hosts.length).fill(0);
    for (let seq = 0; seq < M; seq++) if (count(seq)) counts[(seq % N) % s.hosts.length]++;
    return counts;
  };
  const out: Record<string, unknown> = { params: { ...p, sub_procs: s.hosts.length }, connect: { ok: connect.ok, failed: connect.failed, seconds: connect.seconds } };
  for (const mode of ['stream', 'unary'] as const) {
    const M = mode === 'stream' ? p.streamPushes : p.unaryPushes;
    const pub = await s.target.connectPublisher(s.conn, mode);
    const push = (kind: number) => (seq: number) => pub.publishTargeted(seq % N, encodePayload(p.payloadBytes, seq, kind, seq % N));
    const warm = await publishWindow(p.warmup, p.window, 60_000, push(KIND.WARM));
    await waitWarm(s.hosts, warm.acked, 10_000);
    const counts = perHost(() => true, M);
    await Promise.all(s.hosts.map((h, i) => ((h.doneAt = counts[i] === 0 ? 0 : null), h.call('arm', { expected: counts[i], seenSize: M }))));
    s.progress(`  budget: ${M} ${mode} pushes`);
    let lost = 0;
    let dups = 0;
    const window = await budgetWindow(s, async () => {
      const pr = await publishWindow(M, p.window, 300_000, push(KIND.TARGETED));
      await waitDone(s.hosts, p.drainMs);
      const r = await collect(s.hosts);
      lost = pr.attempted - r.unique;
      dups = r.dups;
      return { ops: pr.acked, events: r.unique };
    });
    out[mode] = { ...window, lost, dups };
    await pub.close().catch(() => {});
  }
  // Broadcast: hub CPU per delivery (the one push per N deliveries is included).
  const B = p.broadcasts;
  const pub = await s.target.connectPublisher(s.conn, 'stream');
  const parts = connect.parts;
  await Promise.all(s.hosts.map((h, i) => ((h.doneAt = null), h.call('arm', { expected: parts[i]!.length * B, nMsgs: B, localIdx: parts[i], seenSize: parts[i]!.length * B }))));
  s.progress(`  budget: ${B} broadcasts to ${N}`);
  let lost = 0;
  let dups = 0;
  const window = await budgetWindow(s, async () => {
    const t0 = nowUs();
    const acks: Promise<void>[] = [];
    for (let i = 0; i < B; i++) {
      const wait = (t0 + (i * 1e6) / p.ratePerSec - nowUs()) / 1000;
      if (wait > 1) await sleep(wait);
      acks.push(pub.publishBroadcast(encodePayload(p.payloadBytes, i, KIND.BROADCAST, 0)).catch(() => {}));
    }
    await Promise.all(acks);
    await waitDone(s.hosts, p.drainMs);
    const r = await collect(s.hosts);
    lost = N * B - r.unique;
    dups = r.dups;
    return { ops: r.unique, events: r.unique };
  });
  out.broadcast = { ...window, lost, dups };
  await pub.close().catch(() => {});
  return out;
}
