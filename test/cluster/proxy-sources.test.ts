import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Status } from 'nice-grpc';
import { MerchantClient } from '../../sdk/src/merchant.js';
import { PushHubError, ReceiverClient, type ReceiverEvent } from '../../sdk/src/receiver.js';
import { freePort } from '../support/hub-process.js';
import { SourceForwarder } from '../support/source-forwarder.js';
import { TestHub } from '../support/hub.js';
import { GrpcProxy } from '../support/nginx.js';
import { type CallOutcome, SourceClient, statusName, unknownId } from '../reliability/support.js';
import { waitUntil } from '../sdk/support.js';

// Clients on different loopback addresses (all of 127.0.0.0/8) talk to a real nginx (the
// documented configuration, which sets X-Real-IP), which talks to the hub from 127.0.0.1.

const codes = (outcomes: CallOutcome[]) => outcomes.map((o) => o.reason ?? statusName(o.code));
const wrongLogin = (client: SourceClient, headers: Record<string, string> = {}) =>
  client.unary('ListItems', new Uint8Array(0), {
    authorization: `Basic ${Buffer.from(`${unknownId('M')}:guess`).toString('base64')}`,
    ...headers,
  });
const THROTTLED_AFTER_3 = ['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'LOGIN_THROTTLED', 'LOGIN_THROTTLED'];

describe('behind nginx: per-client limits from the forwarded address', function () {
  this.timeout(60_000);
  let hub: TestHub;
  let proxy: GrpcProxy;
  const clients: SourceClient[] = [];
  const via = (target: string, localAddress: string) => {
    const client = new SourceClient(target, localAddress);
    clients.push(client);
    return client;
  };
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await proxy?.stop();
    await hub?.stop();
  });

  it('with --trusted-proxy, one client\'s failed logins throttle that client only, whatever header it sends', async () => {
    hub = await TestHub.start({ trustedProxies: ['127.0.0.1'], maxFailedLoginsPerSource: 3 });
    proxy = await GrpcProxy.start([hub.address]);
    const attacker = via(proxy.address, '127.0.0.2');
    const guesses: CallOutcome[] = [];
    // nginx replaces the X-Real-IP the client sends with the address it saw.
    for (let i = 0; i < 5; i++) guesses.push(await wrongLogin(attacker, { 'x-real-ip': `198.51.100.${i}` }));
    assert.deepEqual(codes(guesses), THROTTLED_AFTER_3);

    const other = via(proxy.address, '127.0.0.3');
    assert.equal((await wrongLogin(other)).reason, 'UNAUTHENTICATED', 'another client behind the same proxy is not throttled');
    const owner = await hub.register('merchant');
    assert.equal((await other.listItems(owner)).code, Status.OK);
  });

  it('with --trusted-proxy, a forwarded header from a peer that is not trusted changes nothing', async () => {
    hub = await TestHub.start({ trustedProxies: ['127.0.0.1'], maxFailedLoginsPerSource: 3 });
    proxy = await GrpcProxy.start([hub.address]);
    // Straight to the hub, past the proxy, pretending to be many clients.
    const direct = via(hub.address, '127.0.0.4');
    const guesses: CallOutcome[] = [];
    for (let i = 0; i < 5; i++) guesses.push(await wrongLogin(direct, { 'x-real-ip': `198.51.100.${i}`, 'x-forwarded-for': `203.0.113.${i}` }));
    assert.deepEqual(codes(guesses), THROTTLED_AFTER_3, 'counted at 127.0.0.4');
    assert.equal((await wrongLogin(via(proxy.address, '127.0.0.4'))).reason, 'LOGIN_THROTTLED', 'the same client through the proxy is the same source');
  });

  it('without --trusted-proxy a forwarded header changes nothing: every client behind the proxy is the proxy', async () => {
    hub = await TestHub.start({ maxFailedLoginsPerSource: 3 });
    proxy = await GrpcProxy.start([hub.address]);
    const guesses: CallOutcome[] = [];
    for (let i = 0; i < 5; i++) guesses.push(await wrongLogin(via(proxy.address, '127.0.0.2')));
    assert.deepEqual(codes(guesses), THROTTLED_AFTER_3);
    assert.equal((await wrongLogin(via(proxy.address, '127.0.0.3'))).reason, 'LOGIN_THROTTLED', 'one source: the proxy');
    const direct = await wrongLogin(via(hub.address, '127.0.0.5'), { 'x-real-ip': '127.0.0.9' });
    assert.equal(direct.reason, 'UNAUTHENTICATED');
  });
});

/** The daemon as its own process, its JSON lines and stderr collected. */
class Daemon {
  readonly lines: { change: string; item: { info?: { title?: string } } }[] = [];
  stderr = '';
  private readonly child: ChildProcess;
  private readonly exited: Promise<unknown>;

