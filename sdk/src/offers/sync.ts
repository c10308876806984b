import type { PushOptions, PushResult, WithdrawTarget } from '../push-types.js';
import type { Item, ServiceInfo, ServiceInfoInput } from '../types.js';
import { type ComputeOptions, OFFER_KEY_PREFIX, computeOffers } from './compute.js';
import { offerFingerprint, pushRequestId, withdrawRequestId } from './fingerprint.js';
import type { ConsumptionRecord } from './records.js';
import type { OfferRules, ValidRules } from './rules.js';
import { ensureValidRules } from './rules.js';

/** Where offer changes go: a MerchantClient or one of its push streams. */
export interface OfferSink {
  /** Pushes one offer to one receiver. */
  pushSpecific(receiverId: string, info: ServiceInfoInput, options?: PushOptions): Promise<PushResult>;
  /** Withdraws one item. */
  withdraw(target: WithdrawTarget, options?: PushOptions): Promise<PushResult>;
}

/** Where the offers the hub holds come from: a MerchantClient. */
export interface OfferSource {
  /** The merchant's live items, optionally for one receiver only. */
  listItems(filter?: { receiverId?: string; audience?: 'specific' | 'public'; pageSize?: number }): AsyncIterable<Item>;
}

/** A MerchantClient as the bulk sync uses it: listing, plus a push stream for the volume. */
export interface BulkOfferTarget extends OfferSource {
  /** Opens the high-volume push path. */
  openPushStream(options?: { window?: number }): OfferSink & {
    /** Resolves once every change sent is answered. */
    close(): Promise<void>;
  };
}

/** One change to bring the hub in line with the rules. */
export type OfferChange =
  | {
      /** Push this offer (new, or replacing `replacesItemId` with different content). */
      type: 'push';
      /** The receiver. */
      receiverId: string;
      /** The offer. */
      info: ServiceInfo;
      /** The push's request id (derived from the content and the item replaced). */
      requestId: string;
      /** The held item with other content that this push replaces, if any. */
      replacesItemId?: string;
    }
  | {
      /** Withdraw this item: the receiver no longer earns its offer. */
      type: 'withdraw';
      /** The receiver. */
      receiverId: string;
      /** The offer's key. */
      key: string;
      /** The held item to withdraw. */
      itemId: string;
      /** The withdrawal's request id. */
      requestId: string;
    };

/** What a sync needs to do for one receiver. */
export interface OfferPlan {
  /** The receiver. */
  receiverId: string;
  /** Pushes and withdrawals, pushes first, each in key order. */
  changes: OfferChange[];
  /** Offers the hub already holds with exactly this content: nothing to send. */
  unchanged: number;
}

/** What a sync did. */
export interface SyncSummary {
  /** Receivers synced. */
  receivers: number;
  /** Offers pushed (new or changed). */
  pushed: number;
  /** Offers the hub already held with the same content. */
  unchanged: number;
  /** Offers withdrawn because they are no longer earned. */
  withdrawn: number;
  /**
   * Offers the records earned but whose validity had already ended (at `now`, or within a
   * second of the real clock): not sent, since the hub refuses them. Validity derives from the
   * records' times, so old records give only ended offers.
   */
  ended: number;
  /** Changes the hub rejected (see `errors`). */
  failed: number;
  /** The first rejected changes (at most 100), for the report. */
  errors: {
    /** The receiver. */
    receiverId: string;
    /** The offer's key. */
    key: string;
    /** The hub's error message. */
    message: string;
  }[];
}

const MAX_REPORTED_ERRORS = 100;

/** An empty summary, to add to. */
export const emptySummary = (): SyncSummary => ({ receivers: 0, pushed: 0, unchanged: 0, withdrawn: 0, ended: 0, failed: 0, errors: [] });

/**
 * Compares the offers a receiver should have (`desired`, from computeOffers) with the items
 * the hub holds for it (`held`) and returns the changes: a push for every offer that is new or
 * whose content differs, a withdrawal for every held offer no longer earned. Held items
 * whose key does not start with `keyPrefix` (the merchant's other pushes) are left alone.
 * Pure: request ids derive from the receiver, the content and the item replaced.
 */
