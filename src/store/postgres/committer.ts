import pg from 'pg';
import { itemIdSequence } from '../../core/ids.js';
import {
  type BatchWrites,
  type StoredRequest,
  type WorkingSet,
  type WorkingSetCommitter,
  type WorkingSetQuery,
  workingSetKey,
} from '../ports.js';
import type { AccountRole, BarCause, ChangeRecord } from '../../core/records.js';
import { Channel, connectionConfig, inTransaction } from './connection.js';
import { CHANGE_COLUMNS, type ChangeRow, toChange } from './rows.js';
import { PostgresFault, PostgresStorageError, asStorageFault } from './storage-fault.js';

/** Rows removed per purge transaction, so the head lock is never held for long. */
const PURGE_CHUNK = 5000;

interface RequestRow {
  merchant_id: string;
  request_id: string;
  item_id: string;
  seq: number;
  created_at_ms: number;
  digest: string;
}

/**
 * The node's one writer: a dedicated connection on which commits run one after another in
 * call order (the domain's group-commit queue hands it whole batches).
 *
 * Every writing transaction starts with `SELECT … FROM head FOR UPDATE`. Writers of all
 * nodes therefore queue on that row, so each batch's sequences are assigned and committed
 * before the next batch reads the head: sequence order is commit order, and a reader of
 * `seq > cursor AND seq <= head` can never skip a row that commits later (issue 11 measured
 * 0.8-9.5 % skipped rows without such a lock).
 *
 * A connection lost during a commit fails that commit and the next one opens a new
 * connection. If it is lost during COMMIT itself, the outcome is unknown to this node: the
 * caller's retry with the same request id is then answered from the record if it did commit.
 *
 * A storage fault (connection lost, disk full, read-only, shutdown) rejects with a
 * PostgresStorageError carrying a `code` (storage-fault.ts); a failure of decide rejects with
 * decide's own error. Either way nothing of the batch is stored.
 */
