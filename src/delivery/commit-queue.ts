import { HubError, storageUnavailable } from '../core/errors.js';
import type { ChangeRecord } from '../core/records.js';
import type { BatchResult, WriteAck, WriteOp } from '../core/write-ops.js';
import type { BatchCommitter } from '../store/ports.js';

export type { BatchCommitter } from '../store/ports.js';

/**
 * Codes that mean the storage (not the request, not the code) failed: the disk is full, the
 * database went read-only, or I/O failed. SQLite's result codes (extended codes such as
 * SQLITE_IOERR_WRITE share their primary code's prefix), and the PostgreSQL backend's
 * classes of SQLSTATE (store/postgres/storage-fault.ts): a lost connection counts too.
 */
const STORAGE_FAULTS: readonly [prefix: string, problem: string][] = [
  ['SQLITE_FULL', 'the disk is full'],
  ['SQLITE_READONLY', 'the database is read-only'],
  ['SQLITE_BUSY', 'the database is locked'],
  ['SQLITE_LOCKED', 'the database is locked'],
  ['SQLITE_IOERR', 'the database cannot be written'],
  ['SQLITE_CANTOPEN', 'the database cannot be written'],
  ['SQLITE_PROTOCOL', 'the database cannot be written'],
  ['POSTGRES_FULL', 'the disk is full'],
  ['POSTGRES_READONLY', 'the database is read-only'],
  ['POSTGRES_BUSY', 'the database is locked'],
  ['POSTGRES_IOERR', 'the database cannot be written'],
  ['POSTGRES_UNAVAILABLE', 'the database cannot be reached'],
];

/** A retryable UNAVAILABLE (reason STORAGE_UNAVAILABLE) for a storage fault; undefined otherwise. */
export function classifyStorageFault(error: unknown): HubError | undefined {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== 'string') return undefined;
  const fault = STORAGE_FAULTS.find(([prefix]) => code === prefix || code.startsWith(`${prefix}_`));
  return fault && storageUnavailable(`${fault[1]} (${code})`);
}

interface Pending {
  op: WriteOp;
  /** performance.now() when submitted, for the ack latency metric. */
  at: number;
  resolve: (ack: WriteAck) => void;
  reject: (error: Error) => void;
}

/**
 * This node's single writer. Pushes that arrive while a commit is running (or in the same
 * tick) are committed together in one durable transaction (group commit), so throughput is
 * not capped at one fsync per push. The commit runs off the event loop (SQLite's worker
 * thread, PostgreSQL's connection), so the hub keeps reading pushes meanwhile and the next
 * batch grows with the load. Only after the commit are pushes acknowledged; by then the
 * backend has handed the changes to this node's feed (persist, then publish).
 */
export class CommitQueue {
  private pending: Pending[] = [];
  private scheduled = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: (() => void) | undefined;
  /** Counters for tests and the bench: how many writes shared how many transactions. */
  readonly stats = { transactions: 0, writes: 0 };
  /** Called once per committed batch (metrics); unset costs nothing. */
  onBatchCommitted?: (size: number, startedAtMs: number, oldestAtMs: number, published: readonly ChangeRecord[]) => void;
  /** False from a write that failed on storage until one succeeds (health follows it). */
  private writable = true;
  private readonly writableListeners = new Set<(writable: boolean) => void>();

  constructor(
    private readonly committer: BatchCommitter,
    /** The clock a batch is committed at (item validity, request id age). */
    private readonly now: () => number = Date.now,
    private readonly maxBatch = 4096,
  ) {}

  submit(op: WriteOp): Promise<WriteAck> {
    return new Promise<WriteAck>((resolve, reject) => {
      this.pending.push({ op, at: performance.now(), resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        if (!this.markIdle) this.idle = new Promise((done) => (this.markIdle = done));
        // setImmediate lets every request already read from the sockets join this batch.
        setImmediate(() => void this.flush());
      }
    });
  }

  /** Resolves once every submitted write has been committed or rejected. */
  drained(): Promise<void> {
    return this.idle;
  }

  /** Resolves once the committer can take batches. */
  ready(): Promise<void> {
    return this.committer.ready();
  }

  /** Purges through the committer, so the purge never contends with a commit for the write lock. */
  async purge(nowMs: number, requestCutoffMs: number): Promise<number> {
    try {
      const removed = await this.committer.purge(nowMs, requestCutoffMs);
      this.setWritable(true);
      return removed;
    } catch (error) {
      const fault = classifyStorageFault(error);
      if (fault) this.setWritable(false);
      throw fault ?? error;
    }
  }

  /** Whether the last write reached storage; false while the disk is full or read-only. */
  get storageWritable(): boolean {
    return this.writable;
  }

  /** Calls listener whenever storageWritable changes; returns the unsubscribe function. */
  onWritableChange(listener: (writable: boolean) => void): () => void {
    this.writableListeners.add(listener);
    return () => this.writableListeners.delete(listener);
  }

  /** Tests only: see BatchCommitter.testPragma. */
  testPragma(statement: string): Promise<number> {
    if (!this.committer.testPragma) throw new Error('this committer has no test hooks');
    return this.committer.testPragma(statement);
  }

  private setWritable(writable: boolean): void {
    if (writable === this.writable) return;
    this.writable = writable;
    for (const listener of this.writableListeners) listener(writable);
  }


  private async flush(): Promise<void> {
    const batch = this.pending.splice(0, this.maxBatch);
    const startedAt = performance.now();
    let result: BatchResult;
    try {
      result = await this.committer.commit(
        batch.map((p) => p.op),
        this.now(),
      );
    } catch (error) {
      // The transaction rolled back: nothing in this batch was stored, so nothing is acked.
      // A storage fault is retryable (UNAVAILABLE, STORAGE_UNAVAILABLE) and marks the hub
      // NOT_SERVING until a write succeeds; anything else stays an internal error.
      const fault = classifyStorageFault(error);
      if (fault) this.setWritable(false);
      for (const { reject } of batch) reject(fault ?? (error as Error));
      this.afterFlush();
      return;
    }
    this.setWritable(true);
    this.stats.transactions++;
    this.stats.writes += batch.length;
    this.onBatchCommitted?.(batch.length, startedAt, batch[0]!.at, result.published);
    batch.forEach(({ resolve, reject }, i) => {
      const outcome = result.outcomes[i]!;
      if (outcome instanceof HubError) reject(outcome);
      else resolve(outcome);
    });
    this.afterFlush();
  }

  private afterFlush(): void {
    if (this.pending.length > 0) {
      // Everything that arrived during the commit forms the next batch.
      setImmediate(() => void this.flush());
    } else {
      this.scheduled = false;
      this.markIdle?.();
      this.markIdle = undefined;
    }
  }
}
