// npx tsx test/bench/metrics-cost.ts [rounds] [pushes]: what metrics cost on the hot path.
// One process runs a hub (on a temp SQLite file) with --metrics-address on or off, 50 SDK
// receivers, and an SDK push stream; it reports CPU time (user + system, all threads) per
// push. CPU time rather than throughput, because this 2-core machine is shared: other load
// moves wall-clock figures far more than the CPU a push costs. Rounds alternate off/on.
import { setMaxListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MerchantClient } from '../../sdk/src/merchant.js';
import { ReceiverClient } from '../../sdk/src/receiver.js';
import { startHub } from '../../src/hub.js';
import { silentLogger } from '../../src/logger.js';
import { testConfig } from '../support/hub.js';

const rounds = Number(process.argv[2] ?? 3);
const pushes = Number(process.argv[3] ?? 20_000);

async function run(metrics: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'pushhub-metrics-cost-'));
  const hub = await startHub(testConfig(dir, { metricsAddress: metrics ? '127.0.0.1:0' : undefined, scryptQueuePerSource: 1000, scryptQueueLimit: 1000 }), { logger: silentLogger });
  const merchant = new MerchantClient({ address: hub.address, ...(await MerchantClient.register(hub.address)) });
  const receivers = await Promise.all(Array.from({ length: 50 }, async () => new ReceiverClient({ address: hub.address, ...(await ReceiverClient.register(hub.address)) })));
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // one signal ends all 50 subscriptions
  let delivered = 0;
  const reading = receivers.map(async (r) => {
    for await (const event of r.subscribe({ signal: abort.signal })) if (event.type === 'item') delivered++;
  });
  const stream = merchant.openPushStream();
  await stream.pushSpecific(receivers[0]!.id, { title: 'warm-up' });
  while (delivered < 1) await new Promise((r) => setTimeout(r, 5));
  delivered = 0;
  const before = process.cpuUsage();
  const acks: Promise<unknown>[] = [];
  for (let i = 0; i < pushes; i++) acks.push(stream.pushSpecific(receivers[i % receivers.length]!.id, { title: `push ${i}`, body: 'x'.repeat(150) }));
  await Promise.all(acks);
  while (delivered < pushes) await new Promise((r) => setTimeout(r, 5));
  const used = process.cpuUsage(before);
  abort.abort();
  await Promise.allSettled(reading);
  await stream.close();
  merchant.close();
  for (const r of receivers) r.close();
  await hub.stop();
  rmSync(dir, { recursive: true, force: true });
  return (used.user + used.system) / pushes; // µs per push
}

const figures: Record<'off' | 'on', number[]> = { off: [], on: [] };
for (let i = 0; i < rounds; i++) {
  for (const mode of ['off', 'on'] as const) {
    const us = await run(mode === 'on');
    figures[mode].push(us);
    process.stderr.write(`round ${i + 1} metrics ${mode}: ${us.toFixed(1)} µs CPU per push\n`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const off = median(figures.off);
const on = median(figures.on);
console.log(`metrics off: ${off.toFixed(1)} µs CPU per push (median of ${rounds}); on: ${on.toFixed(1)} µs; on/off = ×${(on / off).toFixed(3)}`);
