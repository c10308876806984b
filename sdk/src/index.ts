/**
 * `@pushhub/sdk`: everything in one import. The subpaths `@pushhub/sdk/merchant`,
 * `@pushhub/sdk/receiver` and `@pushhub/sdk/offers` export the same things by role.
 *
 * ```js
 * import { MerchantClient, ReceiverClient, createReceiverStore } from '@pushhub/sdk';
 * ```
 *
 * An ES module; `require('@pushhub/sdk')` works on Node.js 20.19+ and 22.12+. Results and
 * events are plain data (numbers and ISO-8601 strings) that survive `JSON.stringify`.
 *
 * @module
 */
export * from './merchant.js';
export * from './receiver.js';
export * from './offers/index.js';
