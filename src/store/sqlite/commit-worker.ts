import { parentPort, workerData } from 'node:worker_threads';
import { applyBatch } from '../../core/apply-batch.js';
import type { BatchLimits } from '../../core/write-ops.js';
import { HubError } from '../../core/errors.js';
import { unpackOps } from './packed-ops.js';
import { openSqliteStore } from './sqlite-store.js';
import { type ReceiptWrite, runReceiptWrite } from './receipt-writes.js';

/**
 * The commit worker: its own connection to the hub's database, running each batch of writes
 * in one synchronous=FULL transaction, so the fsync never blocks the hub's event loop. See
 * worker-committer.ts for the protocol.
 */
const { dbPath, limits, testHooks } = workerData as { dbPath: string; limits: BatchLimits; testHooks?: boolean };
const store = openSqliteStore(dbPath);
parentPort!.postMessage({ ready: true });

type Request =
  | { id: number; packed: Uint8Array; nowMs: number }
  | { id: number; purge: { nowMs: number; requestCutoffMs: number } }
  | { id: number; testPragma: string }
  | { id: number; receipts: ReceiptWrite }
  | { close: true };

parentPort!.on('message', (m: Request) => {
  if ('close' in m) {
    store.close();
    parentPort!.close();
    return;
  }
  try {
    // Tests only (testHooks): e.g. max_page_count on this connection simulates a full disk.
    if ('testPragma' in m) {
      if (!testHooks) throw new Error('test hooks are off');
      parentPort!.postMessage({ id: m.id, ok: true, removed: Number(store.pragma(m.testPragma, { simple: true }) ?? 0) });
      return;
    }
    // Receipt writes share this connection, so they never contend with a batch for the lock.
    // They commit without their own fsync (synchronous=NORMAL; the next push's FULL commit
    // syncs them with it): a confirmation lost in a power cut is sent again by the receiver
    // (every resume confirms its cursor), and a push is never acknowledged on it.
    if ('receipts' in m) {
      store.pragma('synchronous = NORMAL');
      try {
        parentPort!.postMessage({ id: m.id, ok: true, receipts: store.transaction(() => runReceiptWrite(store.receipts, m.receipts)) });
      } finally {
        store.pragma('synchronous = FULL');
      }
      return;
    }
    if ('purge' in m) {
      parentPort!.postMessage({ id: m.id, ok: true, removed: store.purge(m.purge.nowMs, m.purge.requestCutoffMs) });
      return;
    }
    // The head is read inside the (immediate, so write-locked) transaction.
    const ops = unpackOps(m.packed);
    const result = store.transaction(() => store.withBatchRequests(ops, () => applyBatch(store, ops, store.headSequence(), m.nowMs, limits)));
    const outcomes = result.outcomes.map((o) =>
      o instanceof HubError ? { hubError: { code: o.code, reason: o.reason, message: o.message } } : o,
    );
    const buffers = new Set<ArrayBuffer>();
    for (const change of result.published) buffers.add(change.frame.buffer as ArrayBuffer);
    parentPort!.postMessage({ id: m.id, ok: true, outcomes, published: result.published, head: result.head }, [...buffers]);
  } catch (error) {
    // The SQLite code (SQLITE_FULL, SQLITE_READONLY, ...) travels with the message, so the
    // commit queue can tell a storage fault from a bug.
    const code = (error as { code?: unknown })?.code;
    parentPort!.postMessage({ id: m.id, ok: false, message: String((error as Error)?.message ?? error), code: typeof code === 'string' ? code : undefined });
  }
});
