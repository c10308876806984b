import { createHash } from 'node:crypto';
import { newItemId } from '../../src/core/ids.js';
import { type BatchWrites, type WorkingSet, type WorkingSetQuery, workingSetKey } from '../../src/store/ports.js';
import { type ChangeRecord, ChangeKind, PUBLIC_RECEIVER } from '../../src/core/records.js';

/**
 * A tiny stand-in for the domain's applyBatch, enough to drive the PostgreSQL committer in
 * tests until the real core plugs into the same port: push (with replace by key and request
 * ids), withdraw by id, and a public item cap.
 */
export type Op =
  | {
      push: {
        merchantId: string;
        receiverId?: string;
        itemKey?: string;
        requestId?: string;
        body?: string;
        validUntilMs?: number;
      };
    }
  | { withdraw: { merchantId: string; itemId: string } };

export type Outcome =
  | { ok: true; itemId: string; seq: number; replayed: boolean }
  | { ok: false; reason: 'not-found' | 'request-id-reused' | 'public-cap' };

export const NOW = 1_000_000;
export const FAR = NOW + 3_600_000;

const digestOf = (op: Op) => createHash('sha256').update(JSON.stringify(op)).digest();

export function queryFor(ops: Op[], nowMs = NOW): WorkingSetQuery {
  const q: WorkingSetQuery = { requests: [], itemKeys: [], itemIds: [], publicCountsFor: [], nowMs };
  for (const op of ops) {
    if ('push' in op) {
      const p = op.push;
      if (p.requestId) q.requests.push({ merchantId: p.merchantId, requestId: p.requestId });
      if (p.itemKey) q.itemKeys.push({ merchantId: p.merchantId, receiverId: p.receiverId ?? PUBLIC_RECEIVER, itemKey: p.itemKey });
      if (!p.receiverId) q.publicCountsFor.push(p.merchantId);
    } else {
      q.itemIds.push(op.withdraw.itemId);
    }
  }
  return q;
}

export function standInDecide(ops: Op[], opts: { nowMs?: number; publicCap?: number } = {}) {
  const nowMs = opts.nowMs ?? NOW;
  const publicCap = opts.publicCap ?? Infinity;
  return (ws: WorkingSet, head: number): { writes: BatchWrites; outcomes: Outcome[] } => {
    const writes: BatchWrites = { inserts: [], deletes: [], requests: [], head };
    const outcomes: Outcome[] = [];
    const tombstone = (item: ChangeRecord) => {
      writes.deletes.push(item.seq);
      ws.itemsById.delete(item.itemId);
      const seq = ++writes.head;
      writes.inserts.push({ ...item, seq, kind: ChangeKind.Withdrawal, frame: Buffer.from(`withdraw ${item.itemId}`), pushedAtMs: nowMs });
    };
    for (const op of ops) {
      if ('withdraw' in op) {
        const item = ws.itemsById.get(op.withdraw.itemId);
        if (!item || item.merchantId !== op.withdraw.merchantId) {
          outcomes.push({ ok: false, reason: 'not-found' });
          continue;
        }
        if (item.itemKey) ws.itemsByKey.delete(workingSetKey(item.merchantId, item.receiverId, item.itemKey));
        tombstone(item);
        outcomes.push({ ok: true, itemId: item.itemId, seq: writes.head, replayed: false });
        continue;
      }
      const p = op.push;
      const receiverId = p.receiverId ?? PUBLIC_RECEIVER;
      const digest = digestOf(op);
      if (p.requestId) {
        const seen = ws.requests.get(workingSetKey(p.merchantId, p.requestId));
        if (seen) {
          outcomes.push(
            Buffer.compare(Buffer.from(seen.digest), digest) === 0
              ? { ok: true, itemId: seen.itemId, seq: seen.seq, replayed: true }
              : { ok: false, reason: 'request-id-reused' },
          );
          continue;
        }
      }
      const keyId = p.itemKey ? workingSetKey(p.merchantId, receiverId, p.itemKey) : undefined;
      const replaced = keyId ? ws.itemsByKey.get(keyId) : undefined;
      if (receiverId === PUBLIC_RECEIVER && !replaced) {
        const n = ws.publicItemCounts.get(p.merchantId) ?? 0;
        if (n >= publicCap) {
          outcomes.push({ ok: false, reason: 'public-cap' });
          continue;
        }
        ws.publicItemCounts.set(p.merchantId, n + 1);
      }
      if (replaced) tombstone(replaced);
      const seq = ++writes.head;
      const item: ChangeRecord = {
        seq,
        kind: ChangeKind.Item,
        itemId: newItemId(seq),
        merchantId: p.merchantId,
        receiverId,
        itemKey: p.itemKey ?? '',
        frame: Buffer.from(p.body ?? `item ${seq}`),
        pushedAtMs: nowMs,
        validUntilMs: p.validUntilMs ?? FAR,
      };
      writes.inserts.push(item);
      ws.itemsById.set(item.itemId, item);
      if (keyId) ws.itemsByKey.set(keyId, item);
      if (p.requestId) {
        const record = { itemId: item.itemId, seq, createdAtMs: nowMs, digest };
        writes.requests.push({ merchantId: p.merchantId, requestId: p.requestId, record });
        ws.requests.set(workingSetKey(p.merchantId, p.requestId), record);
      }
      outcomes.push({ ok: true, itemId: item.itemId, seq, replayed: false });
    }
    return { writes, outcomes };
  };
}