export function createPostgresWriter(
  url: string,
  onError: (error: unknown) => void,
  /** After each commit: the rows stored, the new head and the head the batch started from. */
  onCommitted: (stored: ChangeRecord[], head: number, previousHead: number) => void,
): WorkingSetCommitter & { ready(): Promise<void> } {
  let client: pg.Client | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  let closed = false;

  const connection = async (): Promise<pg.Client> => {
    if (client) return client;
    const next = new pg.Client(connectionConfig(url, 'pushhub-writer'));
    // A lost connection fails the commit in flight; the next commit opens a new one.
    next.on('error', (error) => {
      onError(error);
      if (client === next) client = undefined;
    });
    next.on('end', () => {
      if (client === next) client = undefined;
    });
    await next.connect();
    client = next;
    return next;
  };

  /** Runs fn after every earlier call on the writer: one transaction at a time per node. */
  const serialised = <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const run = chain.then(async () => {
      if (closed) throw new Error('committer: closed');
      let c: pg.Client | undefined;
      try {
        c = await connection();
        return await fn(c);
      } catch (error) {
        const fault = asStorageFault(error);
        // A connection that failed this way is not trusted again, even if node-postgres has
        // not reported it ended: the next call opens a new one.
        if (fault instanceof PostgresStorageError && fault.code === PostgresFault.Unavailable && c && client === c) {
          client = undefined;
          c.end().catch(() => undefined);
        }
        throw fault;
      }
    });
    chain = run.catch(() => undefined);
    return run;
  };

  // Opened at once, so the node's first batch does not pay for the connection.
  const opened = serialised(async () => undefined);
  opened.catch(() => undefined);

  return {
    ready: () => opened,

    commit<R extends { writes: BatchWrites }>(query: WorkingSetQuery, decide: (ws: WorkingSet, head: number) => R) {
      return serialised(async (c) => {
        let stored: ChangeRecord[] = [];
        let head = 0;
        const result = await inTransaction(c, async () => {
          head = (await c.query<{ seq: number }>({ name: 'head-lock', text: 'SELECT seq FROM head WHERE id = 1 FOR UPDATE' }))
            .rows[0]!.seq;
          const ws = await loadWorkingSet(c, query);
          const decided = decide(ws, head);
          stored = await write(c, decided.writes, head);
          return decided;
        });
        onCommitted(stored, result.writes.head, head);
        return result;
      });
    },

    async purge(nowMs: number, requestCutoffMs: number) {
      let removed = 0;
      // Chunks, each its own transaction under the head lock: a purge never deadlocks with a
      // commit deleting the same rows, and writers wait at most one chunk.
      for (;;) {
        const n = await serialised((c) =>
          inTransaction(c, async () => {
            await c.query({ name: 'head-lock', text: 'SELECT seq FROM head WHERE id = 1 FOR UPDATE' });
            const changes = await c.query({
              name: 'purge-changes',
              text: `DELETE FROM changes WHERE seq IN
                       (SELECT seq FROM changes WHERE valid_until_ms <= $1 ORDER BY valid_until_ms LIMIT $2)`,
              values: [nowMs, PURGE_CHUNK],
            });
            const requests = await c.query({
              name: 'purge-requests',
              text: `DELETE FROM requests WHERE (merchant_id, request_id) IN
                       (SELECT merchant_id, request_id FROM requests WHERE created_at_ms < $1 LIMIT $2)`,
              values: [requestCutoffMs, PURGE_CHUNK],
            });
            await c.query('DELETE FROM registrations WHERE created_at_ms < $1', [requestCutoffMs]);
            // Account events only wake other nodes; an hour is far beyond the fallback poll.
            const events = await c.query('DELETE FROM account_events WHERE created_at_ms < $1', [nowMs - 3_600_000]);
            // Receipt events go with the items they cover (their keep_until is the items' end).
            const receipts = await c.query({
              name: 'purge-receipts',
              text: `DELETE FROM receipt_events WHERE id IN
                       (SELECT id FROM receipt_events WHERE keep_until_ms <= $1 LIMIT $2)`,
              values: [nowMs, PURGE_CHUNK],
            });
            return { changes: changes.rowCount ?? 0, requests: requests.rowCount ?? 0, events: events.rowCount ?? 0, receipts: receipts.rowCount ?? 0 };
          }),
        );
        removed += n.changes + n.requests;
        if (n.changes < PURGE_CHUNK && n.requests < PURGE_CHUNK && n.receipts < PURGE_CHUNK) return removed;
      }
    },

    async close() {
      closed = true;
      await chain;
      await client?.end().catch(() => undefined);
      client = undefined;
    },
  };
}

