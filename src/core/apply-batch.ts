import type { BatchView } from './batch-view.js';
import { HubError, Reason, merchantNotFound, merchantSuspended, receiverBlockedMerchant, receiverNotFound } from './errors.js';
import { newItemId } from './ids.js';
import { type BarCause, ChangeKind, type ChangeRecord, PUBLIC_RECEIVER } from './records.js';
import type { AccountOp, BatchLimits, BatchResult, PushOp, WithdrawOp, WriteAck, WriteOp } from './write-ops.js';
import { Audience, WithdrawalCause } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { EMPTY_FRAME, encodeItemFrame, encodeWithdrawalFrame, reframeItem } from './frames.js';

/** Merchants one receiver may block when the limits do not say. */
export const DEFAULT_MAX_BLOCKS_PER_RECEIVER = 10_000;
/** How long a marker row (Barred, Unbarred) stays in the log: it only has to reach every node's feed. */
const MARKER_LIFETIME_MS = 24 * 3_600_000;

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
  const tombstone = (item: ChangeRecord, replaced: boolean, cause?: WithdrawalCause): ChangeRecord => {
    remove(item.seq);
    const seq = nextSeq();
    const change: ChangeRecord = {
      seq,
      kind: ChangeKind.Withdrawal,
      itemId: item.itemId,
      merchantId: item.merchantId,
      receiverId: item.receiverId,
      itemKey: item.itemKey,
      frame: encodeWithdrawalFrame({ ...item, seq, replaced, cause }),
      pushedAtMs: nowMs,
      validUntilMs: item.validUntilMs,
    };
    store.insertChange(change);
    published.push(change);
    return change;
  };

  /** The merchant's own bar (suspended or deleted), read once per batch. */
  const ownBars = new Map<string, BarCause | undefined>();
  const ownBar = (merchantId: string): BarCause | undefined => {
    if (!ownBars.has(merchantId)) ownBars.set(merchantId, store.findBar(PUBLIC_RECEIVER, merchantId));
    return ownBars.get(merchantId);
  };

  const applyPush = (op: PushOp): WriteAck => {
    const replayed = replay(op);
    if (replayed) return replayed;
    // Checked in the commit, so a suspension or deletion on any node holds from its commit on.
    const bar = ownBar(op.merchantId);
    if (bar === 'suspended') throw merchantSuspended();
    if (bar === 'deleted') throw new HubError(Reason.AccountDeleted, 'authorization: this merchant account was deleted');
    // Checked here, inside the transaction, so a push never races the registration it needs.
    if (op.receiverId !== PUBLIC_RECEIVER && !store.isReceiver(op.receiverId)) throw receiverNotFound('receiver_id', op.receiverId);
    if (op.receiverId !== PUBLIC_RECEIVER && store.findBar(op.receiverId, op.merchantId) === 'blocked') throw receiverBlockedMerchant(op.receiverId);
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

  /**
   * A withdrawal of a public item for one audience without removing the item: for one
   * receiver (`receiverId`, a block) or for every receiver (PUBLIC_RECEIVER, a suspension).
   * Kept, like any tombstone, until the item would have expired.
   */
  const hide = (item: ChangeRecord, receiverId: string, cause: WithdrawalCause): void => {
    const seq = nextSeq();
    const change: ChangeRecord = {
      seq,
      kind: ChangeKind.Withdrawal,
      itemId: item.itemId,
      merchantId: item.merchantId,
      receiverId,
      itemKey: item.itemKey,
      frame: encodeWithdrawalFrame({ ...item, seq, receiverId, cause, audienceOfItem: Audience.AUDIENCE_PUBLIC }),
      pushedAtMs: nowMs,
      validUntilMs: item.validUntilMs,
    };
    store.insertChange(change);
    published.push(change);
  };

  /** A live public item delivered again, at a new sequence, to one receiver or to every one. */
  const copy = (item: ChangeRecord, receiverId: string): void => {
    const seq = nextSeq();
    const change: ChangeRecord = { ...item, seq, kind: ChangeKind.Copy, receiverId, frame: reframeItem(item.frame, seq), pushedAtMs: item.pushedAtMs };
    store.insertChange(change);
    published.push(change);
  };

  /** A marker row: open streams of receiverId (every stream for PUBLIC_RECEIVER) learn the bar changed. */
  const marker = (kind: typeof ChangeKind.Barred | typeof ChangeKind.Unbarred, receiverId: string, merchantId: string): number => {
    const seq = nextSeq();
    const change: ChangeRecord = {
      seq,
      kind,
      itemId: '',
      merchantId,
      receiverId,
      itemKey: '',
      frame: EMPTY_FRAME,
      pushedAtMs: nowMs,
      validUntilMs: nowMs + MARKER_LIFETIME_MS,
    };
    store.insertChange(change);
    published.push(change);
    return seq;
  };

  const maxBlocks = limits.maxBlocksPerReceiver ?? DEFAULT_MAX_BLOCKS_PER_RECEIVER;

  /** Block, unblock, suspend, resume, delete: see AccountOp. Acks carry the last sequence the action took. */
  const applyAccount = (op: AccountOp): WriteAck => {
    const none = { itemId: '', seq: head };
    if (op.kind === 'block' || op.kind === 'unblock') {
      const merchant = store.getAccount(op.merchantId);
      if (!merchant || merchant.role !== 'merchant' || merchant.deletedAtMs !== undefined) throw merchantNotFound('merchant_id', op.merchantId);
      const blocked = store.findBar(op.accountId, op.merchantId) === 'blocked';
      if (op.kind === 'block') {
        if (blocked) return none;
        if (maxBlocks > 0 && store.countBlocks(op.accountId) >= maxBlocks) {
          throw new HubError(Reason.BlockLimit, `merchant_id: this receiver already blocks ${maxBlocks} merchants (max blocks per receiver); unblock one first`);
        }
        // What the receiver may hold of the merchant leaves its stream: specific items are
        // deleted (they would never come back), public ones are hidden for it alone.
        for (const item of store.liveItemsOf(op.merchantId, op.accountId, nowMs)) {
          if (item.receiverId === PUBLIC_RECEIVER) hide(item, op.accountId, WithdrawalCause.WITHDRAWAL_CAUSE_BLOCKED);
          else tombstone(item, false, WithdrawalCause.WITHDRAWAL_CAUSE_BLOCKED);
        }
        store.saveBar({ receiverId: op.accountId, merchantId: op.merchantId, cause: 'blocked', atMs: nowMs });
        return { itemId: '', seq: marker(ChangeKind.Barred, op.accountId, op.merchantId) };
      }
      if (!blocked) return none;
      store.deleteBar(op.accountId, op.merchantId);
      // The marker goes first, so an open stream lifts its filter before the copies reach it.
      marker(ChangeKind.Unbarred, op.accountId, op.merchantId);
      // Only what is live now comes back; a suspended merchant's items come back on resume.
      if (ownBar(op.merchantId) === undefined) {
        for (const item of store.liveItemsOf(op.merchantId, PUBLIC_RECEIVER, nowMs)) if (item.receiverId === PUBLIC_RECEIVER) copy(item, op.accountId);
      }
      return { itemId: '', seq: head };
    }
    const account = store.getAccount(op.accountId);
    if (!account || account.deletedAtMs !== undefined) throw new HubError(Reason.AccountNotFound, `id: no account ${op.accountId}`);
    const isMerchant = account.role === 'merchant';
    if (op.kind === 'suspend') {
      if (account.suspendedAtMs !== undefined) return none;
      store.setSuspended(op.accountId, nowMs);
      if (!isMerchant) return none;
      for (const item of store.liveItemsOf(op.accountId, PUBLIC_RECEIVER, nowMs)) {
        if (item.receiverId === PUBLIC_RECEIVER) hide(item, PUBLIC_RECEIVER, WithdrawalCause.WITHDRAWAL_CAUSE_SUSPENDED);
      }
      store.saveBar({ receiverId: PUBLIC_RECEIVER, merchantId: op.accountId, cause: 'suspended', atMs: nowMs });
      ownBars.set(op.accountId, 'suspended');
      return { itemId: '', seq: marker(ChangeKind.Barred, PUBLIC_RECEIVER, op.accountId) };
    }
    if (op.kind === 'resume') {
      if (account.suspendedAtMs === undefined) return none;
      store.setSuspended(op.accountId, null);
      if (!isMerchant) return none;
      store.deleteBar(PUBLIC_RECEIVER, op.accountId);
      ownBars.set(op.accountId, undefined);
      marker(ChangeKind.Unbarred, PUBLIC_RECEIVER, op.accountId);
      for (const item of store.liveItemsOf(op.accountId, PUBLIC_RECEIVER, nowMs)) if (item.receiverId === PUBLIC_RECEIVER) copy(item, PUBLIC_RECEIVER);
      return { itemId: '', seq: head };
    }
    // delete
    if (isMerchant) {
      for (const item of store.liveItemsOf(op.accountId, undefined, nowMs)) {
        tombstone(item, false, WithdrawalCause.WITHDRAWAL_CAUSE_ACCOUNT_DELETED);
      }
      if (account.suspendedAtMs !== undefined) store.deleteBar(PUBLIC_RECEIVER, op.accountId);
      store.saveBar({ receiverId: PUBLIC_RECEIVER, merchantId: op.accountId, cause: 'deleted', atMs: nowMs });
      ownBars.set(op.accountId, 'deleted');
    }
    store.deleteAccount(op.accountId, nowMs);
    return { itemId: '', seq: head };
  };

  for (const op of ops) {
    try {
      outcomes.push(op.kind === 'push' ? applyPush(op) : op.kind === 'withdraw' ? applyWithdraw(op) : applyAccount(op));
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
