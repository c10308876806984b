// npm run bench:micro — in-process A/B of single hot-path pieces, the old way beside the new
// one in the same process and sitting: CPU µs per operation (process.cpuUsage) and bytes
// allocated per operation on the JS heap (probe.ts). Deterministic enough on a busy machine
// to compare, unlike throughput.
import { Audience, ServiceInfo, SubscribeResponse } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { decodeSubscribeResponse } from '../../sdk/src/subscribe-decoder.js';
import { itemFromWire } from '../../sdk/src/values.js';
import { pushDigest, requestDigest } from '../../src/api/request-digest.js';
import type { WriteOp } from '../../src/core/write-ops.js';
import { packOps, unpackOps } from '../../src/store/sqlite/packed-ops.js';
import { AllocationMeter } from './probe.js';

const N = Number(process.argv.find((a) => a.startsWith('--n='))?.slice(4) ?? 100_000);
let sink: unknown;

function measure(fn: (i: number) => unknown) {
  for (let i = 0; i < N / 10; i++) sink = fn(i); // warm-up (JIT)
  const meter = new AllocationMeter();
  const c0 = process.cpuUsage();
  meter.start();
  for (let i = 0; i < N; i++) sink = fn(i);
  const { bytes } = meter.stop();
  const c = process.cpuUsage(c0);
  return { cpu_us: Math.round(((c.user + c.system) / N) * 100) / 100, bytes: Math.round(bytes / N) };
}

function row(what: string, before: ReturnType<typeof measure>, after: ReturnType<typeof measure>) {
  const r = (a: number, b: number) => (b === 0 ? '–' : `×${(a / b).toFixed(2)}`);
  return `| ${what} | ${before.cpu_us} | ${after.cpu_us} | ${r(after.cpu_us, before.cpu_us)} | ${before.bytes} | ${after.bytes} | ${r(after.bytes, before.bytes)} |`;
}

// A bench push as the hub decodes it: a 200-byte payload in base64, no valid_until, no data.
const info = ServiceInfo.decode(ServiceInfo.encode(ServiceInfo.fromPartial({ title: 'bench', body: Buffer.alloc(200, 0x61).toString('base64') })).finish());
const receiverId = 'R00-0000000000000042';

// One item event per message, as the hub frames a live delivery.
const frame = Buffer.from(
  SubscribeResponse.encode({
    events: [
      {
        event: {
          $case: 'item',
          value: { itemId: 'I0000000000004a2f9c', sequence: 123_456n, merchantId: 'M00-0000000000000001', audience: Audience.AUDIENCE_SPECIFIC, receiverId, pushedAt: new Date(), info: { ...info, validUntil: new Date(Date.now() + 86_400_000) } },
        },
      },
    ],
  }).finish(),
);

// A commit batch of 128 bench pushes, as the hub hands it to the SQLite commit worker (each
// op its own decoded info: a shared object would be cloned once per message).
const batch: WriteOp[] = Array.from({ length: 128 }, (_, i) => ({
  kind: 'push' as const,
  merchantId: 'M00-0000000000000001',
  receiverId: `R00-${String(i).padStart(16, '0')}`,
  info: { ...info, data: {}, validUntil: new Date(Date.now() + 86_400_000) },
  requestId: `rq-${i}-0123456789abcdef`,
  requestDigest: 'f'.repeat(64),
}));
const perPush = (m: ReturnType<typeof measure>) => ({ cpu_us: Math.round((m.cpu_us / 128) * 100) / 100, bytes: Math.round(m.bytes / 128) });

const lines = [
  `Node ${process.version}, ${N.toLocaleString('en-US')} operations each.`,
  '',
  '| piece | CPU µs before | after | ratio | bytes before | after | ratio |',
  '|---|---:|---:|---:|---:|---:|---:|',
  row(
    'push request digest (generic canonical JSON → fixed-order text)',
    measure(() => requestDigest('push', { receiverId, info })),
    measure(() => pushDigest(receiverId, info)),
  ),
  row(
    'SDK: one Subscribe message with one item → plain Item (ts-proto decode + itemFromWire → subscribe-decoder)',
    measure(() => SubscribeResponse.decode(frame).events.map((e) => (e.event?.$case === 'item' ? itemFromWire(e.event.value) : undefined))),
    measure(() => decodeSubscribeResponse(frame)),
  ),
  row(
    'commit hand-off per push, both threads (structured clone of the ops → packed buffer), batches of 128',
    perPush(measure(() => structuredClone(batch))),
    perPush(measure(() => unpackOps(packOps(batch)))),
  ),
];
process.stdout.write(`${lines.join('\n')}\n`);
void sink;
