import type { BatchView } from './batch-view.js';
import { type AccountRecord, type BarCause, ChangeKind, type ChangeRecord, type ItemLocator, PUBLIC_RECEIVER, type RequestRecord } from './records.js';
import type { BatchLimits, WriteOp } from './write-ops.js';
import { type BatchWrites, type WorkingSet, type WorkingSetQuery, workingSetKey } from '../store/ports.js';

/**
 * The rows a batch can touch, named before its transaction so a networked backend loads them
 * in a few queries instead of one round trip per read of applyBatch. Each name appears once.
 * With `limits` and no public item cap, no public counts are asked for (applyBatch reads
 * them only to enforce the cap).
 */
export function workingSetQueryOf(ops: readonly WriteOp[], nowMs: number, limits?: BatchLimits): WorkingSetQuery {
  const requests = new Map<string, { merchantId: string; requestId: string }>();
  const itemKeys = new Map<string, ItemLocator>();
  const itemIds = new Set<string>();
  const publicCountsFor = new Set<string>();
  const receiverIds = new Set<string>();
  const bars = new Map<string, { receiverId: string; merchantId: string }>();
  const blockCountsFor = new Set<string>();
  const accountIds = new Set<string>();
  const liveItemsFor = new Map<string, { merchantId: string; receiverId?: string }>();
  const addBar = (receiverId: string, merchantId: string) => bars.set(workingSetKey(receiverId, merchantId), { receiverId, merchantId });
  const addLive = (merchantId: string, receiverId?: string) =>
    liveItemsFor.set(workingSetKey(merchantId, receiverId ?? '*'), receiverId === undefined ? { merchantId } : { merchantId, receiverId });
  const wantCounts = limits === undefined || limits.maxPublicItemsPerMerchant > 0;
  const addKey = (merchantId: string, receiverId: string, itemKey: string) => {
    if (itemKey !== '') itemKeys.set(workingSetKey(merchantId, receiverId, itemKey), { merchantId, receiverId, itemKey });
  };
  for (const op of ops) {
    if (op.requestId !== '') requests.set(workingSetKey(op.merchantId, op.requestId), { merchantId: op.merchantId, requestId: op.requestId });
    if (op.kind !== 'push' && op.kind !== 'withdraw') {
      // Account actions: see applyBatch's applyAccount for what each reads.
      accountIds.add(op.accountId);
      if (op.kind === 'block' || op.kind === 'unblock') {
        accountIds.add(op.merchantId);
        addBar(op.accountId, op.merchantId);
        addBar(PUBLIC_RECEIVER, op.merchantId);
        blockCountsFor.add(op.accountId);
        addLive(op.merchantId, op.kind === 'block' ? op.accountId : PUBLIC_RECEIVER);
      } else {
        addBar(PUBLIC_RECEIVER, op.accountId);
        addLive(op.accountId, op.kind === 'delete' ? undefined : PUBLIC_RECEIVER);
      }
      continue;
    }
    if (op.kind === 'push') {
      addBar(PUBLIC_RECEIVER, op.merchantId);
      if (op.receiverId !== PUBLIC_RECEIVER) addBar(op.receiverId, op.merchantId);
      addKey(op.merchantId, op.receiverId, op.info.key);
      if (op.receiverId === PUBLIC_RECEIVER) {
        if (wantCounts) publicCountsFor.add(op.merchantId);
      } else {
        receiverIds.add(op.receiverId);
      }
    } else if (op.itemId !== '') {
      itemIds.add(op.itemId);
      // A withdrawal of a public item lowers its merchant's count (read before the delete).
      if (wantCounts) publicCountsFor.add(op.merchantId);
    } else {
      addKey(op.merchantId, op.receiverId, op.key);
      if (wantCounts && op.receiverId === PUBLIC_RECEIVER) publicCountsFor.add(op.merchantId);
    }
  }
  return {
    requests: [...requests.values()],
    itemKeys: [...itemKeys.values()],
    itemIds: [...itemIds],
    publicCountsFor: [...publicCountsFor],
    receiverIds: [...receiverIds],
    bars: [...bars.values()],
    blockCountsFor: [...blockCountsFor],
    accountIds: [...accountIds],
    liveItemsFor: [...liveItemsFor.values()],
    nowMs,
  };
}