export function planOfferChanges(receiverId: string, desired: readonly ServiceInfo[], held: readonly Item[], keyPrefix = OFFER_KEY_PREFIX): OfferPlan {
  const heldByKey = new Map<string, Item>();
  for (const item of held) {
    const key = item.info.key;
    if (key.startsWith(keyPrefix) && item.receiverId === receiverId) heldByKey.set(key, item);
  }
  const pushes: OfferChange[] = [];
  let unchanged = 0;
  const wanted = new Set<string>();
  for (const info of desired) {
    wanted.add(info.key);
    const current = heldByKey.get(info.key);
    if (current && offerFingerprint(current.info) === offerFingerprint(info)) {
      unchanged++;
      continue;
    }
    const change: OfferChange = { type: 'push', receiverId, info, requestId: pushRequestId(receiverId, info, current?.itemId ?? '') };
    if (current) change.replacesItemId = current.itemId;
    pushes.push(change);
  }
  const withdrawals: OfferChange[] = [...heldByKey.entries()]
    .filter(([key]) => !wanted.has(key))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, item]) => ({ type: 'withdraw', receiverId, key, itemId: item.itemId, requestId: withdrawRequestId(item.itemId) }));
  return { receiverId, changes: [...pushes, ...withdrawals], unchanged };
}

/**
 * Sends a plan's changes through `sink`, all at once (a push stream pipelines them), and
 * adds the outcome to `summary`. A withdrawal of an item that is already gone (expired, or
 * withdrawn by someone else) counts as done: the goal is its absence.
 */
export async function applyOfferPlan(sink: OfferSink, plan: OfferPlan, summary: SyncSummary = emptySummary()): Promise<SyncSummary> {
  summary.receivers++;
  summary.unchanged += plan.unchanged;
  await Promise.all(
    plan.changes.map(async (change) => {
      try {
        if (change.type === 'push') {
          await sink.pushSpecific(change.receiverId, change.info, { requestId: change.requestId });
          summary.pushed++;
        } else {
          await sink.withdraw({ itemId: change.itemId }, { requestId: change.requestId });
          summary.withdrawn++;
        }
      } catch (error) {
        if (change.type === 'withdraw' && (error as { reason?: string }).reason === 'ITEM_NOT_FOUND') return;
        summary.failed++;
        if (summary.errors.length < MAX_REPORTED_ERRORS) {
          const key = change.type === 'push' ? change.info.key : change.key;
          summary.errors.push({ receiverId: change.receiverId, key, message: (error as Error).message ?? String(error) });
        }
      }
    }),
  );
  return summary;
}

/**
 * Syncs one receiver: computes its offers from `records`, reads what the hub holds for it
 * (ListItems), pushes what is new or changed and withdraws what is no longer earned. Running it
 * again with the same records sends nothing; running it twice concurrently delivers nothing
 * twice (request ids derive from content).
 */
export async function syncReceiverOffers(
  merchant: OfferSink & OfferSource,
  receiverId: string,
  records: Iterable<ConsumptionRecord>,
  rules: OfferRules | ValidRules,
  options: ComputeOptions & { now?: Date } = {},
): Promise<SyncSummary> {
  const summary = emptySummary();
  const countEnded: ComputeOptions = {
    ...options,
    onEnded(offer) {
      summary.ended++;
      options.onEnded?.(offer);
    },
  };
  const desired = stillValid(computeOffers(records, rules, options.now ?? new Date(), countEnded), summary);
  const held: Item[] = [];
  for await (const item of merchant.listItems({ receiverId, audience: 'specific' })) held.push(item);
  return applyOfferPlan(merchant, planOfferChanges(receiverId, desired, held), summary);
}

/** Progress of a bulk sync: while listing, per page of items; then after each receiver. */
export interface SyncProgress {
  /** 'listing': reading what the hub holds (`done` counts items, `total` is unknown, 0); 'syncing': receivers. */
  phase: 'listing' | 'syncing';
  /** Receivers done so far (items listed so far while listing). */
  done: number;
  /** Receivers in the run (0 while listing). */
  total: number;
  /** The summary so far. */
  summary: SyncSummary;
}

/** Options of {@link syncOffers}. */
export interface SyncOffersOptions extends ComputeOptions {
  /** The time the offers are computed for (default: now). */
  now?: Date;
  /** Pushes in flight on the push stream (default 512). */
  window?: number;
  /** Only plan: count what would be pushed and withdrawn, send nothing. */
  dryRun?: boolean;
  /** Called with each receiver's plan before it is sent (for a listing of the changes). */
  onPlan?: (plan: OfferPlan) => void;
  /** Called after each receiver (and once at the end). */
  onProgress?: (progress: SyncProgress) => void;
  /**
   * Up to this many receivers, their items are listed one receiver at a time; above it, the
   * merchant's specific items are listed once, in pages (default 100).
   */
  perReceiverListingUpTo?: number;
}

const DEFAULT_WINDOW = 512;
const DEFAULT_PER_RECEIVER_LISTING = 100;

