import pg from 'pg';
import { itemIdSequence } from '../../core/ids.js';
import { PUBLIC_RECEIVER } from '../../core/records.js';
import { type ConfirmResult, type ItemFacts, PUBLIC_PROGRESS, type ReceiptEvent, endOfItemRow, tombstoneReplaced } from '../../core/receipts.js';
import type { ProgressInput, ReceiptFeed, ReceiptStore } from '../ports.js';
import { Channel, LOCK_NAMESPACE, LockKey, connectionConfig, inTransaction } from './connection.js';
import { storageFaultsOf } from './storage-fault.js';

const EVENT_COLUMNS = 'id, merchant_id, receiver_id, from_seq, up_to_seq, at_ms, delivered_count, eligible_count, item_id';

interface EventRow {
  id: number;
  merchant_id: string;
  receiver_id: string;
  from_seq: number;
  up_to_seq: number;
  at_ms: number;
  delivered_count: number;
  eligible_count: number;
  item_id: string;
}

const toEvent = (r: EventRow): ReceiptEvent => ({
  id: r.id,
  merchantId: r.merchant_id,
  receiverId: r.receiver_id,
  fromSeq: r.from_seq,
  upToSeq: r.up_to_seq,
  atMs: r.at_ms,
  deliveredCount: r.delivered_count,
  eligibleCount: r.eligible_count,
  itemId: r.item_id,
});

/**
 * Receipts on PostgreSQL. Every write takes the Receipts advisory lock inside its
 * transaction, so receipt event ids commit in ascending order across nodes (the feed reads
 * `id > last` and misses none), and sends one NOTIFY that wakes the other nodes' feeds. Each
 * statement is set-based: a batch of confirmations costs a fixed handful of round trips.
 */
