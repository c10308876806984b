import { isValidTimeZone } from './local-time.js';

/**
 * The merchant's offer rules: plain data (JSON-serialisable), checked by
 * {@link validateRules}. Money is in minor units (cents) of `currency`.
 *
 * ```json
 * { "version": 1, "currency": "EUR", "timeZone": "Europe/Berlin",
 *   "offers": [{ "id": "tier", "kind": "spend-tier", "windowDays": 90,
 *                "tiers": [{ "name": "Silver", "minSpend": 10000, "percentOff": 5 }] }] }
 * ```
 */
export interface OfferRules {
  /** Format version; 1. */
  version: 1;
  /** ISO 4217 code of the money rules (spend, points, vouchers); records in other currencies do not count as spend. */
  currency: string;
  /** IANA time zone for time-of-day multipliers and for what counts as one visit per day (default "UTC"). */
  timeZone?: string;
  /** Prepended to every generated voucher code, e.g. "CAFE-" (letters, digits, '-', at most 16). */
  voucherCodePrefix?: string;
  /** The offers, each with a unique `id`; at most 50. */
  offers: OfferRule[];
}

/** One offer rule; `kind` says which. */
export type OfferRule = SpendTierRule | PointsRule | VisitMilestoneRule | WinBackRule;

/** What every rule has. */
export interface RuleBase {
  /** Unique id (letters, digits, '-', '_', '.'; at most 64); part of the offer's replacement key, so keep it stable. */
  id: string;
  /** Title template, e.g. "{tier}: {percentOff}% off"; placeholders depend on the kind. */
  title?: string;
  /** Body template. */
  body?: string;
}

/** A discount percent from the spend over a rolling window. */
export interface SpendTierRule extends RuleBase {
  /** The rule kind. */
  kind: 'spend-tier';
  /** Length of the rolling window in days: spend counts while it is younger than this. */
  windowDays: number;
  /** Tiers in increasing `minSpend` (and non-decreasing `percentOff`); the highest reached applies. */
  tiers: SpendTier[];
  /**
   * The discount is valid until the window spend would fall below the tier (if nothing more is
   * spent); with validDays, at most this many days after the latest purchase in the window.
   */
  validDays?: number;
}

/** One spend tier. */
export interface SpendTier {
  /** Shown to the customer, e.g. "Gold". */
  name: string;
  /** Spend inside the window, in minor units, that reaches this tier (at least 1). */
  minSpend: number;
  /** Percent off, 0 to 100. */
  percentOff: number;
}

/** A points balance: points per amount spent, with multipliers. */
export interface PointsRule extends RuleBase {
  /** The rule kind. */
  kind: 'points';
  /** `points` points for every `per` minor units spent (refunds take them back; the balance never goes below 0). */
  earn: {
    /** Points earned per step. */
    points: number;
    /** Minor units spent per step. */
    per: number;
  };
  /** Multipliers; when several match a purchase, the largest applies. */
  multipliers?: PointsMultiplier[];
  /** The balance is shown for this many days after the latest purchase. */
  validDays: number;
}

/** Multiplies the points of purchases that match every condition given (at least one). */
export interface PointsMultiplier {
  /** The factor, greater than 0, at most 2 decimals (e.g. 1.5). */
  factor: number;
  /** Only at these places (store ids). */
  places?: string[];
  /** Only in these categories. */
  categories?: string[];
  /** Only on these weekdays: "mon" .. "sun" (local time). */
  days?: Weekday[];
  /** Only from this local time of day, "HH:MM" (inclusive); with `to`. */
  from?: string;
  /** Until this local time of day, "HH:MM" (exclusive); earlier than `from` wraps past midnight. */
  to?: string;
}

/** A weekday name. */
export type Weekday = 'sun' | 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat';

/** The voucher an offer gives. */
export interface VoucherSpec {
  /** Amount off, in minor units (at least 1). */
  amountOff: number;
  /** Minimum spend for the voucher to apply, in minor units (default 0). */
  minSpend?: number;
}

