import pg from 'pg';
import { ACCOUNT_EVENT_KINDS, type AccountEvent, type ChangeFeed } from '../ports.js';
import type { ChangeRecord } from '../../core/records.js';
import { Channel, LOCK_NAMESPACE, LockKey, connectionConfig, inTransaction } from './connection.js';
import { CHANGE_COLUMNS, type ChangeRow, toChange } from './rows.js';

export interface PostgresFeedOptions {
  /** Catch-up read even without a notification (a lost NOTIFY, a listener reconnecting). ms. */
  pollIntervalMs: number;
  /** Rows per catch-up read. */
  pageSize: number;
  /** First wait before reconnecting the listener; doubles up to 16x. ms. */
  reconnectDelayMs: number;
  onError: (error: unknown) => void;
}

/**
 * Hands every committed change of every node to this node's listeners, once, in sequence
 * order, with no gaps.
 *
 * The head row is updated by the same transaction that writes a batch, under the row lock
 * every writer takes first. So once a read sees head = H, every change with seq <= H is
 * committed, and `seq > published AND seq <= H` read in pages misses none of them. NOTIFY
 * (one per batch, no data) only says "read now"; a pinned LISTEN connection that reconnects
 * and a fallback poll make a lost notification cost latency, never a change.
 */
export function createPostgresChangeFeed(
  pool: pg.Pool,
  url: string,
  options: PostgresFeedOptions,
): ChangeFeed & { readUpTo(seq: number): Promise<void> } {
  let head = 0;
  let lastEventId = 0;
  const changeListeners: ((changes: ChangeRecord[]) => void)[] = [];
  const eventListeners: ((event: AccountEvent) => void)[] = [];
  let listener: pg.Client | undefined;
  let poll: NodeJS.Timeout | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let reconnectAttempt = 0;
  let closed = false;

  /** Publishes changes above head in order; anything at or below head was published already. */
  const publish = (changes: ChangeRecord[], newHead: number) => {
    const fresh = changes.length > 0 && changes[0]!.seq <= head ? changes.filter((c) => c.seq > head) : changes;
    if (newHead <= head) return;
    head = newHead;
    if (fresh.length === 0) return;
    for (const l of changeListeners) {
      try {
        l(fresh);
      } catch (error) {
        options.onError(error);
      }
    }
  };

  // One catch-up at a time; a request during one runs another right after it.
  let running: Promise<void> | undefined;
  let again = false;
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
          await readChanges();
          await readAccountEvents();
        } while (again && !closed);
      } catch (error) {
        // The poll retries; nothing is lost, the head stays where it was.
        options.onError(error);
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  const readChanges = async () => {
    const target = (await pool.query<{ seq: number }>({ name: 'feed-head', text: 'SELECT seq FROM head WHERE id = 1' })).rows[0]!
      .seq;
    while (head < target && !closed) {
      const { rows } = await pool.query<ChangeRow>({
        name: 'feed-page',
        text: `SELECT ${CHANGE_COLUMNS} FROM changes WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`,
        values: [head, target, options.pageSize],
      });
      // A short page reaches the target: the rows in between were deleted (replaced,
      // withdrawn or purged), and their tombstones, if any, are above them.
      const full = rows.length === options.pageSize;
      publish(rows.map(toChange), full ? rows[rows.length - 1]!.seq : target);
    }
  };

  const readAccountEvents = async () => {
    const { rows } = await pool.query<{ id: number; kind: string; account_id: string }>({
      name: 'feed-account-events',
      text: 'SELECT id, kind, account_id FROM account_events WHERE id > $1 ORDER BY id',
      values: [lastEventId],
    });
    for (const row of rows) {
      if (row.id <= lastEventId) continue;
      lastEventId = row.id;
      // A kind from a newer node is not ours to act on.
      if (!(ACCOUNT_EVENT_KINDS as readonly string[]).includes(row.kind)) continue;
      const event: AccountEvent = { kind: row.kind as AccountEvent['kind'], accountId: row.account_id };
      for (const l of eventListeners) {
        try {
          l(event);
        } catch (error) {
          options.onError(error);
        }
      }
    }
  };

  const scheduleReconnect = () => {
    if (closed || reconnectTimer) return;
    const delay = options.reconnectDelayMs * 2 ** Math.min(reconnectAttempt++, 4);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      connectListener().catch((error) => {
        options.onError(error);
        scheduleReconnect();
      });
    }, delay);
    reconnectTimer.unref();
  };

  const connectListener = async () => {
    const client = new pg.Client(connectionConfig(url, 'pushhub-listener'));
    const lost = (error?: unknown) => {
      if (error) options.onError(error);
      if (listener !== client) return;
      listener = undefined;
      client.end().catch(() => undefined);
      scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', () => void catchUp());
    await client.connect();
    await client.query(`LISTEN ${Channel.Changes}`);
    await client.query(`LISTEN ${Channel.Accounts}`);
    if (closed) {
      await client.end();
      return;
    }
    listener = client;
    reconnectAttempt = 0;
    // Whatever was notified while no one listened.
    await catchUp();
  };

  return {
    get head() {
      return head;
    },
    onChanges(l) {
      changeListeners.push(l);
    },
    onAccountEvent(l) {
      eventListeners.push(l);
    },
    committed(changes, newHead, previousHead) {
      // Continues what is published: hand it on without a read. A catch-up running meanwhile
      // cannot hold anything between: every seq up to previousHead is published, and the head
      // lock kept other nodes from committing inside this batch's range; publish() drops what
      // the catch-up brings again. Otherwise another node committed in between, and the
      // store has the rows in order.
      if (previousHead === head) publish(changes, newHead);
      else if (newHead > head) void catchUp();
    },
    async readUpTo(seq) {
      // One catch-up pass (it retries on its own poll if the read fails): never waits forever.
      if (head < seq) await catchUp();
    },
    async publishAccountEvent(event) {
      const client = await pool.connect();
      try {
        await inTransaction(client, async () => {
          // Ids are taken under a lock so they commit in order, as sequences do.
          await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_NAMESPACE, LockKey.AccountEvents]);
          await client.query(
            'INSERT INTO account_events (kind, account_id, created_at_ms) VALUES ($1, $2, $3)',
            [event.kind, event.accountId, Date.now()],
          );
          await client.query(`NOTIFY ${Channel.Accounts}`);
        });
      } finally {
        client.release();
      }
    },
    async start() {
      // Start from now: the node's streams read what came before from the change reader.
      head = (await pool.query<{ seq: number }>('SELECT seq FROM head WHERE id = 1')).rows[0]!.seq;
      // Committed events only (an id drawn by a transaction still open must not be skipped).
      lastEventId = (await pool.query<{ id: number }>('SELECT coalesce(max(id), 0) AS id FROM account_events')).rows[0]!.id;
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
