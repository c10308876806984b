import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { Timestamp } from '../../sdk/src/gen/google/protobuf/timestamp.js';
import {
  Audience,
  Item,
  type ResetReason,
  ServiceInfo,
  type SubscribeEvent,
  SubscribeResponse,
  WithdrawalCause,
} from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { PUBLIC_RECEIVER } from './records.js';

/**
 * Subscribe frames are encoded once, when a change is committed, and stored with it: live
 * fan-out of a public item to N subscribers and catch-up from the database both write the
 * same bytes without re-encoding (see sdk/src/wire-definition.ts).
 *
 * A frame is a whole SubscribeResponse holding one event. Protobuf appends repeated fields
 * when messages are concatenated, so the bytes of several frames, joined, are one valid
 * SubscribeResponse with all their events: a batch costs one Buffer.concat, no encoding.
 */

/**
 * One writer for every frame: a fresh BinaryWriter starts at 128 bytes and grows by copying
 * (three times for a 200-byte body), while this one keeps its grown buffer. finish() copies
 * out exactly the frame's bytes (its own ArrayBuffer, which the commit worker transfers) and
 * resets the writer. Frames are bounded by the ServiceInfo limits, so the buffer stays small.
 */
const writer = new BinaryWriter();

function encodeFrame(event: SubscribeEvent['event']): Uint8Array {
  try {
    return SubscribeResponse.encode({ events: [{ event }] }, writer).finish();
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
  });
}

/**
 * The generated encoder writes a Date, which holds milliseconds only. For a valid_until with
 * finer nanos the frame is put together from parts (SubscribeResponse > SubscribeEvent > Item): the Item without info, then info without
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
  // SubscribeEvent.item = 1, inside SubscribeResponse.events = 1.
  const event = new BinaryWriter();
  event.uint32((1 << 3) | 2).bytes(body.finish());
  const frame = new BinaryWriter();
  frame.uint32((1 << 3) | 2).bytes(event.finish());
  return frame.finish();
}

export function encodeWithdrawalFrame(w: {
  itemId: string;
  seq: number;
  merchantId: string;
  receiverId: string;
  itemKey: string;
  replaced?: boolean;
  /** Defaults to REPLACED or WITHDRAWN by `replaced`. */
  cause?: WithdrawalCause;
  /** The audience of the withdrawn item when it differs from the row's (a public item withdrawn for one receiver). */
  audienceOfItem?: Audience;
}): Uint8Array {
  const replaced = w.replaced ?? false;
  return encodeFrame({
    $case: 'withdrawal',
    value: {
      itemId: w.itemId,
      sequence: BigInt(w.seq),
      merchantId: w.merchantId,
      audience: w.audienceOfItem ?? audienceOf(w.receiverId),
      key: w.itemKey,
      replaced,
      cause: w.cause ?? (replaced ? WithdrawalCause.WITHDRAWAL_CAUSE_REPLACED : WithdrawalCause.WITHDRAWAL_CAUSE_WITHDRAWN),
    },
  });
}

/**
 * The stored item frame `frame` with its Item.sequence replaced by `seq` (a Copy row: a live
 * public item delivered again at a new sequence). Every other field is copied byte for byte,
 * so valid_until keeps its exact nanos. Field order is free in protobuf.
 */
export function reframeItem(frame: Uint8Array, seq: number): Uint8Array {
  const inner = (bytes: Uint8Array): Uint8Array => {
    const r = new BinaryReader(bytes);
    const [fieldNo, wireType] = r.tag();
    if (fieldNo !== 1 || wireType !== WireType.LengthDelimited) throw new Error('reframeItem: not an item frame');
    return r.bytes();
  };
  const item = inner(inner(frame));
  const r = new BinaryReader(item);
  const body = new BinaryWriter();
  while (r.pos < r.len) {
    const start = r.pos;
    const [fieldNo, wireType] = r.tag();
    r.skip(wireType, fieldNo);
    if (fieldNo !== 2) body.raw(item.subarray(start, r.pos));
  }
  body.uint32((2 << 3) | WireType.Varint).uint64(seq);
  const event = new BinaryWriter();
  event.uint32((1 << 3) | WireType.LengthDelimited).bytes(body.finish());
  const out = new BinaryWriter();
  out.uint32((1 << 3) | WireType.LengthDelimited).bytes(event.finish());
  return out.finish();
}

