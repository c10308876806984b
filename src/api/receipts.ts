import {
  DeliveryState,
  type DeliveryStatus,
  type PushHubServiceImplementation,
  ReceiptPolicy,
} from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { HubError, Reason, invalidArgument } from '../core/errors.js';
import { PUBLIC_RECEIVER } from '../core/records.js';
import { DeliveryStateName, specificState } from '../core/receipts.js';
import type { AuthContext, HubServices } from './call-context.js';
import { checkText } from './validate.js';

/** Item ids per GetDeliveryStatus call. */
export const MAX_STATUS_ITEMS = 1000;

const STATE: Record<DeliveryStateName, DeliveryState> = {
  [DeliveryStateName.Pending]: DeliveryState.DELIVERY_STATE_PENDING,
  [DeliveryStateName.Delivered]: DeliveryState.DELIVERY_STATE_DELIVERED,
  [DeliveryStateName.WithdrawnBeforeDelivery]: DeliveryState.DELIVERY_STATE_WITHDRAWN_BEFORE_DELIVERY,
  [DeliveryStateName.ExpiredBeforeDelivery]: DeliveryState.DELIVERY_STATE_EXPIRED_BEFORE_DELIVERY,
  [DeliveryStateName.ReplacedBeforeDelivery]: DeliveryState.DELIVERY_STATE_REPLACED_BEFORE_DELIVERY,
  [DeliveryStateName.Unknown]: DeliveryState.DELIVERY_STATE_UNKNOWN,
  [DeliveryStateName.Public]: DeliveryState.DELIVERY_STATE_PUBLIC,
  [DeliveryStateName.NotFound]: DeliveryState.DELIVERY_STATE_NOT_FOUND,
};

type ReceiptHandlers = Pick<PushHubServiceImplementation<AuthContext>, 'confirmDelivery' | 'getDeliveryStatus' | 'watchDeliveries' | 'setReceiptPolicy'>;

/**
 * Checks a confirmed sequence against what the hub has sent anyone: its published head, or,
 * on a cluster where this node's feed may trail another's by a few ms, the stored head.
 */
export async function checkConfirmable(hub: HubServices, upToSeq: number): Promise<void> {
  if (upToSeq <= hub.feed.head) return;
  const stored = await hub.changes.headSequence();
  if (upToSeq > stored) {
    throw new HubError(Reason.ConfirmationAhead, `up_to_sequence: ${upToSeq} is beyond the newest sequence ${stored}; confirm only sequences you were sent`);
  }
}

/** Resume as confirmation: a Subscribe with after_sequence = N confirms N. Never fails the stream. */
export function confirmOnResume(hub: HubServices, receiverId: string, afterSeq: number): void {
  if (afterSeq <= 0) return;
  checkConfirmable(hub, afterSeq)
    .then(() => hub.receipts.confirms.submit(receiverId, afterSeq))
    .catch(() => undefined); // a cursor beyond the head fails the Subscribe itself; storage faults retry on the next confirmation
}

/** The gRPC surface of receipts: validate, translate, delegate (delivery/receipts.ts). */
export function createReceiptHandlers(hub: HubServices): ReceiptHandlers {
  const { receipts } = hub;
  return {
    async confirmDelivery(req, { account }) {
      receipts.confirmLimiter.take(account.id, hub.now());
      if (req.upToSequence > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument('up_to_sequence', 'out of range');
      const upToSeq = Number(req.upToSequence);
      await checkConfirmable(hub, upToSeq);
      const confirmed = upToSeq === 0 ? 0 : await receipts.confirms.submit(account.id, upToSeq);
      return { confirmedSequence: BigInt(confirmed) };
    },

    async getDeliveryStatus(req, { account }) {
      receipts.statusLimiter.take(account.id, hub.now());
      if (req.itemIds.length === 0) throw invalidArgument('item_ids', 'name at least one item');
      if (req.itemIds.length > MAX_STATUS_ITEMS) throw invalidArgument('item_ids', `at most ${MAX_STATUS_ITEMS} per call`);
      req.itemIds.forEach((id, i) => {
        checkText(`item_ids[${i}]`, id);
        if (id.length > 64) throw invalidArgument(`item_ids[${i}]`, 'not an item id (too long)');
      });
      const nowMs = hub.now();
      const facts = await receipts.store.itemFacts(account.id, req.itemIds, nowMs);
      const statuses: DeliveryStatus[] = [];
      for (const f of facts) {
        const status: DeliveryStatus = { itemId: f.itemId, state: DeliveryState.DELIVERY_STATE_NOT_FOUND, confirmedAt: undefined, receiverId: '', deliveredCount: 0n, eligibleCount: 0n, sequence: 0n };
        if (f.found) {
          status.sequence = BigInt(f.seq);
          if (f.receiverId === PUBLIC_RECEIVER) {
            const { delivered, eligible } = await receipts.store.publicCounts(f.seq, account.id, f.end.kind === 'live' ? undefined : f.end.atMs);
            status.state = DeliveryState.DELIVERY_STATE_PUBLIC;
            status.deliveredCount = BigInt(delivered);
            status.eligibleCount = BigInt(eligible);
          } else {
            const { state, confirmedAtMs } = specificState(f);
            status.state = STATE[state];
            status.receiverId = f.receiverId;
            if (confirmedAtMs !== undefined) status.confirmedAt = new Date(confirmedAtMs);
          }
        }
        statuses.push(status);
      }
      return { statuses };
    },

    async *watchDeliveries(req, context) {
      if (req.afterCursor > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument('after_cursor', 'out of range');
      if (req.historyId.length > 64) throw invalidArgument('history_id', 'at most 64 characters');
      yield* receipts.watch.stream(context.account.id, Number(req.afterCursor), req.historyId, context.signal);
    },

    async setReceiptPolicy(req, { account }) {
      const optOut =
        req.policy === ReceiptPolicy.RECEIPT_POLICY_UNSPECIFIED ? undefined
        : req.policy === ReceiptPolicy.RECEIPT_POLICY_OPT_OUT ? true
        : req.policy === ReceiptPolicy.RECEIPT_POLICY_SHARE ? false
        : (() => { throw invalidArgument('policy', `unknown value ${req.policy}`); })();
      const stored = await receipts.store.setOptOut(account.id, optOut, hub.now());
      return { policy: stored ? ReceiptPolicy.RECEIPT_POLICY_OPT_OUT : ReceiptPolicy.RECEIPT_POLICY_SHARE };
    },
  };
}
