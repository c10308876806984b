import { HubError, Reason } from '../core/errors.js';

export interface ScryptQueueOptions {
  /** scrypt runs at once; the rest wait in the queue. */
  concurrency: number;
  /** Runs waiting in all; past it a run is refused with AUTH_BUSY. */
  maxQueued: number;
  /**
   * Runs one source address keeps waiting when the queue is full. While the queue has room a
   * source may queue more (many clients behind one NAT or proxy logging in at once); once it
   * is full, a source below this share takes the place of the heaviest source's newest run,
   * and a source at it is refused with AUTH_BUSY.
   */
  maxQueuedPerSource: number;
}

export interface ScryptQueue {
  /**
   * Runs `work` (one scrypt hash or verification) when a slot is free. Throws AUTH_BUSY when
   * the queue is full and this source already has its share waiting, or no source waits with
   * more runs than this one; `field` names what the caller sent (e.g. `authorization`)
   * in that message. A waiting run may also end with AUTH_BUSY: evicted for a lighter source.
   */
  run<T>(source: string, field: string, work: () => Promise<T>): Promise<T>;
  /** refused counts every AUTH_BUSY, evicted those of runs that had been waiting. */
  readonly stats: { running: number; queued: number; refused: number; evicted: number };
}

interface Waiting {
  start: () => void;
  refuse: (error: HubError) => void;
}

/**
 * The one queue every scrypt run goes through: logins, decoy verifications for unknown ids,
 * registrations and rotations. It bounds the CPU an anonymous flood can take, so a remembered
 * credential (one HMAC, never queued) keeps its latency.
 *
 * Fair between sources (the client source key, see client-source.ts): waiting runs are
 * served round-robin by source, and a full queue still admits a source that has fewer runs
 * waiting than the heaviest one, by refusing the heaviest source's newest waiting run. So a
 * handful of addresses that keep the queue full cannot lock out a source they have not
 * crowded: a newcomer waits behind at most one run per waiting source.
 *
 * Work-conserving: the per-source share applies only once the queue is full. Refusing a
 * source past its share while the queue had room turned away bursts that harmed nobody: 50
 * first logins at once from one address got 3 in (issue 16's attack runner, 2026-12-03), and
 * so did every client behind one proxy address.
 */
export function createScryptQueue(options: ScryptQueueOptions): ScryptQueue {
  const stats = { running: 0, queued: 0, refused: 0, evicted: 0 };
  // Insertion order is the round-robin order: a served source goes to the back.
  const waiting = new Map<string, Waiting[]>();
  const busy = (field: string) =>
    new HubError(Reason.AuthBusy, `${field}: the hub is busy checking credentials (${stats.queued} waiting); retry with backoff`);

  function pump(): void {
    while (stats.running < options.concurrency) {
      const next = waiting.entries().next();
      if (next.done) return;
      const [source, queue] = next.value;
      const entry = queue.shift()!;
      waiting.delete(source);
      if (queue.length > 0) waiting.set(source, queue);
      stats.queued--;
      stats.running++;
      entry.start();
    }
  }

  /** Refuses the newest waiting run of the source with the most waiting, if it has more than `than` + 1. */
  function evictHeaviest(than: number, field: string): boolean {
    let heaviest: [string, Waiting[]] | undefined;
    // At most maxQueued sources wait, and this runs only when the queue is full.
    for (const entry of waiting) if (!heaviest || entry[1].length > heaviest[1].length) heaviest = entry;
    if (!heaviest || heaviest[1].length <= than + 1) return false;
    const [source, queue] = heaviest;
    const evicted = queue.pop()!;
    if (queue.length === 0) waiting.delete(source);
    stats.queued--;
    stats.refused++;
    stats.evicted++;
    evicted.refuse(busy(field));
    return true;
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
      const mine = queue?.length ?? 0;
      if (stats.queued >= options.maxQueued && (mine >= options.maxQueuedPerSource || !evictHeaviest(mine, field))) {
        stats.refused++;
        throw busy(field);
      }
      // pump() counts the run as running before it starts it.
      await new Promise<void>((start, refuse) => {
        const entry = { start, refuse };
        const current = waiting.get(source);
        if (current) current.push(entry);
        else waiting.set(source, [entry]);
        stats.queued++;
      });
      return execute(work);
    },
  };
}
