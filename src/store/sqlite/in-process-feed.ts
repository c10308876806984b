import type { ChangeRecord } from '../../core/records.js';
import type { AccountEvent, ChangeFeed } from '../ports.js';

/**
 * The SQLite backend's feed: one process, one writer, so every commit is this node's own and
 * arrives in sequence order; it is handed to the listeners as it is reported, with no read.
 * Account events reach this process's listeners at once.
 */
export function createInProcessFeed(initialHead: number): ChangeFeed {
  let head = initialHead;
  const changeListeners: ((changes: ChangeRecord[]) => void)[] = [];
  const accountListeners: ((event: AccountEvent) => void)[] = [];
  return {
    get head() {
      return head;
    },
    onChanges: (listener) => void changeListeners.push(listener),
    onAccountEvent: (listener) => void accountListeners.push(listener),
    committed(changes, newHead) {
      // The head moves first: a stream attached meanwhile reads its backlog up to it and
      // drops live changes at or below its cursor.
      if (newHead > head) head = newHead;
      if (changes.length > 0) for (const listener of changeListeners) listener(changes);
    },
    async publishAccountEvent(event) {
      for (const listener of accountListeners) listener(event);
    },
    start: async () => {},
    close: async () => {},
  };
}
