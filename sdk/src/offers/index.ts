/**
 * Offers from consumption records: the merchant's specific info, generated. Declarative
 * rules (spend tiers, points, visit milestones, win-back) turn each receiver's purchases into
 * discount, points and voucher offers; the sync pushes only what changed.
 *
 * ```ts
 * import { MerchantClient } from '@pushhub/sdk/merchant';
 * import { validateRules, syncReceiverOffers } from '@pushhub/sdk/offers';
 * const rules = validateRules(JSON.parse(readFileSync('rules.json', 'utf8')));
 * const merchant = new MerchantClient({ address, id, password });
 * const summary = await syncReceiverOffers(merchant, receiverId, records, rules);
 * // { pushed: 2, unchanged: 1, withdrawn: 0, ended: 0, ... }
 * ```
 *
 * Computed offers are plain {@link ServiceInfo} values (numbers and ISO-8601 strings) that
 * survive `JSON.stringify` and push as they are.
 *
 * @module
 */
export { OFFER_KEY_PREFIX, computeOffers } from './compute.js';
export type { ComputeOptions } from './compute.js';
export { RecordValidationError, MAX_RECORD_AMOUNT, checkConsumptionRecord, toConsumptionRecord } from './records.js';
export type { ConsumptionRecord } from './records.js';
export { RULE_LIMITS, RulesValidationError, TEMPLATE_PLACEHOLDERS, validateRules } from './rules.js';
export type {
  OfferRule,
  OfferRules,
  PointsMultiplier,
  PointsRule,
  RuleBase,
  RulesIssue,
  SpendTier,
  SpendTierRule,
  ValidRules,
  VisitMilestoneRule,
  VoucherSpec,
  Weekday,
  WinBackRule,
} from './rules.js';
export { offerFingerprint, pushRequestId, withdrawRequestId } from './fingerprint.js';
export { applyOfferPlan, emptySummary, planOfferChanges, syncOffers, syncReceiverOffers } from './sync.js';
export type { BulkOfferTarget, OfferChange, OfferPlan, OfferSink, OfferSource, SyncOffersOptions, SyncProgress, SyncSummary } from './sync.js';
export { formatMoney } from './text.js';
export { createDayShift, shiftRecordsToDay } from './relative-dates.js';
export { readRecordFile, recordFormatOf } from './record-files.js';
export type { Discount, Item, Offer, OfferInput, Points, ServiceInfo, ServiceInfoInput, ValidUntilInput, Voucher } from '../types.js';
export type { ReadRecordFileOptions, RecordFileFormat, RecordLine } from './record-files.js';
