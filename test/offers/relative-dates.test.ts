import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type ConsumptionRecord, computeOffers, createDayShift, shiftRecordsToDay, toConsumptionRecord, validateRules } from '../../sdk/src/offers/index.js';

const BERLIN = 'Europe/Berlin';
/** The time the example records were written for (summer time in Berlin). */
const FILE_NOW = new Date('2025-06-01T12:00:00Z');

/** Local wall-clock time in Berlin, e.g. "2026-01-13 07:55". */
const berlin = (time: Date) => time.toLocaleString('sv-SE', { timeZone: BERLIN }).slice(0, 16);

/** The example records (sdk/examples/records.csv), parsed. */
function exampleRecords(): ConsumptionRecord[] {
  const [header, ...lines] = readFileSync('sdk/examples/records.csv', 'utf8').trimEnd().split('\n');
  const names = header!.split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    const row = Object.fromEntries(names.map((name, i) => [name, cells[i]]));
    return toConsumptionRecord({
      receiverId: row.receiver_id,
      time: row.time,
      place: row.place,
      amount: Number(row.amount),
      currency: row.currency,
      ...(row.category ? { category: row.category } : {}),
      ...(row.voucher_code ? { voucherCode: row.voucher_code } : {}),
    });
  });
}

describe('offers: records moved to today by local calendar days', () => {
  for (const [season, today] of [
    ['winter', new Date('2026-01-15T12:00:00Z')],
    ['summer', new Date('2026-07-15T12:00:00Z')],
  ] as const) {
    it(`keeps each record's local time of day when today is in ${season}`, () => {
      const shift = createDayShift(FILE_NOW, today, BERLIN);
      // 2025-05-30 07:55 CEST, two local days before the file's "now".
      const moved = shift(new Date('2025-05-30T07:55:00+02:00'));
      assert.equal(berlin(moved), season === 'winter' ? '2026-01-13 07:55' : '2026-07-13 07:55');
      assert.equal(berlin(shift(FILE_NOW)).slice(0, 10), berlin(today).slice(0, 10));
    });

    it(`gives receiver 3 the coffee multiplier (earned 7) when today is in ${season}`, () => {
      const rules = validateRules(JSON.parse(readFileSync('sdk/examples/rules.json', 'utf8')));
      const records = shiftRecordsToDay(
        exampleRecords().filter((r) => r.receiverId === 'R00-0000000000000003'),
        FILE_NOW,
        today,
        rules.timeZone,
      );
      const points = computeOffers(records, rules, today).find((offer) => offer.key === 'offer:points');
      assert.ok(points, 'a points offer');
      assert.deepEqual(points.offer, { $case: 'points', value: { balance: 14, earned: 7 } });
    });
  }

  it('is the identity for the same day, and moves whole days across both daylight-saving changes', () => {
    const same = createDayShift(FILE_NOW, new Date('2025-06-01T21:00:00Z'), BERLIN);
    const t = new Date('2025-05-17T09:10:00+02:00');
    assert.equal(same(t).getTime(), t.getTime());
    // March 30 2025 and October 26 2025: 23 and 25 hour days in Berlin.
    const spring = createDayShift(new Date('2025-03-29T12:00:00Z'), new Date('2025-03-31T12:00:00Z'), BERLIN);
    assert.equal(berlin(spring(new Date('2025-03-29T08:15:00+01:00'))), '2025-03-31 08:15');
    const autumn = createDayShift(new Date('2025-10-25T12:00:00Z'), new Date('2025-10-27T12:00:00Z'), BERLIN);
    assert.equal(berlin(autumn(new Date('2025-10-25T08:15:00+02:00'))), '2025-10-27 08:15');
    // A time that does not exist on the target day (02:30 on March 30) moves past the gap.
    const intoGap = createDayShift(new Date('2025-03-29T12:00:00Z'), new Date('2025-03-30T12:00:00Z'), BERLIN);
    assert.equal(berlin(intoGap(new Date('2025-03-29T02:30:00+01:00'))), '2025-03-30 03:30');
    // UTC needs no lookup and shifts by exact days.
    const utc = createDayShift(new Date('2025-06-01T00:00:00Z'), new Date('2025-06-04T23:59:00Z'), 'UTC');
    assert.equal(utc(new Date('2025-05-31T07:00:00Z')).toISOString(), '2025-06-03T07:00:00.000Z');
  });
});
