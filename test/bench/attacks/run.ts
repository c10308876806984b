/**
 * The attacks of issue 16 (What we saw, 7) against a real hub process with the production
 * defaults (scrypt logN 15, queue 64 / 8 per source, 1000 connections per source, 10 s request
 * deadline), each attacker in its own process, the legitimate client in this one:
 *
 *   npm run attacks                       every case
 *   npm run attacks -- flood16 incomplete  some cases
 *
 * Cases: flood16, flood8 (wrong passwords from 16 / 8 addresses vs 50 first logins from
 * another, 2 at a time), flood16-burst (the same 50 sent at once from their one address),
 * connections (one address opens 10,000 connections), incomplete (10,000 connections
 * from one address, each with a call whose request never completes), ipv6 (a flood from one
 * IPv6 /64, every call from a new address, forwarded by a trusted proxy). Sources are
 * 127.0.0.x (all of 127.0.0.0/8 is loopback on Linux). Prints one JSON line per case, with the
 * machine's load and the hub's CPU share, for docs/security.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Status } from 'nice-grpc';
import type { Credentials } from '../../../sdk/src/receiver.js';
import { type CallOutcome, SourceClient, basicHeader, statusName, unknownId } from '../../reliability/support.js';
import { freePort, REPO_ROOT } from '../../support/hub-process.js';
import { holdIncompleteCalls } from './incomplete-calls.js';
import { floodLogins } from './login-flood.js';

const FLOOD_MS = 20_000;
const LEGIT_LOGINS = 50;
/** Legitimate first logins in flight at once from their address (well within its queue share, 8). */
const LEGIT_IN_FLIGHT = 2;
/** The legitimate client's deadline per login: the merchant SDK's default (10 s). */
const LEGIT_DEADLINE = '10S';

const tally = (outcomes: CallOutcome[]) => {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o.reason ?? statusName(o.code)] = (counts[o.reason ?? statusName(o.code)] ?? 0) + 1;
  return counts;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A hub process with the production defaults plus `args`, on a fresh SQLite file. */
