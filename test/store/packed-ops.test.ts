import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ServiceInfo } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import type { WriteOp } from '../../src/core/write-ops.js';
import { packOps, unpackOps } from '../../src/store/sqlite/packed-ops.js';

// The commit worker gets a batch as one packed buffer: it must see exactly the ops sent.
describe('packed write ops (hub -> commit worker)', () => {
  it('every op kind comes back equal, Dates, bigints, maps and sub-millisecond nanos included', () => {
    const text = fc.string({ unit: 'grapheme' });
    const i64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    const info = fc
      .record({
        key: text,
        title: text,
        body: text,
        validUntil: fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }),
        offer: fc.oneof(
          fc.constant(undefined),
          fc.record({ $case: fc.constant('discount' as const), value: fc.record({ percentOff: fc.integer({ min: 0, max: 100 }) }) }),
          fc.record({ $case: fc.constant('points' as const), value: fc.record({ balance: i64, earned: i64 }) }),
          fc.record({ $case: fc.constant('voucher' as const), value: fc.record({ code: text, amountOff: i64, currency: text, minSpend: i64 }) }),
        ),
        data: fc.dictionary(text, text),
      })
      .map((value) => ServiceInfo.fromPartial(value));
    const push = fc.record(
      { kind: fc.constant('push' as const), merchantId: text, receiverId: text, info, requestId: text, requestDigest: text, validUntilNanos: fc.integer({ min: 0, max: 999_999_999 }) },
      { requiredKeys: ['kind', 'merchantId', 'receiverId', 'info', 'requestId', 'requestDigest'] },
    );
    const withdraw = fc.record({ kind: fc.constant('withdraw' as const), merchantId: text, itemId: text, key: text, receiverId: text, requestId: text, requestDigest: text });
    const account = fc.record({ kind: fc.constantFrom('block' as const, 'unblock' as const, 'delete' as const), accountId: text, merchantId: text, requestId: fc.constant('' as const), requestDigest: fc.constant('' as const) });
    fc.assert(
      // Plain objects, as the hub builds them (fast-check's records have no prototype).
      fc.property(fc.array(fc.oneof(push, withdraw, account).map((op) => ({ ...op })), { maxLength: 20 }), (ops) => {
        assert.deepEqual(unpackOps(packOps(ops as WriteOp[])), ops);
      }),
      { numRuns: 300 },
    );
  });
});
