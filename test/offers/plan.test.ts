import assert from 'node:assert/strict';
import type { Item, ServiceInfo } from '../../sdk/src/types.js';
import { planOfferChanges, pushRequestId, withdrawRequestId } from '../../sdk/src/offers/index.js';
import { NOW, RECEIVER } from './support.js';

const info = (key: string, percentOff: number): ServiceInfo => ({
  key,
  title: `${percentOff}% off`,
  body: '',
  validUntil: new Date(NOW.getTime() + 86_400_000).toISOString(),
  offer: { $case: 'discount', value: { percentOff } },
  data: { a: '1', b: '2' },
});
const held = (itemId: string, content: ServiceInfo): Item => ({
  itemId,
  sequence: 1,
  merchantId: 'M00-0000000000000001',
  audience: 'specific',
  // The hub may return map entries in another order: content equality must not care.
  info: { ...content, data: Object.fromEntries(Object.entries(content.data).reverse()) },
  pushedAt: NOW.toISOString(),
  receiverId: RECEIVER,
});

describe('offers: planning a sync against what the hub holds', () => {
  it('sends nothing for equal content, pushes new and changed offers, withdraws offers no longer earned', () => {
    const plan = planOfferChanges(
      RECEIVER,
      [info('offer:same', 5), info('offer:changed', 10), info('offer:new', 15)],
      [held('I1', info('offer:same', 5)), held('I2', info('offer:changed', 5)), held('I3', info('offer:gone', 5)), held('I4', info('manual-message', 1))],
    );
    assert.equal(plan.unchanged, 1);
    assert.deepEqual(
      plan.changes.map((c) => (c.type === 'push' ? ['push', c.info.key, c.replacesItemId] : ['withdraw', c.key, c.itemId])),
      [
        ['push', 'offer:changed', 'I2'],
        ['push', 'offer:new', undefined],
        ['withdraw', 'offer:gone', 'I3'],
      ],
    );
  });

  it('derives request ids from the receiver, the content and the item replaced', () => {
    const a = info('offer:x', 5);
    assert.equal(pushRequestId(RECEIVER, a, ''), pushRequestId(RECEIVER, info('offer:x', 5), ''));
    assert.notEqual(pushRequestId(RECEIVER, a, ''), pushRequestId(RECEIVER, info('offer:x', 6), ''));
    // A -> B -> A inside the hub's idempotency window must push A again, not replay the first push.
    assert.notEqual(pushRequestId(RECEIVER, a, ''), pushRequestId(RECEIVER, a, 'I2'));
    assert.notEqual(pushRequestId(RECEIVER, a, ''), pushRequestId('R00-0000000000000002', a, ''));
    assert.ok(pushRequestId(RECEIVER, a, 'I2').length <= 128 && withdrawRequestId('I2').length <= 128);
  });
});

describe('offers: syncReceiverOffers', () => {
  it('pushes through the sink with content request ids, skipping offers that ended on the real clock', async () => {
    const { syncReceiverOffers } = await import('../../sdk/src/offers/index.js');
    const real = Date.now();
    const DAY = 86_400_000;
    const pushed: [string, string, string | undefined][] = [];
    const withdrawn: string[] = [];
    const merchant = {
      async pushSpecific(receiverId: string, info: { key?: string }, options?: { requestId?: string }) {
        pushed.push([receiverId, info.key ?? '', options?.requestId]);
        return { itemId: 'I-new', sequence: 1 };
      },
      async withdraw(target: { itemId: string } | { key: string }) {
        withdrawn.push('itemId' in target ? target.itemId : target.key);
        return { itemId: 'I-old', sequence: 2 };
      },
      async *listItems() {
        yield held('I-stale', info('offer:stale', 5));
      },
    };
    const rules = {
      version: 1 as const,
      currency: 'EUR',
      offers: [
        { id: 'points', kind: 'points' as const, earn: { points: 1, per: 100 }, validDays: 10 },
        { id: 'winback', kind: 'win-back' as const, afterDays: 1, voucher: { amountOff: 100 }, validDays: 1 },
      ],
    };
    // Computed for a "now" 3 days ago: the win-back voucher (valid until 1 day ago) has ended on the real clock.
    const now = new Date(real - 3 * DAY);
    const records = [{ receiverId: RECEIVER, time: new Date(real - 5 * DAY), place: 'main', amount: 1_000, currency: 'EUR' }];
    const summary = await syncReceiverOffers(merchant, RECEIVER, records, rules, { now });
    assert.deepEqual(summary, { receivers: 1, pushed: 1, unchanged: 0, withdrawn: 1, ended: 1, failed: 0, errors: [] });
    assert.deepEqual(pushed.map(([r, k]) => [r, k]), [[RECEIVER, 'offer:points']]);
    assert.match(pushed[0]![2]!, /^offer-push-/);
    assert.deepEqual(withdrawn, ['I-stale']);
  });
});
