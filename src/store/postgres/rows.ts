import type { ChangeKind, ChangeRecord } from '../../core/records.js';

/** The change log's columns, in the order every SELECT and the multi-row INSERT use. */
export const CHANGE_COLUMNS = 'seq, kind, item_id, merchant_id, receiver_id, item_key, frame, pushed_at_ms, valid_until_ms';

export interface ChangeRow {
  seq: number;
  kind: number;
  item_id: string;
  merchant_id: string;
  receiver_id: string;
  item_key: string;
  frame: Buffer;
  pushed_at_ms: number;
  valid_until_ms: number;
}

export const toChange = (row: ChangeRow): ChangeRecord => ({
  seq: row.seq,
  kind: row.kind as ChangeKind,
  itemId: row.item_id,
  merchantId: row.merchant_id,
  receiverId: row.receiver_id,
  itemKey: row.item_key,
  frame: row.frame,
  pushedAtMs: row.pushed_at_ms,
  validUntilMs: row.valid_until_ms,
});
