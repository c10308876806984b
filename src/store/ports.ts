/**
 * The ports between the hub's domain and its storage. Every method is async so that a
 * networked backend (PostgreSQL, src/store/postgres) and the embedded one (SQLite,
 * src/store/sqlite) implement the same contract; the domain imports only this file and
 * src/store/types.ts, never a backend.
 *
 * The contract of each method is written on it (atomicity, ordering), as in centrifuge's
 * broker.go, and one contract suite runs against every backend.
 */
import type { AccountRecord, AccountRole, BarCause, ChangeRecord, RequestRecord } from '../core/records.js';
import type { BatchResult, WriteOp } from '../core/write-ops.js';
import type { Confirmation, ConfirmResult, ItemFacts, ReceiptEvent } from '../core/receipts.js';

/** A remembered request id (its digest: a repeat with another digest is refused). */
export type StoredRequest = RequestRecord;

export interface AccountStore {
  /** Inserts a new account; false when the id is taken (the caller draws another id). */
  insertAccount(account: AccountRecord): Promise<boolean>;
  getAccount(id: string): Promise<AccountRecord | undefined>;
  /**
   * Compare-and-set: replaces the hash only if it is still `expected`, so two concurrent
   * rotations (on two nodes) cannot both win; false otherwise.
   */
  replacePasswordHash(id: string, expected: Uint8Array, next: Uint8Array): Promise<boolean>;
  isReceiver(id: string): Promise<boolean>;
  /** Records a login (credentials verified with scrypt) for `pushhub admin`'s "last seen". */
  touch(id: string, atMs: number): Promise<void>;
  /** A receiver's blocks, oldest first. */
  listBlocks(receiverId: string): Promise<{ merchantId: string; atMs: number }[]>;
  /** Merchants suspended now (their public items are withheld from every receiver). */
  suspendedMerchants(): Promise<string[]>;
  /**
   * Register with a request id, in one transaction: the first call inserts `account` and
   * remembers `requestHash` (with the request's digest); a later call with the same hash
   * inside the window (created at or after windowStartMs) sets the remembered account's
   * password hash to account.passwordHash and returns its id ('replaced'). 'reused': the
   * hash is remembered for a request with another digest. 'id-taken': account.id exists
   * (draw another). A remembered account that was deleted since counts as not remembered.
   */
  registerWithRequest(
    account: AccountRecord,
    requestHash: string,
    digest: string,
    windowStartMs: number,
  ): Promise<{ outcome: 'created' | 'replaced' | 'reused' | 'id-taken'; accountId: string }>;
}

/** One account as an operator sees it (never a secret). */
export interface AccountSummary {
  id: string;
  role: AccountRole;
  displayName: string;
  createdAtMs: number;
  suspendedAtMs?: number;
  deletedAtMs?: number;
  lastSeenAtMs?: number;
  /** Live items: a merchant's own (public and specific), a receiver's specific ones. */
  liveItems: number;
  /** Receivers that block this merchant; merchants this receiver blocks. */
  blocks: number;
}

/** The filter of `pushhub admin list`. */
export interface AccountQuery {
  role?: AccountRole;
  /** Created at or after (ms). */
  createdSinceMs?: number;
  /** Last seen at or after (ms); accounts never seen are left out. */
  activeSinceMs?: number;
  /** Substring of the id or the display name. */
  search?: string;
  /** Include deleted accounts (left out by default). */
  includeDeleted?: boolean;
  /** Only accounts with at least this many live items. */
  minItems?: number;
  limit: number;
  nowMs: number;
}

export interface HubTotals {
  merchants: number;
  receivers: number;
  suspended: number;
  deleted: number;
  liveItems: number;
  livePublicItems: number;
  blocks: number;
  headSequence: number;
}

/** An entry of the admin log: who did what, when, to which account; never a secret. */
export interface AdminLogEntry {
  atMs: number;
  actor: string;
  action: string;
  accountId: string;
  outcome: string;
}

/** What operators read (pushhub admin) and the abuse metrics; writes go through the committer. */
export interface AdminStore {
  listAccounts(q: AccountQuery): Promise<AccountSummary[]>;
  /** One account (deleted ones too), or undefined. */
  showAccount(id: string, nowMs: number): Promise<AccountSummary | undefined>;
  totals(nowMs: number): Promise<HubTotals>;
  /** The merchants most blocked, most first, at most `limit`. */
  mostBlocked(limit: number): Promise<{ merchantId: string; blocks: number }[]>;
  logAction(entry: AdminLogEntry): Promise<void>;
  /** The newest entries of the admin log, newest first. */
  recentActions(limit: number): Promise<AdminLogEntry[]>;
  /** Sets an account's password hash (an operator's rotation); false when there is no live account. */
  setPasswordHash(id: string, hash: Uint8Array): Promise<boolean>;
}