  constructor(args: string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, ['--import', 'tsx', resolve('sdk/src/bin/pushhub-receiver.ts'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let partial = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) this.lines.push(JSON.parse(line) as Daemon['lines'][number]);
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((done) => this.child.once('exit', done));
  }

  titles(): string[] {
    return this.lines.filter((l) => l.change === 'added').map((l) => l.item.info?.title ?? '');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

describe('behind nginx: the SDK and the daemon resume on what the proxy sends', function () {
  this.timeout(60_000);
  let dir: string;
  let hub: TestHub;
  let link: SourceForwarder | undefined;
  let proxy: GrpcProxy;
  const closers: (() => unknown)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await proxy?.stop();
    await link?.stop();
    await hub?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('after the upstream dies (INTERNAL from RST_STREAM) and while nginx answers 502: nothing lost, duplicated or out of order', async () => {
    dir = mkdtempSync(join(tmpdir(), 'pushhub-proxy-resume-'));
    hub = await TestHub.start();
    // nginx reaches the hub through a TCP link this test cuts: to nginx that is the node dying
    // (its connections reset, then nothing listens), without a process restart's seconds.
    const linkPort = await freePort();
    link = await SourceForwarder.start(hub.address, '127.0.0.1', linkPort);
    proxy = await GrpcProxy.start([`127.0.0.1:${linkPort}`]);

    const merchant = new MerchantClient({ address: proxy.address, ...(await MerchantClient.register(proxy.address)), retry: { maxAttempts: 400, maxBackoffMs: 250 } });
    closers.push(() => merchant.close());
    const credentials = await ReceiverClient.register(proxy.address);
    const reconnects: PushHubError[] = [];
    const receiver = new ReceiverClient({
      address: proxy.address,
      ...credentials,
      heartbeatIntervalMs: 1000,
      reconnect: { maxBackoffMs: 250 },
      onReconnect: ({ error }) => void (error instanceof PushHubError && reconnects.push(error)),
    });
    closers.push(() => receiver.close());
    const events: ReceiverEvent[] = [];
    const abort = new AbortController();
    const state = { error: undefined as unknown };
    const done = (async () => {
      try {
        for await (const event of receiver.subscribe({ signal: abort.signal })) events.push(event);
      } catch (error) {
        state.error = error;
      }
    })();
    closers.push(async () => {
      abort.abort();
      await done;
    });
    const daemonCredentials = await ReceiverClient.register(proxy.address);
    const daemon = new Daemon(['--address', proxy.address, '--id', daemonCredentials.id, '--store', join(dir, 'daemon.db')], {
      PUSHHUB_RECEIVER_PASSWORD: daemonCredentials.password,
    });
    closers.push(() => daemon.stop());
    const titles = () => events.flatMap((e) => (e.type === 'item' ? [e.item.info?.title ?? ''] : []));
    const pushed: string[] = [];
    const push = async (title: string) => {
      await Promise.all([merchant.pushSpecific(credentials.id, { title }), merchant.pushSpecific(daemonCredentials.id, { title })]);
      pushed.push(title);
    };
    await waitUntil(() => events.some((e) => e.type === 'caughtUp') && daemon.stderr.includes('caught up'), `both caught up through nginx (${daemon.stderr})`, 30_000);
    for (let i = 0; i < 5; i++) await push(`before ${i}`);

    await link.stop();
    // Pushed while the upstream is down: nginx answers 502, the SDK retries with the same request id.
    const whileDown = push('while down');
    await waitUntil(
      () => reconnects.some((e) => e.details.includes('502')) && daemon.stderr.includes('502'),
      `reconnects refused with the proxy's 502 (${reconnects.map(String).join('; ')}; ${daemon.stderr})`,
      20_000,
    );
    link = await SourceForwarder.start(hub.address, '127.0.0.1', linkPort);
    await whileDown;
    for (let i = 0; i < 5; i++) await push(`after ${i}`);

    await waitUntil(() => titles().length === pushed.length && daemon.titles().length === pushed.length, 'every push at the SDK receiver and the daemon', 30_000);
    assert.deepEqual(titles(), pushed, 'SDK receiver: every push once, in order');
    assert.deepEqual(daemon.titles(), pushed, 'daemon: every push once, in order');
    assert.equal(state.error, undefined);
    const kinds = reconnects.map((e) => `${Status[e.code]}: ${e.details}`);
    assert.ok(kinds.some((k) => k.startsWith('INTERNAL')), `the cut reached the SDK as INTERNAL: ${kinds.join('; ')}`);
    assert.match(daemon.stderr, /connection lost \(INTERNAL/);
    assert.match(daemon.stderr, /connection lost \(UNAVAILABLE: Received HTTP status code 502/);
  });
});