/** The working set in at most four statements: requests, items (by key and by id), receivers, counts. */
async function loadWorkingSet(c: pg.ClientBase, q: WorkingSetQuery): Promise<WorkingSet> {
  const ws: WorkingSet = {
    requests: new Map(),
    itemsByKey: new Map(),
    itemsById: new Map(),
    receivers: new Set(),
    publicItemCounts: new Map(),
    bars: new Map(),
    blockCounts: new Map(),
    accounts: new Map(),
    liveItems: new Map(),
  };

  if (q.requests.length > 0) {
    const { rows } = await c.query<RequestRow>({
      name: 'ws-requests',
      text: `SELECT r.merchant_id, r.request_id, r.item_id, r.seq, r.created_at_ms, r.digest
             FROM requests r JOIN unnest($1::text[], $2::text[]) AS q(merchant_id, request_id)
               ON r.merchant_id = q.merchant_id AND r.request_id = q.request_id`,
      values: [q.requests.map((r) => r.merchantId), q.requests.map((r) => r.requestId)],
    });
    for (const row of rows) {
      const record: StoredRequest = { itemId: row.item_id, seq: row.seq, createdAtMs: row.created_at_ms, digest: row.digest };
      ws.requests.set(workingSetKey(row.merchant_id, row.request_id), record);
    }
  }

  // Item ids carry their sequence, so a lookup by id is a primary-key read; an id that
  // carries none cannot name an item in this database.
  const byId = q.itemIds.flatMap((id) => {
    const seq = itemIdSequence(id);
    return seq === undefined ? [] : [{ id, seq }];
  });
  const keys = q.itemKeys.filter((k) => k.itemKey !== '');
  if (byId.length > 0 || keys.length > 0) {
    const { rows } = await c.query<ChangeRow & { by_key: boolean }>({
      name: 'ws-items',
      text: `SELECT ${CHANGE_COLUMNS}, true AS by_key FROM changes c
               JOIN unnest($1::text[], $2::text[], $3::text[]) AS q(merchant_id, receiver_id, item_key)
               USING (merchant_id, receiver_id, item_key)
             WHERE c.kind = 1 AND c.item_key <> ''
             UNION ALL
             SELECT ${CHANGE_COLUMNS}, false AS by_key FROM changes c
               JOIN unnest($4::bigint[], $5::text[]) AS q(seq, item_id) USING (seq, item_id)
             WHERE c.kind = 1`,
      values: [
        keys.map((k) => k.merchantId),
        keys.map((k) => k.receiverId),
        keys.map((k) => k.itemKey),
        byId.map((i) => i.seq),
        byId.map((i) => i.id),
      ],
    });
    for (const row of rows) {
      const change = toChange(row);
      if (row.by_key) ws.itemsByKey.set(workingSetKey(row.merchant_id, row.receiver_id, row.item_key), change);
      else ws.itemsById.set(row.item_id, change);
    }
  }

  if (q.receiverIds.length > 0) {
    const { rows } = await c.query<{ id: string }>({
      name: 'ws-receivers',
      text: "SELECT id FROM accounts WHERE id = ANY($1::text[]) AND role = 'receiver' AND deleted_at_ms IS NULL",
      values: [q.receiverIds],
    });
    for (const row of rows) ws.receivers.add(row.id);
  }

  if (q.publicCountsFor.length > 0) {
    for (const merchantId of q.publicCountsFor) ws.publicItemCounts.set(merchantId, 0);
    const { rows } = await c.query<{ merchant_id: string; n: number }>({
      name: 'ws-public-counts',
      text: `SELECT merchant_id, count(*)::int AS n FROM changes
             WHERE kind = 1 AND receiver_id = '' AND merchant_id = ANY($1::text[]) AND valid_until_ms > $2
             GROUP BY merchant_id`,
      values: [q.publicCountsFor, q.nowMs],
    });
    for (const row of rows) ws.publicItemCounts.set(row.merchant_id, row.n);
  }

  // Bars of the batch's merchants (suspended, deleted) and of its specific pushes' receivers
  // (blocked): one statement per batch, by primary key.
  const bars = q.bars ?? [];
  if (bars.length > 0) {
    const { rows } = await c.query<{ receiver_id: string; merchant_id: string; cause: BarCause }>({
      name: 'ws-bars',
      text: `SELECT b.receiver_id, b.merchant_id, b.cause FROM bars b
               JOIN unnest($1::text[], $2::text[]) AS q(receiver_id, merchant_id) USING (receiver_id, merchant_id)`,
      values: [bars.map((b) => b.receiverId), bars.map((b) => b.merchantId)],
    });
    for (const row of rows) ws.bars!.set(workingSetKey(row.receiver_id, row.merchant_id), row.cause);
  }
  // Account actions only (rare): accounts, block counts, live items.
  if ((q.accountIds ?? []).length > 0) {
    const { rows } = await c.query<{
      id: string; role: AccountRole; display_name: string; password_hash: Buffer; created_at_ms: number;
      suspended_at_ms: number | null; deleted_at_ms: number | null;
    }>({
      name: 'ws-accounts',
      text: `SELECT id, role, display_name, password_hash, created_at_ms, suspended_at_ms, deleted_at_ms
             FROM accounts WHERE id = ANY($1::text[])`,
      values: [q.accountIds],
    });
    for (const row of rows) {
      ws.accounts!.set(row.id, {
        id: row.id,
        role: row.role,
        displayName: row.display_name,
        passwordHash: row.password_hash,
        createdAtMs: row.created_at_ms,
        ...(row.suspended_at_ms !== null && { suspendedAtMs: row.suspended_at_ms }),
        ...(row.deleted_at_ms !== null && { deletedAtMs: row.deleted_at_ms }),
      });
    }
  }
  for (const receiverId of q.blockCountsFor ?? []) {
    const { rows } = await c.query<{ n: number }>({
      name: 'ws-block-count',
      text: "SELECT count(*)::int AS n FROM bars WHERE receiver_id = $1 AND cause = 'blocked'",
      values: [receiverId],
    });
    ws.blockCounts!.set(receiverId, rows[0]!.n);
  }
  for (const { merchantId, receiverId } of q.liveItemsFor ?? []) {
    const { rows } =
      receiverId === undefined
        ? await c.query<ChangeRow>({
            name: 'ws-live-items-all',
            text: `SELECT ${CHANGE_COLUMNS} FROM changes WHERE merchant_id = $1 AND kind = 1 AND valid_until_ms > $2 ORDER BY seq`,
            values: [merchantId, q.nowMs],
          })
        : await c.query<ChangeRow>({
            name: 'ws-live-items-for',
            text: `SELECT ${CHANGE_COLUMNS} FROM changes
                   WHERE merchant_id = $1 AND kind = 1 AND valid_until_ms > $2 AND receiver_id IN ($3, '') ORDER BY seq`,
            values: [merchantId, q.nowMs, receiverId],
          });
    ws.liveItems!.set(workingSetKey(merchantId, receiverId ?? '*'), rows.map(toChange));
  }
  return ws;
}

