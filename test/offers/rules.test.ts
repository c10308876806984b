import assert from 'node:assert/strict';
import { RulesValidationError, validateRules } from '../../sdk/src/offers/index.js';

const issuesOf = (input: unknown) => {
  try {
    validateRules(input);
  } catch (error) {
    assert.ok(error instanceof RulesValidationError);
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('expected a RulesValidationError');
};

describe('offers: rules validation', () => {
  it('accepts a complete document and fills in defaults', () => {
    const rules = validateRules({
      version: 1,
      currency: 'EUR',
      offers: [
        { id: 'tier', kind: 'spend-tier', windowDays: 90, tiers: [{ name: 'Silver', minSpend: 100, percentOff: 5 }] },
        { id: 'points', kind: 'points', earn: { points: 1, per: 100 }, multipliers: [{ factor: 1.5, from: '22:00', to: '02:00' }], validDays: 365 },
        { id: 'visits', kind: 'visit-milestone', every: 10, voucher: { amountOff: 500 }, validDays: 30 },
        { id: 'winback', kind: 'win-back', afterDays: 60, voucher: { amountOff: 500, minSpend: 1000 }, validDays: 14, title: 'Come back: {amountOff} off' },
      ],
    });
    assert.equal(rules.timeZone, 'UTC');
    assert.equal(rules.voucherCodePrefix, '');
    assert.ok(Object.isFrozen(rules) && Object.isFrozen(rules.offers[0]));
  });

  it('reports every problem at once, each with its path', () => {
    const issues = issuesOf({
      version: 2,
      currency: 'euro',
      timeZone: 'Mars/Olympus',
      offers: [
        {
          id: 'tier',
          kind: 'spend-tier',
          windowDays: 0,
          tiers: [
            { name: 'Gold', minSpend: 500, percentOff: 10 },
            { name: 'Silver', minSpend: 100, percentOff: 5 },
            { name: 'Max', minSpend: 1000, percentOff: 101 },
          ],
        },
        { id: 'tier', kind: 'points', earn: { points: 1 }, validDays: 30, multipliers: [{ factor: 1.234 }], title: 'You have {points}' },
        { id: 'v', kind: 'visit-milestone', milestones: [5, 5], every: 3, voucher: { amountOff: 0 }, validDays: 30 },
        { id: 'w', kind: 'win-back', afterDays: 30, voucher: { amountOff: 100 }, validDays: 14, colour: 'red' },
        { id: 'x', kind: 'lottery' },
      ],
    });
    assert.deepEqual(issues, [
      'version: must be 1',
      'currency: must be at most 3 characters',
      'timeZone: unknown time zone "Mars/Olympus" (use an IANA name like "Europe/Berlin")',
      'offers[0].windowDays: must be an integer from 1 to 3650',
      "offers[0].tiers[1].minSpend: must be greater than the previous tier's (500)",
      "offers[0].tiers[1].percentOff: must not be lower than the previous tier's (10)",
      'offers[0].tiers[2].percentOff: must be an integer from 0 to 100',
      'offers[1].id: duplicate id "tier" (also offers[0])',
      'offers[1].title: unknown placeholder {points} (this kind has: {balance}, {earned})',
      'offers[1].earn.per: must be an integer from 1 to 1000000000000',
      'offers[1].multipliers[0].factor: must be a number greater than 0 and at most 100, with at most 2 decimals',
      'offers[1].multipliers[0]: needs at least one condition: places, categories, days or from/to',
      'offers[2].voucher.amountOff: must be an integer from 1 to 1000000000000',
      'offers[2]: needs exactly one of "milestones" and "every"',
      'offers[3].colour: unknown field (expected one of: id, kind, title, body, afterDays, voucher, validDays)',
      'offers[4].kind: must be one of: spend-tier, points, visit-milestone, win-back',
    ]);
  });

  it('names the problem in the error message', () => {
    assert.throws(() => validateRules({ version: 1, currency: 'EUR', offers: [{ id: 'p', kind: 'points', earn: { points: 1, per: 100 }, validDays: 30, multipliers: [{ factor: 2, from: '7:00', to: '09:00' }] }] }), {
      name: 'RulesValidationError',
      message: /offers\[0\]\.multipliers\[0\]\.from: must be a time of day "HH:MM" \(24 h\)/,
    });
    assert.throws(() => validateRules(null), /\(root\): must be an object/);
    assert.throws(() => validateRules({ version: 1, currency: 'EUR', offers: [{ id: 'v', kind: 'visit-milestone', milestones: [5, 3], voucher: { amountOff: 1 }, validDays: 1 }] }), /offers\[0\]\.milestones\[1\]: must be greater than the previous milestone \(5\)/);
  });
});
