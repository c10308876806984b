// npx tsx test/bench/unary-vs-stream.ts [pushes] [concurrency]
// Should concurrent unary pushSpecific/pushPublic ride a shared push stream? Pushes the same
// load through MerchantClient's unary calls and through one push stream, alternating
// A/B/A/B in one sitting (this machine's speed moves), and reports pushes/s and the hub's
// CPU per push (the hub runs in this process, so CPU is process CPU per push).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MerchantClient } from '../../sdk/src/merchant.js';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { startHub } from '../../src/hub.js';
import { silentLogger } from '../../src/logger.js';

const total = Number(process.argv[2] ?? 5000);
const concurrency = Number(process.argv[3] ?? 64);
const dir = mkdtempSync(join(tmpdir(), 'pushhub-uvs-'));
const hub = await startHub({ ...DEFAULT_CONFIG, address: '127.0.0.1:0', dbPath: join(dir, 'hub.db'), scryptLogN: 4 }, { logger: silentLogger });
const address = hub.address;
const credentials = await MerchantClient.register(address);

async function run(mode: 'unary' | 'stream'): Promise<{ rate: number; cpuUsPerPush: number }> {
  const merchant = new MerchantClient({ address, ...credentials });
  const stream = mode === 'stream' ? merchant.openPushStream({ window: 1024 }) : undefined;
  const push = (i: number) => (stream ? stream.pushPublic({ title: `p${i}` }) : merchant.pushPublic({ title: `p${i}` }));
  await push(-1); // connect and authenticate outside the measurement
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await push(next++);
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await stream?.close();
  merchant.close();
  return { rate: Math.round((total / ms) * 1000), cpuUsPerPush: Math.round((cpu.user + cpu.system) / total) };
}

const rows: string[] = [];
for (const mode of ['unary', 'stream', 'unary', 'stream'] as const) {
  const r = await run(mode);
  rows.push(`${mode.padEnd(6)} ${String(r.rate).padStart(7)} pushes/s  ${String(r.cpuUsPerPush).padStart(5)} µs CPU/push (hub + client, one process)`);
  console.log(rows.at(-1));
}
await hub.stop();
rmSync(dir, { recursive: true, force: true });
