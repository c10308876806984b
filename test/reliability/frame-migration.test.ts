import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { SubscribeEvent, SubscribeResponse } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { MIGRATIONS, migrate } from '../../src/store/sqlite/migrations.js';

describe('migration 3: stored frames become one-event SubscribeResponses', () => {
  it('re-frames changes of every size (1-, 2- and 3-byte length varints) so they decode as before', () => {
    const db = new Database(':memory:');
    migrate(db, MIGRATIONS.slice(0, 2));
    const insert = db.prepare(
      `INSERT INTO changes (seq, kind, item_id, merchant_id, receiver_id, item_key, frame, pushed_at_ms, valid_until_ms)
       VALUES (?, 1, ?, 'M00-0000000000000001', '', '', ?, 0, 0)`,
    );
    const bodies = ['x', 'y'.repeat(300), 'z'.repeat(20_000)];
    const events = bodies.map((body, i) =>
      SubscribeEvent.fromPartial({ event: { $case: 'item', value: { itemId: `I${i}`, sequence: BigInt(i + 1), info: { title: 't', body } } } }),
    );
    // Before this migration a frame was the event's own encoding (the oneof of the old response).
    events.forEach((event, i) => insert.run(i + 1, `I${i}`, Buffer.from(SubscribeEvent.encode(event).finish())));

    migrate(db);
    const frames = db.prepare('SELECT frame FROM changes ORDER BY seq').pluck().all() as Buffer[];
    assert.deepEqual(frames.map((frame) => SubscribeResponse.decode(frame).events), events.map((event) => [event]));
    // And a batch is still their concatenation.
    assert.deepEqual(SubscribeResponse.decode(Buffer.concat(frames)).events, events);
    db.close();
  });
});
