import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Timestamp } from '../gen/google/protobuf/timestamp.js';
import {
  Audience,
  Item,
  ServiceInfo,
  SubscribeResponse,
} from '../gen/pushhub/v1/pushhub.js';
import { PUBLIC_RECEIVER } from '../store/types.js';

/**
 * Subscribe frames are encoded once, when a change is committed, and stored with it: live
 * fan-out of a public item to N subscribers and catch-up from the database both write the
 * same bytes without re-encoding (see wire-definition.ts).
 */

/**
 * One writer for every frame: a fresh BinaryWriter starts at 128 bytes and grows by copying
 * (three times for a 200-byte body), while this one keeps its grown buffer. finish() copies
 * out exactly the frame's bytes (its own ArrayBuffer, which the commit worker transfers) and
 * resets the writer. Frames are bounded by the ServiceInfo limits, so the buffer stays small.
 */
const writer = new BinaryWriter();

function encodeFrame(frame: SubscribeResponse): Uint8Array {
  try {
    return SubscribeResponse.encode(frame, writer).finish();
  } catch (error) {
    writer.finish(); // drop a half-written frame
    throw error;
  }
}

export const audienceOf = (receiverId: string) =>
  receiverId === PUBLIC_RECEIVER ? Audience.AUDIENCE_PUBLIC : Audience.AUDIENCE_SPECIFIC;

export function encodeItemFrame(item: {
  itemId: string;
  seq: number;
  merchantId: string;
  receiverId: string;
  info: ServiceInfo;
  pushedAtMs: number;
  /** valid_until's exact nanos when they have a sub-millisecond part. */
  validUntilNanos?: number;
}): Uint8Array {
  if (item.validUntilNanos !== undefined && item.info.validUntil) return encodeExactItemFrame(item, item.validUntilNanos);
  return encodeFrame({
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
  });
}

/**
 * The generated encoder writes a Date, which holds milliseconds only. For a valid_until with
 * finer nanos the frame is put together from parts: the Item without info, then info without
 * valid_until, then valid_until with the nanos as sent. Field order is free in protobuf, and
 * every field still occurs once, so any decoder reads the same message.
 */
function encodeExactItemFrame(item: Parameters<typeof encodeItemFrame>[0], nanos: number): Uint8Array {
  const ms = item.info.validUntil!.getTime();
  const info = new BinaryWriter();
  ServiceInfo.encode({ ...item.info, validUntil: undefined }, info);
  info.uint32((4 << 3) | 2).fork();
  Timestamp.encode({ seconds: BigInt(Math.floor(ms / 1000)), nanos }, info);
  info.join();
  const body = new BinaryWriter();
  Item.encode(
    {
      itemId: item.itemId,
      sequence: BigInt(item.seq),
      merchantId: item.merchantId,
      audience: audienceOf(item.receiverId),
      info: undefined,
      pushedAt: new Date(item.pushedAtMs),
      receiverId: item.receiverId,
    },
    body,
  );
  body.uint32((5 << 3) | 2).bytes(info.finish());
  const frame = new BinaryWriter();
  frame.uint32((1 << 3) | 2).bytes(body.finish());
  return frame.finish();
}

export function encodeWithdrawalFrame(w: {
  itemId: string;
  seq: number;
  merchantId: string;
  receiverId: string;
  itemKey: string;
  /** The item left because a newer item with the same key replaced it. */
  replaced?: boolean;
}): Uint8Array {
  return encodeFrame({
    event: {
      $case: 'withdrawal',
      value: {
        itemId: w.itemId,
        sequence: BigInt(w.seq),
        merchantId: w.merchantId,
        audience: audienceOf(w.receiverId),
        key: w.itemKey,
        replaced: w.replaced ?? false,
      },
    },
  });
}

export const encodeCaughtUpFrame = (seq: number): Uint8Array =>
  encodeFrame({ event: { $case: 'caughtUp', value: { sequence: BigInt(seq) } } });

export const encodeHeartbeatFrame = (seq: number, intervalMs: number): Uint8Array =>
  encodeFrame({
    event: { $case: 'heartbeat', value: { sequence: BigInt(seq), sentAt: new Date(), intervalMs } },
  });
