import { Item as WireItem, SubscribeEvent, SubscribeResponse, Withdrawal as WireWithdrawal } from './gen/pushhub/v1/pushhub.js';
import type { Audience, Item, ServiceInfo, Withdrawal } from './types.js';
import { WITHDRAWAL_CAUSE_NAMES, itemFromWire, withdrawalFromWire } from './values.js';

/**
 * A SubscribeResponse decoded for the receive path (internal to the SDK): items and
 * withdrawals straight into the SDK's plain values, everything else (caughtUp, heartbeat, an
 * event a newer hub adds) through the generated decoder.
 *
 * Why not the generated decoder for every message: at one event per message (a receiver
 * with its own connection), ts-proto's decode and its garbage were ~10 µs of ~40 µs per event
 * (a TextDecoder call per string, a BigInt per uint64, a Date per Timestamp, a recursion-depth
 * property written on the reader), and the SDK then copied the result once more into plain
 * values (docs/performance.md). This reads strings with Buffer's own UTF-8 slice, sequences
 * as numbers, and builds each value once. Anything unusual (an offer, a sequence beyond
 * Number.MAX_SAFE_INTEGER, a wrong wire type) takes the generated path for that event, so
 * the result and its errors stay exactly those of itemFromWire / withdrawalFromWire.
 */
export type ReceivedEvent =
  | { $case: 'item'; sequence: number; item: Item }
  | { $case: 'withdrawal'; sequence: number; withdrawal: Withdrawal }
  | { $case: 'other'; event: SubscribeEvent['event'] };

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const AUDIENCES: Audience[] = ['specific', 'specific', 'public'];

/** Signals "take the generated path for this event". */
class Unusual extends Error {}
const UNUSUAL = new Unusual();

/** A cursor over one Buffer; every read checks its bounds (a truncated message is unusual). */
class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    pos: number,
    readonly end: number,
  ) {
    this.pos = pos;
  }

  /** A varint as a number; beyond 2^53 it is unusual (the generated path reports it). */
  varint(): number {
    const { buf } = this;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw UNUSUAL;
      const byte = buf[this.pos++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (result > MAX_SAFE) throw UNUSUAL;
        return result;
      }
      scale *= 128;
    }
    throw UNUSUAL;
  }

  /** The end of a length-delimited field that starts here. */
  delimited(): number {
    const length = this.varint();
    const end = this.pos + length;
    if (end > this.end) throw UNUSUAL;
    return end;
  }

  string(): string {
    const end = this.delimited();
    const text = (this.buf as Buffer & { utf8Slice(start: number, end: number): string }).utf8Slice(this.pos, end);
    this.pos = end;
    return text;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.pos = this.delimited();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw UNUSUAL;
    }
    if (this.pos > this.end) throw UNUSUAL;
  }

  /** A google.protobuf.Timestamp as ts-proto reads it, then as an ISO string. */
  timestamp(): string {
    const end = this.delimited();
    let seconds = 0;
    let nanos = 0;
    while (this.pos < end) {
      const tag = this.varint();
      if (tag === 8) seconds = this.varint();
      else if (tag === 16) nanos = this.varint();
      else this.skip(tag & 7);
    }
    this.pos = end;
    // Negative seconds and nanos (two's complement varints) take the generated path.
    if (nanos > 0xffffffff) throw UNUSUAL;
    return new Date(seconds * 1000 + (nanos | 0) / 1_000_000).toISOString();
  }
}

function serviceInfo(r: Reader): ServiceInfo {
  const end = r.delimited();
  const info: ServiceInfo = { key: '', title: '', body: '', validUntil: '', data: {} };
  while (r.pos < end) {
    const tag = r.varint();
    switch (tag) {
      case 10:
        info.key = r.string();
        break;
      case 18:
        info.title = r.string();
        break;
      case 26:
        info.body = r.string();
        break;
      case 34:
        info.validUntil = r.timestamp();
        break;
      case 66: {
        const entryEnd = r.delimited();
        let key = '';
        let value = '';
        while (r.pos < entryEnd) {
          const entryTag = r.varint();
          if (entryTag === 10) key = r.string();
          else if (entryTag === 18) value = r.string();
          else r.skip(entryTag & 7);
        }
        r.pos = entryEnd;
        info.data[key] = value;
        break;
      }
      default:
        // An offer (fields 5-7), or a field this SDK does not know.
        if (tag >>> 3 >= 5 && tag >>> 3 <= 7) throw UNUSUAL;
        r.skip(tag & 7);
    }
  }
  r.pos = end;
  return info;
}

