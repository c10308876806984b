import assert from 'node:assert/strict';
import type { DeepPartial, PushStreamRequest, PushStreamResult } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { BATCH_MAX_EVENTS } from '../../src/core/frames.js';
import { type Credentials, StreamReader, TestHub, basicAuth, describeOnBackends } from '../support/hub.js';

describeOnBackends('batches on the wire', () => {
  let t: TestHub;
  let merchant: Credentials;

  before(async () => {
    t = await TestHub.start();
    merchant = await t.register('merchant');
  });
  after(() => t.stop());

  it('one PushStream request carries many pushes; every push gets its own result', async () => {
    const receiver = await t.register('receiver');
    const request: DeepPartial<PushStreamRequest> = {
      entries: [
        { ref: 7n, push: { $case: 'specific', value: { receiverId: receiver.id, info: { title: 'a' }, requestId: '' } } },
        { ref: 8n, push: { $case: 'specific', value: { receiverId: 'R00-0000000000000000', info: { title: 'b' }, requestId: '' } } },
        { ref: 9n, push: { $case: 'public', value: { info: { title: 'c' }, requestId: '' } } },
      ],
    };
    async function* once() {
      yield request;
    }
    const results: PushStreamResult[] = [];
    for await (const response of t.client().pushStream(once(), { metadata: basicAuth(merchant) })) results.push(...response.results);
    assert.deepEqual(
      results.map((r) => [r.ref, r.reason]).sort((a, b) => Number((a[0] as bigint) - (b[0] as bigint))),
      [
        [7n, ''],
        [8n, 'RECEIVER_NOT_FOUND'],
        [9n, ''],
      ],
    );
    const committed = results.filter((r) => r.code === 0);
    assert.ok(committed[0]!.sequence > 0n && committed[1]!.sequence > committed[0]!.sequence, 'committed in the order read');
  });

  it('a backlog arrives in batches of at most the cap, every event once and in order, CaughtUp last', async () => {
    const receiver = await t.register('receiver');
    const count = BATCH_MAX_EVENTS + 44;
    async function* pushes() {
      const entries = [];
      for (let i = 0; i < count; i++) {
        entries.push({ ref: BigInt(i), push: { $case: 'specific' as const, value: { receiverId: receiver.id, info: { title: `n${i}` }, requestId: '' } } });
      }
      yield { entries };
    }
    for await (const _ of t.client().pushStream(pushes(), { metadata: basicAuth(merchant) }));
    const reader = new StreamReader(t.client(), receiver);
    try {
      await reader.waitFor((r) => r.caughtUp(), 'caught up');
      const sequences = reader.sequences();
      assert.equal(sequences.length, count + 1, 'its pushes and the earlier public one');
      assert.deepEqual([...sequences].sort((a, b) => Number(a - b)), sequences, 'in sequence order');
      assert.ok(reader.batchSizes.every((n) => n <= BATCH_MAX_EVENTS), `batch sizes ${reader.batchSizes.join(',')}`);
      assert.ok(reader.batchSizes.length < count / 10, `batched: ${reader.batchSizes.length} responses for ${count + 1} events`);
      assert.equal(reader.events.at(-1)?.event?.$case, 'caughtUp');
    } finally {
      await reader.close();
    }
  });
});
