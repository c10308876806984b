import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type ConsumptionRecord, type OfferRules, computeOffers, validateRules } from '../../sdk/src/offers/index.js';
import { DAY, NOW, RECEIVER } from './support.js';

const NUM_RUNS = 150;
const PLACES = ['main', 'airport', 'kiosk'];
const CATEGORIES = ['coffee', 'food', 'books'];

/** Records from 200 days before NOW to 5 days after (those are ignored), refunds included. */
const recordArb = (amount = fc.integer({ min: -5_000, max: 40_000 })): fc.Arbitrary<ConsumptionRecord> =>
  fc.record({
    t: fc.integer({ min: -200 * DAY, max: 5 * DAY }),
    amount,
    place: fc.constantFrom(...PLACES),
    category: fc.option(fc.constantFrom(...CATEGORIES), { nil: undefined }),
    currency: fc.constantFrom('EUR', 'EUR', 'EUR', 'USD'),
  }).map(({ t, category, ...rest }) => ({ receiverId: RECEIVER, time: new Date(NOW.getTime() + t), ...rest, ...(category ? { category } : {}) }));

/** Rules with every kind, their parameters drawn at random. */
const rulesArb: fc.Arbitrary<OfferRules> = fc
  .record({
    windowDays: fc.integer({ min: 1, max: 120 }),
    minSpends: fc.uniqueArray(fc.integer({ min: 1, max: 200_000 }), { minLength: 1, maxLength: 4 }),
    percents: fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 4, maxLength: 4 }),
    tierValidDays: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
    per: fc.integer({ min: 1, max: 1_000 }),
    points: fc.integer({ min: 1, max: 10 }),
    factors: fc.array(fc.integer({ min: 1, max: 500 }), { minLength: 3, maxLength: 3 }),
    every: fc.integer({ min: 1, max: 5 }),
    afterDays: fc.integer({ min: 1, max: 90 }),
    validDays: fc.integer({ min: 1, max: 120 }),
    timeZone: fc.constantFrom('UTC', 'Europe/Berlin', 'Asia/Kolkata', 'America/New_York'),
  })
  .map((p) => {
    const minSpends = [...p.minSpends].sort((a, b) => a - b);
    const percents = [...p.percents].sort((a, b) => a - b);
    return {
      version: 1,
      currency: 'EUR',
      timeZone: p.timeZone,
      offers: [
        {
          id: 'tier',
          kind: 'spend-tier',
          windowDays: p.windowDays,
          tiers: minSpends.map((minSpend, i) => ({ name: `T${i}`, minSpend, percentOff: percents[i]! })),
          ...(p.tierValidDays ? { validDays: p.tierValidDays } : {}),
        },
        {
          id: 'points',
          kind: 'points',
          earn: { points: p.points, per: p.per },
          multipliers: [
            { factor: p.factors[0]! / 100, places: ['airport'] },
            { factor: p.factors[1]! / 100, categories: ['coffee'] },
            { factor: p.factors[2]! / 100, from: '22:00', to: '06:00', days: ['fri', 'sat'] },
          ],
          validDays: p.validDays,
        },
        { id: 'visits', kind: 'visit-milestone', every: p.every, voucher: { amountOff: 500 }, validDays: p.validDays },
        { id: 'winback', kind: 'win-back', afterDays: p.afterDays, voucher: { amountOff: 500 }, validDays: p.validDays },
      ],
    } satisfies OfferRules;
  });

const tierIndex = (offers: ReturnType<typeof computeOffers>) => {
  const tier = offers.find((o) => o.key === 'offer:tier');
  return tier ? Number(tier.data['offer.tier']!.slice(1)) : -1;
};

describe('offers: properties of computeOffers', () => {
  it('is deterministic: the same records in any order give the same offers', () => {
    fc.assert(
      fc.property(fc.array(recordArb(), { maxLength: 40 }), rulesArb, fc.integer(), (records, rules, seed) => {
        const valid = validateRules(rules);
        const shuffled = [...records].sort((a, b) => ((a.amount * 7919 + seed) % 13) - ((b.amount * 7919 + seed) % 13));
        const once = computeOffers(records, valid, NOW);
        assert.deepEqual(computeOffers(shuffled, valid, NOW), once);
        assert.deepEqual(computeOffers(records, rules, new Date(NOW)), once);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('never gives a negative points balance, even with refunds', () => {
    fc.assert(
      fc.property(fc.array(recordArb(fc.integer({ min: -50_000, max: 20_000 })), { maxLength: 40 }), rulesArb, (records, rules) => {
        for (const offer of computeOffers(records, rules, NOW)) {
          if (offer.offer?.$case === 'points') assert.ok(offer.offer.value.balance >= 0, `balance ${offer.offer.value.balance}`);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('never gives two offers the same key, and every offer is valid after now and within the hub limits', () => {
    fc.assert(
      fc.property(fc.array(recordArb(), { maxLength: 60 }), rulesArb, (records, rules) => {
        const offers = computeOffers(records, rules, NOW);
        assert.equal(new Set(offers.map((o) => o.key)).size, offers.length);
        for (const offer of offers) {
          assert.ok(Date.parse(offer.validUntil) > NOW.getTime());
          assert.ok(offer.key.startsWith('offer:') && offer.key.length <= 128 && [...offer.title].length <= 200);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('never lowers the spend tier when a purchase inside the window is added', () => {
    fc.assert(
      fc.property(
        fc.array(recordArb(), { maxLength: 40 }),
        rulesArb,
        fc.integer({ min: 0, max: 50_000 }),
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        (records, rules, amount, position) => {
          const windowMs = (rules.offers[0] as { windowDays: number }).windowDays * DAY;
          // A time in (now - window, now].
          const t = NOW.getTime() - Math.floor(position * (windowMs - 1));
          const added: ConsumptionRecord = { receiverId: RECEIVER, time: new Date(t), place: 'main', amount, currency: 'EUR' };
          assert.ok(tierIndex(computeOffers([...records, added], rules, NOW)) >= tierIndex(computeOffers(records, rules, NOW)));
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });
});
