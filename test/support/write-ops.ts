import { PUBLIC_RECEIVER } from '../../src/core/records.js';
import type { PushOp, WithdrawOp } from '../../src/core/write-ops.js';

/** Validated write ops as the API layer hands them to a committer (tests of the domain and the backends). */
export function pushOp(
  merchantId: string,
  receiverId: string = PUBLIC_RECEIVER,
  over: { key?: string; title?: string; validUntilMs?: number; requestId?: string; requestDigest?: string } = {},
): PushOp {
  return {
    kind: 'push',
    merchantId,
    receiverId,
    info: {
      key: over.key ?? '',
      title: over.title ?? 'title',
      body: '',
      validUntil: new Date(over.validUntilMs ?? 10_000_000),
      offer: undefined,
      data: {},
    },
    requestId: over.requestId ?? '',
    requestDigest: over.requestId ? (over.requestDigest ?? `digest of ${over.title ?? 'title'}`) : '',
  };
}

export function withdrawOp(
  merchantId: string,
  target: { itemId: string } | { key: string; receiverId?: string },
  over: { requestId?: string; requestDigest?: string } = {},
): WithdrawOp {
  return {
    kind: 'withdraw',
    merchantId,
    itemId: 'itemId' in target ? target.itemId : '',
    key: 'key' in target ? target.key : '',
    receiverId: 'key' in target ? (target.receiverId ?? PUBLIC_RECEIVER) : '',
    requestId: over.requestId ?? '',
    requestDigest: over.requestId ? (over.requestDigest ?? 'withdraw digest') : '',
  };
}
