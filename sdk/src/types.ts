/**
 * The values the SDK hands an application: plain data. Every result and event survives
 * `JSON.stringify` and comes back deep-equal through `JSON.parse`:
 *
 * - 64-bit integers (sequences, points, money in minor units) are JS numbers. The SDK
 *   returns them exactly up to `Number.MAX_SAFE_INTEGER` (2^53 - 1); a hub value beyond it
 *   fails the call with a {@link PushHubError} `OUT_OF_RANGE` (reason `UNSAFE_INTEGER`)
 *   rather than returning a rounded number. A hub reaches 2^53 sequences after 285 years at
 *   a million pushes a second.
 * - Timestamps are ISO-8601 strings in UTC with milliseconds (`2030-01-01T00:00:00.000Z`,
 *   what `Date.prototype.toISOString` writes): `new Date(item.pushedAt)` gives a Date.
 * - Absent optional fields are left out, never `undefined`.
 *
 * @module
 */
import { ResetReason } from './gen/pushhub/v1/pushhub.js';

/**
 * Why a receiver's state (or a merchant's receipt cursor) was reset (see docs/backups.md):
 * - 'restored': the hub's database was restored from a backup;
 * - 'cursor_ahead': the cursor was beyond the hub's newest sequence (the database went back
 *   in time);
 * - 'unknown_history': the stored state belongs to another database (one created anew).
 */
export type ResetReasonName = 'restored' | 'cursor_ahead' | 'unknown_history';

const RESET_REASON_NAMES: Record<number, ResetReasonName> = {
  [ResetReason.RESET_REASON_RESTORED]: 'restored',
  [ResetReason.RESET_REASON_CURSOR_AHEAD]: 'cursor_ahead',
  [ResetReason.RESET_REASON_UNKNOWN_HISTORY]: 'unknown_history',
};

/** The SDK's name of a wire ResetReason (an unknown value reads as 'unknown_history'). */
export const resetReasonName = (reason: number): ResetReasonName => RESET_REASON_NAMES[reason] ?? 'unknown_history';

/** Who an item is for: one receiver (`specific`), or every receiver (`public`). */
export type Audience = 'specific' | 'public';

/** A percentage discount. */
export interface Discount {
  /** Percent off, 0 to 100. */
  percentOff: number;
}

/** A loyalty points balance. */
export interface Points {
  /** Current balance. */
  balance: number;
  /** Points earned by the latest activity (negative for a refund). */
  earned: number;
}

/** An amount off a purchase; money is in minor units (cents). */
export interface Voucher {
  /** Code shown at the till. */
  code: string;
  /** Amount off, in minor units. */
  amountOff: number;
  /** ISO 4217 currency code, e.g. `EUR`. */
  currency: string;
  /** Minimum spend for the voucher to apply, in minor units (0: none). */
  minSpend: number;
}

/**
 * The offer an item carries: `$case` names the kind, `value` holds it, e.g.
 * `{ $case: 'points', value: { balance: 120, earned: 20 } }`.
 */
export type Offer =
  | {
      /** A percentage discount. */
      $case: 'discount';
      /** The discount. */
      value: Discount;
    }
  | {
      /** A points balance. */
      $case: 'points';
      /** The points. */
      value: Points;
    }
  | {
      /** A voucher. */
      $case: 'voucher';
      /** The voucher. */
      value: Voucher;
    };

/** The content of an item: a titled message with an optional offer. */
export interface ServiceInfo {
  /**
   * Replacement key: a later push from the same merchant to the same audience with the same
   * non-empty key replaces this item. '' means always new.
   */
  key: string;
  /** Short title. */
  title: string;
  /** Body text. */
  body: string;
  /** When the item stops being valid: an ISO-8601 UTC string (see the module notes). */
  validUntil: string;
  /** The offer, if the item carries one (absent for a plain message). */
  offer?: Offer;
  /** Free-form string data (`{}` when none). */
  data: Record<string, string>;
}

/**
 * A stored push as the hub delivers it: in `ReceiverClient` events, a `ReceiverStore`'s
 * queries and changes, and `MerchantClient.listItems`.
 *
 * This is also the item's JSON form: `JSON.parse(JSON.stringify(item))` deep-equals `item`,
 * and the `pushhub-receiver` daemon prints exactly this object in its `item` field. For
 * example:
 *
 * ```json
 * {"itemId":"I3f…","sequence":42,"merchantId":"M11-4829104729104829","audience":"specific",
 *  "receiverId":"R00-0192837465019283","pushedAt":"2026-01-05T09:30:00.000Z",
 *  "info":{"key":"points","title":"Your points","body":"","validUntil":"2026-02-04T09:30:00.000Z",
 *          "offer":{"$case":"points","value":{"balance":120,"earned":20}},"data":{}}}
 * ```
 */
export interface Item {
  /** Unique item id (prefix `I`). */
  itemId: string;
  /** The change sequence of this push; receivers resume after it. */
  sequence: number;
  /** The merchant that pushed it. */
  merchantId: string;
  /** Specific (one receiver) or public. */
  audience: Audience;
  /** For a specific item, its receiver; '' for a public item. */
  receiverId: string;
  /** When the hub committed the push: an ISO-8601 UTC string. */
  pushedAt: string;
  /** The content; `info.validUntil` is always set. */
  info: ServiceInfo;
}