/**
 * Syncs the offers of every receiver that has records in `recordsByReceiver` (only those:
 * a partial export never withdraws anyone else's offers). Reads what the hub holds with
 * ListItems (one paged scan for many receivers), then sends every change through one push
 * stream, keeping up to `window` in flight.
 *
 * Comparing with the hub, not with a state file of our own: the hub is what receivers see,
 * and it also reflects expiry, manual withdrawals and runs from other machines, so there is no
 * second copy to drift or to keep crash-safe.
 */
export async function syncOffers(
  target: BulkOfferTarget,
  recordsByReceiver: ReadonlyMap<string, readonly ConsumptionRecord[]>,
  rules: OfferRules | ValidRules,
  options: SyncOffersOptions = {},
): Promise<SyncSummary> {
  const valid = ensureValidRules(rules);
  const now = options.now ?? new Date();
  const summary = emptySummary();
  const computeOptions: ComputeOptions = {
    ...options,
    onEnded(offer) {
      summary.ended++;
      options.onEnded?.(offer);
    },
  };
  const total = recordsByReceiver.size;
  const held = await listHeld(target, [...recordsByReceiver.keys()], options.perReceiverListingUpTo ?? DEFAULT_PER_RECEIVER_LISTING, (listed) =>
    options.onProgress?.({ phase: 'listing', done: listed, total: 0, summary }),
  );

  const window = Math.max(1, options.window ?? DEFAULT_WINDOW);
  const stream = options.dryRun ? undefined : target.openPushStream({ window });
  const inFlight = new Set<Promise<unknown>>();
  let changesInFlight = 0;
  let done = 0;
  try {
    for (const [receiverId, records] of recordsByReceiver) {
      // A dry run shows the offers as of `now`, even a `now` in the past.
      const offers = computeOffers(records, valid, now, computeOptions);
      const plan = planOfferChanges(receiverId, options.dryRun ? offers : stillValid(offers, summary), held.get(receiverId) ?? []);
      options.onPlan?.(plan);
      if (!stream) {
        summary.receivers++;
        summary.unchanged += plan.unchanged;
        for (const change of plan.changes) change.type === 'push' ? summary.pushed++ : summary.withdrawn++;
      } else {
        // Our own bound on changes in flight, so memory stays flat however many receivers there are.
        while (inFlight.size > 0 && changesInFlight + plan.changes.length > window) await Promise.race(inFlight);
        changesInFlight += plan.changes.length;
        const applied = applyOfferPlan(stream, plan, summary).then(() => {
          inFlight.delete(applied);
          changesInFlight -= plan.changes.length;
          options.onProgress?.({ phase: 'syncing', done: ++done, total, summary });
        });
        inFlight.add(applied);
        continue;
      }
      options.onProgress?.({ phase: 'syncing', done: ++done, total, summary });
    }
    await Promise.all(inFlight);
  } finally {
    await stream?.close();
  }
  options.onProgress?.({ phase: 'syncing', done, total, summary });
  return summary;
}

const LIST_PROGRESS_EVERY = 500;
/** An offer that ends sooner than this is not worth a push (and the hub may refuse it by the time it arrives). */
const MIN_REMAINING_VALIDITY_MS = 1000;

/**
 * Leaves out offers whose validity ends before the real clock plus a margin. computeOffers
 * works for the given `now`; a long run, or `now` in the past, can yield offers that have
 * ended by the time they reach the hub, which refuses them ("valid_until must be in the
 * future"). A held offer left out this way is withdrawn, or has already expired; it counts
 * in `summary.ended`.
 */
function stillValid(offers: ServiceInfo[], summary: SyncSummary): ServiceInfo[] {
  const cutoff = Date.now() + MIN_REMAINING_VALIDITY_MS;
  const valid = offers.filter((info) => info.validUntil === '' || Date.parse(info.validUntil) > cutoff);
  summary.ended += offers.length - valid.length;
  return valid;
}

async function listHeld(source: OfferSource, receiverIds: string[], perReceiverUpTo: number, onListed: (n: number) => void): Promise<Map<string, Item[]>> {
  const held = new Map<string, Item[]>();
  let listed = 0;
  const add = (item: Item) => {
    if (++listed % LIST_PROGRESS_EVERY === 0) onListed(listed);
    if (!item.info.key.startsWith(OFFER_KEY_PREFIX)) return;
    const list = held.get(item.receiverId);
    if (list) list.push(item);
    else held.set(item.receiverId, [item]);
  };
  if (receiverIds.length <= perReceiverUpTo) {
    for (const receiverId of receiverIds) for await (const item of source.listItems({ receiverId, audience: 'specific' })) add(item);
  } else {
    const wanted = new Set(receiverIds);
    for await (const item of source.listItems({ audience: 'specific', pageSize: 5000 })) if (wanted.has(item.receiverId)) add(item);
  }
  return held;
}