/** A marker row's frame: nothing for the receiver (streams read the row, never send it). */
export const EMPTY_FRAME = new Uint8Array(0);

export const encodeCaughtUpFrame = (seq: number, historyId: string): Uint8Array =>
  encodeFrame({ $case: 'caughtUp', value: { sequence: BigInt(seq), historyId } });

export const encodeHeartbeatFrame = (seq: number, intervalMs: number, historyId: string): Uint8Array =>
  encodeFrame({ $case: 'heartbeat', value: { sequence: BigInt(seq), sentAt: new Date(), intervalMs, historyId } });

export const encodeResetFrame = (reason: ResetReason, historyId: string): Uint8Array =>
  encodeFrame({ $case: 'reset', value: { reason, historyId } });

/** Events per Subscribe response at most: a reader applies a batch before its next read. */
export const BATCH_MAX_EVENTS = 256;
/** Bytes per Subscribe response at most (a single larger frame still goes, alone). */
export const BATCH_MAX_BYTES = 64 * 1024;

/** gRPC's message prefix: a compressed flag (0) and the body's length, big-endian (gRPC over HTTP/2, Length-Prefixed-Message). */
export const GRPC_PREFIX_BYTES = 5;

/** One gRPC message (prefix and body) whose body is these frames, joined: the one copy they get. */
export function grpcMessage(parts: readonly Uint8Array[], bytes: number): Buffer {
  const out = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + bytes);
  out[0] = 0;
  out.writeUInt32BE(bytes, 1);
  let at = GRPC_PREFIX_BYTES;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** Something whose frame is sent alone often (a change to many streams): its gRPC message is kept. */
export interface FramedOnce {
  frame: Uint8Array;
  /** The frame as one gRPC message, made on the first write and shared by every stream after. */
  message?: Buffer;
}

/**
 * Joins frames into Subscribe responses of at most BATCH_MAX_EVENTS events and
 * BATCH_MAX_BYTES bytes, each handed out as a whole gRPC message (prefix included), ready for
 * the HTTP/2 stream. Joining is concatenation (see above) into the message's one buffer; a
 * batch of one change is that change's message, made once and shared by every stream it goes
 * to, so a broadcast costs one copy, not one per stream (nice-grpc and grpc-js made two per
 * stream: docs/performance.md).
 */
export class FrameBatch {
  private readonly parts: Uint8Array[] = [];
  /** The change of the first part, when it has one (its message is cached). */
  private first: FramedOnce | undefined;
  private bytes = 0;

  /** Adds a frame; returns the batch so far when the frame does not fit in it (write that first). */
  add(frame: Uint8Array, change?: FramedOnce): Buffer | undefined {
    const full =
      this.parts.length > 0 && (this.parts.length >= BATCH_MAX_EVENTS || this.bytes + frame.byteLength > BATCH_MAX_BYTES)
        ? this.take()
        : undefined;
    if (this.parts.length === 0) this.first = change;
    this.parts.push(frame);
    this.bytes += frame.byteLength;
    return full;
  }

  /** The batch so far as one gRPC message (undefined when empty); the batch starts over (in the same array: a write per event allocates nothing here but its message). */
  take(): Buffer | undefined {
    const parts = this.parts;
    if (parts.length === 0) return undefined;
    const first = this.first;
    const message = parts.length === 1 && first ? (first.message ??= grpcMessage(parts, this.bytes)) : grpcMessage(parts, this.bytes);
    parts.length = 0;
    this.bytes = 0;
    this.first = undefined;
    return message;
  }
}
