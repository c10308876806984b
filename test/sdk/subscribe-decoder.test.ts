import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Audience, SubscribeEvent, SubscribeResponse } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { type ReceivedEvent, decodeSubscribeResponse } from '../../sdk/src/subscribe-decoder.js';
import { itemFromWire, withdrawalFromWire } from '../../sdk/src/values.js';

/** What the generated decoder and the SDK's conversions make of the same bytes (the reference). */
function reference(bytes: Uint8Array): ReceivedEvent[] | string {
  try {
    return SubscribeResponse.decode(bytes).events.map(({ event }) => {
      if (event?.$case === 'item') {
        const item = itemFromWire(event.value);
        return { $case: 'item', sequence: item.sequence, item };
      }
      if (event?.$case === 'withdrawal') {
        const withdrawal = withdrawalFromWire(event.value);
        return { $case: 'withdrawal', sequence: withdrawal.sequence, withdrawal };
      }
      return { $case: 'other', event };
    });
  } catch (error) {
    return `${(error as Error).constructor.name}: ${(error as Error).message}`;
  }
}

function decoded(bytes: Uint8Array): ReceivedEvent[] | string {
  try {
    return decodeSubscribeResponse(Buffer.from(bytes));
  } catch (error) {
    return `${(error as Error).constructor.name}: ${(error as Error).message}`;
  }
}

describe('SDK Subscribe decoder', () => {
  const text = fc.string({ unit: 'grapheme' });
  const u64 = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 53n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
  const i64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
  const date = fc.option(fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true }), { nil: undefined });
  const offer = fc.oneof(
    fc.constant(undefined),
    fc.record({ $case: fc.constant('discount' as const), value: fc.record({ percentOff: fc.integer({ min: 0, max: 100 }) }) }),
    fc.record({ $case: fc.constant('points' as const), value: fc.record({ balance: i64, earned: i64 }) }),
    fc.record({ $case: fc.constant('voucher' as const), value: fc.record({ code: text, amountOff: i64, currency: text, minSpend: i64 }) }),
  );
  const info = fc.option(fc.record({ key: text, title: text, body: text, validUntil: date, offer, data: fc.dictionary(text, text) }), { nil: undefined });
  const audience = fc.constantFrom(Audience.AUDIENCE_SPECIFIC, Audience.AUDIENCE_PUBLIC, Audience.AUDIENCE_UNSPECIFIED);
  const event = fc.oneof(
    fc.record({ $case: fc.constant('item' as const), value: fc.record({ itemId: text, sequence: u64, merchantId: text, audience, info, pushedAt: date, receiverId: text }) }),
    fc.record({ $case: fc.constant('withdrawal' as const), value: fc.record({ itemId: text, sequence: u64, merchantId: text, audience, key: text, replaced: fc.boolean() }) }),
    fc.record({ $case: fc.constant('caughtUp' as const), value: fc.record({ sequence: u64 }) }),
    fc.record({ $case: fc.constant('heartbeat' as const), value: fc.record({ sequence: u64, sentAt: date, intervalMs: fc.nat() }) }),
  );

  it('gives the SDK values the generated decoder gives, for every event shape', () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 4 }), (events) => {
        const bytes = SubscribeResponse.encode(SubscribeResponse.fromPartial({ events: events.map((e) => ({ event: e })) as never })).finish();
        assert.deepEqual(decoded(bytes), reference(bytes));
      }),
      { numRuns: 1000 },
    );
  });

  it('reads arbitrary bytes as the generated decoder does (same values or same error)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        assert.deepEqual(decoded(bytes), reference(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it('skips fields it does not know, like the generated decoder', () => {
    const item = SubscribeEvent.encode({ event: { $case: 'item', value: { itemId: 'I1', sequence: 7n, merchantId: 'M', audience: Audience.AUDIENCE_PUBLIC, receiverId: '', info: undefined, pushedAt: new Date(0) } } }).finish();
    const unknown = Buffer.from([0x78, 0x05, 0xf2, 0x01, 0x02, 0x61, 0x62]); // field 15 varint, field 30 bytes
    const bytes = Buffer.concat([Buffer.from([0x0a, item.length + unknown.length]), Buffer.from(item), unknown]);
    assert.deepEqual(decoded(bytes), reference(bytes));
  });
});
