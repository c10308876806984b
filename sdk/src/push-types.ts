import type { DeepPartial, WithdrawRequest } from './gen/pushhub/v1/pushhub.js';
import type { ServiceInfoInput } from './types.js';
import { checkString, invalidArgument } from './values.js';

export type { ServiceInfoInput } from './types.js';

/** The hub's acknowledgement of a committed push or withdrawal. */
export interface PushResult {
  /** The item's id (for a withdrawal: the withdrawn item's id). */
  itemId: string;
  /** The change's position in the hub's sequence (a safe integer, see the `types` notes). */
  sequence: number;
}

/** Per-call options of a push. */
export interface PushOptions {
  /**
   * Idempotency key (at most 128 characters). Generated when omitted; every retry of one call
   * reuses it, so the hub applies the push once. Pass your own to make retries of your own
   * (for example after a crash) idempotent too; the hub remembers it for 24 h.
   */
  requestId?: string;
  /** Cancels the call (and its retries). */
  signal?: AbortSignal;
}

/** What to withdraw: an item by id, or the live item with a key (specific: with `receiverId`; public: without). */
export type WithdrawTarget =
  | {
      /** The item's id, as a push returned it. */
      itemId: string;
    }
  | {
      /** The live item's replacement key. */
      key: string;
      /** For a specific item, its receiver; omitted for a public item. */
      receiverId?: string;
    };

/** Builds a WithdrawRequest from the SDK's target shape, checking its types (not exported from the package). */
export function toWithdrawRequest(target: WithdrawTarget, requestId: string, path = ''): DeepPartial<WithdrawRequest> {
  if (typeof target !== 'object' || target === null) throw invalidArgument('target', 'must be { itemId } or { key, receiverId? }', path);
  if ('itemId' in target) return { itemId: checkString(target.itemId, 'target.itemId', path, true), requestId };
  if (!('key' in target)) throw invalidArgument('target', 'must be { itemId } or { key, receiverId? }', path);
  return { key: checkString(target.key, 'target.key', path, true), receiverId: checkString(target.receiverId, 'target.receiverId', path), requestId };
}

/** Checks a push's request id option: a string when given; a new one is generated when absent. */
export function checkRequestId(options: PushOptions | undefined, path: string, generate: () => string): string {
  const requestId = options?.requestId;
  return requestId === undefined || requestId === null ? generate() : checkString(requestId, 'options.requestId', path, true);
}

/** Full method paths, named in the errors of inputs refused before sending. */
export const METHOD = {
  pushSpecific: '/pushhub.v1.PushHubService/PushSpecific',
  pushPublic: '/pushhub.v1.PushHubService/PushPublic',
  withdraw: '/pushhub.v1.PushHubService/Withdraw',
  pushStream: '/pushhub.v1.PushHubService/PushStream',
  listItems: '/pushhub.v1.PushHubService/ListItems',
  subscribe: '/pushhub.v1.PushHubService/Subscribe',
} as const;
