import type { Confirmation } from '../../core/receipts.js';
import type { ProgressInput } from '../ports.js';
import type { SqliteReceipts } from './receipt-statements.js';

/** A receipt write as the commit worker receives it (structured-clone friendly). */
export type ReceiptWrite =
  | { kind: 'confirm'; batch: Confirmation[]; nowMs: number }
  | { kind: 'progress'; events: ProgressInput[] }
  | { kind: 'opt-out'; receiverId: string; optOut: boolean | undefined; nowMs: number };

/** Runs one receipt write on a connection; the caller wraps it in a write transaction. */
export function runReceiptWrite(receipts: SqliteReceipts, w: ReceiptWrite): unknown {
  switch (w.kind) {
    case 'confirm':
      return receipts.confirm(w.batch, w.nowMs);
    case 'progress':
      return receipts.appendProgress(w.events);
    case 'opt-out':
      return receipts.setOptOut(w.receiverId, w.optOut, w.nowMs);
  }
}
