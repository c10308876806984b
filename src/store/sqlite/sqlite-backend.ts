import { applyBatch } from '../../core/apply-batch.js';
import type { ChangeRecord } from '../../core/records.js';
import type { BatchLimits } from '../../core/write-ops.js';
import { trimToBytes } from '../page-bytes.js';
import type { BatchCommitter, ChangeReader, History, HistoryStore, HubBackend } from '../ports.js';
import { createSqliteAdminStore } from './admin-store.js';
import { newHistoryId } from '../../core/ids.js';
import { createInProcessFeed } from './in-process-feed.js';
import { acquireSqliteOwnership } from './owner.js';
import { type SqliteStore, openSqliteStore } from './sqlite-store.js';
import { sqliteWorkerCommitter } from './worker-committer.js';
import { type ReceiptWrite, runReceiptWrite } from './receipt-writes.js';
import type { ConfirmResult, ReceiptEvent } from '../../core/receipts.js';
import type { ReceiptFeed, ReceiptStore } from '../ports.js';

export interface SqliteBackendOptions {
  limits: BatchLimits;
  /** Tests only: lets BatchCommitter.testPragma reach the commit worker's connection. */
  testHooks?: boolean;
  /** Told when opening ran migrations (from and to schema version). */
  onMigrated?: (fromVersion: number, toVersion: number) => void;
  /** What owns the file while it is open (owner.ts): 'hub' unless said ('admin'). */
  ownerCommand?: string;
}

function createSqliteChangeReader(store: SqliteStore): ChangeReader {
  return {
    async receiverChanges(q) {
      const rows = store.readChanges(q.receiverId, q.afterSeq, q.nowMs, q.limit, q.snapshotFrom ?? q.afterSeq);
      // Rows above upToSeq are committed but not yet published by this node's feed: they
      // reach the stream live, so a page stops before them.
      let end = rows.length;
      while (end > 0 && rows[end - 1]!.seq > q.upToSeq) end--;
      return trimToBytes(end === rows.length ? rows : rows.slice(0, end), q.maxBytes);
    },
    async merchantItems(q) {
      return trimToBytes(store.listItems(q.merchantId, q.receiverId, q.afterSeq, q.nowMs, q.limit), q.maxBytes);
    },
    headSequence: async () => store.headSequence(),
  };
}

/**
 * The history on the one node: kept in memory, rotated in the database (compare-and-set, a
 * one-row write on the hub's connection: rare, and WAL lets it wait for the writer).
 */
function createSqliteHistory(store: SqliteStore): HistoryStore {
  let current = store.history();
  const listeners: ((history: History) => void)[] = [];
  return {
    current: () => current,
    async rotate(fromId, start, nowMs) {
      const next: History = { id: newHistoryId(), start, startedAtMs: nowMs };
      const previous = current.id;
      current = store.replaceHistory(fromId, next) ? next : store.history();
      if (current.id !== previous) for (const listener of listeners) listener(current);
      return current;
    },
    onChange: (listener) => void listeners.push(listener),
  };
}

/**
 * The embedded backend: one SQLite file, one hub process. Reads run on the hub's own
 * connection (WAL: they never wait for the writer); each batch commits in a worker thread on
 * its own connection, so the synchronous=FULL fsync never blocks the event loop. A
 * ':memory:' database cannot be shared with a worker: it commits inline. One process is the
 * only writer (it owns the file, see owner.ts), so the feed is in-process and this node is
 * always the leader.
 */
