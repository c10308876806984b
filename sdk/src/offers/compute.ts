import { createHash, createHmac } from 'node:crypto';
import type { Offer, ServiceInfo } from '../types.js';
import { toSafeNumber } from '../values.js';
import { type LocalTime, createLocalClock } from './local-time.js';
import { type ConsumptionRecord, checkConsumptionRecord } from './records.js';
import {
  type OfferRule,
  type OfferRules,
  type PointsRule,
  type SpendTierRule,
  type ValidRules,
  type VisitMilestoneRule,
  type VoucherSpec,
  type WinBackRule,
  ensureValidRules,
  minutesOf,
  weekdayIndex,
} from './rules.js';
import { fillTemplate, formatMoney } from './text.js';

/** Every offer key starts with this, so a sync touches only the offers it generated. */
export const OFFER_KEY_PREFIX = 'offer:';

/** Options of {@link computeOffers}. */
export interface ComputeOptions {
  /**
   * Secret for voucher codes (HMAC-SHA256). Without it codes are a plain hash of the receiver,
   * rule and milestone: stable, but anyone who knows a receiver id could work them out.
   */
  codeSecret?: string;
  /**
   * Called for each offer the records earned whose validity had already ended at `now` (it is
   * left out). Old records give old offers: this is how a caller can say why nothing is sent.
   * `validUntil` is an ISO-8601 UTC string, as in every ServiceInfo.
   */
  onEnded?: (offer: { key: string; validUntil: string }) => void;
}

const DAY_MS = 86_400_000;
const TITLE_CHARS = 200;
const BODY_CHARS = 2000;
const CODE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32: no I, L, O, U at the till
const CODE_CHARS = 10;

/** Default texts, used when a rule has no title or body of its own. */
const DEFAULT_TEXT: Record<OfferRule['kind'], { title: string; body: string }> = {
  'spend-tier': { title: '{tier}: {percentOff}% off', body: 'You spent {spend} in the last {windowDays} days.' },
  points: { title: 'Your points: {balance}', body: 'You earned {earned} points with your latest purchase.' },
  'visit-milestone': { title: '{visits} visits: {amountOff} off', body: 'Show code {code} at the till (minimum spend {minSpend}).' },
  'win-back': { title: 'We miss you: {amountOff} off', body: 'Show code {code} at the till (minimum spend {minSpend}).' },
};

/** What computeOffers derives once per rules object. */
interface Compiled {
  rules: ValidRules;
  localTime: (ms: number) => LocalTime;
}

const compiledCache = new WeakMap<ValidRules, Compiled>();

function compile(rules: OfferRules | ValidRules): Compiled {
  const valid = ensureValidRules(rules);
  let compiled = compiledCache.get(valid);
  if (!compiled) {
    compiled = { rules: valid, localTime: createLocalClock(valid.timeZone) };
    compiledCache.set(valid, compiled);
  }
  return compiled;
}

/** A record as the rules see it: time in ms, local time worked out once when a rule needs it. */
interface Purchase {
  t: number;
  record: ConsumptionRecord;
  local?: LocalTime;
}

/**
 * Computes one receiver's offers from its consumption records: a pure, deterministic function
 * (same records in any order, same rules, same `now`: the same offers, byte for byte).
 *
 * Each offer is a complete `ServiceInfo` with a stable key (`offer:<rule id>`, or
 * `offer:<rule id>:<milestone>` for milestone vouchers), so pushing it replaces the previous
 * version instead of piling up. Records after `now` are ignored (not yet happened); offers
 * whose validity has already ended are left out. Every record must belong to one receiver.
 * Sorted by key.
 *
 * @throws RulesValidationError for invalid rules; RecordValidationError for an invalid record.
 */
