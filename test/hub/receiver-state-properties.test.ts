import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type Client, createChannel, createClient } from 'nice-grpc';
import { PushHubServiceDefinition, Role } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { type RunningHub, startHub } from '../../src/hub.js';
import { silentLogger } from '../../src/logger.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Credentials, basicAuth, testConfig } from '../support/hub.js';
import { ModelReceiver, eventsOf } from '../support/model-receiver.js';

type Op =
  | { kind: 'push'; audience: 'specific' | 'public'; key: string; lifetimeMs: number }
  | { kind: 'withdrawById'; pick: number }
  | { kind: 'withdrawByKey'; audience: 'specific' | 'public'; key: string }
  | { kind: 'advance'; ms: number }
  | { kind: 'purge' }
  | { kind: 'resume' }
  | { kind: 'block' }
  | { kind: 'unblock' };

const keyArb = fc.constantFrom('', '', 'points', 'hours');
const audienceArb = fc.constantFrom('specific' as const, 'public' as const);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('push' as const), audience: audienceArb, key: keyArb, lifetimeMs: fc.integer({ min: 1, max: 6 }).map((n) => n * 1000) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('withdrawById' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('withdrawByKey' as const), audience: audienceArb, key: fc.constantFrom('points', 'hours') }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 4 }).map((n) => n * 1000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('purge' as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('resume' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('block' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unblock' as const) }) },
);

/** What the hub holds live for the run's receiver from the run's merchant. */
interface ModelItem {
  itemId: string;
  audience: 'specific' | 'public';
  key: string;
  validUntilMs: number;
}

/**
 * Property: for every interleaving of push (keyed or not, specific or public, various
 * lifetimes), replace, withdraw by id and by key, expiry (an injected clock), purge, resume,
 * and the receiver blocking and unblocking the merchant, a receiver resumed from every cursor
 * it reached, and from 0, holds exactly the hub's live items for it: none of the merchant's
 * while it is blocked (its specific items go for good, its specific pushes are refused), its
 * live public items again after the unblock.
 */
describe('receiver state: property over random operation sequences', () => {
  let hub: RunningHub;
  let dir: string;
  let client: Client<typeof PushHubServiceDefinition>;
  let clock = Date.now();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pushhub-prop-'));
    hub = await startHub(testConfig(dir), { logger: silentLogger, now: () => clock });
    client = createClient(PushHubServiceDefinition, createChannel(hub.address));
  });
  after(async () => {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const register = (role: Role): Promise<Credentials> => client.register({ role, regionCode: '', displayName: 'prop' });

  /** Reads the receiver's stream from the state's cursor up to caught_up. */
  const resume = async (receiver: Credentials, state: ModelReceiver): Promise<void> => {
    const abort = new AbortController();
    try {
      for await (const event of eventsOf(client.subscribe({ afterSequence: state.cursor }, { metadata: basicAuth(receiver), signal: abort.signal }))) {
        state.apply(event);
        if (event.event?.$case === 'caughtUp') break;
      }
    } finally {
      abort.abort();
    }
  };

  it('a resumed receiver always holds exactly the hub\'s live items for it', async function () {
    this.timeout(120_000);
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
        const merchant = await register(Role.ROLE_MERCHANT);
        const receiver = await register(Role.ROLE_RECEIVER);
        const asMerchant = { metadata: basicAuth(merchant) };
        const live = new Map<string, ModelItem>();
        const liveIds = () => [...live.values()].filter((i) => i.validUntilMs > clock).map((i) => i.itemId).sort();
        const state = new ModelReceiver();
        const reached: ModelReceiver[] = [];
        let blocked = false;
        const asReceiver = { metadata: basicAuth(receiver) };
        /** What the receiver should hold: nothing of the merchant while it is blocked. */
        const visibleIds = () => (blocked ? [] : liveIds());

        for (const op of ops) {
          if (op.kind === 'push') {
            const info = { title: `t${op.key}`, key: op.key, validUntil: new Date(clock + op.lifetimeMs) };
            if (op.audience === 'specific' && blocked) {
              const refused = await client.pushSpecific({ receiverId: receiver.id, info, requestId: '' }, asMerchant).then(() => false, () => true);
              assert.ok(refused, 'a blocked merchant\'s specific push is refused');
              continue;
            }
            const ack =
              op.audience === 'specific'
                ? await client.pushSpecific({ receiverId: receiver.id, info, requestId: '' }, asMerchant)
                : await client.pushPublic({ info, requestId: '' }, asMerchant);
            if (op.key !== '') {
              for (const [id, item] of live) if (item.key === op.key && item.audience === op.audience) live.delete(id);
            }
            live.set(ack.itemId, { itemId: ack.itemId, audience: op.audience, key: op.key, validUntilMs: clock + op.lifetimeMs });
          } else if (op.kind === 'withdrawById') {
            const candidates = [...live.values()];
            if (candidates.length === 0) continue;
            const target = candidates[op.pick % candidates.length]!;
            const withdrawn = await client.withdraw({ itemId: target.itemId, requestId: '' }, asMerchant).then(() => true, () => false);
            assert.equal(withdrawn, target.validUntilMs > clock, 'withdraw succeeds exactly for a live item');
            live.delete(target.itemId);
          } else if (op.kind === 'withdrawByKey') {
            const target = [...live.values()].find((i) => i.key === op.key && i.audience === op.audience && i.validUntilMs > clock);
            const receiverId = op.audience === 'specific' ? receiver.id : '';
            const withdrawn = await client.withdraw({ key: op.key, receiverId, requestId: '' }, asMerchant).then(() => true, () => false);
            assert.equal(withdrawn, target !== undefined, `withdraw by key ${op.key}`);
            if (target) live.delete(target.itemId);
          } else if (op.kind === 'block') {
            await client.blockMerchant({ merchantId: merchant.id }, asReceiver);
            // The specific items are deleted for good; the public ones stay the merchant's.
            for (const [id, item] of live) if (item.audience === 'specific') live.delete(id);
            blocked = true;
          } else if (op.kind === 'unblock') {
            await client.unblockMerchant({ merchantId: merchant.id }, asReceiver);
            blocked = false;
          } else if (op.kind === 'advance') {
            clock += op.ms;
          } else if (op.kind === 'purge') {
            await hub.probe.purge(clock, clock - hub.context.config.idempotencyWindowMs);
          } else {
            reached.push(state.clone());
            await resume(receiver, state);
            assert.deepEqual(state.liveIds(clock, merchant.id), visibleIds(), `after resume at ${state.cursor}`);
          }
        }

        const listed = (await client.listItems({ pageSize: 1000 }, asMerchant)).items.map((i) => i.itemId).sort();
        assert.deepEqual(listed, liveIds(), 'ListItems agrees with the model');
        const expected = visibleIds();
        for (const start of [new ModelReceiver(), state, ...reached]) {
          const copy = start.clone();
          await resume(receiver, copy);
          assert.deepEqual(copy.liveIds(clock, merchant.id), expected, `resumed from cursor ${start.cursor}`);
        }
      }),
      { numRuns: 40 },
    );
  });
});