export async function openSqliteBackend(path: string, options: SqliteBackendOptions): Promise<HubBackend & { store: SqliteStore }> {
  // Before anything is opened or migrated: a second writer on one file is refused (owner.ts).
  const ownership = acquireSqliteOwnership(path, options.ownerCommand ?? 'hub');
  let store: SqliteStore;
  try {
    store = openSqliteStore(path, { onMigrated: options.onMigrated });
  } catch (error) {
    ownership.release();
    throw error;
  }

  const feed = createInProcessFeed(store.headSequence());
  const inner: BatchCommitter & { receiptWrite(write: ReceiptWrite): Promise<unknown> } =
    path === ':memory:'
      ? {
          ready: async () => {},
          commit: async (ops, nowMs) => store.transaction(() => store.withBatchRequests(ops, () => applyBatch(store, ops, store.headSequence(), nowMs, options.limits))),
          purge: async (nowMs, requestCutoffMs) => store.purge(nowMs, requestCutoffMs),
          receiptWrite: async (write) => store.transaction(() => runReceiptWrite(store.receipts, write)),
          close: async () => {},
        }
      : sqliteWorkerCommitter(path, options.limits, { testHooks: options.testHooks });
  const receiptFeed = createInProcessReceiptFeed(store.receipts.headEventId());
  const committer: BatchCommitter = {
    ...inner,
    async commit(ops, nowMs) {
      const previousHead = feed.head;
      const result = await inner.commit(ops, nowMs);
      // Persist, then publish: the batch reaches the fan-out before any push is acked.
      feed.committed(result.published, result.head, previousHead);
      return result;
    },
  };

  return {
    store,
    accounts: {
      insertAccount: async (account) => store.insertAccount(account),
      getAccount: async (id) => store.getAccount(id),
      replacePasswordHash: async (id, expected, next) => store.replacePasswordHash(id, Buffer.from(expected), Buffer.from(next)),
      isReceiver: async (id) => store.isReceiver(id),
      touch: async (id, atMs) => store.touch(id, atMs),
      listBlocks: async (receiverId) => store.listBlocks(receiverId),
      suspendedMerchants: async () => store.suspendedMerchants(),
      registerWithRequest: async (account, requestHash, digest, windowStartMs) => store.registerWithRequest(account, requestHash, digest, windowStartMs),
    },
    admin: createSqliteAdminStore(store.db),
    changes: createSqliteChangeReader(store),
    committer,
    feed,
    leader: { isLeader: true, close: async () => {} },
    history: createSqliteHistory(store),
    receipts: createSqliteReceiptStore(store, inner.receiptWrite),
    receiptFeed,
    async close() {
      await committer.close();
      await feed.close();
      store.close();
      ownership.release();
    },
  };
}

/** Reads on the hub's connection; writes through the commit worker (receipt-writes.ts). */
function createSqliteReceiptStore(store: SqliteStore, write: (w: ReceiptWrite) => Promise<unknown>): ReceiptStore {
  const r = store.receipts;
  return {
    confirm: async (batch, nowMs) => (await write({ kind: 'confirm', batch: [...batch], nowMs })) as ConfirmResult,
    appendProgress: async (events) => (await write({ kind: 'progress', events: [...events] })) as ReceiptEvent[],
    setOptOut: async (receiverId, optOut, nowMs) => (await write({ kind: 'opt-out', receiverId, optOut, nowMs })) as boolean,
    itemFacts: async (merchantId, itemIds, nowMs) => r.itemFacts(merchantId, itemIds, nowMs),
    publicCounts: async (seq, merchantId, endMs) => r.publicCounts(seq, merchantId, endMs),
    eventsAfter: async (merchantId, afterId, upToId, limit) => r.eventsAfter(merchantId, afterId, upToId, limit),
    deliveredItems: async (event) => r.deliveredItems(event),
    headEventId: async () => r.headEventId(),
  };
}

/** One process, one writer: every receipt event is this node's own and arrives in id order. */
function createInProcessReceiptFeed(initialHead: number): ReceiptFeed {
  let head = initialHead;
  const listeners: ((events: ReceiptEvent[]) => void)[] = [];
  return {
    get head() {
      return head;
    },
    onEvents: (listener) => void listeners.push(listener),
    committed(events) {
      const fresh = events.filter((e) => e.id > head);
      if (fresh.length === 0) return;
      head = fresh[fresh.length - 1]!.id;
      for (const listener of listeners) listener(fresh);
    },
  };
}
