import assert from 'node:assert/strict';
import { MerchantClient, PushHubError, Status } from '../../sdk/src/merchant.js';
import { DEFAULT_RETRY, backoffMs, retrySpanMs } from '../../sdk/src/retry.js';
import { TestHub, basicAuth } from '../support/hub.js';

describe('sdk: retries do what the docs say', function () {
  this.timeout(60_000);

  it('the default retry waits at least 6 s in total before giving up (it covers a hub restart), at most 2 s between attempts', () => {
    const span = retrySpanMs(DEFAULT_RETRY);
    assert.ok(span.min >= 6000, `at least 6 s of retrying, got ${span.min} ms`);
    assert.deepEqual(span, { min: 6500, max: 13_000 }, 'the figures docs/sdk-merchant.md gives');
    // The schedule itself, with the jitter at both ends: the sums are the documented span.
    const random = Math.random;
    try {
      for (const [draw, expected] of [[0, span.min], [0.999_999_999, span.max]] as const) {
        Math.random = () => draw;
        let total = 0;
        for (let attempt = 1; attempt < DEFAULT_RETRY.maxAttempts; attempt++) {
          const wait = backoffMs(attempt, DEFAULT_RETRY);
          assert.ok(wait <= DEFAULT_RETRY.maxBackoffMs, `backoff ${attempt} is at most ${DEFAULT_RETRY.maxBackoffMs} ms`);
          total += wait;
        }
        assert.ok(Math.abs(total - expected) < 1, `total ${total} vs ${expected}`);
      }
    } finally {
      Math.random = random;
    }
  });

  it('a push made while the hub is down succeeds once the hub is back 3 s later, with the default retry', async () => {
    const hub = await TestHub.start();
    const merchant = new MerchantClient({ address: hub.address, ...(await hub.register('merchant')) });
    try {
      await merchant.pushPublic({ title: 'before' });
      await hub.hub.stop();
      const during = merchant.pushPublic({ title: 'during the restart' });
      await new Promise((resolve) => setTimeout(resolve, 3000));
      await hub.restart(); // the same database, the same port
      const result = await during;
      assert.equal(Number(result.sequence), 2, 'the push made while the hub was down was stored once, after the first');
    } finally {
      merchant.close();
      await hub.stop();
    }
  });

  describe('PUSH_RATE_EXCEEDED says when to retry, and the merchant SDK paces and retries by it', () => {
    let hub: TestHub;
    beforeEach(async () => {
      hub = await TestHub.start({ merchantPushRatePerSec: 20 }); // burst 40
    });
    afterEach(async () => {
      await hub.stop();
    });

    it('the hub sends the delay: a pushhub-retry-after-ms trailer on unary calls, retryAfterMs on PushStream results', async () => {
      const merchant = await hub.register('merchant');
      const client = hub.client();
      // 80 at once against a burst of 40: some are refused, each with the delay in a trailer.
      const trailers: string[] = [];
      await Promise.all(
        Array.from({ length: 80 }, (_, i) =>
          client
            .pushPublic({ info: { title: `t${i}` }, requestId: '' }, { metadata: basicAuth(merchant), onTrailer: (t) => void trailers.push(t.get('pushhub-retry-after-ms') ?? '') })
            .catch(() => undefined),
        ),
      );
      const hinted = trailers.filter((t) => t !== '').map(Number);
      assert.ok(hinted.length > 0 && hinted.every((ms) => ms >= 1 && ms <= 50), `retry-after of at most one token at 20/s (50 ms): ${hinted}`);

      async function* pushes() {
        for (let ref = 1n; ref <= 60n; ref++) yield { entries: [{ ref, push: { $case: 'public' as const, value: { info: { title: 's' }, requestId: '' } } }] };
      }
      const hints: number[] = [];
      for await (const response of client.pushStream(pushes(), { metadata: basicAuth(merchant) })) {
        for (const result of response.results) if (result.reason === 'PUSH_RATE_EXCEEDED') hints.push(result.retryAfterMs);
      }
      assert.ok(hints.length > 0 && hints.every((ms) => ms >= 1 && ms <= 50), `stream hints ${hints}`);
    });

    it('unary pushes over the rate all succeed, paced, within the deadline; past the deadline the error carries retryAfterMs', async () => {
      const credentials = await hub.register('merchant');
      const merchant = new MerchantClient({ address: hub.address, ...credentials });
      try {
        const results = await Promise.all(Array.from({ length: 80 }, (_, i) => merchant.pushPublic({ title: `u${i}` })));
        assert.equal(new Set(results.map((r) => Number(r.sequence))).size, 80, 'every push stored once');
      } finally {
        merchant.close();
      }
      // A deadline too short to wait for a token: the call fails with the hint in the error.
      // (An attempt that misses this short deadline on a busy machine fails DEADLINE_EXCEEDED: skip those.)
      const hasty = new MerchantClient({ address: hub.address, ...credentials, deadlineMs: 25 });
      try {
        let error: unknown;
        for (let i = 0; i < 300 && !(error instanceof PushHubError && error.code !== Status.DEADLINE_EXCEEDED); i++) {
          await hasty.pushPublic({ title: `h${i}` }).catch((e: unknown) => void (error = e));
        }
        assert.ok(error instanceof PushHubError, String(error));
        assert.equal(error.code, Status.RESOURCE_EXHAUSTED);
        assert.equal(error.reason, 'PUSH_RATE_EXCEEDED');
        assert.ok(error.retryAfterMs >= 1, `retryAfterMs ${error.retryAfterMs}`);
      } finally {
        hasty.close();
      }
    });

    it('a PushStream over the rate: every push succeeds, paced, in one stream', async () => {
      const merchant = new MerchantClient({ address: hub.address, ...(await hub.register('merchant')) });
      const stream = merchant.openPushStream();
      try {
        const results = await Promise.all(Array.from({ length: 80 }, (_, i) => stream.pushPublic({ title: `s${i}` })));
        assert.equal(new Set(results.map((r) => Number(r.sequence))).size, 80, 'every push stored once');
        assert.equal(hub.hub.probe.headSequence(), 80);
      } finally {
        await stream.close();
        merchant.close();
      }
    });
  });
});
