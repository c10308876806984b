import { isAbortError } from 'abort-controller-x';
import { PushHubError } from './errors.js';
import type { ReceiverClient } from './receiver-client.js';
import type { ReceiverEvent } from './receiver-client.js';
import type { StoreChange } from './receiver-store-tables.js';

/** Options of ReceiverStore.sync. */
export interface SyncOptions {
  /** Ends the sync: `sync` resolves. */
  signal?: AbortSignal;
  /** How often expired items are dropped, in ms (default 60 000). */
  purgeIntervalMs?: number;
  /** Called after each (re)connection once the backlog is applied, with the store's cursor. */
  onCaughtUp?: (sequence: bigint) => void;
}

/** What the sync loop needs of a store. */
export interface SyncTarget {
  readonly cursor: bigint;
  readonly historyId: string;
  bindReceiver(receiverId: string): void;
  applyBatch(events: readonly ReceiverEvent[]): StoreChange[];
  purgeExpired(): StoreChange[];
}

/**
 * Keeps `store` current from `client`: subscribes after the stored cursor (of the stored
 * history) and applies each batch the hub sends in one transaction, until `signal` aborts
 * (resolves) or the subscription fails for good (rejects). A reset from the hub is applied
 * by the store (see ReceiverStore.sync). A hub older than history ids refuses a cursor beyond
 * its newest sequence (CURSOR_OUT_OF_RANGE): that is a reset too, from the hub's state.
 */
export async function syncReceiverStore(store: SyncTarget, client: ReceiverClient, options: SyncOptions = {}): Promise<void> {
  store.bindReceiver(client.id);
  const purge = setInterval(() => store.purgeExpired(), options.purgeIntervalMs ?? 60_000);
  purge.unref();
  try {
    let startOver = false;
    for (;;) {
      try {
        store.purgeExpired();
        if (startOver) store.applyBatch([{ type: 'reset', reason: 'cursor_ahead', historyId: '' }]);
        const from = startOver ? { afterSequence: 0n, historyId: '' } : { afterSequence: store.cursor, historyId: store.historyId };
        startOver = false;
        for await (const batch of client.subscribeBatches({ ...from, signal: options.signal })) {
          store.applyBatch(batch);
          if (options.onCaughtUp) {
            for (const event of batch) if (event.type === 'caughtUp') options.onCaughtUp(event.sequence);
          }
        }
        return;
      } catch (error) {
        if (isAbortError(error) || options.signal?.aborted) return;
        if (error instanceof PushHubError && error.reason === 'CURSOR_OUT_OF_RANGE') {
          startOver = true;
          continue;
        }
        throw error;
      }
    }
  } finally {
    clearInterval(purge);
  }
}
