import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { ServiceInfo } from '../../../sdk/src/gen/pushhub/v1/pushhub.js';
import type { WriteOp } from '../../core/write-ops.js';

/**
 * A batch of write ops as one buffer, for the hop to the commit worker: postMessage would
 * structured-clone every op (its ServiceInfo, Date and data map) on the hub's thread and
 * again in the worker, 4.8 µs of the main thread per push (docs/performance.md); one packed
 * buffer is transferred, not copied. Protobuf wire format, ServiceInfo in its own encoding:
 *   per op: kind (0 push, 1 withdraw), then
 *   push:     merchantId, receiverId, requestId, requestDigest, info (bytes), has validUntilNanos, validUntilNanos
 *   withdraw: merchantId, itemId, key, receiverId, requestId, requestDigest
 *   other (kind 2): the op as JSON, for the rarer op kinds made of strings only (account ops)
 */
const writer = new BinaryWriter();

export function packOps(ops: readonly WriteOp[]): Uint8Array {
  try {
    writer.uint32(ops.length);
    for (const op of ops) {
      if (op.kind === 'push') {
        writer.uint32(0).string(op.merchantId).string(op.receiverId).string(op.requestId).string(op.requestDigest);
        ServiceInfo.encode(op.info, writer.fork()).join();
        writer.bool(op.validUntilNanos !== undefined).int32(op.validUntilNanos ?? 0);
      } else if (op.kind === 'withdraw') {
        writer.uint32(1).string(op.merchantId).string(op.itemId).string(op.key).string(op.receiverId).string(op.requestId).string(op.requestDigest);
      } else {
        writer.uint32(2).string(JSON.stringify(op));
      }
    }
    return writer.finish();
  } catch (error) {
    writer.finish(); // drop a half-written batch
    throw error;
  }
}

export function unpackOps(bytes: Uint8Array): WriteOp[] {
  const reader = new BinaryReader(bytes);
  const count = reader.uint32();
  const ops: WriteOp[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const kind = reader.uint32();
    if (kind === 0) {
      const merchantId = reader.string();
      const receiverId = reader.string();
      const requestId = reader.string();
      const requestDigest = reader.string();
      const info = ServiceInfo.decode(reader, reader.uint32());
      const hasNanos = reader.bool();
      const nanos = reader.int32();
      ops[i] = { kind: 'push', merchantId, receiverId, info, requestId, requestDigest, ...(hasNanos ? { validUntilNanos: nanos } : {}) };
    } else if (kind === 1) {
      ops[i] = {
        kind: 'withdraw',
        merchantId: reader.string(),
        itemId: reader.string(),
        key: reader.string(),
        receiverId: reader.string(),
        requestId: reader.string(),
        requestDigest: reader.string(),
      };
    } else {
      ops[i] = JSON.parse(reader.string()) as WriteOp;
    }
  }
  return ops;
}