/** A voucher when the visit count reaches a milestone. A visit is a purchase day at a place (local date). */
export interface VisitMilestoneRule extends RuleBase {
  /** The rule kind. */
  kind: 'visit-milestone';
  /** The milestones, increasing, e.g. [5, 10, 25]; or use `every`. */
  milestones?: number[];
  /** A milestone every this many visits (10, 20, 30, ...); instead of `milestones`. */
  every?: number;
  /** The voucher. */
  voucher: VoucherSpec;
  /** Each voucher is valid for this many days after the visit that reached its milestone. */
  validDays: number;
}

/** A voucher for a customer whose latest visit is at least `afterDays` days ago. */
export interface WinBackRule extends RuleBase {
  /** The rule kind. */
  kind: 'win-back';
  /** Days without a visit after which the voucher is offered. */
  afterDays: number;
  /** The voucher. */
  voucher: VoucherSpec;
  /** Valid for this many days from the moment it was earned (latest visit + afterDays). */
  validDays: number;
}

/** One problem in a rules document: where (e.g. `offers[1].tiers[0].percentOff`) and what. */
export interface RulesIssue {
  /** Path of the offending value. */
  path: string;
  /** What is wrong with it. */
  message: string;
}

/** Thrown by {@link validateRules}; lists every problem found, each with its path. */
export class RulesValidationError extends Error {
  /** Every problem found. */
  readonly issues: RulesIssue[];
  constructor(issues: RulesIssue[]) {
    super(`invalid offer rules:\n${issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n')}`);
    this.name = 'RulesValidationError';
    this.issues = issues;
  }
}

/** Rules that passed {@link validateRules}, with defaults filled in; frozen. */
export type ValidRules = Readonly<Required<Pick<OfferRules, 'version' | 'currency' | 'timeZone' | 'voucherCodePrefix'>>> & {
  /** The checked rules. */
  readonly offers: readonly OfferRule[];
};

/** Placeholders each kind's templates may use. */
export const TEMPLATE_PLACEHOLDERS: Readonly<Record<OfferRule['kind'], readonly string[]>> = {
  'spend-tier': ['tier', 'percentOff', 'spend', 'windowDays'],
  points: ['balance', 'earned'],
  'visit-milestone': ['visits', 'amountOff', 'minSpend', 'code'],
  'win-back': ['days', 'amountOff', 'minSpend', 'code'],
};

/** Bounds that keep offers within the hub's limits and the computation bounded. */
export const RULE_LIMITS = {
  /** Rules per file. */
  offers: 50,
  /** Tiers per spend-tier rule. */
  tiers: 20,
  /** Multipliers per points rule. */
  multipliers: 50,
  /** Milestones per visit-milestone rule. */
  milestones: 100,
  /** Entries per list (places, categories, days). */
  listEntries: 1000,
  /** Characters of a rule id. */
  idChars: 64,
  /** Characters of a title template. */
  titleChars: 200,
  /** Characters of a body template. */
  bodyChars: 2000,
  /** Days in any window or validity. */
  days: 3650,
  /** Money amounts, in minor units. */
  money: 1e12,
  /** Points per earn step. */
  points: 1e6,
  /** Points multiplier factor. */
  factor: 100,
} as const;

