// The hub as a bench target: its own process (`node --import tsx src/main.ts`) on a temp
// database with production settings (synchronous=FULL WAL, scrypt logN 15), driven through
// the SDK.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashPassword } from '../../../src/registry/credentials.js';
import { openSqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { freePort, spawnWithUlimit, stopChild, waitForPort } from '../util.js';
import { benchClients } from './pushhub-clients.js';
import type { BenchTarget, Conn, ServerOptions } from './types.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
/** Allocation and thread probe (test/bench/probe.ts), idle until the bench signals it. */
const PROBE = new URL('../probe.ts', import.meta.url).href;
/** The production scrypt cost: the merchant's password, and the hub's own setting. */
const PRODUCTION_LOG_N = 15;
const MERCHANT_ID = 'M00-0000000000000001';

/** Receiver account of subscriber idx: `R00-<idx, 16 digits>`. */
export const receiverId = (idx: number) => `R00-${String(idx).padStart(16, '0')}`;

export interface HubConn extends Conn {
  merchant: { id: string; password: string };
  receiverPassword: string;
}

/**
 * Writes the accounts straight into the fresh database (registration is not what the bench
 * measures, and hashing 10,000 passwords would take minutes): one merchant hashed at the
 * production cost, receivers sharing one password hashed at `receiverLogN`. Logging in still
 * runs scrypt once per account, exactly as in production.
 */
async function seedAccounts(dbPath: string, options: ServerOptions) {
  const merchantPassword = 'bench-merchant-password';
  const receiverPassword = 'bench-receiver-password';
  const [merchantHash, receiverHash] = await Promise.all([
    hashPassword(merchantPassword, PRODUCTION_LOG_N),
    hashPassword(receiverPassword, options.receiverLogN),
  ]);
  const store = openSqliteStore(dbPath);
  try {
    const createdAtMs = Date.now();
    store.transaction(() => {
      store.insertAccount({ id: MERCHANT_ID, role: 'merchant', displayName: 'bench merchant', passwordHash: merchantHash, createdAtMs });
      for (let idx = 0; idx < options.receivers; idx++) {
        store.insertAccount({ id: receiverId(idx), role: 'receiver', displayName: `bench s${idx}`, passwordHash: receiverHash, createdAtMs });
      }
    });
  } finally {
    store.close();
  }
  return { merchant: { id: MERCHANT_ID, password: merchantPassword }, receiverPassword };
}

export const pushhubTarget: BenchTarget = {
  name: 'pushhub',
  label: 'pushhub (SQLite WAL synchronous=FULL, ack after commit, scrypt logN 15)',

  async startServer(options) {
    const dbPath = join(options.dir, 'hub.db');
    const accounts = await seedAccounts(dbPath, options);
    const port = await freePort();
    const args = [
      // e.g. BENCH_HUB_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the hub.
      ...(process.env.BENCH_HUB_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      '--import',
      'tsx',
      '--import',
      PROBE,
      'src/main.ts',
      '--db',
      dbPath,
      '--address',
      `127.0.0.1:${port}`,
      '--scrypt-log-n',
      String(PRODUCTION_LOG_N),
      // Every bench receiver logs in from 127.0.0.1 at once: room for all of them in the
      // scrypt queue (the per-source share would refuse most with AUTH_BUSY).
      '--scrypt-queue-limit',
      '1000000',
      '--scrypt-queue-per-source',
      '1000000',
      // W4 holds 10,000 subscriber connections, the default connection cap, and its publisher
      // needs one more.
      '--max-connections',
      String(options.receivers + 1000),
      // ... all from 127.0.0.1: past the per-address cap (1,000) they would be refused at accept.
      '--max-connections-per-source',
      String(options.receivers + 1000),
      // The bench measures the hub's capacity, not its per-merchant limits.
      '--merchant-push-rate',
      '0',
      '--max-public-items-per-merchant',
      '0',
      ...(options.bypassAuth ? ['--insecure-bench-skip-password-check'] : []),
      // e.g. BENCH_HUB_ARGS="--metrics-address 127.0.0.1:0" to measure what metrics cost.
      ...(process.env.BENCH_HUB_ARGS?.split(' ').filter(Boolean) ?? []),
    ];
    const child = spawnWithUlimit(process.execPath, args, {
      cwd: REPO,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, BENCH_PROBE_DIR: options.dir },
    });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`hub exited with ${code}: ${stderr}`))));
    await Promise.race([waitForPort(port), exited]);
    exited.catch(() => {});
    const conn: HubConn = { address: `127.0.0.1:${port}`, ...accounts };
    return { pid: child.pid!, conn, command: `node ${args.join(' ')}`, stop: () => stopChild(child) };
  },

  async connectPublisher(conn, mode) {
    return benchClients.connectPublisher(conn as HubConn, mode);
  },

  async connectSubscriber(conn, idx, onMessage) {
    return benchClients.connectSubscriber(conn as HubConn, idx, onMessage);
  },
};