/**
 * Writes one batch's decision: deletes first (so the key index admits the replacement),
 * then multi-row inserts. Returns the changes stored.
 */
async function write(c: pg.ClientBase, w: BatchWrites, head: number): Promise<ChangeRecord[]> {
  if (w.head < head) throw new Error(`committer: the batch moved the head back (${head} to ${w.head})`);
  for (const change of w.inserts) {
    if (change.seq <= head || change.seq > w.head) {
      throw new Error(`committer: change seq ${change.seq} outside the batch's range ${head + 1}..${w.head}`);
    }
  }
  // An item the batch itself replaced or withdrew is never stored: it would only collide
  // with its replacement in the key index and be deleted again.
  const removed = new Set(w.deletes);
  const inserts = w.inserts.filter((x) => !removed.has(x.seq));
  const deletes = w.deletes.filter((seq) => seq <= head);
  if (deletes.length > 0) {
    await c.query({ name: 'batch-delete', text: 'DELETE FROM changes WHERE seq = ANY($1::bigint[])', values: [deletes] });
  }
  if (inserts.length > 0) {
    const col = <T>(f: (x: ChangeRecord) => T) => inserts.map(f);
    await c.query({
      name: 'batch-insert',
      text: `INSERT INTO changes (${CHANGE_COLUMNS})
             SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::text[], $5::text[], $6::text[],
                                  $7::bytea[], $8::bigint[], $9::bigint[])`,
      values: [
        col((x) => x.seq),
        col((x) => x.kind),
        col((x) => x.itemId),
        col((x) => x.merchantId),
        col((x) => x.receiverId),
        col((x) => x.itemKey),
        col((x) => Buffer.from(x.frame.buffer, x.frame.byteOffset, x.frame.byteLength)),
        col((x) => x.pushedAtMs),
        col((x) => x.validUntilMs),
      ],
    });
  }
  if (w.requests.length > 0) {
    const col = <T>(f: (x: BatchWrites['requests'][number]) => T) => w.requests.map(f);
    // A record past the window (not purged yet) is replaced, as SQLite's INSERT OR REPLACE does.
    await c.query({
      name: 'batch-requests',
      text: `INSERT INTO requests (merchant_id, request_id, item_id, seq, created_at_ms, digest)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[])
             ON CONFLICT (merchant_id, request_id) DO UPDATE SET
               item_id = excluded.item_id, seq = excluded.seq, created_at_ms = excluded.created_at_ms,
               digest = excluded.digest`,
      values: [
        col((x) => x.merchantId),
        col((x) => x.requestId),
        col((x) => x.record.itemId),
        col((x) => x.record.seq),
        col((x) => x.record.createdAtMs),
        col((x) => x.record.digest),
      ],
    });
  }
  await writeAccountActions(c, w);
  if (w.head !== head) {
    await c.query({ name: 'head-set', text: 'UPDATE head SET seq = $1 WHERE id = 1', values: [w.head] });
    // One wake-up per batch, sent at commit; it carries no data (NOTIFY takes a cluster-wide
    // lock through the commit, so one per push would cap writes near 5k/s).
    await c.query({ name: 'notify-changes', text: `NOTIFY ${Channel.Changes}` });
  }
  return inserts;
}

