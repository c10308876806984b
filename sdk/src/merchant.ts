/**
 * The merchant side of pushhub: push specific and public info, withdraw it, list it.
 *
 * ```ts
 * import { MerchantClient } from '@pushhub/sdk/merchant';
 * const { id, password } = await MerchantClient.register('127.0.0.1:50051', { displayName: 'Bakery' });
 * const merchant = new MerchantClient({ address: '127.0.0.1:50051', id, password });
 * await merchant.pushPublic({ key: 'bread', title: 'Fresh bread', offer: { $case: 'discount', value: { percentOff: 10 } } });
 * ```
 *
 * Every result is plain data (numbers and ISO-8601 strings, see {@link Item}) that
 * survives `JSON.stringify`; inputs are checked before they are sent.
 *
 * @module
 */
import { type Channel } from 'nice-grpc';
import { type Credentials, type HubAddress, type HubClient, type TlsOptions, createHubChannel, createHubClient } from './connection.js';
import { Audience as WireAudience, Role } from './gen/pushhub/v1/pushhub.js';
import { type RegisterOptions, registerAccount } from './register.js';
import { RatePacer } from './rate-pacer.js';
import { DEFAULT_RETRY, type RetryOptions, withRetry } from './retry.js';
import { createPushStream, type MerchantPushStream } from './push-stream.js';
import { METHOD, type PushOptions, type PushResult, type WithdrawTarget, checkRequestId, toWithdrawRequest } from './push-types.js';
import { newRequestId } from './request-id.js';
import type { Item, ServiceInfoInput } from './types.js';
import { checkInteger, checkString, invalidArgument, itemFromWire, serviceInfoToWire, toSafeNumber } from './values.js';
import {
  type DeliveryEvent,
  type DeliveryStatus,
  type WaitForDeliveryOptions,
  type WatchDeliveriesOptions,
  checkItemIds,
  statusFromWire,
  waitForDelivery,
  watchDeliveries,
} from './receipts.js';

export { ConnectionReason, PushHubError, ReceiverBlockedError, Status } from './errors.js';
import { asReceiverBlocked } from './errors.js';
export type { Credentials, HubAddress, TlsOptions } from './connection.js';
export type { RegisterOptions } from './register.js';
export type { RetryOptions } from './retry.js';
export type { MerchantPushStream, PushStreamOptions } from './push-stream.js';
export type { PushOptions, PushResult, ServiceInfoInput, WithdrawTarget } from './push-types.js';
export type { DeliveryEvent, DeliveryStateName, DeliveryStatus, WaitForDeliveryOptions, WatchDeliveriesOptions } from './receipts.js';
export type { Audience, Discount, Item, Offer, OfferInput, Points, ServiceInfo, ValidUntilInput, Voucher, Withdrawal, WithdrawalCauseName } from './types.js';

/** Which of the merchant's items `listItems` returns. */
export interface ListItemsFilter {
  /** Only specific items for this receiver. */
  receiverId?: string;
  /** Only specific or only public items; both when omitted. */
  audience?: 'specific' | 'public';
  /** Items fetched per call (default 500, at most 5000): larger pages suit full scans. */
  pageSize?: number;
}

/** Options of a MerchantClient. */
export interface MerchantClientOptions {
  /** The hub's host:port, or several hub nodes (see {@link HubAddress}). */
  address: HubAddress;
  /** The merchant id returned by `register`. */
  id: string;
  /** The merchant password returned by `register` (or `rotatePassword`). */
  password: string;
  /** TLS settings when the hub serves TLS. */
  tls?: TlsOptions;
  /**
   * Deadline of every unary call attempt, in ms (default 10 000). It also bounds how long a
   * push refused with PUSH_RATE_EXCEEDED is paced and sent again (as the hub's hint says)
   * before the call fails with that error. A hub that does not answer
   * in time fails the attempt with a PushHubError DEADLINE_EXCEEDED (not retried).
   */
  deadlineMs?: number;
  /** Retries of calls that fail with UNAVAILABLE. */
  retry?: RetryOptions;
}

/** Default deadline of one attempt: generous for a commit, short enough to notice a dead hub. */
const DEFAULT_DEADLINE_MS = 10_000;
/** Page size for listItems: the hub's default. */
const LIST_PAGE_SIZE = 500;