export function createPostgresReceiptStore(pool: pg.Pool): ReceiptStore {
  const write = async <T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> => {
    const c = await storageFaultsOf(pool.connect());
    try {
      return await storageFaultsOf(
        inTransaction(c, async () => {
          await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_NAMESPACE, LockKey.Receipts]);
          const result = await fn(c);
          await c.query(`NOTIFY ${Channel.Receipts}`);
          return result;
        }),
      );
    } finally {
      c.release();
    }
  };

  const insertEvents = async (c: pg.ClientBase, events: (Omit<ReceiptEvent, 'id'> & { keepUntilMs: number })[]): Promise<ReceiptEvent[]> => {
    if (events.length === 0) return [];
    const col = <K extends keyof (typeof events)[number]>(k: K) => events.map((e) => e[k]);
    const { rows } = await c.query<EventRow>({
      name: 'receipt-events-insert',
      text: `INSERT INTO receipt_events (merchant_id, receiver_id, from_seq, up_to_seq, at_ms, delivered_count, eligible_count, item_id, keep_until_ms)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::text[], $9::bigint[])
             RETURNING ${EVENT_COLUMNS}`,
      values: [col('merchantId'), col('receiverId'), col('fromSeq'), col('upToSeq'), col('atMs'), col('deliveredCount'), col('eligibleCount'), col('itemId'), col('keepUntilMs')],
    });
    return rows.map(toEvent).sort((a, b) => a.id - b.id);
  };

  return {
    confirm(batch, nowMs) {
      return write(async (c): Promise<ConfirmResult> => {
        const ids = batch.map((b) => b.receiverId);
        const { rows: cursors } = await c.query<{ receiver_id: string; confirmed_seq: number; opted_out: boolean }>({
          name: 'receipt-cursors-get',
          text: 'SELECT receiver_id, confirmed_seq, opted_out FROM receipt_cursors WHERE receiver_id = ANY($1)',
          values: [ids],
        });
        const byId = new Map(cursors.map((r) => [r.receiver_id, r]));
        const moves: { receiverId: string; from: number; upTo: number }[] = [];
        const movedAt = new Map<string, number>();
        const confirmed = batch.map(({ receiverId, upToSeq }, i) => {
          const cursor = byId.get(receiverId);
          if (cursor?.opted_out) return 0;
          const from = cursor?.confirmed_seq ?? 0;
          if (upToSeq <= from) return from;
          moves.push({ receiverId, from, upTo: upToSeq });
          movedAt.set(receiverId, i);
          return upToSeq;
        });
        if (moves.length === 0) return { confirmed, events: [], publicItems: [], lagsMs: [] };
        // The registration time comes with the first row: a public item's counts compare it.
        const { rows: stored } = await c.query<{ receiver_id: string }>({
          name: 'receipt-cursors-upsert',
          text: `INSERT INTO receipt_cursors (receiver_id, confirmed_seq, confirmed_at_ms, opted_out, registered_at_ms)
                 SELECT a.id, m.up_to, $3, false, a.created_at_ms
                 FROM unnest($1::text[], $2::bigint[]) AS m(receiver_id, up_to) JOIN accounts a ON a.id = m.receiver_id
                 ON CONFLICT (receiver_id) DO UPDATE SET confirmed_seq = EXCLUDED.confirmed_seq, confirmed_at_ms = EXCLUDED.confirmed_at_ms
                 RETURNING receiver_id`,
          values: [moves.map((m) => m.receiverId), moves.map((m) => m.upTo), nowMs],
        });
        const registered = new Set(stored.map((r) => r.receiver_id));
        const done = moves.filter((m) => registered.has(m.receiverId));
        // Not a registered account (deleted meanwhile): nothing was recorded.
        for (const m of moves) if (!registered.has(m.receiverId)) confirmed[movedAt.get(m.receiverId)!] = 0;
        const { rows: covered } = await c.query<{ receiver_id: string; from_seq: number; up_to: number; merchant_id: string; oldest_ms: number; keep_until_ms: number }>({
          name: 'receipt-covered-specific',
          text: `SELECT m.receiver_id, m.from_seq, m.up_to, c.merchant_id, MIN(c.pushed_at_ms) AS oldest_ms, MAX(c.valid_until_ms) AS keep_until_ms
                 FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS m(receiver_id, from_seq, up_to)
                 JOIN changes c ON c.receiver_id = m.receiver_id AND c.seq > m.from_seq AND c.seq <= m.up_to
                   AND c.kind = 1 AND c.valid_until_ms > $4
                 -- Items of a merchant the receiver blocks (or a suspended one) never reached it.
                 WHERE NOT EXISTS (SELECT 1 FROM bars b WHERE b.receiver_id IN (c.receiver_id, '') AND b.merchant_id = c.merchant_id)
                 GROUP BY m.receiver_id, m.from_seq, m.up_to, c.merchant_id`,
          values: [done.map((m) => m.receiverId), done.map((m) => m.from), done.map((m) => m.upTo), nowMs],
        });
        const events = await insertEvents(
          c,
          covered.map((r) => ({ merchantId: r.merchant_id, receiverId: r.receiver_id, fromSeq: r.from_seq, upToSeq: r.up_to, atMs: nowMs, deliveredCount: 0, eligibleCount: 0, itemId: '', keepUntilMs: r.keep_until_ms })),
        );
        const low = Math.min(...done.map((m) => m.from));
        const high = Math.max(0, ...done.map((m) => m.upTo));
        const { rows: publicRows } = high === 0
          ? { rows: [] }
          : await c.query<{ seq: number; item_id: string; merchant_id: string; valid_until_ms: number }>({
              name: 'receipt-covered-public',
              text: `SELECT seq, item_id, merchant_id, valid_until_ms FROM changes
                     WHERE receiver_id = '' AND seq > $1 AND seq <= $2 AND kind = 1 AND valid_until_ms > $3 ORDER BY seq`,
              values: [low, high, nowMs],
            });
        return {
          confirmed,
          events,
          publicItems: publicRows.map((r) => ({ seq: r.seq, itemId: r.item_id, merchantId: r.merchant_id, validUntilMs: r.valid_until_ms })),
          lagsMs: covered.map((r) => nowMs - r.oldest_ms),
        };
      });
    },

    appendProgress(inputs: readonly ProgressInput[]) {
      if (inputs.length === 0) return Promise.resolve([]);
      return write((c) =>
        insertEvents(
          c,
          inputs.map((p) => ({ merchantId: p.merchantId, receiverId: PUBLIC_PROGRESS, fromSeq: p.seq, upToSeq: p.seq, atMs: p.atMs, deliveredCount: p.deliveredCount, eligibleCount: p.eligibleCount, itemId: p.itemId, keepUntilMs: p.keepUntilMs })),
        ),
      );
    },

    async setOptOut(receiverId, optOut, nowMs) {
      if (optOut === undefined) {
        const { rows } = await storageFaultsOf(pool.query<{ opted_out: boolean }>({
          name: 'receipt-opt-out-get',
          text: 'SELECT opted_out FROM receipt_cursors WHERE receiver_id = $1',
          values: [receiverId],
        }));
        return rows[0]?.opted_out === true;
      }
      return write(async (c) => {
        await c.query({
          name: 'receipt-opt-out-set',
          text: `INSERT INTO receipt_cursors (receiver_id, confirmed_seq, confirmed_at_ms, opted_out, registered_at_ms)
                 SELECT id, 0, $2, $3, created_at_ms FROM accounts WHERE id = $1
                 ON CONFLICT (receiver_id) DO UPDATE SET opted_out = EXCLUDED.opted_out`,
          values: [receiverId, nowMs, optOut],
        });
        // Nothing about an opted-out receiver is kept for merchants: its receipts go now.
        if (optOut) await c.query({ name: 'receipt-events-forget', text: 'DELETE FROM receipt_events WHERE receiver_id = $1', values: [receiverId] });
        return optOut;
      });
    },

    async itemFacts(merchantId, itemIds, nowMs) {
      const seqs = itemIds.map((id) => itemIdSequence(id));
      const { rows: items } = await storageFaultsOf(pool.query<{ seq: number; item_id: string; merchant_id: string; receiver_id: string; valid_until_ms: number }>({
        name: 'receipt-item-rows',
        text: 'SELECT seq, item_id, merchant_id, receiver_id, valid_until_ms FROM changes WHERE seq = ANY($1) AND kind = 1',
        values: [seqs.filter((s) => s !== undefined)],
      }));
      const itemById = new Map(items.map((r) => [r.item_id, r]));
      const missing = itemIds.filter((id, i) => seqs[i] !== undefined && !itemById.has(id));
      const { rows: tombs } = missing.length === 0
        ? { rows: [] }
        : await storageFaultsOf(pool.query<{ item_id: string; merchant_id: string; receiver_id: string; pushed_at_ms: number; frame: Buffer }>({
            name: 'receipt-tombstone-rows',
            text: 'SELECT item_id, merchant_id, receiver_id, pushed_at_ms, frame FROM changes WHERE item_id = ANY($1) AND kind = 2',
            values: [missing],
          }));
      const tombById = new Map(tombs.map((r) => [r.item_id, r]));
      const facts = itemIds.map((itemId, i): ItemFacts => {
        const seq = seqs[i];
        if (seq === undefined) return { found: false, itemId };
        const item = itemById.get(itemId);
        // Another merchant's item is reported exactly like a missing one: no existence oracle.
        if (item) {
          if (item.merchant_id !== merchantId) return { found: false, itemId };
          return { found: true, itemId, seq, merchantId, receiverId: item.receiver_id, end: endOfItemRow(item.valid_until_ms, nowMs), optedOut: false };
        }
        const tomb = tombById.get(itemId);
        if (!tomb || tomb.merchant_id !== merchantId) return { found: false, itemId };
        return {
          found: true, itemId, seq, merchantId, receiverId: tomb.receiver_id,
          end: { kind: tombstoneReplaced(tomb.frame) ? 'replaced' : 'withdrawn', atMs: tomb.pushed_at_ms },
          optedOut: false,
        };
      });
      const specific = facts.filter((f): f is Extract<ItemFacts, { found: true }> => f.found && f.receiverId !== PUBLIC_RECEIVER);
      if (specific.length === 0) return facts;
      const { rows: optedOut } = await storageFaultsOf(pool.query<{ receiver_id: string }>({
        name: 'receipt-opted-out',
        text: 'SELECT receiver_id FROM receipt_cursors WHERE receiver_id = ANY($1) AND opted_out',
        values: [[...new Set(specific.map((f) => f.receiverId))]],
      }));
      const out = new Set(optedOut.map((r) => r.receiver_id));
      for (const f of specific) f.optedOut = out.has(f.receiverId);
      // A merchant the receiver blocks sees nothing of that receiver.
      const { rows: bars } = await storageFaultsOf(pool.query<{ receiver_id: string }>({
        name: 'receipt-barred',
        text: 'SELECT receiver_id FROM bars WHERE receiver_id = ANY($1) AND merchant_id = $2',
        values: [[...new Set(specific.map((f) => f.receiverId))], merchantId],
      }));
      const barred = new Set(bars.map((r) => r.receiver_id));
      if (barred.size > 0) {
        for (let i = 0; i < facts.length; i++) {
          const f = facts[i]!;
          if (f.found && f.receiverId !== PUBLIC_RECEIVER && barred.has(f.receiverId)) facts[i] = { found: false, itemId: f.itemId };
        }
      }
      const asked = specific.filter((f) => !f.optedOut && !barred.has(f.receiverId));
      if (asked.length === 0) return facts;
      // The first confirmation of each receiver covering the merchant's items at or above seq.
      const { rows: covering } = await storageFaultsOf(pool.query<{ ord: number; from_seq: number; at_ms: number }>({
        name: 'receipt-first-covering',
        text: `SELECT t.ord, e.from_seq, e.at_ms
               FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS t(receiver_id, seq, ord)
               CROSS JOIN LATERAL (
                 SELECT from_seq, at_ms FROM receipt_events
                 WHERE receiver_id = t.receiver_id AND merchant_id = $3 AND up_to_seq >= t.seq AND receiver_id <> ''
                 ORDER BY up_to_seq LIMIT 1) e`,
        values: [asked.map((f) => f.receiverId), asked.map((f) => f.seq), merchantId],
      }));
      for (const row of covering) {
        const f = asked[row.ord - 1]!;
        if (row.from_seq < f.seq) f.confirmedAtMs = row.at_ms;
      }
      return facts;
    },

    async publicCounts(seq, merchantId, endMs) {
      // A live item counts every receiver registered so far: the kept total, not an index scan.
      const { rows } = await storageFaultsOf(pool.query<{ delivered: number; receivers: number; opted_out: number; delivered_blocking: number; eligible_blocking: number }>({
        name: 'receipt-public-counts',
        text: `SELECT
                 (SELECT count(*) FROM receipt_cursors WHERE confirmed_seq >= $1 AND registered_at_ms < $2 AND NOT opted_out)::bigint AS delivered,
                 CASE WHEN $3::boolean THEN (SELECT value FROM receipt_totals WHERE name = 'receivers')
                      ELSE (SELECT count(*) FROM accounts WHERE created_at_ms < $2 AND role = 'receiver') END::bigint AS receivers,
                 (SELECT count(*) FROM receipt_cursors WHERE registered_at_ms < $2 AND opted_out)::bigint AS opted_out,
                 -- Receivers that block the merchant count in neither.
                 (SELECT count(*) FROM bars b JOIN receipt_cursors c ON c.receiver_id = b.receiver_id
                   WHERE b.merchant_id = $4 AND b.cause = 'blocked' AND c.confirmed_seq >= $1 AND c.registered_at_ms < $2 AND NOT c.opted_out)::bigint AS delivered_blocking,
                 (SELECT count(*) FROM bars b JOIN accounts a ON a.id = b.receiver_id
                   WHERE b.merchant_id = $4 AND b.cause = 'blocked' AND a.created_at_ms < $2
                     AND NOT EXISTS (SELECT 1 FROM receipt_cursors c WHERE c.receiver_id = b.receiver_id AND c.opted_out))::bigint AS eligible_blocking`,
        values: [seq, endMs ?? Number.MAX_SAFE_INTEGER, endMs === undefined, merchantId],
      }));
      const r = rows[0]!;
      return { delivered: r.delivered - r.delivered_blocking, eligible: r.receivers - r.opted_out - r.eligible_blocking };
    },

    async eventsAfter(merchantId, afterId, upToId, limit) {
      const { rows } = await storageFaultsOf(pool.query<EventRow>({
        name: 'receipt-events-after',
        text: `SELECT ${EVENT_COLUMNS} FROM receipt_events WHERE merchant_id = $1 AND id > $2 AND id <= $3 ORDER BY id LIMIT $4`,
        values: [merchantId, afterId, upToId, limit],
      }));
      return rows.map(toEvent);
    },

    async deliveredItems(e) {
      // Items live when the receiver confirmed: one that had expired by then was not delivered.
      const { rows } = await storageFaultsOf(pool.query<{ item_id: string; seq: number }>({
        name: 'receipt-delivered-items',
        text: `SELECT item_id, seq FROM changes
               WHERE receiver_id = $1 AND seq > $2 AND seq <= $3 AND merchant_id = $4 AND kind = 1 AND valid_until_ms > $5 ORDER BY seq`,
        values: [e.receiverId, e.fromSeq, e.upToSeq, e.merchantId, e.atMs],
      }));
      return rows.map((r) => ({ itemId: r.item_id, seq: r.seq }));
    },

    async headEventId() {
      // The identity's sequence, not max(id): a purge may have deleted the newest events, and
      // a watcher's cursor from before must not become "beyond the newest". (It may count an
      // id a transaction still holds: this only bounds the cursor check.)
      const { rows } = await storageFaultsOf(pool.query<{ id: number }>({
        name: 'receipt-head',
        text: `SELECT CASE WHEN is_called THEN last_value ELSE 0 END::bigint AS id FROM receipt_events_id_seq`,
      }));
      return rows[0]!.id;
    },
  };
}