async function startHub(args: string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'pushhub-attacks-'));
  const address = `127.0.0.1:${await freePort()}`;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--db', join(dir, 'hub.db'), '--address', address, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      const split = (partial + chunk.toString()).split('\n');
      partial = split.pop()!;
      for (const line of split) {
        lines.push(line);
        if (line.includes('pushhub listening')) resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`hub exited (${code}): ${lines.slice(-3).join('\n')}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    address,
    pid: child.pid!,
    lines,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `count` merchants, registered 10 per address (the registration burst) from 127.0.1.x. */
async function registerOwners(address: string, count: number): Promise<Credentials[]> {
  const perSource = 10;
  const groups = await Promise.all(
    Array.from({ length: Math.ceil(count / perSource) }, async (_, g) => {
      const client = new SourceClient(address, `127.0.1.${g + 1}`);
      const owners: Credentials[] = [];
      for (let i = 0; i < perSource && g * perSource + i < count; i++) {
        const outcome = await client.register('merchant');
        if (!outcome.credentials) throw new Error(`registration refused: ${outcome.reason ?? statusName(outcome.code)} ${outcome.details}`);
        owners.push(outcome.credentials);
      }
      client.close();
      return owners;
    }),
  );
  return groups.flat();
}

/** The attacker half: runs in its own process (`run.ts --attacker KIND JSON`), prints its outcome counts. */
async function attacker(kind: string, options: Record<string, unknown>): Promise<void> {
  const target = String(options.target);
  if (kind === 'flood') {
    const clients = (options.sources as string[]).map((s) => new SourceClient(target, s));
    const flood = floodLogins(clients, { concurrencyPerSource: Number(options.concurrency), maxCallsPerSource: Number.POSITIVE_INFINITY });
    setTimeout(() => flood.stop(), Number(options.durationMs));
    const outcomes = await flood.done;
    process.stdout.write(`${JSON.stringify({ calls: outcomes.length, outcomes: tally(outcomes) })}\n`);
  } else if (kind === 'flood-forwarded') {
    // Through a trusted proxy (this process, at options.proxy), every call from a new address of one /64.
    const client = new SourceClient(target, String(options.proxy));
    let running = true;
    setTimeout(() => (running = false), Number(options.durationMs));
    const outcomes: CallOutcome[] = [];
    let n = 0;
    await Promise.all(
      Array.from({ length: Number(options.concurrency) }, async () => {
        while (running) {
          const host = (++n).toString(16);
          outcomes.push(
            await client.unary('ListItems', new Uint8Array(0), {
              authorization: basicHeader({ id: unknownId('M'), password: 'guess' }),
              'x-real-ip': `2001:db8:1:2:${host}::${host}`,
            }),
          );
        }
      }),
    );
    process.stdout.write(`${JSON.stringify({ calls: outcomes.length, outcomes: tally(outcomes) })}\n`);
  } else if (kind === 'connections') {
    const port = Number(target.slice(target.lastIndexOf(':') + 1));
    const sockets: net.Socket[] = [];
    let accepted = 0;
    let closedByHub = 0;
    await Promise.all(
      Array.from({ length: Number(options.connections) }, () =>
        new Promise<void>((resolve) => {
          const socket = net.connect({ host: '127.0.0.1', port, localAddress: String(options.source) }, () => {
            accepted++;
            resolve();
          });
          socket.on('error', () => resolve());
          socket.on('close', () => closedByHub++);
          sockets.push(socket);
        }),
      ),
    );
    await sleep(1000);
    process.stdout.write(`${JSON.stringify({ connected: accepted, closedByHub, open: accepted - closedByHub })}\n`);
    // Holds them until killed.
    await new Promise(() => {});
  } else if (kind === 'incomplete') {
    const started = Date.now();
    const attack = holdIncompleteCalls(target, { localAddress: String(options.source), connections: Number(options.connections), callsPerConnection: 1 });
    await attack.opened;
    const openedMs = Date.now() - started;
    process.stdout.write(`${JSON.stringify({ opened: { ...attack.stats }, openedMs })}\n`);
    const ended = await attack.ended;
    process.stdout.write(`${JSON.stringify({ ended: ended.length, outcomes: tally(ended), lastEndedMs: Date.now() - started })}\n`);
    attack.stop();
  }
}

/** Starts an attacker process; `lines` fills with its JSON lines. */
function spawnAttacker(kind: string, options: Record<string, unknown>) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'test/bench/attacks/run.ts', '--attacker', kind, JSON.stringify(options)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const split = (partial + chunk.toString()).split('\n');
    partial = split.pop()!;
    for (const line of split) lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    pid: child.pid!,
    lines,
    exited,
    async kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** First logins (each id new to the hub: one scrypt each), `LEGIT_IN_FLIGHT` at a time, each with its deadline. */
async function firstLogins(client: SourceClient, owners: Credentials[], inFlight = LEGIT_IN_FLIGHT, headers: Record<string, string> = {}) {
  const results: { outcome: CallOutcome; ms: number }[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < owners.length) {
        const owner = owners[next++]!;
        const start = Date.now();
        const outcome = await client.unary('ListItems', new Uint8Array(0), { authorization: basicHeader(owner), 'grpc-timeout': LEGIT_DEADLINE, ...headers });
        results.push({ outcome, ms: Date.now() - start });
      }
    }),
  );
  const ok = results.filter((r) => r.outcome.code === Status.OK);
  const ms = ok.map((r) => r.ms).sort((a, b) => a - b);
  return { ok: ok.length, of: owners.length, inFlight, deadline: LEGIT_DEADLINE, outcomes: tally(results.map((r) => r.outcome)), medianMs: ms[Math.floor(ms.length / 2)], maxMs: ms.at(-1) };
}

/** Figures of one case, with the machine's load and the CPU the hub and the attacker used. */
function report(name: string, figures: Record<string, unknown>) {
  process.stdout.write(`${JSON.stringify({ case: name, date: new Date().toISOString(), cpus: cpus().length, loadavg: loadavg().map((l) => Number(l.toFixed(2))), ...figures })}\n`);
}

/**
 * CPU shares of the hub and the attacker over a window, in cores (2.0 = both cores of this
 * machine). Sampled every 250 ms, so a process that exits early is measured until its last sample.
 */
function cpuMeter(pids: Record<string, number>) {
  const first = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, { at: Date.now(), cpu: cpuSeconds(pid) }]));
  const last = structuredClone(first);
  const sample = () => {
    for (const [k, pid] of Object.entries(pids)) {
      try {
        last[k] = { at: Date.now(), cpu: cpuSeconds(pid) };
      } catch {
        // exited: keep its last sample
      }
    }
  };
  const timer = setInterval(sample, 250);
  return () => {
    sample();
    clearInterval(timer);
    return Object.fromEntries(
      Object.keys(pids).map((k) => [k, Number(((last[k]!.cpu - first[k]!.cpu) / Math.max(0.001, (last[k]!.at - first[k]!.at) / 1000)).toFixed(2))]),
    );
  };
}

async function loginFlood(name: string, sources: number, inFlight = LEGIT_IN_FLIGHT) {
  const hub = await startHub();
  try {
    const owners = await registerOwners(hub.address, LEGIT_LOGINS);
    const attack = spawnAttacker('flood', {
      target: hub.address,
      sources: Array.from({ length: sources }, (_, i) => `127.0.0.${20 + i}`),
      concurrency: 8,
      durationMs: FLOOD_MS,
    });
    const meter = cpuMeter({ hub: hub.pid, attacker: attack.pid });
    // Let the flood fill the queue before the first legitimate login.
    await sleep(2000);
    const legit = new SourceClient(hub.address, '127.0.0.3');
    const logins = await firstLogins(legit, owners, inFlight);
    const cpu = meter();
    legit.close();
    await attack.exited;
    report(name, { attackers: sources, legitimateFirstLogins: logins, cpuCoresUsed: cpu, attacker: attack.lines[0] });
  } finally {
    await hub.stop();
  }
}

/**
 * Starts a hub and an attacker of `kind` from 127.0.0.2; once the attacker reports its
 * connections open, times one call from another address, then ends the attacker (`finish`).
 */
async function otherAddressDuring(kind: 'connections' | 'incomplete', finish: 'kill' | 'wait') {
  const hub = await startHub();
  try {
    const attack = spawnAttacker(kind, { target: hub.address, source: '127.0.0.2', connections: 10_000 });
    while (attack.lines.length === 0) await sleep(100);
    const start = Date.now();
    const other = new SourceClient(hub.address, '127.0.0.3');
    const outcome = await other.register('receiver');
    const ms = Date.now() - start;
    other.close();
    if (finish === 'kill') await attack.kill();
    else await attack.exited;
    return { attacker: attack.lines, otherAddress: { outcome: outcome.reason ?? statusName(outcome.code), ms } };
  } finally {
    await hub.stop();
  }
}

async function connections() {
  const { attacker, otherAddress } = await otherAddressDuring('connections', 'kill');
  report('connections', { attacker: attacker[0], otherAddress });
}

async function incomplete() {
  report('incomplete', { requestDeadlineMs: 10_000, ...(await otherAddressDuring('incomplete', 'wait')) });
}

async function ipv6() {
  // 127.0.0.2 is the trusted proxy; the attacker rotates through one /64, the legitimate
  // client is another /64 behind the same proxy.
  const hub = await startHub(['--trusted-proxy', '127.0.0.2']);
  try {
    const owners = await registerOwners(hub.address, LEGIT_LOGINS);
    const attack = spawnAttacker('flood-forwarded', { target: hub.address, proxy: '127.0.0.2', concurrency: 64, durationMs: FLOOD_MS });
    const meter = cpuMeter({ hub: hub.pid, attacker: attack.pid });
    await sleep(2000);
    const legit = new SourceClient(hub.address, '127.0.0.2');
    const logins = await firstLogins(legit, owners, LEGIT_IN_FLIGHT, { 'x-real-ip': '2001:db8:9:9::1' });
    const cpu = meter();
    legit.close();
    await attack.exited;
    report('ipv6', { legitimateFirstLogins: logins, cpuCoresUsed: cpu, attacker: attack.lines[0] });
  } finally {
    await hub.stop();
  }
}

const CASES: Record<string, () => Promise<void>> = {
  flood16: () => loginFlood('flood16', 16),
  flood8: () => loginFlood('flood8', 8),
  // The 50 legitimate logins all at once from their one address (50 users behind one NAT).
  'flood16-burst': () => loginFlood('flood16-burst', 16, LEGIT_LOGINS),
  connections,
  incomplete,
  ipv6,
};

if (process.argv[2] === '--attacker') {
  await attacker(process.argv[3]!, JSON.parse(process.argv[4]!) as Record<string, unknown>);
  process.exit(0);
} else {
  const names = process.argv.slice(2);
  for (const name of names.length > 0 ? names : Object.keys(CASES)) {
    const run = CASES[name];
    if (!run) throw new Error(`unknown case ${name}; cases: ${Object.keys(CASES).join(', ')}`);
    await run();
  }
  process.exit(0);
}
