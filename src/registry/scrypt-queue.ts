import { HubError, Reason } from '../core/errors.js';

export interface ScryptQueueOptions {
  /** scrypt runs at once; the rest wait in the queue. */
  concurrency: number;
  /** Runs waiting in all; past it a run is refused with AUTH_BUSY. */
  maxQueued: number;
  /** Runs waiting from one source address; past it that source is refused with AUTH_BUSY. */
  maxQueuedPerSource: number;
}

export interface ScryptQueue {
  /**
   * Runs `work` (one scrypt hash or verification) when a slot is free. Throws AUTH_BUSY at
   * once when the queue, or this source's share of it, is full; `field` names what the
   * caller sent (e.g. `authorization`) in that message.
   */
  run<T>(source: string, field: string, work: () => Promise<T>): Promise<T>;
  readonly stats: { running: number; queued: number; refused: number };
}

/**
 * The one queue every scrypt run goes through: logins, decoy verifications for unknown ids,
 * registrations and rotations. It bounds the CPU an anonymous flood can take, so a remembered
 * credential (one HMAC, never queued) keeps its latency. Waiting runs are served round-robin
 * by source address, so one address cannot make everyone else wait behind its backlog.
 */
export function createScryptQueue(options: ScryptQueueOptions): ScryptQueue {
  const stats = { running: 0, queued: 0, refused: 0 };
  // Insertion order is the round-robin order: a served source goes to the back.
  const waiting = new Map<string, Array<() => void>>();

  function pump(): void {
    while (stats.running < options.concurrency) {
      const next = waiting.entries().next();
      if (next.done) return;
      const [source, queue] = next.value;
      const start = queue.shift()!;
      waiting.delete(source);
      if (queue.length > 0) waiting.set(source, queue);
      stats.queued--;
      stats.running++;
      start();
    }
  }

  async function execute<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } finally {
      stats.running--;
      pump();
    }
  }

  return {
    stats,
    async run(source, field, work) {
      if (stats.running < options.concurrency && stats.queued === 0) {
        stats.running++;
        return execute(work);
      }
      const queue = waiting.get(source);
      if (stats.queued >= options.maxQueued || (queue?.length ?? 0) >= options.maxQueuedPerSource) {
        stats.refused++;
        throw new HubError(Reason.AuthBusy,
          `${field}: the hub is busy checking credentials (${stats.queued} waiting); retry with backoff`,
        );
      }
      // pump() counts the run as running before it starts it.
      await new Promise<void>((resolve) => {
        if (queue) queue.push(resolve);
        else waiting.set(source, [resolve]);
        stats.queued++;
      });
      return execute(work);
    },
  };
}