export function computeOffers(
  records: Iterable<ConsumptionRecord>,
  rules: OfferRules | ValidRules,
  now: Date,
  options: ComputeOptions = {},
): ServiceInfo[] {
  const compiled = compile(rules);
  const nowMs = now.getTime();
  if (Number.isNaN(nowMs)) throw new TypeError('now must be a valid Date');
  const purchases: Purchase[] = [];
  let receiverId: string | undefined;
  for (const record of records) {
    checkConsumptionRecord(record);
    if (receiverId === undefined) receiverId = record.receiverId;
    else if (record.receiverId !== receiverId) {
      throw new TypeError(`computeOffers takes one receiver's records; got ${receiverId} and ${record.receiverId}`);
    }
    const t = record.time.getTime();
    if (t <= nowMs) purchases.push({ t, record });
  }
  if (receiverId === undefined || purchases.length === 0) return [];
  // A total order over content, so the input order never matters.
  purchases.sort(comparePurchases);

  const context: RuleContext = {
    ...compiled,
    receiverId,
    nowMs,
    purchases,
    redeemed: new Set(purchases.flatMap((p) => (p.record.voucherCode ? [p.record.voucherCode] : []))),
    code: voucherCoder(compiled.rules.voucherCodePrefix, options.codeSecret),
    local: (p) => (p.local ??= compiled.localTime(p.t)),
    ended: (key, validUntilMs) => options.onEnded?.({ key, validUntil: new Date(validUntilMs).toISOString() }),
  };
  const offers: ServiceInfo[] = [];
  for (const rule of compiled.rules.offers) {
    switch (rule.kind) {
      case 'spend-tier':
        offers.push(...spendTierOffer(context, rule));
        break;
      case 'points':
        offers.push(...pointsOffer(context, rule));
        break;
      case 'visit-milestone':
        offers.push(...milestoneOffers(context, rule));
        break;
      case 'win-back':
        offers.push(...winBackOffer(context, rule));
        break;
    }
  }
  return offers.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

interface RuleContext extends Compiled {
  receiverId: string;
  nowMs: number;
  /** Records up to now, in time order. */
  purchases: Purchase[];
  /** Voucher codes redeemed in the records. */
  redeemed: Set<string>;
  code: (parts: readonly (string | number)[]) => string;
  /** The local time of a purchase (memoised on it). */
  local: (p: Purchase) => LocalTime;
  /** Memo of visitTimes: milestone and win-back rules both need it. */
  visits?: number[];
  /** Reports an earned offer left out because its validity ended at or before now. */
  ended: (key: string, validUntilMs: number) => void;
}

function comparePurchases(a: Purchase, b: Purchase): number {
  if (a.t !== b.t) return a.t - b.t;
  const ka = tieKey(a.record);
  const kb = tieKey(b.record);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

const tieKey = (r: ConsumptionRecord) => JSON.stringify([r.place, r.amount, r.currency, r.category ?? '', r.voucherCode ?? '']);

function offerInfo(
  rule: OfferRule,
  key: string,
  validUntilMs: number,
  values: Record<string, string | number>,
  offer: Offer,
  data: Record<string, string>,
): ServiceInfo {
  const text = DEFAULT_TEXT[rule.kind];
  return {
    key,
    title: fillTemplate(rule.title ?? text.title, values, TITLE_CHARS),
    body: fillTemplate(rule.body ?? text.body, values, BODY_CHARS),
    validUntil: new Date(validUntilMs).toISOString(),
    offer,
    data: { 'offer.rule': rule.id, 'offer.kind': rule.kind, ...data },
  };
}

/**
 * The highest tier the spend in (now - window, now] reaches. The discount lasts until that
 * spend, as its purchases age out of the window, falls below the tier: computed from the
 * records, not from `now`, so rerunning later gives the same validity and pushes nothing.
 */
function spendTierOffer(ctx: RuleContext, rule: SpendTierRule): ServiceInfo[] {
  const { currency } = ctx.rules;
  const windowMs = rule.windowDays * DAY_MS;
  const inWindow = ctx.purchases.filter((p) => p.record.currency === currency && p.t > ctx.nowMs - windowMs);
  let spend = 0;
  for (const p of inWindow) spend += p.record.amount;
  let tier: (typeof rule.tiers)[number] | undefined;
  for (const candidate of rule.tiers) if (candidate.minSpend <= spend) tier = candidate;
  if (!tier || inWindow.length === 0) return [];

  // Drop purchases in time order (all of one instant together: a refund at the same instant
  // leaves with its purchase) until the spend falls below the tier.
  let remaining = spend;
  let lapseMs = Number.POSITIVE_INFINITY;
  for (let i = 0; i < inWindow.length; ) {
    const t = inWindow[i]!.t;
    while (i < inWindow.length && inWindow[i]!.t === t) remaining -= inWindow[i++]!.record.amount;
    if (remaining < tier.minSpend) {
      lapseMs = t + windowMs;
      break;
    }
  }
  let validUntilMs = lapseMs;
  if (rule.validDays !== undefined) validUntilMs = Math.min(validUntilMs, inWindow[inWindow.length - 1]!.t + rule.validDays * DAY_MS);
  if (!Number.isFinite(validUntilMs)) return [];
  if (validUntilMs <= ctx.nowMs) {
    ctx.ended(`${OFFER_KEY_PREFIX}${rule.id}`, validUntilMs);
    return [];
  }
  const values = { tier: tier.name, percentOff: tier.percentOff, spend: formatMoney(spend, currency), windowDays: rule.windowDays };
  return [
    offerInfo(rule, `${OFFER_KEY_PREFIX}${rule.id}`, validUntilMs, values, { $case: 'discount', value: { percentOff: tier.percentOff } }, { 'offer.tier': tier.name }),
  ];
}

/**
 * A running balance over every purchase in the rules' currency: `points` per `per` minor
 * units, times the largest matching multiplier, truncated toward zero (so a refund takes back
 * exactly what its purchase gave). The balance never goes below 0.
 */
function pointsOffer(ctx: RuleContext, rule: PointsRule): ServiceInfo[] {
  const { currency } = ctx.rules;
  const multipliers = (rule.multipliers ?? []).map((m) => ({
    hundredths: Math.round(m.factor * 100),
    places: m.places && new Set(m.places),
    categories: m.categories && new Set(m.categories),
    days: m.days && new Set(m.days.map(weekdayIndex)),
    from: m.from === undefined ? undefined : minutesOf(m.from),
    to: m.to === undefined ? undefined : minutesOf(m.to),
  }));
  let balance = 0n;
  let earned = 0n;
  let lastMs: number | undefined;
  for (const p of ctx.purchases) {
    const r = p.record;
    if (r.currency !== currency) continue;
    let hundredths = 100;
    if (multipliers.length > 0) {
      for (const m of multipliers) {
        if (m.hundredths <= hundredths) continue;
        if (m.places && !m.places.has(r.place)) continue;
        if (m.categories && (r.category === undefined || !m.categories.has(r.category))) continue;
        if (m.days && !m.days.has(ctx.local(p).weekday)) continue;
        if (m.from !== undefined && m.to !== undefined) {
          const minute = ctx.local(p).minuteOfDay;
          const inside = m.from < m.to ? minute >= m.from && minute < m.to : minute >= m.from || minute < m.to;
          if (!inside) continue;
        }
        hundredths = m.hundredths;
      }
    }
    // BigInt: amount x points x factor can pass 2^53; division truncates toward zero.
    const points = (BigInt(r.amount) * BigInt(rule.earn.points) * BigInt(hundredths)) / (BigInt(rule.earn.per) * 100n);
    const next = balance + points < 0n ? 0n : balance + points;
    earned = next - balance;
    balance = next;
    lastMs = p.t;
  }
  if (lastMs === undefined) return [];
  const validUntilMs = lastMs + rule.validDays * DAY_MS;
  if (validUntilMs <= ctx.nowMs) {
    ctx.ended(`${OFFER_KEY_PREFIX}${rule.id}`, validUntilMs);
    return [];
  }
  const key = `${OFFER_KEY_PREFIX}${rule.id}`;
  const points = { balance: toSafeNumber(balance, `${key} balance`), earned: toSafeNumber(earned, `${key} earned`) };
  return [offerInfo(rule, key, validUntilMs, { balance: String(balance), earned: String(earned) }, { $case: 'points', value: points }, {})];
}

/** The times of the receiver's visits: the first purchase of each (place, local date). */
function visitTimes(ctx: RuleContext): number[] {
  if (ctx.visits) return ctx.visits;
  const seen = new Set<string>();
  const times: number[] = [];
  for (const p of ctx.purchases) {
    if (p.record.amount <= 0) continue; // a refund is not a visit
    const id = `${ctx.local(p).day}\u0000${p.record.place}`;
    if (seen.has(id)) continue;
    seen.add(id);
    times.push(p.t);
  }
  ctx.visits = times;
  return times;
}

function voucherOffer(
  ctx: RuleContext,
  rule: VisitMilestoneRule | WinBackRule,
  key: string,
  code: string,
  validUntilMs: number,
  extra: Record<string, string | number>,
): ServiceInfo[] {
  if (ctx.redeemed.has(code)) return [];
  if (validUntilMs <= ctx.nowMs) {
    ctx.ended(key, validUntilMs);
    return [];
  }
  const spec: VoucherSpec = rule.voucher;
  const minSpend = spec.minSpend ?? 0;
  const { currency } = ctx.rules;
  const values = { ...extra, amountOff: formatMoney(spec.amountOff, currency), minSpend: formatMoney(minSpend, currency), code };
  const offer: Offer = { $case: 'voucher', value: { code, amountOff: spec.amountOff, currency, minSpend } };
  const data = Object.fromEntries(Object.entries(extra).map(([k, v]) => [`offer.${k}`, String(v)]));
  return [offerInfo(rule, key, validUntilMs, values, offer, data)];
}

/** One voucher per milestone reached, valid for validDays after the visit that reached it. */
function milestoneOffers(ctx: RuleContext, rule: VisitMilestoneRule): ServiceInfo[] {
  const visits = visitTimes(ctx);
  const reached: number[] = [];
  if (rule.every !== undefined) for (let n = rule.every; n <= visits.length; n += rule.every) reached.push(n);
  else for (const n of rule.milestones ?? []) if (n <= visits.length) reached.push(n);
  return reached.flatMap((n) => {
    const reachedMs = visits[n - 1]!;
    const code = ctx.code([ctx.receiverId, rule.id, n]);
    return voucherOffer(ctx, rule, `${OFFER_KEY_PREFIX}${rule.id}:${n}`, code, reachedMs + rule.validDays * DAY_MS, { visits: n });
  });
}

/** Earned afterDays after the latest visit; valid for validDays from then; gone with the next visit. */
function winBackOffer(ctx: RuleContext, rule: WinBackRule): ServiceInfo[] {
  const visits = visitTimes(ctx);
  if (visits.length === 0) return [];
  const earnedMs = visits[visits.length - 1]! + rule.afterDays * DAY_MS;
  if (earnedMs > ctx.nowMs) return [];
  // The code names the lapse it answers, so a customer who lapses again gets a new code.
  const code = ctx.code([ctx.receiverId, rule.id, earnedMs]);
  return voucherOffer(ctx, rule, `${OFFER_KEY_PREFIX}${rule.id}`, code, earnedMs + rule.validDays * DAY_MS, { days: rule.afterDays });
}

function voucherCoder(prefix: string, secret: string | undefined): (parts: readonly (string | number)[]) => string {
  return (parts) => {
    const input = JSON.stringify(parts);
    const digest = secret === undefined ? createHash('sha256').update(input).digest() : createHmac('sha256', secret).update(input).digest();
    let code = '';
    for (let i = 0; i < CODE_CHARS; i++) code += CODE_ALPHABET[digest[i]! & 31];
    return `${prefix}${code}`;
  };
}
