import type pg from 'pg';
import type { ChangeReader, MerchantItemsQuery, ReceiverChangesQuery } from '../ports.js';
import { trimToBytes } from '../page-bytes.js';
import { CHANGE_COLUMNS, type ChangeRow, toChange } from './rows.js';
import { storageFaultsOf } from './storage-fault.js';

/**
 * Reads of the change log on the node's pool. Each is one statement, so it sees one
 * committed snapshot; `seq <= upToSeq` keeps a reader from running ahead of the feed, which
 * publishes only what is committed below the head.
 */
export function createPostgresChangeReader(pool: pg.Pool): ChangeReader {
  return {
    async receiverChanges(q: ReceiverChangesQuery) {
      const { rows } = await storageFaultsOf(pool.query<ChangeRow>({
        name: 'changes-for-receiver',
        // (kind = 1 OR seq > $5): a snapshot leaves out tombstones at or below its start;
        // without one $5 is 0 and every tombstone in range is kept.
        // Items and copies of a merchant the receiver blocks, or that is suspended, are left
        // out (tombstones always pass); markers (kind 4, 5) are for live streams only.
        text: `SELECT ${CHANGE_COLUMNS} FROM changes c
               WHERE receiver_id IN ($1, '') AND seq > $2 AND seq <= $3 AND valid_until_ms > $4
                 AND (kind = 1 OR seq > $5) AND kind <= 3
                 AND (kind = 2 OR NOT EXISTS (SELECT 1 FROM bars b WHERE b.receiver_id IN ($1, '') AND b.merchant_id = c.merchant_id))
               ORDER BY seq LIMIT $6`,
        values: [q.receiverId, q.afterSeq, q.upToSeq, q.nowMs, q.snapshotFrom ?? 0, q.limit],
      }));
      return trimToBytes(rows.map(toChange), q.maxBytes);
    },
    async merchantItems(q: MerchantItemsQuery) {
      const { rows } =
        q.receiverId === undefined
          ? await storageFaultsOf(pool.query<ChangeRow>({
              name: 'items-for-merchant',
              text: `SELECT ${CHANGE_COLUMNS} FROM changes
                     WHERE merchant_id = $1 AND kind = 1 AND seq > $2 AND valid_until_ms > $3
                     ORDER BY seq LIMIT $4`,
              values: [q.merchantId, q.afterSeq, q.nowMs, q.limit],
            }))
          : await storageFaultsOf(pool.query<ChangeRow>({
              name: 'items-for-merchant-receiver',
              text: `SELECT ${CHANGE_COLUMNS} FROM changes
                     WHERE receiver_id = $1 AND merchant_id = $2 AND kind = 1 AND seq > $3 AND valid_until_ms > $4
                     ORDER BY seq LIMIT $5`,
              values: [q.receiverId, q.merchantId, q.afterSeq, q.nowMs, q.limit],
            }));
      return trimToBytes(rows.map(toChange), q.maxBytes);
    },
    async headSequence() {
      // The head row is written by the same transaction as the batch: it is committed, never ahead.
      const { rows } = await storageFaultsOf(pool.query<{ seq: number }>({ name: 'head-read', text: 'SELECT seq FROM head WHERE id = 1' }));
      return rows[0]!.seq;
    },
  };
}