const KINDS = ['spend-tier', 'points', 'visit-milestone', 'win-back'] as const;
const WEEKDAYS: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const TIME_PATTERN = /^([01]\d|2[0-3]):[0-5]\d$/;
const KNOWN_KEYS: Record<string, readonly string[]> = {
  root: ['version', 'currency', 'timeZone', 'voucherCodePrefix', 'offers'],
  'spend-tier': ['id', 'kind', 'title', 'body', 'windowDays', 'tiers', 'validDays'],
  points: ['id', 'kind', 'title', 'body', 'earn', 'multipliers', 'validDays'],
  'visit-milestone': ['id', 'kind', 'title', 'body', 'milestones', 'every', 'voucher', 'validDays'],
  'win-back': ['id', 'kind', 'title', 'body', 'afterDays', 'voucher', 'validDays'],
  tier: ['name', 'minSpend', 'percentOff'],
  earn: ['points', 'per'],
  multiplier: ['factor', 'places', 'categories', 'days', 'from', 'to'],
  voucher: ['amountOff', 'minSpend'],
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Collects issues while walking the document, so one run reports every problem. */
class Checker {
  readonly issues: RulesIssue[] = [];

  fail(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  object(path: string, value: unknown, known: readonly string[]): value is Record<string, unknown> {
    if (!isObject(value)) {
      this.fail(path, 'must be an object');
      return false;
    }
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) this.fail(join(path, key), `unknown field (expected one of: ${known.join(', ')})`);
    }
    return true;
  }

  integer(path: string, value: unknown, min: number, max: number): value is number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(path, `must be an integer from ${min} to ${max}`);
      return false;
    }
    return true;
  }

  text(path: string, value: unknown, maxChars: number, pattern?: RegExp, patternHint?: string): value is string {
    if (typeof value !== 'string' || value === '') {
      this.fail(path, 'must be a non-empty string');
      return false;
    }
    if ([...value].length > maxChars) {
      this.fail(path, `must be at most ${maxChars} characters`);
      return false;
    }
    if (!value.isWellFormed()) {
      this.fail(path, 'must be valid Unicode');
      return false;
    }
    if (pattern && !pattern.test(value)) {
      this.fail(path, patternHint ?? `must match ${pattern}`);
      return false;
    }
    return true;
  }

  stringList(path: string, value: unknown): value is string[] {
    if (!Array.isArray(value) || value.length === 0 || value.length > RULE_LIMITS.listEntries) {
      this.fail(path, `must be a non-empty array of at most ${RULE_LIMITS.listEntries} strings`);
      return false;
    }
    return value.every((v, i) => this.text(`${path}[${i}]`, v, 128));
  }

  template(path: string, value: unknown, kind: OfferRule['kind'], maxChars: number): void {
    if (value === undefined) return;
    if (!this.text(path, value, maxChars)) return;
    const allowed = TEMPLATE_PLACEHOLDERS[kind];
    for (const [, name] of (value as string).matchAll(/\{([^{}]*)\}/g)) {
      if (!allowed.includes(name!)) this.fail(path, `unknown placeholder {${name}} (this kind has: ${allowed.map((a) => `{${a}}`).join(', ')})`);
    }
  }

  voucher(path: string, value: unknown): void {
    if (!this.object(path, value, KNOWN_KEYS.voucher!)) return;
    this.integer(join(path, 'amountOff'), value.amountOff, 1, RULE_LIMITS.money);
    if (value.minSpend !== undefined) this.integer(join(path, 'minSpend'), value.minSpend, 0, RULE_LIMITS.money);
  }
}

const join = (path: string, key: string) => (path === '' ? key : `${path}.${key}`);

/**
 * Checks a rules document (for example parsed from JSON) and returns it with defaults
 * filled in, frozen. Throws {@link RulesValidationError} listing every problem with its path.
 */
