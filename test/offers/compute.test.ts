import assert from 'node:assert/strict';
import { type OfferRules, computeOffers, formatMoney, validateRules } from '../../sdk/src/offers/index.js';
import { DAY, HOUR, NOW, RECEIVER, rec } from './support.js';

const base = { version: 1, currency: 'EUR' } as const;
const at = (ms: number) => new Date(NOW.getTime() + ms);
/** validUntil as computeOffers returns it: an ISO-8601 string. */
const iso = (ms: number) => at(ms).toISOString();

describe('offers: computeOffers for each rule kind', () => {
  describe('spend tiers over a rolling window', () => {
    const rules = (extra: object = {}): OfferRules => ({
      ...base,
      offers: [
        {
          id: 'tier',
          kind: 'spend-tier',
          windowDays: 30,
          tiers: [
            { name: 'Silver', minSpend: 10_000, percentOff: 5 },
            { name: 'Gold', minSpend: 30_000, percentOff: 10 },
          ],
          ...extra,
        },
      ],
    });

    it('gives the highest tier reached inside the window, valid until its spend would drop below it', () => {
      const records = [rec(40 * DAY, 50_000), rec(20 * DAY, 15_000), rec(10 * DAY, 10_000), rec(5 * DAY, 8_000)];
      // In the window: 15 000 + 10 000 + 8 000 = 33 000 >= 30 000: Gold. The 40-day-old purchase is out.
      // When the 20-day-old purchase leaves the window (in 10 days), 18 000 < 30 000: Gold lapses then.
      assert.deepEqual(computeOffers(records, rules(), NOW), [
        {
          key: 'offer:tier',
          title: 'Gold: 10% off',
          body: 'You spent 330.00 EUR in the last 30 days.',
          validUntil: iso(10 * DAY),
          offer: { $case: 'discount', value: { percentOff: 10 } },
          data: { 'offer.rule': 'tier', 'offer.kind': 'spend-tier', 'offer.tier': 'Gold' },
        },
      ]);
    });

    it('keeps a tier as long as the remaining purchases hold it', () => {
      // Silver needs 10 000: dropping 20 days ago (4 000) leaves 11 000, dropping 10 days ago leaves 3 000.
      const records = [rec(20 * DAY, 4_000), rec(10 * DAY, 8_000), rec(2 * DAY, 3_000)];
      const [offer] = computeOffers(records, rules(), NOW);
      assert.equal(offer?.title, 'Silver: 5% off');
      assert.deepEqual(offer?.validUntil, iso(20 * DAY));
    });

    it('caps validity at validDays after the latest purchase, and drops an offer whose validity has passed', () => {
      const records = [rec(20 * DAY, 15_000), rec(10 * DAY, 10_000), rec(5 * DAY, 8_000)];
      assert.deepEqual(computeOffers(records, rules({ validDays: 7 }), NOW)[0]?.validUntil, iso(2 * DAY));
      assert.deepEqual(computeOffers(records, rules({ validDays: 3 }), NOW), []);
    });

    it('gives nothing below the lowest tier; refunds reduce the spend; other currencies do not count', () => {
      assert.deepEqual(computeOffers([rec(DAY, 9_999)], rules(), NOW), []);
      assert.deepEqual(computeOffers([rec(20 * DAY, 15_000), rec(10 * DAY, -6_000)], rules(), NOW), []);
      assert.deepEqual(computeOffers([rec(DAY, 50_000, { currency: 'USD' })], rules(), NOW), []);
    });
  });

  describe('points with multipliers and a running balance', () => {
    const rules: OfferRules = {
      ...base,
      offers: [
        {
          id: 'points',
          kind: 'points',
          earn: { points: 1, per: 100 },
          multipliers: [
            { factor: 2, places: ['airport'] },
            { factor: 1.5, categories: ['coffee'] },
            { factor: 3, from: '07:00', to: '09:00' },
          ],
          validDays: 90,
        },
      ],
    };

    it('earns points per amount, applying the largest matching multiplier', () => {
      const records = [
        rec(3 * DAY, 1_250), // 12.5 -> 12
        rec(2 * DAY, 1_000, { place: 'airport' }), // x2 -> 20
        rec(DAY, 333, { category: 'coffee' }), // 3.33 x 1.5 = 4.995 -> 4
        rec(4 * HOUR, 1_000, { place: 'airport', category: 'coffee' }), // 08:00 UTC: max(2, 1.5, 3) = 3 -> 30
      ];
      assert.deepEqual(computeOffers(records, rules, NOW), [
        {
          key: 'offer:points',
          title: 'Your points: 66',
          body: 'You earned 30 points with your latest purchase.',
          validUntil: iso(90 * DAY - 4 * HOUR),
          offer: { $case: 'points', value: { balance: 66, earned: 30 } },
          data: { 'offer.rule': 'points', 'offer.kind': 'points' },
        },
      ]);
    });

    it('takes points back on a refund but never below zero', () => {
      const refunded = computeOffers([rec(3 * DAY, 1_000), rec(2 * DAY, -3_000)], rules, NOW);
      assert.deepEqual(refunded[0]?.offer, { $case: 'points', value: { balance: 0, earned: -10 } });
      const after = computeOffers([rec(3 * DAY, 1_000), rec(2 * DAY, -3_000), rec(DAY, 500)], rules, NOW);
      assert.deepEqual(after[0]?.offer, { $case: 'points', value: { balance: 5, earned: 5 } });
    });

    it('reads time of day and weekday in the rules time zone', () => {
      const berlin: OfferRules = {
        ...base,
        timeZone: 'Europe/Berlin',
        offers: [{ id: 'p', kind: 'points', earn: { points: 1, per: 100 }, multipliers: [{ factor: 2, from: '07:00', to: '09:00', days: ['sun'] }], validDays: 10 }],
      };
      // 05:30Z is 07:30 in Berlin (summer time, UTC+2) on Sunday 1 June: doubled. 07:30Z is 09:30 there: not.
      const doubled = computeOffers([rec(NOW.getTime() - Date.parse('2025-06-01T05:30:00Z'), 1_000)], berlin, NOW);
      assert.deepEqual(doubled[0]?.offer, { $case: 'points', value: { balance: 20, earned: 20 } });
      const plain = computeOffers([rec(NOW.getTime() - Date.parse('2025-06-01T07:30:00Z'), 1_000)], berlin, NOW);
      assert.deepEqual(plain[0]?.offer, { $case: 'points', value: { balance: 10, earned: 10 } });
      // Saturday at 07:30 Berlin time: the weekday does not match.
      const saturday = computeOffers([rec(NOW.getTime() - Date.parse('2025-05-31T05:30:00Z'), 1_000)], berlin, NOW);
      assert.deepEqual(saturday[0]?.offer, { $case: 'points', value: { balance: 10, earned: 10 } });
    });

    it('shows the balance for validDays after the latest purchase', () => {
      assert.deepEqual(computeOffers([rec(91 * DAY, 1_000)], rules, NOW), []);
    });
  });

  describe('visit-count milestone vouchers', () => {
    const rules: OfferRules = {
      ...base,
      voucherCodePrefix: 'CAFE-',
      offers: [{ id: 'visits', kind: 'visit-milestone', milestones: [2, 4], voucher: { amountOff: 500, minSpend: 2_000 }, validDays: 30 }],
    };
    // Visits are (place, local date): the second purchase on day -10 at "main" is the same visit;
    // "kiosk" and "main" on day -8 are two; a refund is no visit.
    const records = [
      rec(10 * DAY, 1_000),
      rec(10 * DAY - HOUR, 500),
      rec(8 * DAY, 700, { place: 'kiosk' }),
      rec(8 * DAY - HOUR, 700),
      rec(2 * DAY, -700, { place: 'outlet' }),
      rec(DAY, 900),
    ];

    it('issues one voucher per milestone reached, valid for validDays after the visit that reached it', () => {
      const offers = computeOffers(records, rules, NOW);
      assert.deepEqual(
        offers.map((o) => [o.key, o.title, o.validUntil]),
        [
          ['offer:visits:2', '2 visits: 5.00 EUR off', iso(22 * DAY)],
          ['offer:visits:4', '4 visits: 5.00 EUR off', iso(29 * DAY)],
        ],
      );
      const voucher = offers[0]!.offer;
      assert.equal(voucher?.$case, 'voucher');
      if (voucher?.$case !== 'voucher') return;
      assert.match(voucher.value.code, /^CAFE-[0-9A-HJKMNP-TV-Z]{10}$/);
      assert.deepEqual({ ...voucher.value, code: '' }, { code: '', amountOff: 500, currency: 'EUR', minSpend: 2_000 });
      assert.equal(offers[0]!.body, `Show code ${voucher.value.code} at the till (minimum spend 20.00 EUR).`);
      assert.deepEqual(offers[0]!.data, { 'offer.rule': 'visits', 'offer.kind': 'visit-milestone', 'offer.visits': '2' });
      assert.notEqual(voucher.value.code, (offers[1]!.offer as { value: { code: string } }).value.code);
    });

    it('stops offering a voucher once its code is redeemed', () => {
      const offers = computeOffers(records, rules, NOW);
      const code = (offers[0]!.offer as { value: { code: string } }).value.code;
      const redeemed = computeOffers([...records, rec(DAY - HOUR, 2_500, { voucherCode: code })], rules, NOW);
      assert.deepEqual(redeemed.map((o) => o.key), ['offer:visits:4']);
    });

    it('supports "every" and leaves out expired vouchers', () => {
      const every: OfferRules = { ...base, offers: [{ id: 'v', kind: 'visit-milestone', every: 2, voucher: { amountOff: 100 }, validDays: 30 }] };
      const visits = [40, 35, 20, 10, 5].map((d) => rec(d * DAY, 100));
      // 5 visits: milestones 2 (day -35, expired day -5) and 4 (day -10, valid until day 20).
      assert.deepEqual(computeOffers(visits, every, NOW).map((o) => [o.key, o.validUntil]), [['offer:v:4', iso(20 * DAY)]]);
    });

    it('derives codes from a secret when one is given', () => {
      const plain = computeOffers(records, rules, NOW)[0]!.offer as { value: { code: string } };
      const secret = computeOffers(records, rules, NOW, { codeSecret: 's3cret' })[0]!.offer as { value: { code: string } };
      assert.notEqual(plain.value.code, secret.value.code);
    });
  });

  describe('win-back voucher', () => {
    const rules: OfferRules = { ...base, offers: [{ id: 'winback', kind: 'win-back', afterDays: 30, voucher: { amountOff: 1_000 }, validDays: 14 }] };

    it('is earned afterDays after the latest visit and valid for validDays from then', () => {
      const offers = computeOffers([rec(60 * DAY, 500), rec(35 * DAY, 500)], rules, NOW);
      assert.deepEqual(offers.map((o) => [o.key, o.title, o.validUntil, o.data]), [
        ['offer:winback', 'We miss you: 10.00 EUR off', iso(9 * DAY), { 'offer.rule': 'winback', 'offer.kind': 'win-back', 'offer.days': '30' }],
      ]);
    });

    it('is not offered to a recent visitor, nor after its validity; refunds are not visits', () => {
      assert.deepEqual(computeOffers([rec(20 * DAY, 500)], rules, NOW), []);
      assert.deepEqual(computeOffers([rec(50 * DAY, 500)], rules, NOW), []);
      assert.equal(computeOffers([rec(35 * DAY, 500), rec(DAY, -500)], rules, NOW).length, 1);
    });
  });

  describe('all rules together', () => {
    it('returns offers sorted by key, ignores records after now and input order', () => {
      const rules = validateRules({
        ...base,
        offers: [
          { id: 'z-points', kind: 'points', earn: { points: 1, per: 100 }, validDays: 30 },
          { id: 'a-tier', kind: 'spend-tier', windowDays: 30, tiers: [{ name: 'Silver', minSpend: 1_000, percentOff: 5 }] },
        ],
      });
      const records = [rec(3 * DAY, 800), rec(DAY, 400), rec(-DAY, 100_000)];
      const offers = computeOffers(records, rules, NOW);
      assert.deepEqual(offers.map((o) => o.key), ['offer:a-tier', 'offer:z-points']);
      assert.deepEqual(offers[1]?.offer, { $case: 'points', value: { balance: 12, earned: 4 } });
      assert.deepEqual(computeOffers([...records].reverse(), rules, NOW), offers);
    });

    it('gives no offers without records, and refuses records of two receivers', () => {
      const rules: OfferRules = { ...base, offers: [{ id: 'p', kind: 'points', earn: { points: 1, per: 100 }, validDays: 30 }] };
      assert.deepEqual(computeOffers([], rules, NOW), []);
      assert.throws(() => computeOffers([rec(DAY, 1), { ...rec(DAY, 1), receiverId: 'R00-0000000000000002' }], rules, NOW), /one receiver's records/);
      assert.throws(() => computeOffers([{ ...rec(DAY, 1), amount: 1.5 }], rules, NOW), /amount/);
      assert.equal(RECEIVER.length, 20);
    });
  });

  it('formats money without locale: minor units per ISO 4217', () => {
    assert.equal(formatMoney(1_250, 'EUR'), '12.50 EUR');
    assert.equal(formatMoney(5, 'EUR'), '0.05 EUR');
    assert.equal(formatMoney(-1_250, 'EUR'), '-12.50 EUR');
    assert.equal(formatMoney(500, 'JPY'), '500 JPY');
    assert.equal(formatMoney(1_234, 'KWD'), '1.234 KWD');
  });
});
