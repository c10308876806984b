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
  bindReceiver(receiverId: string): void;
  applyBatch(events: readonly ReceiverEvent[]): StoreChange[];
  purgeExpired(): StoreChange[];
  /** Empties the store and its cursor (the hub no longer knows the cursor). */
  startOver(): void;
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
    for (;;) {
      try {
        store.purgeExpired();
        for await (const batch of client.subscribeBatches({ afterSequence: store.cursor, signal: options.signal })) {
          store.applyBatch(batch);
          if (confirmer && store.cursor > 0) {
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
          store.startOver();
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