export function validateRules(input: unknown): ValidRules {
  const c = new Checker();
  if (!c.object('', input, KNOWN_KEYS.root!)) throw new RulesValidationError(c.issues);
  if (input.version !== 1) c.fail('version', 'must be 1');
  c.text('currency', input.currency, 3, /^[A-Z]{3}$/, 'must be an ISO 4217 code like "EUR"');
  const timeZone = input.timeZone ?? 'UTC';
  if (c.text('timeZone', timeZone, 64) && !isValidTimeZone(timeZone)) c.fail('timeZone', `unknown time zone "${timeZone}" (use an IANA name like "Europe/Berlin")`);
  const prefix = input.voucherCodePrefix ?? '';
  if (prefix !== '') c.text('voucherCodePrefix', prefix, 16, /^[A-Za-z0-9-]+$/, "must contain only letters, digits and '-'");

  const offers = input.offers;
  if (!Array.isArray(offers) || offers.length > RULE_LIMITS.offers) {
    c.fail('offers', `must be an array of at most ${RULE_LIMITS.offers} rules`);
  } else {
    const seen = new Map<string, number>();
    offers.forEach((rule, i) => {
      const path = `offers[${i}]`;
      if (!isObject(rule)) return c.fail(path, 'must be an object');
      if (!KINDS.includes(rule.kind as never)) return c.fail(join(path, 'kind'), `must be one of: ${KINDS.join(', ')}`);
      const kind = rule.kind as OfferRule['kind'];
      c.object(path, rule, KNOWN_KEYS[kind]!);
      if (c.text(join(path, 'id'), rule.id, RULE_LIMITS.idChars, ID_PATTERN, "must start with a letter or digit and contain only letters, digits, '-', '_', '.'")) {
        const id = rule.id as string;
        if (seen.has(id)) c.fail(join(path, 'id'), `duplicate id "${id}" (also offers[${seen.get(id)}])`);
        else seen.set(id, i);
      }
      c.template(join(path, 'title'), rule.title, kind, RULE_LIMITS.titleChars);
      c.template(join(path, 'body'), rule.body, kind, RULE_LIMITS.bodyChars);
      checkRule(c, path, kind, rule);
    });
  }
  if (c.issues.length > 0) throw new RulesValidationError(c.issues);
  const valid = deepFreeze(structuredClone({ ...input, timeZone, voucherCodePrefix: prefix }) as unknown as ValidRules);
  validated.add(valid);
  return valid;
}

/** Rules objects returned by validateRules, so computeOffers validates each rules object once. */
const validated = new WeakSet<object>();

/** Returns `rules` if validateRules produced it, else validates it (throwing on problems). */
export function ensureValidRules(rules: OfferRules | ValidRules): ValidRules {
  return validated.has(rules) ? (rules as ValidRules) : validateRules(rules);
}

function checkRule(c: Checker, path: string, kind: OfferRule['kind'], rule: Record<string, unknown>): void {
  const days = (field: string, required: boolean) => {
    if (rule[field] === undefined && !required) return;
    c.integer(join(path, field), rule[field], 1, RULE_LIMITS.days);
  };
  switch (kind) {
    case 'spend-tier': {
      days('windowDays', true);
      days('validDays', false);
      const tiers = rule.tiers;
      if (!Array.isArray(tiers) || tiers.length === 0 || tiers.length > RULE_LIMITS.tiers) {
        c.fail(join(path, 'tiers'), `must be a non-empty array of at most ${RULE_LIMITS.tiers} tiers`);
        return;
      }
      let previous: { minSpend: number; percentOff: number } | undefined;
      tiers.forEach((tier, j) => {
        const tierPath = `${path}.tiers[${j}]`;
        if (!c.object(tierPath, tier, KNOWN_KEYS.tier!)) return;
        c.text(join(tierPath, 'name'), tier.name, 64);
        const minOk = c.integer(join(tierPath, 'minSpend'), tier.minSpend, 1, RULE_LIMITS.money);
        const pctOk = c.integer(join(tierPath, 'percentOff'), tier.percentOff, 0, 100);
        if (!minOk || !pctOk) return (previous = undefined);
        const current = { minSpend: tier.minSpend as number, percentOff: tier.percentOff as number };
        if (previous && current.minSpend <= previous.minSpend) c.fail(join(tierPath, 'minSpend'), `must be greater than the previous tier's (${previous.minSpend})`);
        if (previous && current.percentOff < previous.percentOff) c.fail(join(tierPath, 'percentOff'), `must not be lower than the previous tier's (${previous.percentOff})`);
        previous = current;
      });
      return;
    }
    case 'points': {
      days('validDays', true);
      const earnPath = join(path, 'earn');
      if (c.object(earnPath, rule.earn, KNOWN_KEYS.earn!)) {
        c.integer(join(earnPath, 'points'), rule.earn.points, 1, RULE_LIMITS.points);
        c.integer(join(earnPath, 'per'), rule.earn.per, 1, RULE_LIMITS.money);
      }
      if (rule.multipliers === undefined) return;
      if (!Array.isArray(rule.multipliers) || rule.multipliers.length > RULE_LIMITS.multipliers) {
        c.fail(join(path, 'multipliers'), `must be an array of at most ${RULE_LIMITS.multipliers} multipliers`);
        return;
      }
      rule.multipliers.forEach((m, j) => checkMultiplier(c, `${path}.multipliers[${j}]`, m));
      return;
    }
    case 'visit-milestone': {
      days('validDays', true);
      c.voucher(join(path, 'voucher'), rule.voucher);
      const hasList = rule.milestones !== undefined;
      const hasEvery = rule.every !== undefined;
      if (hasList === hasEvery) {
        c.fail(path, 'needs exactly one of "milestones" and "every"');
        return;
      }
      if (hasEvery) {
        c.integer(join(path, 'every'), rule.every, 1, 1_000_000);
        return;
      }
      const list = rule.milestones;
      if (!Array.isArray(list) || list.length === 0 || list.length > RULE_LIMITS.milestones) {
        c.fail(join(path, 'milestones'), `must be a non-empty array of at most ${RULE_LIMITS.milestones} visit counts`);
        return;
      }
      list.forEach((n, j) => {
        const p = `${path}.milestones[${j}]`;
        if (c.integer(p, n, 1, 1_000_000) && j > 0 && typeof list[j - 1] === 'number' && n <= list[j - 1]) {
          c.fail(p, `must be greater than the previous milestone (${list[j - 1]})`);
        }
      });
      return;
    }
    case 'win-back':
      days('afterDays', true);
      days('validDays', true);
      c.voucher(join(path, 'voucher'), rule.voucher);
      return;
  }
}