/**
 * A merchant's connection to the hub. Credentials go with every call (a client middleware);
 * every call has a deadline; pushes and withdrawals carry a request id and are retried on
 * UNAVAILABLE with exponential backoff and jitter, so a lost reply never delivers twice.
 * Failures are thrown as {@link PushHubError}.
 */
export class MerchantClient {
  private readonly channel: Channel;
  private readonly client: HubClient;
  private readonly credentials: Credentials;
  private readonly deadlineMs: number;
  private readonly retry: Required<RetryOptions>;
  /** Paces pushes after PUSH_RATE_EXCEEDED, across unary calls and push streams. */
  private readonly pacer = new RatePacer();

  /**
   * Registers a new merchant and returns its id and password. The password is shown only
   * once: store it safely.
   */
  static register(address: HubAddress, options: RegisterOptions = {}): Promise<Credentials> {
    return registerAccount(address, Role.ROLE_MERCHANT, options);
  }

  /** Connects lazily: the first call opens the connection. */
  constructor(options: MerchantClientOptions) {
    this.credentials = { id: options.id, password: options.password };
    this.deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.channel = createHubChannel(options.address, options.tls);
    this.client = createHubClient(this.channel, () => this.credentials);
  }

  /** The merchant's id. */
  get id(): string {
    return this.credentials.id;
  }

  /**
   * Pushes `info` to one receiver; resolves once the hub has committed it. Fails with
   * NOT_FOUND (reason `RECEIVER_NOT_FOUND`) when there is no such receiver, with a
   * {@link ReceiverBlockedError} when the receiver blocked this merchant (remove it from your
   * list), and with INVALID_ARGUMENT naming the field for content the SDK or the hub refuses.
   */
  async pushSpecific(receiverId: string, info: ServiceInfoInput, options: PushOptions = {}): Promise<PushResult> {
    const request = {
      receiverId: checkString(receiverId, 'receiverId', METHOD.pushSpecific, true),
      info: serviceInfoToWire(info, 'info', METHOD.pushSpecific),
      requestId: checkRequestId(options, METHOD.pushSpecific, newRequestId),
    };
    try {
      const response = await this.unary((deadline) => this.client.pushSpecific(request, { deadline, signal: options.signal }), options.signal);
      return pushResult(response);
    } catch (error) {
      throw asReceiverBlocked(error, request.receiverId);
    }
  }

  /** Pushes `info` to every registered receiver (also those registered later). */
  async pushPublic(info: ServiceInfoInput, options: PushOptions = {}): Promise<PushResult> {
    const request = { info: serviceInfoToWire(info, 'info', METHOD.pushPublic), requestId: checkRequestId(options, METHOD.pushPublic, newRequestId) };
    const response = await this.unary((deadline) => this.client.pushPublic(request, { deadline, signal: options.signal }), options.signal);
    return pushResult(response);
  }

  /**
   * Withdraws one of this merchant's live items; its receivers get a withdrawal. Fails with
   * NOT_FOUND (reason `ITEM_NOT_FOUND`) when there is no such live item.
   */
  async withdraw(target: WithdrawTarget, options: PushOptions = {}): Promise<PushResult> {
    const request = toWithdrawRequest(target, checkRequestId(options, METHOD.withdraw, newRequestId), METHOD.withdraw);
    const response = await this.unary((deadline) => this.client.withdraw(request, { deadline, signal: options.signal }), options.signal);
    return pushResult(response);
  }

