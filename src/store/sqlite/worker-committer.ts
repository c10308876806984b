import { Worker } from 'node:worker_threads';
import type { BatchLimits, BatchResult, WriteAck } from '../../core/write-ops.js';
import type { BatchCommitter } from '../ports.js';
import { HubError, type Reason } from '../../core/errors.js';
import type { ChangeRecord } from '../../core/records.js';
import { packOps } from './packed-ops.js';
import type { ReceiptWrite } from './receipt-writes.js';

type BatchReply = { outcomes: (WriteAck | { hubError: { code: number; reason: string; message: string } })[]; published: ChangeRecord[]; head: number };
type Reply = ({ id: number; ok: true } & (BatchReply | { removed: number })) | { id: number; ok: false; message: string; code?: string };

/** Same file kind as this module: .ts when run from source (under tsx), .js when compiled. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(FROM_SOURCE ? './commit-worker.ts' : './commit-worker.js', import.meta.url);
/** From source the worker registers the TypeScript loader first (workers do not inherit tsx's hooks). */
const WORKER_BOOT = FROM_SOURCE
  ? `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_URL.href)}); })`
  : `import(${JSON.stringify(WORKER_URL.href)})`;

/**
 * Runs each batch's transaction in a worker thread with its own SQLite connection (WAL lets
 * the hub's connection keep reading meanwhile). The event loop stays free during the
 * synchronous=FULL fsync, so pushes keep arriving and form the next, larger batch. The
 * commit queue sends one batch at a time, so commits stay in order.
 */
export function sqliteWorkerCommitter(
  dbPath: string,
  limits: BatchLimits,
  options: { testHooks?: boolean } = {},
): BatchCommitter & { receiptWrite(write: ReceiptWrite): Promise<unknown> } {
  let worker: Worker | undefined;
  let nextId = 1;
  const waiting = new Map<number, { resolve: (reply: Reply & { ok: true }) => void; reject: (e: Error) => void }>();
  let ready: Promise<void> = Promise.resolve();

  const start = (): Worker => {
    const w = new Worker(WORKER_BOOT, { eval: true, workerData: { dbPath, limits, testHooks: options.testHooks === true } });
    w.unref();
    let markReady!: () => void;
    ready = new Promise((resolve) => (markReady = resolve));
    w.once('exit', () => markReady());
    w.on('message', (reply: Reply | { ready: true }) => {
      if ('ready' in reply) return markReady();
      const entry = waiting.get(reply.id);
      if (!entry) return;
      waiting.delete(reply.id);
      if (waiting.size === 0) w.unref();
      // Keep the SQLite code (error.code, as better-sqlite3 sets it) for fault classification.
      if (!reply.ok) return entry.reject(Object.assign(new Error(reply.message), { code: reply.code }));
      entry.resolve(reply);
    });
    // A crashed worker fails what it held; the next batch starts a new one (nothing was acked).
    const fail = (error: Error) => {
      if (worker === w) worker = undefined;
      for (const entry of waiting.values()) entry.reject(error);
      waiting.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`commit worker exited with code ${code}`)));
    return w;
  };

  /** Sends one request; the worker handles them in order, one at a time. */
  const request = (message: object, transfer?: ArrayBuffer[]): Promise<Reply & { ok: true }> => {
    worker ??= start();
    const id = nextId++;
    // Referenced while a batch is in flight: at shutdown the server no longer holds the loop
    // open, and a batch still committing must not be cut off by the process ending. Once per
    // batch, not per push.
    if (waiting.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      worker!.postMessage({ id, ...message }, transfer);
    });
  };

  // Started at once, so the first push does not wait for the worker to boot.
  worker = start();
  return {
    ready: () => ready,
    async commit(ops, nowMs): Promise<BatchResult> {
      // One packed buffer, transferred: no structured clone of every op (packed-ops.ts).
      const packed = packOps(ops);
      const reply = (await request({ packed, nowMs }, [packed.buffer as ArrayBuffer])) as BatchReply;
      return {
        outcomes: reply.outcomes.map((o) =>
          'hubError' in o ? new HubError(o.hubError.reason as Reason, o.hubError.message) : o,
        ),
        published: reply.published,
        head: reply.head,
      };
    },
    // Runs in the worker too, between batches: the hub's event loop never waits for the write lock.
    async purge(nowMs, requestCutoffMs) {
      return ((await request({ purge: { nowMs, requestCutoffMs } })) as { removed: number }).removed;
    },
    /** Receipt writes (receipt-writes.ts) on the worker's connection, in turn with batches. */
    async receiptWrite(write) {
      return ((await request({ receipts: write })) as unknown as { receipts: unknown }).receipts;
    },
    async testPragma(statement) {
      return ((await request({ testPragma: statement })) as { removed: number }).removed;
    },
    async close() {
      const w = worker;
      worker = undefined;
      if (!w) return;
      const exited = new Promise((resolve) => w.once('exit', resolve));
      // The worker is unref()'d so an idle hub can exit; while closing it must hold the loop
      // open, or the loop empties before 'exit' fires: the process ends mid-shutdown, main
      // never logs 'stopped' and the store is never closed explicitly.
      w.ref();
      w.postMessage({ close: true });
      await exited;
    },
  };
}