function item(r: Reader, end: number): Item {
  const value: Item = { itemId: '', sequence: 0, merchantId: '', audience: 'specific', receiverId: '', pushedAt: '', info: { key: '', title: '', body: '', validUntil: '', data: {} } };
  while (r.pos < end) {
    const tag = r.varint();
    switch (tag) {
      case 10:
        value.itemId = r.string();
        break;
      case 16:
        value.sequence = r.varint();
        break;
      case 26:
        value.merchantId = r.string();
        break;
      case 32:
        value.audience = AUDIENCES[r.varint()] ?? 'specific';
        break;
      case 42:
        value.info = serviceInfo(r);
        break;
      case 50:
        value.pushedAt = r.timestamp();
        break;
      case 58:
        value.receiverId = r.string();
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return value;
}

function withdrawal(r: Reader, end: number): Withdrawal {
  const value: Withdrawal = { itemId: '', sequence: 0, merchantId: '', audience: 'specific', key: '', replaced: false, cause: 'unspecified' };
  while (r.pos < end) {
    const tag = r.varint();
    switch (tag) {
      case 10:
        value.itemId = r.string();
        break;
      case 16:
        value.sequence = r.varint();
        break;
      case 26:
        value.merchantId = r.string();
        break;
      case 32:
        value.audience = AUDIENCES[r.varint()] ?? 'specific';
        break;
      case 42:
        value.key = r.string();
        break;
      case 48:
        value.replaced = r.varint() !== 0;
        break;
      case 56:
        value.cause = WITHDRAWAL_CAUSE_NAMES[r.varint()] ?? 'unspecified';
        break;
      default:
        r.skip(tag & 7);
    }
  }
  return value;
}

/** One SubscribeEvent (bytes [start, end) of buf). */
function event(buf: Buffer, start: number, end: number): ReceivedEvent {
  const r = new Reader(buf, start, end);
  try {
    let found: ReceivedEvent | undefined;
    while (r.pos < end) {
      const tag = r.varint();
      if (tag === 10) {
        const itemEnd = r.delimited();
        const value = item(r, itemEnd);
        r.pos = itemEnd;
        found = { $case: 'item', sequence: value.sequence, item: value };
      } else if (tag === 18) {
        const withdrawalEnd = r.delimited();
        const value = withdrawal(r, withdrawalEnd);
        r.pos = withdrawalEnd;
        found = { $case: 'withdrawal', sequence: value.sequence, withdrawal: value };
      } else throw UNUSUAL;
    }
    if (found) return found;
  } catch (error) {
    if (!(error instanceof Unusual)) throw error;
  }
  return generated(buf.subarray(start, end));
}

/** The generated decoder's reading of one event, in the same plain values. */
function generated(bytes: Uint8Array): ReceivedEvent {
  const decoded = SubscribeEvent.decode(bytes).event;
  if (decoded?.$case === 'item') {
    const value = itemFromWire(decoded.value as WireItem);
    return { $case: 'item', sequence: value.sequence, item: value };
  }
  if (decoded?.$case === 'withdrawal') {
    const value = withdrawalFromWire(decoded.value as WireWithdrawal);
    return { $case: 'withdrawal', sequence: value.sequence, withdrawal: value };
  }
  return { $case: 'other', event: decoded };
}

/** Decodes a SubscribeResponse (its `events`, field 1); a malformed one as the generated decoder does. */
export function decodeSubscribeResponse(bytes: Uint8Array): ReceivedEvent[] {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(buf, 0, buf.length);
  const events: ReceivedEvent[] = [];
  try {
    while (r.pos < r.end) {
      const tag = r.varint();
      if (tag === 10) {
        const end = r.delimited();
        events.push(event(buf, r.pos, end));
        r.pos = end;
      } else r.skip(tag & 7);
    }
    return events;
  } catch (error) {
    if (!(error instanceof Unusual)) throw error;
    return SubscribeResponse.decode(bytes).events.map((e) => generated(SubscribeEvent.encode(e).finish()));
  }
}