/** A BatchView over a loaded working set that also collects the batch's writes. */
export interface WorkingSetView extends BatchView {
  /**
   * The batch's writes: changes inserted and not removed again by the batch (an item pushed
   * and replaced in one batch is never stored; its tombstone is), deletes of rows stored
   * before the batch, request records (the last per id), and the new head.
   */
  writes(head: number): BatchWrites;
}

const isLivePublicItem = (c: ChangeRecord, nowMs: number) =>
  c.kind === ChangeKind.Item && c.receiverId === PUBLIC_RECEIVER && c.validUntilMs > nowMs;

/**
 * applyBatch's view of a working set loaded under the head lock (`head` is the head it was
 * loaded at). Reads see the loaded rows overlaid with the batch's own writes, so an item
 * pushed and then replaced or withdrawn in the same batch is found by key and by id until it
 * is removed, and not after; a saved request answers a later op of the batch.
 *
 * A read outside what the query named is a bug in the caller, not an absent row: a missing
 * public count throws rather than answer 0 (which would let a batch pass the cap).
 */
export function createWorkingSetView(ws: WorkingSet, head: number): WorkingSetView {
  /** Every row the view knows by sequence: loaded ones, then the batch's inserts. */
  const bySeq = new Map<number, ChangeRecord>();
  for (const c of ws.itemsByKey.values()) bySeq.set(c.seq, c);
  for (const c of ws.itemsById.values()) bySeq.set(c.seq, c);
  /** The batch's changes to the loaded maps; null = removed by the batch. */
  const byKey = new Map<string, ChangeRecord | null>();
  const byId = new Map<string, ChangeRecord | null>();
  const requests = new Map<string, { merchantId: string; requestId: string; record: RequestRecord }>();
  for (const list of ws.liveItems?.values() ?? []) for (const c of list) bySeq.set(c.seq, c);
  /** The batch's changes to loaded bars (null = removed) and accounts. */
  const bars = new Map<string, BarCause | null>();
  const barWrites: NonNullable<BatchWrites['bars']> = [];
  const blockCountDelta = new Map<string, number>();
  const accounts = new Map<string, AccountRecord>();
  const suspensions: NonNullable<BatchWrites['suspensions']> = [];
  const deletions: NonNullable<BatchWrites['deletions']> = [];
  const accountOf = (id: string) => accounts.get(id) ?? ws.accounts?.get(id);
  const barOf = (receiverId: string, merchantId: string): BarCause | undefined => {
    const key = workingSetKey(receiverId, merchantId);
    if (bars.has(key)) return bars.get(key) ?? undefined;
    return ws.bars?.get(key);
  };
  const inserted = new Map<number, ChangeRecord>();
  const deletedBefore = new Set<number>();
  /** Rows removed by this batch that it did not insert, for the public counts. */
  const removedLoaded: ChangeRecord[] = [];
  let headSet = head;

  const keyOf = (c: { merchantId: string; receiverId: string; itemKey: string }) => workingSetKey(c.merchantId, c.receiverId, c.itemKey);
  const findByKey = (key: string) => (byKey.has(key) ? (byKey.get(key) ?? undefined) : ws.itemsByKey.get(key));
  const findById = (id: string) => (byId.has(id) ? (byId.get(id) ?? undefined) : ws.itemsById.get(id));

  return {
    findItemByKey(locator) {
      if (locator.itemKey === '') return undefined;
      return findByKey(keyOf(locator));
    },
    findItemById(itemId) {
      return findById(itemId);
    },
    findRequest(merchantId, requestId) {
      const key = workingSetKey(merchantId, requestId);
      return requests.get(key)?.record ?? ws.requests.get(key);
    },
    countPublicItems(merchantId, nowMs) {
      const loaded = ws.publicItemCounts.get(merchantId);
      if (loaded === undefined) throw new Error(`working set: no public item count loaded for merchant ${merchantId}`);
      let n = loaded;
      for (const c of inserted.values()) if (c.merchantId === merchantId && isLivePublicItem(c, nowMs)) n++;
      for (const c of removedLoaded) if (c.merchantId === merchantId && isLivePublicItem(c, nowMs)) n--;
      return n;
    },
    isReceiver(id) {
      if (accounts.get(id)?.deletedAtMs !== undefined) return false;
      return ws.receivers.has(id);
    },
    findBar: barOf,
    countBlocks(receiverId) {
      const loaded = ws.blockCounts?.get(receiverId);
      if (loaded === undefined) throw new Error(`working set: no block count loaded for receiver ${receiverId}`);
      return loaded + (blockCountDelta.get(receiverId) ?? 0);
    },
    getAccount: accountOf,
    liveItemsOf(merchantId, receiverId, nowMs) {
      const loaded = ws.liveItems?.get(workingSetKey(merchantId, receiverId ?? '*'));
      if (loaded === undefined) throw new Error(`working set: no live items loaded for merchant ${merchantId}`);
      const visible = (c: ChangeRecord) =>
        c.kind === ChangeKind.Item && c.merchantId === merchantId && c.validUntilMs > nowMs &&
        (receiverId === undefined || c.receiverId === PUBLIC_RECEIVER || c.receiverId === receiverId);
      // Loaded rows the batch has not removed, and the batch's own items.
      const rows = loaded.filter((c) => bySeq.get(c.seq) === c && visible(c));
      for (const c of inserted.values()) if (visible(c)) rows.push(c);
      return rows.sort((a, b) => a.seq - b.seq);
    },
    saveBar(bar) {
      const key = workingSetKey(bar.receiverId, bar.merchantId);
      if (bar.cause === 'blocked' && barOf(bar.receiverId, bar.merchantId) !== 'blocked') {
        blockCountDelta.set(bar.receiverId, (blockCountDelta.get(bar.receiverId) ?? 0) + 1);
      }
      bars.set(key, bar.cause);
      barWrites.push({ receiverId: bar.receiverId, merchantId: bar.merchantId, record: { cause: bar.cause, atMs: bar.atMs } });
    },
    deleteBar(receiverId, merchantId) {
      if (barOf(receiverId, merchantId) === 'blocked') blockCountDelta.set(receiverId, (blockCountDelta.get(receiverId) ?? 0) - 1);
      bars.set(workingSetKey(receiverId, merchantId), null);
      barWrites.push({ receiverId, merchantId, record: null });
    },
    setSuspended(id, atMs) {
      const account = accountOf(id);
      if (!account) throw new Error(`working set: no account loaded for ${id}`);
      const next = { ...account };
      if (atMs === null) delete next.suspendedAtMs;
      else next.suspendedAtMs = atMs;
      accounts.set(id, next);
      suspensions.push({ id, atMs });
    },
    deleteAccount(id, atMs) {
      const account = accountOf(id);
      if (!account) throw new Error(`working set: no account loaded for ${id}`);
      const next = { ...account, deletedAtMs: atMs, displayName: '', passwordHash: Buffer.alloc(0) };
      delete next.suspendedAtMs;
      accounts.set(id, next);
      deletions.push({ id, atMs, role: account.role });
    },
    insertChange(change) {
      if (change.seq <= head || bySeq.has(change.seq)) throw new Error(`working set: seq ${change.seq} is already taken`);
      bySeq.set(change.seq, change);
      inserted.set(change.seq, change);
      if (change.kind !== ChangeKind.Item) return;
      byId.set(change.itemId, change);
      if (change.itemKey !== '') byKey.set(keyOf(change), change);
    },
    deleteChange(seq) {
      const change = bySeq.get(seq);
      bySeq.delete(seq);
      if (inserted.has(seq)) inserted.delete(seq);
      else {
        deletedBefore.add(seq);
        if (change) removedLoaded.push(change);
      }
      if (!change || change.kind !== ChangeKind.Item) return;
      if (findById(change.itemId)?.seq === seq) byId.set(change.itemId, null);
      if (change.itemKey !== '' && findByKey(keyOf(change))?.seq === seq) byKey.set(keyOf(change), null);
    },
    saveRequest(merchantId, requestId, record) {
      requests.set(workingSetKey(merchantId, requestId), { merchantId, requestId, record });
    },
    setHeadSequence(seq) {
      headSet = seq;
    },
    writes(newHead) {
      if (newHead !== headSet) throw new Error(`working set: writes asked at head ${newHead}, the batch set ${headSet}`);
      return {
        inserts: [...inserted.values()].sort((a, b) => a.seq - b.seq),
        deletes: [...deletedBefore],
        requests: [...requests.values()],
        bars: barWrites,
        suspensions,
        deletions,
        head: newHead,
      };
    },
  };
}
