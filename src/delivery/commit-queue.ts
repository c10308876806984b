import { Status } from 'nice-grpc';
import { HubError, Reason } from '../errors.js';
import type { ServiceInfo } from '../gen/pushhub/v1/pushhub.js';
import { newItemId } from '../registry/ids.js';
import { ChangeKind, type ChangeRecord, type HubStore } from '../store/types.js';
import type { Fanout } from './fanout.js';
import { encodeItemFrame, encodeWithdrawalFrame } from './frames.js';

/** A validated push: receiverId is PUBLIC_RECEIVER for a public push; info.validUntil is set. */
export interface PushOp {
  kind: 'push';
  merchantId: string;
  receiverId: string;
  info: ServiceInfo;
  requestId: string;
}

/** A validated withdrawal, by item id or by (receiverId, key). */
export interface WithdrawOp {
  kind: 'withdraw';
  merchantId: string;
  itemId: string;
  key: string;
  receiverId: string;
  requestId: string;
}

export type WriteOp = PushOp | WithdrawOp;

export interface WriteAck {
  itemId: string;
  seq: number;
}

interface Pending {
  op: WriteOp;
  resolve: (ack: WriteAck) => void;
  reject: (error: Error) => void;
}

/**
 * The hub's single writer. Pushes that arrive while a commit is running (or in the same
 * tick) are committed together in one durable transaction (group commit), so throughput is
 * not capped at one fsync per push. Only after the commit are pushes acknowledged and their
 * changes handed to fan-out (persist, then publish).
 */
export class CommitQueue {
  private pending: Pending[] = [];
  private scheduled = false;
  private head: number;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: (() => void) | undefined;
  /** Counters for tests and the bench: how many writes shared how many transactions. */
  readonly stats = { transactions: 0, writes: 0 };

  constructor(
    private readonly store: HubStore,
    private readonly fanout: Fanout,
    private readonly idempotencyWindowMs: number,
    private readonly maxBatch = 4096,
  ) {
    this.head = store.headSequence();
  }

  /** The newest committed sequence. */
  get headSequence(): number {
    return this.head;
  }

  submit(op: WriteOp): Promise<WriteAck> {
    return new Promise<WriteAck>((resolve, reject) => {
      this.pending.push({ op, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        if (!this.markIdle) this.idle = new Promise((done) => (this.markIdle = done));
        // setImmediate lets every request already read from the sockets join this batch.
        setImmediate(() => this.flush());
      }
    });
  }

  /** Resolves once every submitted write has been committed or rejected. */
  drained(): Promise<void> {
    return this.idle;
  }

  private flush(): void {
    const batch = this.pending.splice(0, this.maxBatch);
    const outcomes: (WriteAck | HubError)[] = [];
    const published: ChangeRecord[] = [];
    let head = this.head;
    try {
      this.store.transaction(() => {
        const nowMs = Date.now();
        for (const { op } of batch) {
          try {
            outcomes.push(op.kind === 'push' ? this.applyPush(op, nowMs, () => ++head, published) : this.applyWithdraw(op, nowMs, () => ++head, published));
          } catch (error) {
            // Domain checks run before any write of their op, so the rest of the batch stands.
            if (!(error instanceof HubError)) throw error;
            outcomes.push(error);
          }
        }
        this.store.setHeadSequence(head);
      });
    } catch (error) {
      // The transaction rolled back: nothing in this batch was stored, so nothing is acked.
      for (const { reject } of batch) reject(error as Error);
      this.afterFlush();
      return;
    }
    this.head = head;
    this.stats.transactions++;
    this.stats.writes += batch.length;
    this.fanout.publish(published);
    batch.forEach(({ resolve, reject }, i) => {
      const outcome = outcomes[i]!;
      if (outcome instanceof HubError) reject(outcome);
      else resolve(outcome);
    });
    this.afterFlush();
  }

  private afterFlush(): void {
    if (this.pending.length > 0) {
      setImmediate(() => this.flush());
    } else {
      this.scheduled = false;
      this.markIdle?.();
      this.markIdle = undefined;
    }
  }

  /** Returns the remembered ack of a repeated request id (AIP-155), if any. */
  private replay(merchantId: string, requestId: string, nowMs: number): WriteAck | undefined {
    if (requestId === '') return undefined;
    const earlier = this.store.findRequest(merchantId, requestId);
    if (!earlier || nowMs - earlier.createdAtMs >= this.idempotencyWindowMs) return undefined;
    return { itemId: earlier.itemId, seq: earlier.seq };
  }

  private remember(merchantId: string, requestId: string, ack: WriteAck, nowMs: number): WriteAck {
    if (requestId !== '') this.store.saveRequest(merchantId, requestId, { ...ack, createdAtMs: nowMs });
    return ack;
  }

  private applyPush(op: PushOp, nowMs: number, nextSeq: () => number, published: ChangeRecord[]): WriteAck {
    const replayed = this.replay(op.merchantId, op.requestId, nowMs);
    if (replayed) return replayed;
    const itemKey = op.info.key;
    if (itemKey !== '') {
      // Replace by key: the older item leaves the log, so a new subscriber never sees it;
      // current subscribers replace it by (merchant, audience, key) when the new one arrives.
      const older = this.store.findItemByKey({ merchantId: op.merchantId, receiverId: op.receiverId, itemKey });
      if (older) this.store.deleteChange(older.seq);
    }
    const seq = nextSeq();
    const itemId = newItemId();
    const change: ChangeRecord = {
      seq,
      kind: ChangeKind.Item,
      itemId,
      merchantId: op.merchantId,
      receiverId: op.receiverId,
      itemKey,
      frame: encodeItemFrame({ itemId, seq, merchantId: op.merchantId, receiverId: op.receiverId, info: op.info, pushedAtMs: nowMs }),
      pushedAtMs: nowMs,
      validUntilMs: op.info.validUntil!.getTime(),
    };
    this.store.insertChange(change);
    published.push(change);
    return this.remember(op.merchantId, op.requestId, { itemId, seq }, nowMs);
  }

  private applyWithdraw(op: WithdrawOp, nowMs: number, nextSeq: () => number, published: ChangeRecord[]): WriteAck {
    const replayed = this.replay(op.merchantId, op.requestId, nowMs);
    if (replayed) return replayed;
    const item =
      op.itemId !== ''
        ? this.store.findItemById(op.itemId)
        : this.store.findItemByKey({ merchantId: op.merchantId, receiverId: op.receiverId, itemKey: op.key });
    // Another merchant's item is reported exactly like a missing one: no existence oracle.
    if (!item || item.merchantId !== op.merchantId || item.validUntilMs <= nowMs) {
      const what = op.itemId !== '' ? `item_id: no live item ${op.itemId}` : `key: no live item with key "${op.key}"`;
      throw new HubError(Status.NOT_FOUND, Reason.ItemNotFound, `${what} among this merchant's items`);
    }
    this.store.deleteChange(item.seq);
    const seq = nextSeq();
    const tombstone: ChangeRecord = {
      seq,
      kind: ChangeKind.Withdrawal,
      itemId: item.itemId,
      merchantId: item.merchantId,
      receiverId: item.receiverId,
      itemKey: item.itemKey,
      frame: encodeWithdrawalFrame({ ...item, seq }),
      pushedAtMs: nowMs,
      // Kept until the item would have expired: by then every receiver drops it anyway.
      validUntilMs: item.validUntilMs,
    };
    this.store.insertChange(tombstone);
    published.push(tombstone);
    return this.remember(op.merchantId, op.requestId, { itemId: item.itemId, seq }, nowMs);
  }
}