function checkMultiplier(c: Checker, path: string, m: unknown): void {
  if (!c.object(path, m, KNOWN_KEYS.multiplier!)) return;
  const factor = m.factor;
  if (typeof factor !== 'number' || !(factor > 0) || factor > RULE_LIMITS.factor || Math.abs(Math.round(factor * 100) - factor * 100) > 1e-9) {
    c.fail(join(path, 'factor'), `must be a number greater than 0 and at most ${RULE_LIMITS.factor}, with at most 2 decimals`);
  }
  if (m.places !== undefined) c.stringList(join(path, 'places'), m.places);
  if (m.categories !== undefined) c.stringList(join(path, 'categories'), m.categories);
  if (m.days !== undefined) {
    if (!Array.isArray(m.days) || m.days.length === 0) c.fail(join(path, 'days'), 'must be a non-empty array of weekdays');
    else m.days.forEach((d, j) => WEEKDAYS.includes(d) || c.fail(`${path}.days[${j}]`, `must be one of: ${WEEKDAYS.join(', ')}`));
  }
  if ((m.from === undefined) !== (m.to === undefined)) c.fail(path, '"from" and "to" go together');
  if (m.from !== undefined) c.text(join(path, 'from'), m.from, 5, TIME_PATTERN, 'must be a time of day "HH:MM" (24 h)');
  if (m.to !== undefined) c.text(join(path, 'to'), m.to, 5, TIME_PATTERN, 'must be a time of day "HH:MM" (24 h)');
  if (m.from !== undefined && m.from === m.to) c.fail(join(path, 'to'), 'must differ from "from"');
  if (m.places === undefined && m.categories === undefined && m.days === undefined && m.from === undefined) {
    c.fail(path, 'needs at least one condition: places, categories, days or from/to');
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Parses "HH:MM" into minutes since midnight (input already validated). */
export const minutesOf = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Index of a weekday name, 0 = Sunday. */
export const weekdayIndex = (day: Weekday): number => WEEKDAYS.indexOf(day);
