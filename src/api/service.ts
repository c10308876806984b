import { invalidArgument } from '../core/errors.js';
import {
  Audience,
  type ListItemsRequest,
  type PushHubServiceImplementation,
  type PushStreamRequest,
  type PushStreamResponse,
  Role,
  SubscribeResponse,
} from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { PUBLIC_RECEIVER } from '../core/records.js';
import type { AuthContext, HubServices } from './call-context.js';
import { LIMITS, checkMerchantId, checkReceiverId, checkRegisterRequestId, checkText, parsePageToken } from './validate.js';
import { HubError, Reason } from '../core/errors.js';
import type { AccountOp } from '../core/write-ops.js';
import { toPublicPush, toSpecificPush, toWithdraw } from './write-requests.js';
import { pushStream } from './push-stream.js';
import { confirmOnResume, createReceiptHandlers } from './receipts.js';

/** Bytes of item frames in one ListItems page: well under grpc-js's 4 MiB send limit. */
export const LIST_PAGE_BYTES = 1024 * 1024;

/**
 * The gRPC surface: validate, translate, delegate. Authentication and role checks happen in
 * the auth middleware; errors become statuses in the error middleware.
 */
export function createPushHubService(hub: HubServices): PushHubServiceImplementation<AuthContext> {
  const accountOp = (kind: AccountOp['kind'], accountId: string, merchantId = ''): AccountOp => ({ kind, accountId, merchantId, requestId: '', requestDigest: '' });
  return {
    async register(req, { source }) {
      const role = req.role === Role.ROLE_MERCHANT ? 'merchant' : req.role === Role.ROLE_RECEIVER ? 'receiver' : undefined;
      if (!role) throw invalidArgument('role', 'must be ROLE_MERCHANT or ROLE_RECEIVER');
      const region = req.regionCode === '' ? '00' : req.regionCode;
      if (!/^\d{2}$/.test(region)) throw invalidArgument('region_code', 'must be two digits, e.g. "11"');
      if (!req.displayName.isWellFormed() || req.displayName.includes('\uFFFD')) throw invalidArgument('display_name', 'must be valid UTF-8');
      if ([...req.displayName].length > LIMITS.displayNameChars) {
        throw invalidArgument('display_name', `at most ${LIMITS.displayNameChars} characters`);
      }
      checkText('registration_token', req.registrationToken);
      checkRegisterRequestId('request_id', req.requestId);
      return hub.registry.register(role, req.displayName, region, req.registrationToken, source, req.requestId);
    },

    async pushSpecific(req, { account }) {
      const ack = await hub.commits.submit(toSpecificPush(hub, account.id, req));
      return { itemId: ack.itemId, sequence: BigInt(ack.seq) };
    },

    async pushPublic(req, { account }) {
      const ack = await hub.commits.submit(toPublicPush(hub, account.id, req));
      return { itemId: ack.itemId, sequence: BigInt(ack.seq) };
    },

    async withdraw(req, { account }) {
      const ack = await hub.commits.submit(toWithdraw(hub, account.id, req));
      return { itemId: ack.itemId, sequence: BigInt(ack.seq) };
    },

    pushStream(requests: AsyncIterable<PushStreamRequest>, context): AsyncIterable<PushStreamResponse> {
      return pushStream(hub, context.account.id, requests, context.signal);
    },

    async listItems(req: ListItemsRequest, { account }) {
      const pageSize = req.pageSize === 0 ? 500 : req.pageSize;
      if (pageSize > 5000) throw invalidArgument('page_size', 'at most 5000');
      const after = parsePageToken('page_token', req.pageToken);
      if (![Audience.AUDIENCE_UNSPECIFIED, Audience.AUDIENCE_SPECIFIC, Audience.AUDIENCE_PUBLIC].includes(req.audience)) {
        throw invalidArgument('audience', `unknown value ${req.audience}`);
      }
      let receiverId: string | undefined;
      if (req.receiverId !== '') {
        checkReceiverId('receiver_id', req.receiverId);
        if (req.audience === Audience.AUDIENCE_PUBLIC) throw invalidArgument('receiver_id', 'must be empty with AUDIENCE_PUBLIC');
        receiverId = req.receiverId;
      } else if (req.audience === Audience.AUDIENCE_PUBLIC) {
        receiverId = PUBLIC_RECEIVER;
      }
      // A page ends at page_size items or LIST_PAGE_BYTES of frames, whichever comes first
      // (a page of maximum-size items would otherwise pass grpc-js's 4 MiB send limit). Rows
      // the audience filter drops do not end the page: the scan goes on, so a page that
      // carries a next token always has items.
      const nowMs = hub.now();
      const items = [];
      let bytes = 0;
      let scanned = after;
      let more = false;
      scan: for (;;) {
        const rows = await hub.changes.merchantItems({ merchantId: account.id, receiverId, afterSeq: scanned, nowMs, limit: pageSize, maxBytes: LIST_PAGE_BYTES });
        if (rows.length === 0) break;
        for (const row of rows) {
          if (req.audience === Audience.AUDIENCE_SPECIFIC && row.receiverId === PUBLIC_RECEIVER) {
            scanned = row.seq;
            continue;
          }
          if (items.length >= pageSize || (items.length > 0 && bytes + row.frame.byteLength > LIST_PAGE_BYTES)) {
            more = true;
            break scan;
          }
          const event = SubscribeResponse.decode(row.frame).events[0]?.event;
          if (event?.$case !== 'item') throw new Error(`change ${row.seq} holds no item frame`);
          items.push(event.value);
          bytes += row.frame.byteLength;
          scanned = row.seq;
        }
      }
      const nextPageToken = more ? Buffer.from(String(scanned)).toString('base64url') : '';
      return { items, nextPageToken };
    },

    // Served on grpc-js directly by api/subscribe-call.ts, whose interceptor takes every
    // Subscribe call over before this handler could run; nice-grpc registers the method so
    // that grpc-js runs interceptors for its path at all.
    subscribe() {
      throw new Error('subscribe: served by subscribe-call.ts; this handler is never reached');
    },

    async rotatePassword(_req, { account, source }) {
      return { password: await hub.registry.rotatePassword(account, source) };
    },

    async blockMerchant(req, { account }) {
      checkMerchantId('merchant_id', req.merchantId);
      const ack = await hub.commits.submit(accountOp('block', account.id, req.merchantId));
      hub.metrics?.blockChanged?.('block');
      return { sequence: BigInt(ack.seq) };
    },

    async unblockMerchant(req, { account }) {
      checkMerchantId('merchant_id', req.merchantId);
      const ack = await hub.commits.submit(accountOp('unblock', account.id, req.merchantId));
      hub.metrics?.blockChanged?.('unblock');
      return { sequence: BigInt(ack.seq) };
    },

    async listBlockedMerchants(_req, { account }) {
      const blocks = hub.accountFilters ? await hub.accountFilters.listBlocks(account.id) : [];
      return { merchants: blocks.map((b) => ({ merchantId: b.merchantId, blockedAt: new Date(b.atMs) })) };
    },

    async deleteAccount(req, { account, source }) {
      if (req.password === '') throw invalidArgument('password', 'required: the account\'s password again, as confirmation');
      checkText('password', req.password);
      await hub.registry.confirmPassword(account, req.password, source);
      await hub.commits.submit(accountOp('delete', account.id));
      // Every node forgets the credentials and ends the account's streams (ACCOUNT_DELETED).
      await hub.registry.accountChanged('deleted', account.id);
      hub.logger?.info('account deleted by its owner', { account: account.id, role: account.role });
      return {};
    },
    ...createReceiptHandlers(hub),
  };
}
