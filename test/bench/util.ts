// Shared bench helpers: clocks, payload codec, latency histogram, /proc readers, pools.
// The clock is CLOCK_MONOTONIC (system-wide on Linux), so latency is comparable across processes.
import { readFileSync, readdirSync } from 'node:fs';
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { connect } from 'node:net';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** CLOCK_MONOTONIC in microseconds. */
export const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const round = (x: number | null | undefined, digits = 1): number | null =>
  x == null || !Number.isFinite(x) ? null : Math.round(x * 10 ** digits) / 10 ** digits;

// ---- payload: [u32 seq][u32 kind][f64 sentUs][u32 targetIdx][padding], as in ../shared/bench/peers ----
export const KIND = { WARM: 0, TARGETED: 1, BROADCAST: 2, CATCHUP: 3 } as const;

export function encodePayload(size: number, seq: number, kind: number, targetIdx: number, sentUs = nowUs()): Buffer {
  const b = Buffer.alloc(Math.max(size, 20), 0x61);
  b.writeUInt32LE(seq, 0);
  b.writeUInt32LE(kind, 4);
  b.writeDoubleLE(sentUs, 8);
  b.writeUInt32LE(targetIdx >>> 0, 16);
  return b;
}

export function decodePayload(b: Buffer) {
  return { seq: b.readUInt32LE(0), kind: b.readUInt32LE(4), sentUs: b.readDoubleLE(8), targetIdx: b.readUInt32LE(16) };
}

// ---- log-bucketed latency histogram (microseconds, ~1 % resolution, exact max) ----
const LOG_BASE = Math.log(1.01);
export interface HistJson {
  b: [number, number][];
  n: number;
  max: number;
  sum: number;
}
export interface LatencySummary {
  n: number;
  p50_ms?: number | null;
  p99_ms?: number | null;
  max_ms?: number | null;
  mean_ms?: number | null;
}

export class Hist {
  private b = new Map<number, number>();
  n = 0;
  max = 0;
  sum = 0;

  add(us: number): void {
    const i = Math.floor(Math.log(us < 1 ? 1 : us) / LOG_BASE);
    this.b.set(i, (this.b.get(i) ?? 0) + 1);
    this.n++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }

  toJSON(): HistJson {
    return { b: [...this.b.entries()], n: this.n, max: this.max, sum: this.sum };
  }

  static from(j: HistJson): Hist {
    const h = new Hist();
    return h.merge(j);
  }

  merge(o: HistJson): this {
    for (const [k, c] of o.b) this.b.set(k, (this.b.get(k) ?? 0) + c);
    this.n += o.n;
    this.sum += o.sum;
    this.max = Math.max(this.max, o.max);
    return this;
  }

  pct(p: number): number | null {
    if (!this.n) return null;
    const rank = Math.ceil((p / 100) * this.n);
    let acc = 0;
    for (const k of [...this.b.keys()].sort((x, y) => x - y)) {
      acc += this.b.get(k)!;
      if (acc >= rank) return Math.min(Math.exp((k + 0.5) * LOG_BASE), this.max);
    }
    return this.max;
  }

  summary(): LatencySummary {
    if (!this.n) return { n: 0 };
    const ms = (x: number | null) => (x == null ? null : round(x / 1000, 2));
    return { n: this.n, p50_ms: ms(this.pct(50)), p99_ms: ms(this.pct(99)), max_ms: ms(this.max), mean_ms: ms(this.sum / this.n) };
  }
}

// ---- /proc readers ----
const CLK_TCK = 100;
/** utime + stime of every thread of pid, in seconds. */
export function procCpuSeconds(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

export function procStatusKB(pid: number, field: string): number | null {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Busy CPU seconds of the whole machine (all cores), to show load from processes outside the bench. */
export function sysBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - f[3]! - f[4]!) / CLK_TCK;
}

export async function sysBusyPct(ms = 1000): Promise<number> {
  const a = sysBusySeconds();
  await sleep(ms);
  return ((sysBusySeconds() - a) / (ms / 1000)) * 100;
}

/** CPU seconds of every process (pid -> {comm, cpu}), to name what else competed for the cores. */
export function procTable(): Map<number, { comm: string; cpu: number }> {
  const table = new Map<number, { comm: string; cpu: number }>();
  for (const d of readdirSync('/proc')) {
    if (d.charCodeAt(0) > 57) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const j = s.lastIndexOf(')');
      const f = s.slice(j + 2).split(' ');
      table.set(Number(d), { comm: s.slice(s.indexOf('(') + 1, j), cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK });
    } catch {
      // the process ended while we read
    }
  }
  return table;
}

/** CPU seconds of every thread of pid (tid -> seconds). */
export function threadCpuSeconds(pid: number): Map<number, number> {
  const table = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      table.set(Number(tid), (Number(f[11]) + Number(f[12])) / CLK_TCK);
    } catch {
      // the thread ended while we read
    }
  }
  return table;
}

export const selfCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

export { freePort } from '../support/hub-process.js';

/** Runs fn over items with bounded concurrency and an overall deadline. */
export async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>, deadlineMs = Infinity) {
  const deadline = Date.now() + deadlineMs;
  let next = 0;
  let ok = 0;
  const errors: string[] = [];
  const lane = async () => {
    while (next < items.length && Date.now() < deadline) {
      const item = items[next++]!;
      try {
        await fn(item);
        ok++;
      } catch (error) {
        errors.push(String((error as Error)?.message ?? error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return { ok, failed: errors.length, skipped: items.length - ok - errors.length, errors: errors.slice(0, 5) };
}

/** At most `window` calls of fn in flight; returns acked count and wall time. */
export async function publishWindow(n: number, window: number, deadlineMs: number, fn: (i: number) => Promise<unknown>) {
  let next = 0;
  let acked = 0;
  let errors = 0;
  let firstError: string | null = null;
  const deadline = Date.now() + deadlineMs;
  const t0 = nowUs();
  const lane = async () => {
    while (next < n && Date.now() < deadline) {
      const i = next++;
      try {
        await fn(i);
        acked++;
      } catch (error) {
        errors++;
        firstError ??= String((error as Error)?.message ?? error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, lane));
  const t1 = nowUs();
  return { attempted: next, acked, errors, firstError, seconds: (t1 - t0) / 1e6 };
}

/** Spawns with the open-files soft limit raised to the hard limit; exec keeps the PID. */
export function spawnWithUlimit(cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', cmd, ...args], options);
}

export async function waitForPort(port: number, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`port ${port} not listening after ${ms} ms`);
}

/** Stops one child we started, by its PID: SIGTERM, then SIGKILL after the grace period. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    process.kill(child.pid!, 'SIGTERM');
  } catch {
    return;
  }
  if ((await Promise.race([exited.then(() => 'exit'), sleep(graceMs).then(() => 'timeout')])) === 'timeout') {
    try {
      process.kill(child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    await Promise.race([exited, sleep(2000)]);
  }
}