/**
 * Receipt events of every node to this node's watchers, in id order, each once: a pinned
 * LISTEN connection wakes a catch-up read (`id > head`), a one-second poll covers a lost
 * notification or a listener reconnecting. Writers commit ids in order (the advisory lock),
 * so a read never skips an id that commits later.
 */
export function createPostgresReceiptFeed(
  pool: pg.Pool,
  url: string,
  options: { pollIntervalMs: number; pageSize: number; reconnectDelayMs: number; onError: (error: unknown) => void },
): ReceiptFeed & { start(): Promise<void>; close(): Promise<void> } {
  let head = 0;
  const listeners: ((events: ReceiptEvent[]) => void)[] = [];
  let listener: pg.Client | undefined;
  let poll: NodeJS.Timeout | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let closed = false;
  let running: Promise<void> | undefined;
  let again = false;

  const publish = (events: ReceiptEvent[]) => {
    const fresh = events.filter((e) => e.id > head);
    if (fresh.length === 0) return;
    head = fresh[fresh.length - 1]!.id;
    for (const l of listeners) {
      try {
        l(fresh);
      } catch (error) {
        options.onError(error);
      }
    }
  };

  const catchUp = (): Promise<void> => {
    if (closed) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          for (;;) {
            const { rows } = await pool.query<EventRow>({
              name: 'receipt-feed-page',
              text: `SELECT ${EVENT_COLUMNS} FROM receipt_events WHERE id > $1 ORDER BY id LIMIT $2`,
              values: [head, options.pageSize],
            });
            publish(rows.map(toEvent));
            if (rows.length < options.pageSize || closed) break;
          }
        } while (again && !closed);
      } catch (error) {
        options.onError(error);
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  const connectListener = async () => {
    const client = new pg.Client(connectionConfig(url, 'pushhub-receipt-listener'));
    const lost = (error?: unknown) => {
      if (error) options.onError(error);
      if (listener !== client) return;
      listener = undefined;
      client.end().catch(() => undefined);
      if (closed || reconnectTimer) return;
      reconnectTimer = setTimeout(() => {
        reconnectTimer = undefined;
        connectListener().catch((e) => lost(e));
      }, options.reconnectDelayMs);
      reconnectTimer.unref();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', () => void catchUp());
    await client.connect();
    await client.query(`LISTEN ${Channel.Receipts}`);
    if (closed) {
      await client.end();
      return;
    }
    listener = client;
    await catchUp();
  };

  return {
    get head() {
      return head;
    },
    onEvents: (l) => void listeners.push(l),
    committed(events) {
      // In order when nothing came between; otherwise the store has the rows in order.
      if (events.length > 0 && events[0]!.id === head + 1) publish([...events]);
      else void catchUp();
    },
    async start() {
      head = (await pool.query<{ id: number }>('SELECT coalesce(max(id), 0)::bigint AS id FROM receipt_events')).rows[0]!.id;
      await connectListener();
      poll = setInterval(() => void catchUp(), options.pollIntervalMs);
      poll.unref();
    },
    async close() {
      closed = true;
      if (poll) clearInterval(poll);
      if (reconnectTimer) clearTimeout(reconnectTimer);
      const client = listener;
      listener = undefined;
      await client?.end().catch(() => undefined);
      await running?.catch(() => undefined);
    },
  };
}
