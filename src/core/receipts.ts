import { SubscribeResponse } from '../../sdk/src/gen/pushhub/v1/pushhub.js';

/**
 * Delivery receipts (issue 18): the records every backend stores for them and the one rule
 * that turns stored facts into an item's delivery state. No I/O.
 *
 * What is stored, compactly:
 * - per receiver, one cursor row: the highest sequence it confirmed, when, and whether it
 *   opted out (the cursor is indexed, so a public item's count reads an index range);
 * - per confirmation that covered specific items, one event per (receiver, merchant): the
 *   sequence range it covered and the time. An item's delivery time is the time of the first
 *   such event covering its sequence; no row is written per item. These events are also the
 *   log WatchDeliveries resumes from, and they are purged with the items they cover;
 * - per public item, at most one progress event per second with its counts.
 */

/** One receiver's confirmation: every change up to upToSeq is stored on the receiver. */
export interface Confirmation {
  receiverId: string;
  upToSeq: number;
}

/** receiverId of a public progress event. */
export const PUBLIC_PROGRESS = '';

/** One entry of the receipt log (WatchDeliveries' cursor is its id). */
export interface ReceiptEvent {
  /** Position in the receipt log; ascending in commit order, never reused. */
  id: number;
  merchantId: string;
  /** The confirming receiver, or PUBLIC_PROGRESS for a public item's counts. */
  receiverId: string;
  /**
   * Specific: the confirmation covered this merchant's items with fromSeq < seq <= upToSeq
   * that were live at atMs. Public progress: fromSeq = upToSeq = the item's sequence.
   */
  fromSeq: number;
  upToSeq: number;
  /** When the receiver confirmed (or the counts were taken). */
  atMs: number;
  /** Public progress only. */
  deliveredCount: number;
  eligibleCount: number;
  /** Public progress only: the item's id (specific events name their items by range). */
  itemId: string;
}

/** A public item a confirmation reached: its counts changed. */
export interface TouchedPublicItem {
  seq: number;
  itemId: string;
  merchantId: string;
  validUntilMs: number;
}

/** What one confirmation transaction did. */
export interface ConfirmResult {
  /** Per confirmation, in order: the receiver's confirmed sequence now (0 when it opted out). */
  confirmed: number[];
  /** Events appended (specific deliveries), ascending by id. */
  events: ReceiptEvent[];
  /** Public items the advanced cursors reached. */
  publicItems: TouchedPublicItem[];
  /** Per event: ms from the oldest push it covers to the confirmation (the confirmation lag). */
  lagsMs: number[];
}

/** How a stored item ended, if it has. */
export type ItemEnd = { kind: 'live' } | { kind: 'expired'; atMs: number } | { kind: 'withdrawn' | 'replaced'; atMs: number };

/** What a backend knows about one item asked for in GetDeliveryStatus. */
export type ItemFacts =
  | { found: false; itemId: string }
  | {
      found: true;
      itemId: string;
      seq: number;
      merchantId: string;
      /** PUBLIC_RECEIVER ('') for a public item. */
      receiverId: string;
      end: ItemEnd;
      /** Specific items: the receiver has turned receipts off. */
      optedOut: boolean;
      /** Specific items: when the first confirmation covering the item was stored, if any. */
      confirmedAtMs?: number;
    };

export const DeliveryStateName = {
  Pending: 'PENDING',
  Delivered: 'DELIVERED',
  WithdrawnBeforeDelivery: 'WITHDRAWN_BEFORE_DELIVERY',
  ExpiredBeforeDelivery: 'EXPIRED_BEFORE_DELIVERY',
  ReplacedBeforeDelivery: 'REPLACED_BEFORE_DELIVERY',
  Unknown: 'UNKNOWN',
  Public: 'PUBLIC',
  NotFound: 'NOT_FOUND',
} as const;
export type DeliveryStateName = (typeof DeliveryStateName)[keyof typeof DeliveryStateName];

/**
 * A specific item's state. Delivered means: a confirmation covering the item was stored
 * before the item ended (withdrawn, replaced or expired); a confirmation after that proves
 * nothing about this item, so the item ended "before delivery". An opted-out receiver's
 * items are UNKNOWN whatever is stored: merchants never get a guess.
 */
export function specificState(facts: Extract<ItemFacts, { found: true }>): { state: DeliveryStateName; confirmedAtMs?: number } {
  if (facts.optedOut) return { state: DeliveryStateName.Unknown };
  const endMs = facts.end.kind === 'live' ? Number.POSITIVE_INFINITY : facts.end.atMs;
  if (facts.confirmedAtMs !== undefined && facts.confirmedAtMs < endMs) {
    return { state: DeliveryStateName.Delivered, confirmedAtMs: facts.confirmedAtMs };
  }
  switch (facts.end.kind) {
    case 'live':
      return { state: DeliveryStateName.Pending };
    case 'expired':
      return { state: DeliveryStateName.ExpiredBeforeDelivery };
    case 'withdrawn':
      return { state: DeliveryStateName.WithdrawnBeforeDelivery };
    case 'replaced':
      return { state: DeliveryStateName.ReplacedBeforeDelivery };
  }
}

/** The end of an item still in the change log at nowMs (an item row: live or expired). */
export const endOfItemRow = (validUntilMs: number, nowMs: number): ItemEnd =>
  validUntilMs > nowMs ? { kind: 'live' } : { kind: 'expired', atMs: validUntilMs };


/** Whether a tombstone's frame says its item was replaced (rather than withdrawn). */
export function tombstoneReplaced(frame: Uint8Array): boolean {
  const event = SubscribeResponse.decode(frame).events[0]?.event;
  return event?.$case === 'withdrawal' && event.value.replaced;
}
