// npx tsx test/bench/commit-worker.ts [batches=80] [batchSize=256]
//
// µs per push in the commit worker's work: applyBatch inside one immediate transaction on a
// file database opened as the hub opens it (WAL, synchronous=FULL), batches of specific
// pushes with request ids (UUIDv7-like, as the SDK sends) round robin over 1,000 receivers,
// like W1. Reports wall time per push (includes each batch's fsync) and CPU per push.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyBatch } from '../../src/core/apply-batch.js';
import type { PushOp } from '../../src/core/write-ops.js';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { newAccountId } from '../../src/core/ids.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { ServiceInfo } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { newRequestId } from '../../sdk/src/request-id.js';

const batches = Number(process.argv[2] ?? 80);
const batchSize = Number(process.argv[3] ?? 256);
const dir = mkdtempSync(join(tmpdir(), 'pushhub-commit-bench-'));
const store = openSqliteStore(join(dir, 'hub.db'));
const receivers: string[] = [];
const merchant = newAccountId('merchant', '00');
store.insertAccount({ id: merchant, role: 'merchant', displayName: 'm', passwordHash: Buffer.alloc(32), createdAtMs: Date.now() });
for (let i = 0; i < 1000; i++) {
  const id = newAccountId('receiver', '00');
  store.insertAccount({ id, role: 'receiver', displayName: 'r', passwordHash: Buffer.alloc(32), createdAtMs: Date.now() });
  receivers.push(id);
}
const limits = { idempotencyWindowMs: DEFAULT_CONFIG.idempotencyWindowMs, maxPublicItemsPerMerchant: DEFAULT_CONFIG.maxPublicItemsPerMerchant };
let n = 0;
const batch = (): PushOp[] =>
  Array.from({ length: batchSize }, () => {
    const i = n++;
    return {
      kind: 'push',
      merchantId: merchant,
      receiverId: receivers[i % receivers.length]!,
      info: ServiceInfo.fromPartial({ title: `item ${i}`, body: 'x'.repeat(200), validUntil: new Date(Date.now() + 3_600_000) }),
      requestId: newRequestId(),
      requestDigest: 'd'.repeat(43),
    };
  });
const run = (k: number) => {
  let wallMs = 0;
  let cpuUs = 0;
  for (let b = 0; b < k; b++) {
    const ops = batch();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    store.transaction(() => applyBatch(store, ops, store.headSequence(), Date.now(), limits));
    wallMs += performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    cpuUs += cpu.user + cpu.system;
  }
  return { wallUs: (wallMs * 1000) / (k * batchSize), cpuUs: cpuUs / (k * batchSize) };
};
run(10); // warm-up
const r = run(batches);
console.log(`${batches} batches of ${batchSize} specific pushes: ${r.wallUs.toFixed(1)} µs per push (wall, with fsync), ${r.cpuUs.toFixed(1)} µs CPU per push`);
store.close();
rmSync(dir, { recursive: true, force: true });
