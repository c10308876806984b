import { isAbortError } from 'abort-controller-x';
import { PushHubError } from './errors.js';
import type { ReceiverClient } from './receiver-client.js';
import type { ReceiverEvent } from './receiver-client.js';
import type { StoreChange } from './types.js';
import { DeliveryConfirmer } from './receipts.js';

/** Options of ReceiverStore.sync. */
export interface SyncOptions {
  /** Ends the sync: `sync` resolves. */
  signal?: AbortSignal;
  /** How often expired items are dropped, in ms (default 60 000). */
  purgeIntervalMs?: number;
  /** Called after each (re)connection once the backlog is applied, with the store's cursor. */
  onCaughtUp?: (sequence: number) => void;
  /**
   * Confirm delivery to the hub after each committed batch (default true): at most about
   * once a second while events flow, at once on caughtUp. Whether merchants see the
   * receipts is the receiver's stored setting (ReceiverClient.receiptPolicy).
   */
  confirmDeliveries?: boolean;
  /** Called when a confirmation fails (the next one covers it). */
  onConfirmError?: (error: unknown) => void;
}

/** What the sync loop needs of a store. */
export interface SyncTarget {
  readonly cursor: number;
  readonly historyId: string;
  /** True while a reset's new state is being gathered: the cursor is still the old history's. */
  readonly resetting: boolean;
  bindReceiver(receiverId: string): void;
  applyBatch(events: readonly ReceiverEvent[]): StoreChange[];
  purgeExpired(): StoreChange[];
}

/**
 * Keeps `store` current from `client`: subscribes after the stored cursor and applies each
 * batch the hub sends in one transaction, until `signal` aborts (resolves) or the
 * subscription fails for good (rejects). When the hub reports the cursor as beyond its
 * newest sequence (its database was replaced), the store starts over from the hub's state.
 */
export async function syncReceiverStore(store: SyncTarget, client: ReceiverClient, options: SyncOptions = {}): Promise<void> {
  store.bindReceiver(client.id);
  const purge = setInterval(() => store.purgeExpired(), options.purgeIntervalMs ?? 60_000);
  purge.unref();
  // Confirms what the store has committed: after applyBatch returns, never before.
  const confirmer = options.confirmDeliveries === false ? undefined : new DeliveryConfirmer((seq) => client.confirmDelivery(seq), options.onConfirmError);
  try {
    let startOver = false;
    for (;;) {
      try {
        store.purgeExpired();
        if (startOver) store.applyBatch([{ type: 'reset', reason: 'cursor_ahead', historyId: '' }]);
        const from = startOver ? { afterSequence: 0, historyId: '' } : { afterSequence: store.cursor, historyId: store.historyId };
        startOver = false;
        for await (const batch of client.subscribeBatches({ ...from, signal: options.signal })) {
          store.applyBatch(batch);
          // Mid-reset the stored cursor is the old history's: nothing to confirm until the caughtUp.
          if (confirmer && store.cursor > 0 && !store.resetting) {
            confirmer.note(store.cursor);
            if (batch.some((event) => event.type === 'caughtUp')) confirmer.flush();
          }
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
    confirmer?.close();
  }
}
