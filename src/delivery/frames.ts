import {
  Audience,
  type ServiceInfo,
  SubscribeResponse,
} from '../gen/pushhub/v1/pushhub.js';
import { PUBLIC_RECEIVER } from '../store/types.js';

/**
 * Subscribe frames are encoded once, when a change is committed, and stored with it: live
 * fan-out of a public item to N subscribers and catch-up from the database both write the
 * same bytes without re-encoding (see wire-definition.ts).
 */

export const audienceOf = (receiverId: string) =>
  receiverId === PUBLIC_RECEIVER ? Audience.AUDIENCE_PUBLIC : Audience.AUDIENCE_SPECIFIC;

export function encodeItemFrame(item: {
  itemId: string;
  seq: number;
  merchantId: string;
  receiverId: string;
  info: ServiceInfo;
  pushedAtMs: number;
}): Uint8Array {
  return SubscribeResponse.encode({
    event: {
      $case: 'item',
      value: {
        itemId: item.itemId,
        sequence: BigInt(item.seq),
        merchantId: item.merchantId,
        audience: audienceOf(item.receiverId),
        info: item.info,
        pushedAt: new Date(item.pushedAtMs),
        receiverId: item.receiverId,
      },
    },
  }).finish();
}

export function encodeWithdrawalFrame(w: {
  itemId: string;
  seq: number;
  merchantId: string;
  receiverId: string;
  itemKey: string;
}): Uint8Array {
  return SubscribeResponse.encode({
    event: {
      $case: 'withdrawal',
      value: {
        itemId: w.itemId,
        sequence: BigInt(w.seq),
        merchantId: w.merchantId,
        audience: audienceOf(w.receiverId),
        key: w.itemKey,
      },
    },
  }).finish();
}

export const encodeCaughtUpFrame = (seq: number): Uint8Array =>
  SubscribeResponse.encode({ event: { $case: 'caughtUp', value: { sequence: BigInt(seq) } } }).finish();

export const encodeHeartbeatFrame = (seq: number, intervalMs: number): Uint8Array =>
  SubscribeResponse.encode({
    event: { $case: 'heartbeat', value: { sequence: BigInt(seq), sentAt: new Date(), intervalMs } },
  }).finish();
