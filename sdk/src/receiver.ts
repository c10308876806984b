/**
 * The receiver side of pushhub: a resumable subscription and a local SQLite store of the
 * receiver's current info. The store needs `better-sqlite3` (an optional peer dependency:
 * `npm install better-sqlite3`); without it, opening a store throws a SqliteMissingError
 * naming the install command. The subscription alone works without it.
 *
 * ```ts
 * import { ReceiverClient, createReceiverStore } from '@pushhub/sdk/receiver';
 * const receiver = new ReceiverClient({ address, id, password });
 * const store = createReceiverStore('./receiver.db');
 * store.on('change', (change) => console.log(change.type, change.item.info?.title));
 * await store.sync(receiver, { signal });
 * ```
 *
 * Events, store changes and stored items are plain data (numbers and ISO-8601 strings, see
 * {@link Item}) that survive `JSON.stringify`.
 *
 * @module
 */
export { ReceiverClient } from './receiver-client.js';
export type { ReceiverClientOptions, ReceiverEvent, ResetReasonName, SubscribeOptions } from './receiver-client.js';
export { ReceiverStore, createReceiverStore } from './receiver-store.js';
export { SqliteMissingError } from './sqlite-missing-error.js';
export type { OfferKind, ReceiverDaemonLine, ReceiverStoreEvents, StoreChange, SyncOptions } from './receiver-store.js';
export { ConnectionReason, PushHubError, Status } from './errors.js';
export type { Credentials, HubAddress, TlsOptions } from './connection.js';
export type { RegisterOptions } from './register.js';
export type { RetryOptions } from './retry.js';
export type { Audience, BlockedMerchant, Discount, Item, Offer, Points, ServiceInfo, Voucher, Withdrawal, WithdrawalCauseName } from './types.js';