export type { BarCause };

/** One page query of a receiver's change log. */
export interface ReceiverChangesQuery {
  receiverId: string;
  /** Exclusive lower bound: the receiver's cursor. */
  afterSeq: number;
  /** Inclusive upper bound: the head the caller has published, so no reader runs ahead of the feed. */
  upToSeq: number;
  nowMs: number;
  /** At most this many rows. */
  limit: number;
  /** About this many bytes of frames; a page always holds at least one row if any match. */
  maxBytes: number;
  /**
   * Set on a snapshot (cursor 0): the head when the snapshot began. Tombstones at or below it
   * are left out, as the receiver holds nothing they could remove.
   */
  snapshotFrom?: number;
}

/** One page query of a merchant's live items (ListItems). */
export interface MerchantItemsQuery {
  merchantId: string;
  /** Only this receiver's specific items (PUBLIC_RECEIVER for the public ones); all when absent. */
  receiverId?: string;
  afterSeq: number;
  nowMs: number;
  limit: number;
  maxBytes: number;
}

export interface ChangeReader {
  /**
   * A receiver's changes (its own and the public ones) with afterSeq < seq <= upToSeq,
   * unexpired at nowMs, ascending by seq, paged by `limit` and `maxBytes`.
   */
  receiverChanges(q: ReceiverChangesQuery): Promise<ChangeRecord[]>;
  /** A merchant's live (kind item, unexpired) items after a seq, ascending, paged. */
  merchantItems(q: MerchantItemsQuery): Promise<ChangeRecord[]>;
  /** The newest sequence committed to the store (by any node): the cursor range check. */
  headSequence(): Promise<number>;
}

/** Keys of the working-set maps are these parts joined with '\0'. */
export const workingSetKey = (...parts: string[]): string => parts.join('\0');

/** The rows a batch touches, named before the transaction so they load in a few queries. */
export interface WorkingSetQuery {
  requests: { merchantId: string; requestId: string }[];
  /** Live items looked up by replacement key (non-empty keys only). */
  itemKeys: { merchantId: string; receiverId: string; itemKey: string }[];
  /** Live items looked up by item id (Withdraw by id). */
  itemIds: string[];
  /** Merchants whose count of live public items the batch needs (the public item cap). */
  publicCountsFor: string[];
  /** Ids whose registration as a receiver the batch checks (specific pushes). */
  receiverIds: string[];
  /** (receiverId, merchantId) pairs whose bar the batch checks (PUBLIC_RECEIVER: the merchant's own). */
  bars?: { receiverId: string; merchantId: string }[];
  /** Receivers whose count of blocks the batch needs (the block cap). */
  blockCountsFor?: string[];
  /** Accounts an account action reads. */
  accountIds?: string[];
  /** Live items of a merchant visible to a receiver (public + its specific), or all of its live items (receiverId undefined). */
  liveItemsFor?: { merchantId: string; receiverId?: string }[];
  /** The batch's clock: items expired at this time are not live. */
  nowMs: number;
}

/** The loaded working set, read under the head lock, so it cannot change before the commit. */
export interface WorkingSet {
  /** By workingSetKey(merchantId, requestId). */
  requests: Map<string, StoredRequest>;
  /** By workingSetKey(merchantId, receiverId, itemKey). */
  itemsByKey: Map<string, ChangeRecord>;
  /** By item id. */
  itemsById: Map<string, ChangeRecord>;
  /** The ids of receiverIds that are registered receivers. */
  receivers: Set<string>;
  /** Bars of the named pairs, by workingSetKey(receiverId, merchantId); absent = no bar. */
  bars?: Map<string, BarCause>;
  /** Blocks per receiver of blockCountsFor (0 when none). */
  blockCounts?: Map<string, number>;
  /** The accounts of accountIds that exist (deleted ones too). */
  accounts?: Map<string, AccountRecord>;
  /** Live items per liveItemsFor entry, by workingSetKey(merchantId, receiverId ?? '*'). */
  liveItems?: Map<string, ChangeRecord[]>;
  /** By merchant id; every merchant of publicCountsFor has an entry (0 when it has none). */
  publicItemCounts: Map<string, number>;
}

