// Wire format of the bare grpc-js baseline, encoded by hand (identity serializers), so the
// baseline measures the grpc-js stack and not a codec. Messages:
//   SubscribeRequest { string id = 1; }          Delivery { bytes payload = 1; }
//   PublishRequest { string target = 1; bool broadcast = 2; bytes payload = 3; uint64 ref = 4; }
//   PublishReply { uint32 delivered = 1; uint64 ref = 2; }
import type { ServiceDefinition } from '@grpc/grpc-js';

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const field = (tag: number, bytes: Buffer) => Buffer.concat([Buffer.from([tag, ...varint(bytes.length)]), bytes]);

function* fields(buf: Buffer): Generator<[number, number | Buffer]> {
  let i = 0;
  while (i < buf.length) {
    const key = buf[i++]!;
    let v = 0;
    let s = 0;
    let b: number;
    do {
      b = buf[i++]!;
      v += (b & 0x7f) * 2 ** s;
      s += 7;
    } while (b & 0x80);
    if ((key & 7) === 2) {
      yield [key >>> 3, buf.subarray(i, i + v)];
      i += v;
    } else yield [key >>> 3, v];
  }
}

export interface PublishRequest {
  target: string;
  broadcast: boolean;
  payload: Buffer;
  ref: number;
}

export const enc = {
  subscribe: (id: string) => field(0x0a, Buffer.from(id)),
  delivery: (payload: Buffer) => field(0x0a, payload),
  publish: (r: PublishRequest) =>
    Buffer.concat([
      r.target ? field(0x0a, Buffer.from(r.target)) : Buffer.alloc(0),
      r.broadcast ? Buffer.from([0x10, 1]) : Buffer.alloc(0),
      field(0x1a, r.payload),
      Buffer.from([0x20, ...varint(r.ref)]),
    ]),
  reply: (delivered: number, ref: number) => Buffer.from([0x08, ...varint(delivered), 0x10, ...varint(ref)]),
};

export const dec = {
  subscribe: (b: Buffer) => {
    for (const [n, v] of fields(b)) if (n === 1) return String(v);
    return '';
  },
  delivery: (b: Buffer): Buffer => {
    for (const [n, v] of fields(b)) if (n === 1) return v as Buffer;
    return Buffer.alloc(0);
  },
  publish: (b: Buffer): PublishRequest => {
    const r: PublishRequest = { target: '', broadcast: false, payload: Buffer.alloc(0), ref: 0 };
    for (const [n, v] of fields(b)) {
      if (n === 1) r.target = String(v);
      else if (n === 2) r.broadcast = v === 1;
      else if (n === 3) r.payload = v as Buffer;
      else if (n === 4) r.ref = v as number;
    }
    return r;
  },
  reply: (b: Buffer) => {
    const r = { delivered: 0, ref: 0 };
    for (const [n, v] of fields(b)) {
      if (n === 1) r.delivered = v as number;
      else if (n === 2) r.ref = v as number;
    }
    return r;
  },
};

const id = (x: Buffer) => x;
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/bench.Push/${name}`,
  requestStream,
  responseStream,
  requestSerialize: id,
  requestDeserialize: id,
  responseSerialize: id,
  responseDeserialize: id,
});

export const BaselineService = {
  Subscribe: method('Subscribe', false, true),
  Publish: method('Publish', false, false),
  PublishStream: method('PublishStream', true, true),
} satisfies ServiceDefinition;