  /** Iterates over this merchant's live items in sequence order, fetching pages as needed. */
  async *listItems(filter: ListItemsFilter = {}): AsyncIterable<Item> {
    const audience =
      filter.audience === 'specific'
        ? WireAudience.AUDIENCE_SPECIFIC
        : filter.audience === 'public'
          ? WireAudience.AUDIENCE_PUBLIC
          : filter.audience === undefined || filter.audience === null
            ? WireAudience.AUDIENCE_UNSPECIFIED
            : undefined;
    if (audience === undefined) throw invalidArgument('filter.audience', "must be 'specific' or 'public'", METHOD.listItems);
    const receiverId = checkString(filter.receiverId, 'filter.receiverId', METHOD.listItems);
    const pageSize = checkInteger(filter.pageSize, 'filter.pageSize', METHOD.listItems, { min: 1, fallback: LIST_PAGE_SIZE });
    let pageToken = '';
    do {
      const token = pageToken;
      const page = await this.unary((deadline) =>
        this.client.listItems(
          { receiverId, audience, pageSize, pageToken: token },
          { deadline },
        ),
        undefined,
        false,
      );
      for (const item of page.items) yield itemFromWire(item);
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
  }

  /**
   * Opens the high-volume push path: many pushes in flight on one stream, each resolved
   * when the hub commits it. If the stream breaks, it reconnects and re-sends the
   * unacknowledged pushes with their request ids, so nothing is delivered twice.
   */
  openPushStream(options: { window?: number } = {}): MerchantPushStream {
    return createPushStream(this.client, { window: options.window, retry: this.retry, pacer: this.pacer, deadlineMs: this.deadlineMs });
  }

  /**
   * Replaces this merchant's password and returns the new one; the client uses it from now
   * on. Never retried: a retry after a lost reply would rotate again and the first new
   * password would be lost with the reply; on UNAVAILABLE check which password works.
   */
  async rotatePassword(): Promise<string> {
    const { password } = await this.client.rotatePassword({}, { deadline: this.deadlineMs });
    this.credentials.password = password;
    return password;
  }

  /**
   * The delivery state of up to 1,000 of this merchant's items, in the order asked: for a
   * specific item PENDING, DELIVERED (with `confirmedAt`), WITHDRAWN_, EXPIRED_ or
   * REPLACED_BEFORE_DELIVERY, or UNKNOWN when its receiver turned receipts off; for a public
   * item PUBLIC with `deliveredCount` of `eligibleCount`. Another merchant's item, or one
   * that never existed, is NOT_FOUND.
   */
  async deliveryStatus(itemIds: readonly string[], options: { signal?: AbortSignal } = {}): Promise<DeliveryStatus[]> {
    const request = { itemIds: checkItemIds(itemIds) };
    const { statuses } = await this.unary((deadline) => this.client.getDeliveryStatus(request, { deadline, signal: options.signal }), options.signal);
    return statuses.map(statusFromWire);
  }

  /**
   * This merchant's receipts as they happen: one `delivered` event per specific item its
   * receiver confirmed, `publicProgress` counts for public items (at most one per item per
   * second), and `caughtUp` after each (re)connection. Reconnects on its own and resumes
   * after the last event's `cursor`; pass `afterCursor` to resume a previous run.
   */
  watchDeliveries(options: WatchDeliveriesOptions = {}): AsyncIterable<DeliveryEvent> {
    return watchDeliveries(this.client, options);
  }

  /**
   * Resolves when the specific item `itemId` is DELIVERED, or with the state it ended in
   * undelivered (WITHDRAWN_, EXPIRED_, REPLACED_BEFORE_DELIVERY, UNKNOWN, NOT_FOUND).
   * Rejects with a PushHubError DEADLINE_EXCEEDED after `timeoutMs` (default 60 s), or when
   * `signal` aborts.
   */
  waitForDelivery(itemId: string, options: WaitForDeliveryOptions = {}): Promise<DeliveryStatus> {
    return waitForDelivery(this.client, async (id, signal) => (await this.deliveryStatus([id], { signal }))[0]!, itemId, options);
  }

  /**
   * Deletes this merchant's account: its items are withdrawn from every receiver, its
   * credentials stop working at once on every hub node, and its id is never issued again.
   * `password` confirms it (default: the password this client uses). Never retried.
   */
  async deleteAccount(password: string = this.credentials.password): Promise<void> {
    await this.client.deleteAccount({ password: checkString(password, 'password', '/pushhub.v1.PushHubService/DeleteAccount', true) }, { deadline: this.deadlineMs });
  }

  /** Closes the connection; calls in flight fail with CANCELLED or UNAVAILABLE. */
  close(): void {
    this.channel.close();
  }

  /** Runs one unary call with the client's deadline and retries; pushes and withdrawals (`paced`) also wait out PUSH_RATE_EXCEEDED. */
  private unary<T>(call: (deadline: number) => Promise<T>, signal?: AbortSignal, paced = true): Promise<T> {
    const pacing = paced ? { pacer: this.pacer, deadlineAtMs: Date.now() + this.deadlineMs } : undefined;
    return withRetry(() => call(this.deadlineMs), this.retry, signal, pacing);
  }
}

/** A push's or withdrawal's acknowledgement as plain data. */
const pushResult = (response: { itemId: string; sequence: bigint }): PushResult => ({
  itemId: response.itemId,
  sequence: toSafeNumber(response.sequence, 'sequence'),
});