/** The removal of an item, as the hub delivers it to a receiver. */
export interface Withdrawal {
  /** The withdrawn item's id. */
  itemId: string;
  /** The change sequence of the withdrawal. */
  sequence: number;
  /** The merchant that withdrew it. */
  merchantId: string;
  /** The audience of the withdrawn item. */
  audience: Audience;
  /** The withdrawn item's key ('' if it had none). */
  key: string;
  /**
   * True when the item was replaced by a newer item with the same key (which follows unless
   * it has already ended), false when its merchant withdrew it.
   */
  replaced: boolean;
  /**
   * Why it was withdrawn: its merchant withdrew it, a newer item replaced it, this receiver
   * blocked the merchant, an operator suspended the merchant (its public items come back
   * when resumed), or the merchant deleted its account; 'unspecified' from an older hub.
   */
  cause: WithdrawalCauseName;
}

/** Why a withdrawal happened (see {@link Withdrawal.cause}). */
export type WithdrawalCauseName = 'withdrawn' | 'replaced' | 'blocked' | 'suspended' | 'account-deleted' | 'unspecified';

/** A merchant this receiver blocks (see ReceiverClient.blocked). */
export interface BlockedMerchant {
  /** The blocked merchant's account id. */
  merchantId: string;
  /** When the block was committed, ISO-8601. */
  blockedAt: string;
}

/**
 * When an item stops being valid, in any of three forms: a `Date`; an ISO-8601 string with
 * a time zone (`2030-01-01T00:00:00Z`, `2030-01-01T01:00:00+01:00`) or a date alone
 * (`2030-01-01`, midnight UTC); or epoch milliseconds (`Date.now() + 86_400_000`). Anything
 * else fails the call with `INVALID_ARGUMENT` naming `info.validUntil`. Precision is the
 * millisecond.
 */
export type ValidUntilInput = Date | string | number;

/** An offer to push: like {@link Offer}, with every value field optional (0 or '' when omitted). */
export type OfferInput =
  | {
      /** A percentage discount. */
      $case: 'discount';
      /** The discount. */
      value?: Partial<Discount>;
    }
  | {
      /** A points balance. */
      $case: 'points';
      /** The points (safe integers). */
      value?: Partial<Points>;
    }
  | {
      /** A voucher. */
      $case: 'voucher';
      /** The voucher (amounts: safe integers in minor units). */
      value?: Partial<Voucher>;
    };

/**
 * The content of a push: a {@link ServiceInfo} where every field is optional (unset strings
 * are empty; an unset `validUntil` means the hub's default lifetime, 30 days). A
 * `ServiceInfo` read back from the hub is a valid input. For example
 * `{ key: 'points', title: 'Your points', offer: { $case: 'points', value: { balance: 120, earned: 20 } } }`.
 *
 * The SDK checks the types before sending: a wrong type, a number that is not a safe
 * integer, or an unparsable `validUntil` fails with a {@link PushHubError} `INVALID_ARGUMENT`
 * naming the field (e.g. `info.offer.value.balance`). Limits on lengths and values are the
 * hub's to check; it answers `INVALID_ARGUMENT` naming the field too.
 */
export interface ServiceInfoInput {
  /** Replacement key, at most 128 characters ('' or omitted: always a new item). */
  key?: string;
  /** Short title, at most 200 characters. */
  title?: string;
  /** Body text, at most 4 KiB (UTF-8 bytes). */
  body?: string;
  /** When the item stops being valid; must be in the future (see {@link ValidUntilInput}). */
  validUntil?: ValidUntilInput;
  /** The offer the item carries, if any. */
  offer?: OfferInput;
  /** Free-form string data: at most 32 entries and 4 KiB of keys and values together. */
  data?: Record<string, string>;
}

/** The kind of offer an item carries; 'none' for a plain message. */
export type OfferKind = 'discount' | 'points' | 'voucher' | 'none';

/**
 * One change to the store's contents, emitted as a `change` event after it is committed.
 * Plain data: `JSON.parse(JSON.stringify(change))` deep-equals it.
 */
export type StoreChange =
  | {
      /** An item was added. */
      type: 'added';
      /** The added item. */
      item: Item;
      /** The item it replaced (same merchant, audience and key), if any. */
      replaced?: Item;
    }
  | {
      /** An item was removed. */
      type: 'removed';
      /** The removed item. */
      item: Item;
      /**
       * Why: withdrawn by its merchant, past its validUntil, or replaced by a newer item with
       * the same key (the newer one is `added` next, unless it has already ended).
       */
      cause: 'withdrawn' | 'expired' | 'replaced';
    }
  | {
      /**
       * The store's contents were replaced: the hub's database was restored, or the store's
       * state belonged to another history (see `reason`). Every item the application knew is
       * gone; the items of the new state follow as `added` changes, from the same transaction.
       * Nothing was withdrawn by a merchant.
       */
      type: 'reset';
      /** Why. */
      reason: ResetReasonName;
      /** The hub history the new state belongs to. */
      historyId: string;
    };

/**
 * One line of the `pushhub-receiver` daemon's output (stdout, one JSON object per line): a
 * store change, with the item in its JSON form ({@link Item}).
 */
export type ReceiverDaemonLine =
  | {
      /** An item was added. */
      change: 'added';
      /** The added item's id. */
      itemId: string;
      /** The item it replaced (same merchant, audience and key), if any. */
      replacedItemId?: string;
      /** The added item. */
      item: Item;
    }
  | {
      /** An item was removed. */
      change: 'removed';
      /** The removed item's id. */
      itemId: string;
      /** Why: withdrawn by its merchant, past its validUntil, or replaced by a newer item. */
      cause: 'withdrawn' | 'expired' | 'replaced';
      /** The removed item. */
      item: Item;
    }
  | {
      /**
       * The store was reset (see StoreChange 'reset'): every item printed before is gone,
       * nothing was withdrawn; the new state follows as 'added' lines.
       */
      change: 'reset';
      /** Why. */
      reason: ResetReasonName;
      /** The hub history the new state belongs to. */
      historyId: string;
    };
