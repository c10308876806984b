import type { BatchView } from './batch-view.js';
import { HubError, Reason, receiverNotFound } from './errors.js';
import { newItemId } from './ids.js';
import { ChangeKind, type ChangeRecord, PUBLIC_RECEIVER } from './records.js';
import type { BatchLimits, BatchResult, PushOp, WithdrawOp, WriteAck, WriteOp } from './write-ops.js';
import { encodeItemFrame, encodeWithdrawalFrame } from './frames.js';

/**
 * Applies a batch of writes through a BatchView; the backend runs it inside one write
 * transaction, after reading (and, across nodes, locking) the head it passes in. A domain
 * failure (HubError) fails only its op: its checks run before any write of that op, so the
 * rest of the batch stands. Anything else is thrown and rolls the whole transaction back.
 * Synchronous and free of I/O: every read and write goes through `store`.
 */
export function applyBatch(store: BatchView, ops: readonly WriteOp[], head: number, nowMs: number, limits: BatchLimits): BatchResult {
  const { idempotencyWindowMs, maxPublicItemsPerMerchant } = limits;
  const outcomes: (WriteAck | HubError)[] = [];
  /** Live public items per merchant, counted once per batch and kept current by its writes. */
  const publicItems = new Map<string, number>();
  const publicCount = (merchantId: string): number => {
    let n = publicItems.get(merchantId);
    if (n === undefined) {
      n = store.countPublicItems(merchantId, nowMs);
      publicItems.set(merchantId, n);
    }
    return n;
  };
  const addPublic = (merchantId: string, delta: number) => {
    if (maxPublicItemsPerMerchant > 0) publicItems.set(merchantId, publicCount(merchantId) + delta);
  };
  const published: ChangeRecord[] = [];
  const batchStart = head;
  /** Items this batch inserted and removed again (a push replaced within the batch). */
  const unpublished = new Set<number>();
  const remove = (seq: number) => {
    store.deleteChange(seq);
    if (seq > batchStart) unpublished.add(seq);
  };
  const nextSeq = () => ++head;

  /**
   * Returns the remembered ack of a repeated request id (AIP-155), if any. The same id with
   * a different request is refused: answering it with the first request's result would
   * tell the merchant a push or withdrawal happened that never did.
   */
  const replay = (op: WriteOp): WriteAck | undefined => {
    if (op.requestId === '') return undefined;
    const earlier = store.findRequest(op.merchantId, op.requestId);
    if (!earlier || nowMs - earlier.createdAtMs >= idempotencyWindowMs) return undefined;
    if (earlier.digest !== '' && earlier.digest !== op.requestDigest) {
      const hours = Math.round(idempotencyWindowMs / 3_600_000);
      throw new HubError(Reason.RequestIdReused,
        `request_id: already used within ${hours} h for a different request`,
      );
    }
    return { itemId: earlier.itemId, seq: earlier.seq };
  };

  const remember = (op: WriteOp, ack: WriteAck): WriteAck => {
    if (op.requestId !== '') store.saveRequest(op.merchantId, op.requestId, { ...ack, createdAtMs: nowMs, digest: op.requestDigest });
    return ack;
  };

  /**
   * Removes a live item from the log and writes its tombstone at a new sequence. The
   * tombstone is kept until the item would have expired: by then every receiver drops it
   * anyway, and until then a receiver resuming from any cursor that saw the item learns it
   * is gone, whatever happened after (a replacing item may itself end first).
   */
  const tombstone = (item: ChangeRecord, replaced: boolean): ChangeRecord => {
    remove(item.seq);
    const seq = nextSeq();
    const change: ChangeRecord = {
      seq,
      kind: ChangeKind.Withdrawal,
      itemId: item.itemId,
      merchantId: item.merchantId,
      receiverId: item.receiverId,
      itemKey: item.itemKey,
      frame: encodeWithdrawalFrame({ ...item, seq, replaced }),
      pushedAtMs: nowMs,
      validUntilMs: item.validUntilMs,
    };
    store.insertChange(change);
    published.push(change);
    return change;
  };

  const applyPush = (op: PushOp): WriteAck => {
    const replayed = replay(op);
    if (replayed) return replayed;
    // Checked here, inside the transaction, so a push never races the registration it needs.
    if (op.receiverId !== PUBLIC_RECEIVER && !store.isReceiver(op.receiverId)) throw receiverNotFound('receiver_id', op.receiverId);
    const itemKey = op.info.key;
    let older: ChangeRecord | undefined;
    if (itemKey !== '') {
      // Replace by key: the older item leaves the log with a tombstone (replaced = true) at
      // its own sequence, then the new item follows. A snapshot never sees the older item;
      // a receiver that held it drops it even if the new one has ended before it resumes.
      older = store.findItemByKey({ merchantId: op.merchantId, receiverId: op.receiverId, itemKey });
    }
    const replacesLive = older !== undefined && older.validUntilMs > nowMs;
    const isPublic = op.receiverId === PUBLIC_RECEIVER;
    // Counted inside the commit, so concurrent pushes cannot pass the cap together.
    if (isPublic && !replacesLive && maxPublicItemsPerMerchant > 0 && publicCount(op.merchantId) >= maxPublicItemsPerMerchant) {
      throw new HubError(Reason.PublicItemLimit,
        `info: this merchant already has ${maxPublicItemsPerMerchant} live public items (max public items per merchant); withdraw or replace one, or wait for one to expire`,
      );
    }
    if (older) {
      // An older item that has already ended needs no tombstone: every receiver drops it.
      if (older && older.validUntilMs <= nowMs) remove(older.seq);
      else if (older) tombstone(older, true);
    }
    const seq = nextSeq();
    const itemId = newItemId(seq);
    const change: ChangeRecord = {
      seq,
      kind: ChangeKind.Item,
      itemId,
      merchantId: op.merchantId,
      receiverId: op.receiverId,
      itemKey,
      frame: encodeItemFrame({ itemId, seq, merchantId: op.merchantId, receiverId: op.receiverId, info: op.info, pushedAtMs: nowMs, validUntilNanos: op.validUntilNanos }),
      pushedAtMs: nowMs,
      validUntilMs: op.info.validUntil!.getTime(),
    };
    store.insertChange(change);
    published.push(change);
    if (isPublic && !replacesLive) addPublic(op.merchantId, 1);
    return remember(op, { itemId, seq });
  };

  const applyWithdraw = (op: WithdrawOp): WriteAck => {
    const replayed = replay(op);
    if (replayed) return replayed;
    const item =
      op.itemId !== ''
        ? store.findItemById(op.itemId)
        : store.findItemByKey({ merchantId: op.merchantId, receiverId: op.receiverId, itemKey: op.key });
    // Another merchant's item is reported exactly like a missing one: no existence oracle.
    if (!item || item.merchantId !== op.merchantId || item.validUntilMs <= nowMs) {
      const what = op.itemId !== '' ? `item_id: no live item ${op.itemId}` : `key: no live item with key "${op.key}"`;
      throw new HubError(Reason.ItemNotFound, `${what} among this merchant's items`);
    }
    // The count is read before the delete: the view's count already sees the batch's own
    // writes, and a first read after it would take the withdrawn item off twice.
    if (item.receiverId === PUBLIC_RECEIVER) addPublic(item.merchantId, -1);
    const { seq } = tombstone(item, false);
    return remember(op, { itemId: item.itemId, seq });
  };

  for (const op of ops) {
    try {
      outcomes.push(op.kind === 'push' ? applyPush(op) : applyWithdraw(op));
    } catch (error) {
      if (!(error instanceof HubError)) throw error;
      outcomes.push(error);
    }
  }
  store.setHeadSequence(head);
  // Published is what is stored: an item the batch itself removed is not fanned out (its
  // tombstone is), so the live stream and a resume from the store show the same rows.
  return { outcomes, published: unpublished.size > 0 ? published.filter((c) => !unpublished.has(c.seq)) : published, head };
}