/** Bars, suspensions and deletions of a batch's account actions, in the order they were decided. */
async function writeAccountActions(c: pg.ClientBase, w: BatchWrites): Promise<void> {
  for (const bar of w.bars ?? []) {
    if (bar.record === null) {
      await c.query({ name: 'bar-delete', text: 'DELETE FROM bars WHERE receiver_id = $1 AND merchant_id = $2', values: [bar.receiverId, bar.merchantId] });
    } else {
      await c.query({
        name: 'bar-save',
        text: `INSERT INTO bars (receiver_id, merchant_id, cause, at_ms) VALUES ($1, $2, $3, $4)
               ON CONFLICT (receiver_id, merchant_id) DO UPDATE SET cause = excluded.cause, at_ms = excluded.at_ms`,
        values: [bar.receiverId, bar.merchantId, bar.record.cause, bar.record.atMs],
      });
      // Receipts (issue 18): a blocked merchant keeps nothing of that receiver's receipts.
      if (bar.record.cause === 'blocked') {
        await c.query({ name: 'bar-receipts-delete', text: 'DELETE FROM receipt_events WHERE receiver_id = $1 AND merchant_id = $2', values: [bar.receiverId, bar.merchantId] });
      }
    }
  }
  for (const s of w.suspensions ?? []) {
    await c.query({ name: 'account-suspend', text: 'UPDATE accounts SET suspended_at_ms = $2 WHERE id = $1', values: [s.id, s.atMs] });
  }
  for (const d of w.deletions ?? []) {
    await c.query({
      name: 'account-delete',
      text: `UPDATE accounts SET password_hash = decode('', 'hex'), display_name = '', suspended_at_ms = NULL, deleted_at_ms = $2 WHERE id = $1`,
      values: [d.id, d.atMs],
    });
    if (d.role === 'receiver') {
      await c.query({ name: 'receiver-rows-delete', text: 'DELETE FROM changes WHERE receiver_id = $1', values: [d.id] });
      await c.query({ name: 'receiver-bars-delete', text: 'DELETE FROM bars WHERE receiver_id = $1', values: [d.id] });
      // Its confirmations go with it (issue 18's receipts).
      await c.query({ name: 'receiver-cursor-delete', text: 'DELETE FROM receipt_cursors WHERE receiver_id = $1', values: [d.id] });
      await c.query({ name: 'receiver-receipts-delete', text: 'DELETE FROM receipt_events WHERE receiver_id = $1', values: [d.id] });
    } else {
      await c.query({ name: 'merchant-blocks-delete', text: "DELETE FROM bars WHERE merchant_id = $1 AND receiver_id <> ''", values: [d.id] });
    }
  }
}
