import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Status } from 'nice-grpc';
import { type RunningHub, startHub } from '../../src/hub.js';
import { createLogger } from '../../src/logger.js';
import { TestHub, testConfig } from '../support/hub.js';
import { type CallOutcome, SourceClient, statusName, unknownId } from './support.js';
import { holdIncompleteCalls } from '../bench/attacks/incomplete-calls.js';
import { floodLogins } from '../bench/attacks/login-flood.js';

// Attackers and clients on different loopback source addresses (all of 127.0.0.0/8 is
// loopback), as they would be on the internet. Each test asserts counts, never timings.

const codes = (outcomes: CallOutcome[]) => outcomes.map((o) => o.reason ?? statusName(o.code));
const count = (outcomes: CallOutcome[], reason: string) => outcomes.filter((o) => (o.reason ?? statusName(o.code)) === reason).length;

/** A raw TCP connection from `localAddress`; resolves once it is accepted (or closed). */
function connectFrom(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(socket));
    socket.on('error', () => resolve(socket));
  });
}

describe('per-source limits', function () {
  this.timeout(60_000);
  let hub: TestHub;
  const sources: SourceClient[] = [];
  /** A client from `localAddress` to the hub under test (`address` when it is not a TestHub). */
  let address: string | undefined;
  const from = (localAddress: string) => {
    const client = new SourceClient(address ?? hub.address, localAddress);
    sources.push(client);
    return client;
  };
  afterEach(async () => {
    for (const source of sources.splice(0)) source.close();
    if (address === undefined) await hub.stop();
    address = undefined;
  });

  describe('the scrypt queue under a login flood from 16 addresses', () => {
    it('first logins from another address get in, and the flooding addresses end up throttled', async () => {
      // A real cost, so the flood is real work that keeps the queue full; attackers are
      // throttled after 30 refusals or failures each.
      hub = await TestHub.start({ scryptLogN: 8, maxFailedLoginsPerSource: 30 });
      const owners = await Promise.all(Array.from({ length: 5 }, () => hub.register('merchant')));
      const attackers = Array.from({ length: 16 }, (_, i) => from(`127.0.0.${20 + i}`));
      // 16 addresses x 6 in flight overfill the queue (64), each address within its share (8).
      const flood = floodLogins(attackers, { concurrencyPerSource: 6, maxCallsPerSource: 400 });
      try {
        // Wait until the queue is full before the first legitimate login.
        for (let i = 0; i < 500 && hub.hub.probe.scryptQueue.queued < hub.config.scryptQueueLimit; i++) await new Promise((r) => setTimeout(r, 10));
        const legit = from('127.0.0.3');
        const logins: CallOutcome[] = [];
        for (const owner of owners) logins.push(await legit.listItems(owner));
        assert.deepEqual(codes(logins), Array(owners.length).fill('OK'), 'every first login got in during the flood');
      } finally {
        flood.stop();
      }
      const outcomes = await flood.done;
      assert.ok(count(outcomes, 'AUTH_BUSY') > 0, codes(outcomes).slice(0, 20).join(' '));
      assert.ok(count(outcomes, 'LOGIN_THROTTLED') > 0, 'AUTH_BUSY counted against the flooding addresses until they were throttled');
      assert.ok(hub.hub.probe.scryptQueue.evicted > 0, 'the newcomer was admitted by evicting a heavy source');
    });

    it('AUTH_BUSY counts against the source that caused it, as a failed login of that source only', async () => {
      // A small queue, so the burst fills it: a source past its share is refused only then.
      hub = await TestHub.start({ scryptLogN: 10, scryptConcurrency: 1, scryptQueueLimit: 4, scryptQueuePerSource: 2, maxFailedLoginsPerSource: 20 });
      const owner = await hub.register('merchant');
      const noisy = from('127.0.0.2');
      const burst = await Promise.all(Array.from({ length: 40 }, () => noisy.listItems({ id: unknownId('M'), password: 'x' })));
      assert.ok(count(burst, 'AUTH_BUSY') >= 20, codes(burst).join(' '));
      const after = await noisy.listItems({ id: unknownId('M'), password: 'x' });
      assert.equal(after.reason, 'LOGIN_THROTTLED', 'refusals counted: the address is throttled without any more scrypt work');
      assert.equal((await noisy.listItems(owner)).reason, 'LOGIN_THROTTLED', 'even a right password from that address waits out the window');
      assert.equal((await from('127.0.0.3').listItems(owner)).code, Status.OK, 'the owner from another address is unaffected');
    });

    it('a queued login whose address failed out while it waited is refused LOGIN_THROTTLED without scrypt work', async () => {
      // One scrypt run at a time and room in the queue for the whole burst. The next run starts
      // as one's scrypt ends, before its failure is recorded (a re-read follows), so three
      // failures stop the burst after at most four runs; all twelve ran before the recheck.
      hub = await TestHub.start({ scryptLogN: 13, scryptConcurrency: 1, scryptQueueLimit: 64, scryptQueuePerSource: 2, maxFailedLoginsPerSource: 3 });
      const owner = await hub.register('merchant');
      const before = hub.hub.probe.authStats.scryptVerifications;
      const noisy = from('127.0.0.2');
      const burst = await Promise.all(Array.from({ length: 12 }, () => noisy.listItems({ id: unknownId('M'), password: 'x' })));
      const ran = count(burst, 'UNAUTHENTICATED');
      assert.ok(ran >= 3 && ran <= 4, codes(burst).join(' '));
      assert.equal(count(burst, 'LOGIN_THROTTLED'), 12 - ran, codes(burst).join(' '));
      assert.equal(hub.hub.probe.authStats.scryptVerifications - before, ran, 'only the runs that started before the address failed out cost scrypt');
      assert.equal(hub.hub.probe.scryptQueue.refused, 0, 'the burst fit in the queue: no AUTH_BUSY');
      assert.equal((await from('127.0.0.3').listItems(owner)).code, Status.OK, 'the owner from another address is unaffected');
    });
  });

  describe('connections per source', () => {
    it('past maxConnectionsPerSource one address is refused at accept; another address still connects', async () => {
      hub = await TestHub.start({ maxConnectionsPerSource: 3 });
      const sockets: net.Socket[] = [];
      try {
        for (let i = 0; i < 3; i++) sockets.push(await connectFrom(hub.hub.port, '127.0.0.2'));
        const over = await connectFrom(hub.hub.port, '127.0.0.2');
        sockets.push(over);
        await new Promise<void>((resolve) => (over.destroyed ? resolve() : over.once('close', () => resolve())));
        assert.equal(over.bytesRead, 0, 'the fourth connection from 127.0.0.2 got nothing');
        assert.ok(sockets.slice(0, 3).every((s) => !s.destroyed), 'the first three stay open');
        assert.equal((await from('127.0.0.3').register('receiver')).code, Status.OK, 'another address connects and is served');
      } finally {
        for (const socket of sockets) socket.destroy();
      }
    });

    it('a trusted proxy is exempt: it carries many clients', async () => {
      hub = await TestHub.start({ maxConnectionsPerSource: 2, trustedProxies: ['127.0.0.2'] });
      const proxied = Array.from({ length: 4 }, () => from('127.0.0.2'));
      const outcomes = await Promise.all(proxied.map((client, i) => client.unary('Register', new Uint8Array(0), { 'x-real-ip': `198.51.100.${i}` })));
      assert.ok(outcomes.every((o) => o.code !== Status.UNAVAILABLE), codes(outcomes).join(' '));
    });
  });

  describe('calls whose request never completes', () => {
    it('end with DEADLINE_EXCEEDED (REQUEST_TIMEOUT) and free their streams; another address is served at once', async () => {
      hub = await TestHub.start({ requestTimeoutMs: 500, maxConnectionsPerSource: 4 });
      const attack = holdIncompleteCalls(hub.address, { localAddress: '127.0.0.2', connections: 6, callsPerConnection: 100 });
      try {
        await attack.opened;
        assert.equal(attack.stats.refusedConnections, 2, 'two of six connections over the per-source cap');
        const other = await from('127.0.0.3').register('receiver');
        assert.equal(other.code, Status.OK, 'a client from another address connects and is served while the calls are held');
        const ended = await attack.ended;
        assert.equal(ended.length, 4 * 100, 'every held call ended');
        assert.deepEqual([...new Set(ended.map((e) => `${statusName(e.code)} ${e.reason}`))], ['DEADLINE_EXCEEDED REQUEST_TIMEOUT']);
        assert.match(ended[0]!.details, /^request: the request message did not arrive within 500 ms/);
        // The client never ends its side: only the hub's reset closes these streams.
        for (let i = 0; i < 500 && attack.stats.streamsOpen > 0; i++) await new Promise((r) => setTimeout(r, 10));
        assert.equal(attack.stats.streamsOpen, 0, 'the hub closed every stream (no half-open stream keeps the connection)');
      } finally {
        attack.stop();
      }
    });

    it('a complete request is not touched by the timeout', async () => {
      hub = await TestHub.start({ requestTimeoutMs: 200 });
      const client = from('127.0.0.2');
      const outcomes: CallOutcome[] = [];
      for (let i = 0; i < 5; i++) {
        outcomes.push(await client.register('receiver'));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.deepEqual(codes(outcomes), Array(5).fill('OK'), 'a connection reused past the timeout still works');
    });
  });

  describe('anonymous calls', () => {
    it('anonymous unary calls count with the anonymous streams of their source', async () => {
      hub = await TestHub.start({ maxAnonymousStreamsPerSource: 1 });
      const session = http2.connect(`http://${hub.address}`, { localAddress: '127.0.0.2' } as http2.SecureClientSessionOptions);
      session.on('error', () => {});
      try {
        const watch = session.request({ ':method': 'POST', ':path': '/grpc.health.v1.Health/Watch', 'content-type': 'application/grpc', te: 'trailers' });
        watch.on('error', () => {});
        watch.end(Buffer.alloc(5));
        await new Promise((resolve) => watch.once('data', resolve));
        const check = from('127.0.0.2');
        const busy = await check.unaryPath('/grpc.health.v1.Health/Check', new Uint8Array(0));
        assert.equal(busy.reason, 'TOO_MANY_ANONYMOUS_STREAMS');
        assert.match(busy.details, /^call: too many unauthenticated calls \(at most 1 per source address\)/);
        assert.equal((await from('127.0.0.3').unaryPath('/grpc.health.v1.Health/Check', new Uint8Array(0))).code, Status.OK);
      } finally {
        session.destroy();
      }
    });
  });

  describe('trusted proxies (direct, without nginx)', () => {
    let dir: string;
    let running: RunningHub | undefined;
    afterEach(async () => {
      await running?.stop();
      running = undefined;
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('from a trusted peer each forwarded client is throttled on its own; logs and metrics name the header used', async () => {
      dir = mkdtempSync(join(tmpdir(), 'pushhub-proxy-'));
      let raw = '';
      const logger = createLogger({ level: 'info', destination: { write: (chunk: string) => void (raw += chunk) } });
      running = await startHub(testConfig(dir, { trustedProxies: ['127.0.0.2'], maxFailedLoginsPerSource: 3, metricsAddress: '127.0.0.1:0' }), { logger });
      address = running.address;
      const proxy = from('127.0.0.2');
      const as = (client: string, i: number) => proxy.unary('ListItems', new Uint8Array(0), {
        authorization: `Basic ${Buffer.from(`${unknownId('M')}:guess-${i}`).toString('base64')}`,
        'x-real-ip': client,
      });
      const attacker: CallOutcome[] = [];
      for (let i = 0; i < 5; i++) attacker.push(await as('198.51.100.7', i));
      assert.deepEqual(codes(attacker), ['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'LOGIN_THROTTLED', 'LOGIN_THROTTLED']);
      assert.equal((await as('198.51.100.8', 0)).code, Status.UNAUTHENTICATED, 'another client behind the same proxy is not throttled');

      const throttled = raw.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>).find((l) => l.reason === 'LOGIN_THROTTLED');
      assert.equal(throttled?.source, '198.51.100.7');
      assert.equal(throttled?.sourceVia, 'x-real-ip');
      const metrics = await (await fetch(`http://${running.metricsAddress}/metrics`)).text();
      assert.match(metrics, /pushhub_source_limited_total\{reason="LOGIN_THROTTLED",via="x-real-ip"\} 2/);
    });

    it('a spoofed header from a peer that is not trusted changes nothing', async () => {
      hub = await TestHub.start({ trustedProxies: ['127.0.0.2'], maxFailedLoginsPerSource: 3 });
      const direct = from('127.0.0.4');
      const outcomes: CallOutcome[] = [];
      for (let i = 0; i < 5; i++) {
        outcomes.push(await direct.unary('ListItems', new Uint8Array(0), {
          authorization: `Basic ${Buffer.from(`${unknownId('M')}:guess`).toString('base64')}`,
          'x-real-ip': `198.51.100.${i}`,
          'x-forwarded-for': `203.0.113.${i}`,
        }));
      }
      assert.deepEqual(codes(outcomes), ['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'LOGIN_THROTTLED', 'LOGIN_THROTTLED'], 'counted at 127.0.0.4 whatever it claims');
    });
  });
});
