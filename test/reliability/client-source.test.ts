import assert from 'node:assert/strict';
import { createSourceResolver, peerAddress, sourceKey } from '../../src/middleware/client-source.js';
import { createScryptQueue } from '../../src/registry/scrypt-queue.js';

const headers = (values: Record<string, string>) => ({ get: (key: string) => values[key] });
const call = (peer: string, values: Record<string, string> = {}) => ({ peer, metadata: headers(values) });

describe('client source: the one key every per-source limit uses', () => {
  it('the peer address without its port, IPv4-mapped IPv6 as IPv4', () => {
    assert.equal(peerAddress('127.0.0.1:5000'), '127.0.0.1');
    assert.equal(peerAddress('ipv4:10.1.2.3:443'), '10.1.2.3');
    assert.equal(peerAddress('::1:54321'), '::1');
    assert.equal(peerAddress('[2001:db8::7]:50051'), '2001:db8::7');
    assert.equal(peerAddress('::ffff:192.0.2.9:1234'), '192.0.2.9');
    assert.equal(peerAddress('ipv6:[::FFFF:192.0.2.9]:1234'), '192.0.2.9');
  });

  it('IPv6 sources are grouped by /64; IPv4 stays one address', () => {
    assert.equal(sourceKey('203.0.113.7'), '203.0.113.7');
    assert.equal(sourceKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:0db8:0001:0002::1'), '2001:db8:1:2::/64', 'leading zeros do not make another source');
    assert.equal(sourceKey('2001:db8:1:2::ffff'), sourceKey('2001:db8:1:2:ffff::1'));
    assert.notEqual(sourceKey('2001:db8:1:2::1'), sourceKey('2001:db8:1:3::1'));
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
    assert.equal(sourceKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(sourceKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
  });

  it('without trusted proxies, forwarded headers change nothing', () => {
    const resolve = createSourceResolver([]);
    const spoofed = resolve(call('127.0.0.2:5000', { 'x-real-ip': '198.51.100.1', 'x-forwarded-for': '198.51.100.2' }));
    assert.deepEqual(spoofed, { key: '127.0.0.2', address: '127.0.0.2', via: 'peer' });
  });

  it('from a trusted proxy: X-Real-IP, else the last X-Forwarded-For hop that is not trusted', () => {
    const resolve = createSourceResolver(['127.0.0.2', '10.0.0.0/8', 'fd00::/8']);
    assert.deepEqual(resolve(call('127.0.0.2:1', { 'x-real-ip': '198.51.100.1' })), { key: '198.51.100.1', address: '198.51.100.1', via: 'x-real-ip' });
    assert.deepEqual(resolve(call('[fd00::5]:1', { 'x-real-ip': '2001:db8:9:9::42' })), { key: '2001:db8:9:9::/64', address: '2001:db8:9:9::42', via: 'x-real-ip' });
    // The client wrote the leftmost hops itself; the last untrusted hop is what a trusted proxy saw.
    const forwarded = resolve(call('10.1.1.1:1', { 'x-forwarded-for': '1.1.1.1, 198.51.100.3, 10.9.9.9' }));
    assert.deepEqual(forwarded, { key: '198.51.100.3', address: '198.51.100.3', via: 'x-forwarded-for' });
    assert.equal(resolve(call('127.0.0.2:1', { 'x-real-ip': 'not-an-ip', 'x-forwarded-for': '198.51.100.4' })).address, '198.51.100.4');
    assert.equal(resolve(call('127.0.0.2:1', { 'x-real-ip': '198.51.100.1, 198.51.100.2' })).via, 'peer', 'two values prove nothing');
    assert.deepEqual(resolve(call('127.0.0.2:1')), { key: '127.0.0.2', address: '127.0.0.2', via: 'peer' }, 'no header: the proxy itself');
    assert.equal(resolve(call('127.0.0.2:1', { 'x-forwarded-for': '10.1.1.1, 10.2.2.2' })).via, 'peer', 'every hop trusted: the peer');
    assert.equal(resolve(call('127.0.0.2:1', { 'x-forwarded-for': '198.51.100.5, garbage' })).via, 'peer', 'a malformed hop stops the walk');
  });

  it('from a peer that is not trusted, headers are ignored even when proxies are configured', () => {
    const resolve = createSourceResolver(['10.0.0.0/8']);
    assert.deepEqual(resolve(call('127.0.0.3:1', { 'x-real-ip': '198.51.100.1' })), { key: '127.0.0.3', address: '127.0.0.3', via: 'peer' });
    assert.equal(resolve(call('::ffff:10.0.0.1:1', { 'x-real-ip': '198.51.100.1' })).via, 'x-real-ip', 'an IPv4-mapped proxy address is trusted as IPv4');
  });
});

describe('scrypt queue fairness', () => {
  /** A queue whose runs finish only when released, one at a time. */
  function heldQueue(options: { concurrency: number; maxQueued: number; maxQueuedPerSource: number }) {
    const queue = createScryptQueue(options);
    const releases: (() => void)[] = [];
    const outcomes: Record<string, string[]> = {};
    const run = (source: string) => {
      const outcome = queue
        .run(source, 'authorization', () => new Promise<void>((resolve) => releases.push(resolve)))
        .then(
          () => 'ran',
          (error: { reason?: string }) => error.reason ?? 'error',
        );
      void outcome.then((o) => (outcomes[source] ??= []).push(o));
      return outcome;
    };
    return { queue, run, releases, outcomes };
  }

  it('a full queue admits a source it has not heard from by refusing the heaviest source\'s newest run', async () => {
    const { queue, run, releases } = heldQueue({ concurrency: 1, maxQueued: 4, maxQueuedPerSource: 4 });
    void run('a'); // running
    const waiting = [run('a'), run('a'), run('a'), run('b')];
    assert.equal(queue.stats.queued, 4);
    const newcomer = run('c');
    assert.equal(await waiting[2], 'AUTH_BUSY', 'the heaviest source (a) lost its newest waiting run');
    assert.equal(queue.stats.evicted, 1);
    // Round robin: b, c and a's first waiting run are served before a's second.
    const served: string[] = [];
    void waiting[0]!.then(() => served.push('a'));
    void waiting[3]!.then(() => served.push('b'));
    void newcomer.then(() => served.push('c'));
    void waiting[1]!.then(() => served.push('a'));
    while (releases.length > 0) {
      releases.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(served.slice(0, 3).sort(), ['a', 'b', 'c']);
    assert.equal(await newcomer, 'ran');
  });

  /** Releases held runs one at a time until nothing runs or waits. */
  async function drain(queue: { stats: { queued: number; running: number } }, releases: (() => void)[]) {
    while (releases.length > 0 || queue.stats.queued > 0) {
      releases.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  it('while the queue has room one source queues past its share: a burst from one address is served', async () => {
    const { queue, run, releases } = heldQueue({ concurrency: 1, maxQueued: 10, maxQueuedPerSource: 2 });
    const burst = Array.from({ length: 8 }, () => run('a')); // 1 running, 7 waiting: past the share of 2
    assert.equal(queue.stats.queued, 7);
    assert.equal(queue.stats.refused, 0);
    await drain(queue, releases);
    assert.deepEqual(await Promise.all(burst), Array(8).fill('ran'));
  });

  it('when the queue is full a source below its share evicts the heaviest source\'s newest run', async () => {
    const { queue, run, releases } = heldQueue({ concurrency: 1, maxQueued: 4, maxQueuedPerSource: 2 });
    void run('a'); // running
    const heavy = [run('a'), run('a'), run('a'), run('a')]; // the queue is full of a, past its share
    const newcomer = run('b');
    assert.equal(await heavy[3], 'AUTH_BUSY', 'a lost its newest waiting run');
    assert.equal(queue.stats.evicted, 1);
    assert.equal(queue.stats.queued, 4);
    await drain(queue, releases);
    assert.equal(await newcomer, 'ran');
    assert.deepEqual(await Promise.all(heavy.slice(0, 3)), ['ran', 'ran', 'ran']);
  });

  it('when the queue is full a source at its share is refused, even with a heavier source waiting', async () => {
    const { queue, run, releases } = heldQueue({ concurrency: 1, maxQueued: 6, maxQueuedPerSource: 2 });
    void run('x'); // running
    const waiting = [run('c'), run('c'), run('c'), run('c'), run('a'), run('a')]; // full: c 4, a 2
    assert.equal(await run('a'), 'AUTH_BUSY', 'a already has its share waiting');
    assert.equal(queue.stats.evicted, 0, 'nothing of c was evicted for a source at its share');
    assert.equal(queue.stats.queued, 6);
    await drain(queue, releases);
    assert.deepEqual(await Promise.all(waiting), Array(6).fill('ran'));
  });

  it('once every waiting source has one run, a newcomer is refused: shares are equal', async () => {
    const { queue, run, releases } = heldQueue({ concurrency: 1, maxQueued: 3, maxQueuedPerSource: 4 });
    void run('x');
    const waiting = [run('a'), run('b'), run('c')];
    assert.equal(await run('d'), 'AUTH_BUSY');
    assert.equal(queue.stats.evicted, 0);
    while (releases.length > 0 || queue.stats.queued > 0) {
      releases.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(await Promise.all(waiting), ['ran', 'ran', 'ran']);
  });
});
