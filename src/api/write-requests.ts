import { invalidArgument } from '../core/errors.js';
import type { PushOp, WithdrawOp } from '../core/write-ops.js';
import type { PushPublicRequest, PushSpecificRequest, ServiceInfo, WithdrawRequest } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { ITEM_ID_PATTERN } from '../core/ids.js';
import { PUBLIC_RECEIVER } from '../core/records.js';
import type { HubServices } from './call-context.js';
import { pushDigest, requestDigest } from './request-digest.js';
import { wireValidUntil } from './wire-timestamps.js';
import { checkItemKey, checkReceiverId, checkRequestId, checkServiceInfo } from './validate.js';

/** Sub-millisecond nanos of valid_until, which the Date in info drops (see PushOp.validUntilNanos). */
const exactNanos = (info: ServiceInfo | undefined): { validUntilNanos?: number } => {
  const wire = info && wireValidUntil(info);
  return wire && wire.nanos % 1_000_000 !== 0 ? { validUntilNanos: wire.nanos } : {};
};

/**
 * Request -> validated write op, shared by the unary RPCs and PushStream. `prefix` names the
 * field path in error messages ("" for unary calls, "specific." on a stream).
 */
export function toSpecificPush(hub: HubServices, merchantId: string, req: PushSpecificRequest, prefix = ''): PushOp {
  checkReceiverId(`${prefix}receiver_id`, req.receiverId);
  checkRequestId(`${prefix}request_id`, req.requestId);
  const info = checkServiceInfo(`${prefix}info`, req.info, hub.now(), hub.config.defaultItemLifetimeMs);
  hub.pushLimiter.take(merchantId);
  const digest = req.requestId === '' ? '' : pushDigest(req.receiverId, req.info);
  return { kind: 'push', merchantId, receiverId: req.receiverId, info, requestId: req.requestId, requestDigest: digest, ...exactNanos(req.info) };
}

export function toPublicPush(hub: HubServices, merchantId: string, req: PushPublicRequest, prefix = ''): PushOp {
  checkRequestId(`${prefix}request_id`, req.requestId);
  const info = checkServiceInfo(`${prefix}info`, req.info, hub.now(), hub.config.defaultItemLifetimeMs);
  hub.pushLimiter.take(merchantId);
  // The digest covers the audience too: the same id for a public push after a specific one differs.
  const digest = req.requestId === '' ? '' : pushDigest(PUBLIC_RECEIVER, req.info);
  return { kind: 'push', merchantId, receiverId: PUBLIC_RECEIVER, info, requestId: req.requestId, requestDigest: digest, ...exactNanos(req.info) };
}

export function toWithdraw(hub: HubServices, merchantId: string, req: WithdrawRequest, prefix = ''): WithdrawOp {
  checkRequestId(`${prefix}request_id`, req.requestId);
  if (req.itemId === '' && req.key === '') throw invalidArgument(`${prefix}item_id`, 'item_id or key is required');
  if (req.itemId !== '' && !ITEM_ID_PATTERN.test(req.itemId)) throw invalidArgument(`${prefix}item_id`, 'not an item id');
  checkItemKey(`${prefix}key`, req.key);
  if (req.itemId === '' && req.receiverId !== '') checkReceiverId(`${prefix}receiver_id`, req.receiverId);
  hub.pushLimiter.take(merchantId);
  return {
    kind: 'withdraw',
    merchantId,
    itemId: req.itemId,
    key: req.key,
    receiverId: req.itemId === '' ? req.receiverId : '',
    requestId: req.requestId,
    // Covers the target (item_id, or key and receiver_id), so another withdrawal is refused.
    requestDigest: req.requestId === '' ? '' : requestDigest('withdraw', req),
  };
}