/** What the domain decided for one batch: rows to write, in one transaction. */
export interface BatchWrites {
  /** New changes (items and tombstones), each with its seq in head+1..writes.head. */
  inserts: ChangeRecord[];
  /**
   * Seqs of items removed by a replace or a withdraw. An item inserted and removed by the
   * same batch may be named in both lists: it is then never stored (its seq stays unused).
   */
  deletes: number[];
  requests: { merchantId: string; requestId: string; record: StoredRequest }[];
  /** Bars saved (record) or removed (null), in order. */
  bars?: { receiverId: string; merchantId: string; record: { cause: BarCause; atMs: number } | null }[];
  /** Accounts suspended (a time) or resumed (null), in order. */
  suspensions?: { id: string; atMs: number | null }[];
  /** Accounts deleted (see BatchView.deleteAccount for what goes with them). */
  deletions?: { id: string; atMs: number; role: AccountRole }[];
  /** The new head (>= the head decide was given); persisted, never reused. */
  head: number;
}

/**
 * The PostgreSQL writer's generic transaction (see postgres/committer.ts): the domain's
 * decision runs inside it, on the working set loaded under the head lock.
 */
export interface WorkingSetCommitter {
  /**
   * One durable transaction: lock the head (so sequence order is commit order across nodes),
   * read it, load the working set, call `decide(workingSet, head)` synchronously (the domain's
   * applyBatch), write its result and commit; one wake-up notification per batch. Resolves
   * with decide's result after the commit is durable; rejects with nothing stored (also when
   * decide throws). Calls are serialised per node: one writer, in call order.
   */
  commit<R extends { writes: BatchWrites }>(query: WorkingSetQuery, decide: (ws: WorkingSet, head: number) => R): Promise<R>;
  /** Deletes changes expired at nowMs and request ids created before requestCutoffMs; rows removed. */
  purge(nowMs: number, requestCutoffMs: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * The hub's write path: a batch of validated writes in one durable transaction, the head
 * read (and locked) inside it, so sequence order is commit order on every node. Resolves
 * after the commit with one outcome per op (a domain failure fails only its op); rejects with
 * nothing stored. The committed changes reach this node's ChangeFeed (the backend reports
 * them), never the caller's fan-out directly: the feed alone publishes, in sequence order.
 */
export interface BatchCommitter {
  /** Resolves once batches can be taken (a worker has booted, a connection is open). */
  ready(): Promise<void>;
  commit(ops: readonly WriteOp[], nowMs: number): Promise<BatchResult>;
  /** Deletes expired changes and old request ids on the writer's connection; rows removed. */
  purge(nowMs: number, requestCutoffMs: number): Promise<number>;
  close(): Promise<void>;
  /** Tests only: runs a pragma on the writer's connection (e.g. max_page_count: a full disk). */
  testPragma?(statement: string): Promise<number>;
}

/**
 * Account events of every node. password-rotated, suspended and deleted end the account's
 * open streams (and its cached credentials); resumed only drops cached credentials.
 */
export type AccountEvent = { kind: 'password-rotated' | 'suspended' | 'resumed' | 'deleted'; accountId: string };
export const ACCOUNT_EVENT_KINDS: readonly AccountEvent['kind'][] = ['password-rotated', 'suspended', 'resumed', 'deleted'];

export interface ChangeFeed {
  /** Newest sequence handed to listeners (this node's published head). */
  readonly head: number;
  /**
   * Committed changes of every node, each exactly once, in sequence order, with no gaps in
   * what was committed (purged or deleted rows are simply absent); listeners run synchronously.
   */
  onChanges(listener: (changes: ChangeRecord[]) => void): void;
  /** Account events of every node (this one included), each once. */
  onAccountEvent(listener: (event: AccountEvent) => void): void;
  /**
   * This node's own commit, reported by the backend's committer after each commit (the
   * domain need not call it): `changes` are the rows stored, `previousHead` the head the
   * batch started from. The feed publishes them without a read when previousHead is its
   * published head, and otherwise catches up from the store first.
   */
  committed(changes: ChangeRecord[], head: number, previousHead: number): void;
  publishAccountEvent(event: AccountEvent): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Why a history started: the database was created, restored (`pushhub restore`, or a
 * PostgreSQL restore the hub detected at start), or a receiver's cursor was beyond the head
 * (the database went back in time without a restore the hub could see).
 */
export type HistoryStart = 'created' | 'restored' | 'cursor-ahead';

/** The database's history: cursors belong to it (see docs/backups.md). */
export interface History {
  /** 'H' and 24 hex digits; a new one whenever continuity cannot be guaranteed. */
  id: string;
  start: HistoryStart;
  startedAtMs: number;
}

export interface HistoryStore {
  /** The current history as this node knows it (follows rotations by any node within a poll). */
  current(): History;
  /**
   * Compare-and-set: starts a new history if the current one is still `fromId`, durably and
   * for every node; resolves with the history that is current afterwards either way.
   */
  rotate(fromId: string, start: HistoryStart, nowMs: number): Promise<History>;
  /** Called when the current history changes (a rotation by this node or, later, by another). */
  onChange(listener: (history: History) => void): void;
}

/** Exactly one node of a cluster is leader at a time (it runs the purge). */
export interface Leader {
  readonly isLeader: boolean;
  close(): Promise<void>;
}

/** A public item's counts to append to the receipt log (WatchDeliveries' public_progress). */
export interface ProgressInput {
  merchantId: string;
  itemId: string;
  seq: number;
  atMs: number;
  deliveredCount: number;
  eligibleCount: number;
  /** The item's valid_until: the event is purged with the item. */
  keepUntilMs: number;
}

/**
 * Delivery receipts (issue 18, core/receipts.ts). Writes are serialised with the node's
 * other writes (SQLite: the commit worker; PostgreSQL: one advisory lock), so receipt log ids
 * ascend in commit order on every node, as sequences do.
 */
export interface ReceiptStore {
  /**
   * One transaction for a batch of confirmations (SQLite commits it without an fsync of its
   * own: a confirmation lost in a crash is sent again on the receiver's resume), in which each receiver's cursor moves up to
   * its upToSeq (never down; an opted-out receiver stores nothing), one event is appended per
   * (receiver, merchant) whose live specific items the move covers, and the public items the
   * moves reached are named. upToSeq must already be checked against the head.
   */
  confirm(batch: readonly Confirmation[], nowMs: number): Promise<ConfirmResult>;
  /** Appends public progress events, ascending ids, in one transaction. */
  appendProgress(events: readonly ProgressInput[]): Promise<ReceiptEvent[]>;
  /**
   * Sets (true/false) or reads (undefined) a receiver's opt-out; returns it as stored. Opting
   * out deletes the receiver's receipt events: nothing about it is kept for merchants.
   */
  setOptOut(receiverId: string, optOut: boolean | undefined, nowMs: number): Promise<boolean>;
  /** What the store knows of each item id (one per id, same order), as seen by this merchant. */
  itemFacts(merchantId: string, itemIds: readonly string[], nowMs: number): Promise<ItemFacts[]>;
  /**
   * A public item's counts: receivers (receipts on) whose confirmed cursor reached seq and
   * registered before endMs, and all receivers (receipts on) registered before endMs. No
   * endMs: the item is live and every receiver registered so far counts (read from a kept
   * total, not counted). Receivers that block the merchant count in neither.
   */
  publicCounts(seq: number, merchantId: string, endMs?: number): Promise<{ delivered: number; eligible: number }>;
  /** A merchant's receipt events with afterId < id <= upToId, ascending, at most limit. */
  eventsAfter(merchantId: string, afterId: number, upToId: number, limit: number): Promise<ReceiptEvent[]>;
  /** The specific items a delivery event covers that are still stored (item id and sequence). */
  deliveredItems(event: ReceiptEvent): Promise<{ itemId: string; seq: number }[]>;
  /** The newest receipt event id ever committed (0 when none). */
  headEventId(): Promise<number>;
}

/** Committed receipt events of every node to this node's watchers, once each, in id order. */
export interface ReceiptFeed {
  /** Newest event id handed to listeners. */
  readonly head: number;
  onEvents(listener: (events: ReceiptEvent[]) => void): void;
  /** This node's own commit: the events it appended (the feed reads what it missed). */
  committed(events: readonly ReceiptEvent[]): void;
}

export interface HubBackend {
  accounts: AccountStore;
  admin: AdminStore;
  changes: ChangeReader;
  committer: BatchCommitter;
  feed: ChangeFeed;
  leader: Leader;
  history: HistoryStore;
  receipts: ReceiptStore;
  receiptFeed: ReceiptFeed;
  close(): Promise<void>;
}
