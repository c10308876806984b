import pg from 'pg';
import type { Leader } from '../ports.js';
import { LOCK_NAMESPACE, LockKey, connectionConfig } from './connection.js';

export interface PostgresLeaderOptions {
  /** How often a follower (or a leader that lost its connection) tries to take the lock. ms. */
  retryMs: number;
  onError: (error: unknown) => void;
  onChange?: (isLeader: boolean) => void;
}

/**
 * Leader election by a session advisory lock on a pinned connection: the server releases it
 * when that connection ends (a node that dies, or a network cut the server notices), and a
 * follower takes it on its next try. A node that loses its connection stops leading at once
 * and tries again on a new one.
 */
export function createPostgresLeader(url: string, options: PostgresLeaderOptions): Leader & { ready: Promise<void> } {
  let client: pg.Client | undefined;
  let isLeader = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  const setLeader = (value: boolean) => {
    if (isLeader === value) return;
    isLeader = value;
    options.onChange?.(value);
  };

  const schedule = () => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void attempt();
    }, options.retryMs);
    timer.unref();
  };

  const drop = (c: pg.Client) => {
    if (client !== c) return;
    client = undefined;
    setLeader(false);
    c.end().catch(() => undefined);
    schedule();
  };

  const attempt = async (): Promise<void> => {
    if (closed) return;
    try {
      if (!client) {
        const c = new pg.Client(connectionConfig(url, 'pushhub-leader'));
        c.on('error', (error) => {
          options.onError(error);
          drop(c);
        });
        c.on('end', () => drop(c));
        await c.connect();
        if (closed) {
          await c.end();
          return;
        }
        client = c;
      }
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [
        LOCK_NAMESPACE,
        LockKey.Leader,
      ]);
      if (rows[0]!.ok) setLeader(true);
      else schedule();
    } catch (error) {
      options.onError(error);
      if (client) drop(client);
      else schedule();
    }
  };

  const ready = attempt();
  return {
    ready,
    get isLeader() {
      return isLeader;
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await ready;
      const c = client;
      client = undefined;
      setLeader(false);
      // Ending the session releases the lock for the next node.
      await c?.end().catch(() => undefined);
    },
  };
}
