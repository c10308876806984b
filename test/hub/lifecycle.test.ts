import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http2 from 'node:http2';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ClientError, Status, createChannel, createClient } from 'nice-grpc';
import { PushHubServiceDefinition, Role } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { shuttingDown } from '../../src/core/errors.js';
import { StreamReader, TestHub, basicAuth } from '../support/hub.js';

const run = promisify(execFile);

describe('hub lifecycle', () => {
  it('a restart loses no acknowledged push', async () => {
    const t = await TestHub.start();
    try {
      const client = t.client();
      const merchant = await t.register('merchant');
      const receiver = await t.register('receiver');
      const acks = await Promise.all(
        Array.from({ length: 200 }, (_, i) => client.pushSpecific({ receiverId: receiver.id, info: { title: `n${i}` } }, { metadata: basicAuth(merchant) })),
      );
      await t.restart();
      // Credentials survive too (only the hash was stored).
      const reader = new StreamReader(t.client(), receiver);
      await reader.waitFor((r) => r.caughtUp(), 'caught up');
      await reader.close();
      assert.deepEqual(new Set(reader.items().map((i) => i.itemId)), new Set(acks.map((a) => a.itemId)));
      // Sequences keep growing after a restart.
      const next = await t.client().pushSpecific({ receiverId: receiver.id, info: { title: 'after' } }, { metadata: basicAuth(merchant) });
      assert.ok(next.sequence > acks.reduce((m, a) => (a.sequence > m ? a.sequence : m), 0n));
    } finally {
      await t.stop();
    }
  });

  it('shutdown ends open streams with UNAVAILABLE and lets in-flight pushes finish', async () => {
    const t = await TestHub.start();
    const client = t.client();
    const merchant = await t.register('merchant');
    const receiver = await t.register('receiver');
    const reader = new StreamReader(t.client(), receiver);
    await reader.waitFor((r) => r.caughtUp(), 'caught up');
    const inFlight = Array.from({ length: 50 }, (_, i) =>
      client.pushSpecific({ receiverId: receiver.id, info: { title: `f${i}` } }, { metadata: basicAuth(merchant) }).then(
        () => 'acked',
        (e: ClientError) => e.code,
      ),
    );
    await new Promise((r) => setTimeout(r, 5));
    await t.stop();
    await reader.waitFor((r) => r.ended, 'stream end');
    assert.equal((reader.error as ClientError).code, Status.UNAVAILABLE);
    const outcomes = await Promise.all(inFlight);
    // Every push either committed and was acked, or never reached the hub (UNAVAILABLE): none failed midway.
    for (const outcome of outcomes) assert.ok(outcome === 'acked' || outcome === Status.UNAVAILABLE, String(outcome));
  });

  it('a Subscribe or WatchDeliveries that arrives while shutdown has begun ends at once with UNAVAILABLE, not held open', async () => {
    const t = await TestHub.start();
    try {
      const receiver = await t.register('receiver');
      const merchant = await t.register('merchant');
      // Shutdown's first step (hub.stop ends the open streams, then stops accepting calls):
      // a call that arrives between the two must not attach and hold the shutdown open.
      t.hub.context.fanout.close(shuttingDown());
      t.hub.context.receipts.watch.close(shuttingDown());
      const reader = new StreamReader(t.client(), receiver);
      await reader.waitFor((r) => r.ended, 'the stream to end');
      assert.equal((reader.error as ClientError).code, Status.UNAVAILABLE);
      assert.equal(t.hub.probe.openSubscribeStreams(), 0);
      const watch = t.client().watchDeliveries({ afterCursor: 0n }, { metadata: basicAuth(merchant) });
      await assert.rejects(async () => {
        for await (const response of watch) void response;
      }, (error: ClientError) => error.code === Status.UNAVAILABLE);
    } finally {
      await t.stop();
    }
  });

  it('a call still open after the shutdown grace is cut off with its connection', async function () {
    this.timeout(20_000);
    // A unary call whose request never completes holds a graceful shutdown open (here longer
    // than the grace: the request deadline is a minute).
    const t = await TestHub.start({ requestTimeoutMs: 60_000 });
    const session = http2.connect(`http://${t.address}`);
    session.on('error', () => {});
    await new Promise((resolve) => session.once('remoteSettings', resolve));
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const call = session.request({ ':method': 'POST', ':path': '/pushhub.v1.PushHubService/Register', 'content-type': 'application/grpc', te: 'trailers' });
    call.on('error', () => {});
    call.write(Buffer.concat([Buffer.from([0, 0, 0, 0, 100]), Buffer.alloc(10)]));
    // The PING's answer comes after the hub read the frames before it: the call is open there.
    await new Promise((resolve, reject) => session.ping((error) => (error ? reject(error) : resolve(undefined))));
    await t.stop();
    // grpc-js's own forceShutdown leaves sessions it does not track (channelz off) open.
    await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the connection outlived the hub')), 3_000))]);
  });

  it('shutdown answers the pushes a push stream took, then ends it with UNAVAILABLE', async () => {
    const t = await TestHub.start();
    const merchant = await t.register('merchant');
    const receiver = await t.register('receiver');
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    async function* requests() {
      for (let i = 0; i < 20; i++) {
        yield { entries: [{ ref: BigInt(i), push: { $case: 'specific' as const, value: { receiverId: receiver.id, info: { title: `s${i}` }, requestId: `s${i}` } } }] };
      }
      await held; // the merchant keeps the stream open
    }
    const answers: { code: number; sequence: bigint }[] = [];
    let error: unknown;
    const consuming = (async () => {
      try {
        for await (const answer of t.client().pushStream(requests(), { metadata: basicAuth(merchant) })) answers.push(...answer.results);
      } catch (e) {
        error = e;
      }
    })();
    const deadline = Date.now() + 5000;
    while (answers.length < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await t.stop();
    await consuming;
    release();
    assert.equal(answers.length, 20);
    assert.ok(answers.every((a) => a.code === Status.OK && a.sequence > 0n));
    assert.equal((error as ClientError).code, Status.UNAVAILABLE);
    // Ended by the hub's graceful path, not cut off when the grace period ran out.
    assert.match((error as ClientError).details, /shutting down/);
  });

  it('ends a stream that does not read with RESOURCE_EXHAUSTED without slowing other receivers', async () => {
    const t = await TestHub.start({ subscriberBufferLimit: 200 });
    try {
      const client = t.client();
      const merchant = await t.register('merchant');
      const idle = await t.register('receiver');
      const busy = await t.register('receiver');
      // A raw stream we never read from, on its own connection (a stalled stream would
      // otherwise hold up the connection-level HTTP/2 window the merchant's replies share).
      const stalled = t.client().subscribe({ afterSequence: 0n }, { metadata: basicAuth(idle) })[Symbol.asyncIterator]();
      const first = await stalled.next();
      assert.equal(first.value?.events.at(-1)?.event?.$case, 'caughtUp');
      const reader = new StreamReader(t.client(), busy);
      await reader.waitFor((r) => r.caughtUp(), 'caught up');

      const body = 'x'.repeat(4000);
      const acks = [];
      for (let round = 0; round < 30; round++) {
        acks.push(
          ...(await Promise.all(
            Array.from({ length: 50 }, () => client.pushPublic({ info: { title: 'big', body } }, { metadata: basicAuth(merchant) })),
          )),
        );
        // The reading receiver keeps up; the stalled one falls further behind every round.
        await reader.waitFor((r) => r.items().length === acks.length, 'the reading receiver to keep up', 15000);
      }
      await reader.waitFor((r) => r.items().length === acks.length, 'all items at the reading receiver', 15000);
      // The stalled stream ends with RESOURCE_EXHAUSTED once its buffers are drained.
      let error: unknown;
      try {
        for (let r = await stalled.next(); !r.done; r = await stalled.next());
      } catch (e) {
        error = e;
      }
      assert.equal((error as ClientError).code, Status.RESOURCE_EXHAUSTED);
      assert.match((error as ClientError).details, /resume/);
      await reader.close();
    } finally {
      await t.stop();
    }
  });

  it('serves reflection (v1 and v1alpha) and health, as grpcurl and buf curl use them', async () => {
    const t = await TestHub.start();
    try {
      const buf = join('node_modules', '.bin', 'buf');
      const base = ['curl', '--protocol', 'grpc', '--http2-prior-knowledge'];
      for (const protocol of ['grpc-v1', 'grpc-v1alpha']) {
        const { stdout } = await run(buf, [...base, '--reflect-protocol', protocol, '--list-methods', `http://${t.address}`]);
        assert.match(stdout, /pushhub\.v1\.PushHubService\/Subscribe/);
        assert.match(stdout, /grpc\.health\.v1\.Health\/Check/);
      }
      const { stdout: registered } = await run(buf, [
        ...base,
        '-d',
        '{"role":"ROLE_RECEIVER","region_code":"07"}',
        `http://${t.address}/pushhub.v1.PushHubService/Register`,
      ]);
      assert.match(JSON.parse(registered).id, /^R07-\d{16}$/);
      for (const service of ['', 'pushhub.v1.PushHubService']) {
        const { stdout } = await run(buf, [...base, '-d', JSON.stringify({ service }), `http://${t.address}/grpc.health.v1.Health/Check`]);
        assert.equal(JSON.parse(stdout).status, 'SERVING');
      }
    } finally {
      await t.stop();
    }
  });

  it('npm start serves with flags or env vars, creates the database and stops cleanly on SIGTERM', async function () {
    this.timeout(30000);
    const dir = mkdtempSync(join(tmpdir(), 'pushhub-main-'));
    const db = join(dir, 'nested', 'hub.db');
    let child: ChildProcess | undefined;
    try {
      child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--db', db], {
        env: { ...process.env, PUSHHUB_ADDRESS: '127.0.0.1:0', PUSHHUB_SCRYPT_LOG_N: '4' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let log = '';
      const listening = await new Promise<{ address: string }>((resolve, reject) => {
        child!.stderr!.on('data', (chunk) => {
          log += chunk;
          const line = log.split('\n').find((l) => l.includes('pushhub listening'));
          if (line) resolve(JSON.parse(line));
        });
        child!.once('exit', (code) => reject(new Error(`hub exited early (${code}): ${log}`)));
      });
      assert.ok(existsSync(db));
      const channel = createChannel(listening.address);
      const client = createClient(PushHubServiceDefinition, channel);
      const receiver = await client.register({ role: Role.ROLE_RECEIVER });
      const reader = new StreamReader(client, receiver);
      await reader.waitFor((r) => r.caughtUp(), 'caught up');
      const exited = new Promise<number | null>((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      await reader.waitFor((r) => r.ended, 'stream end');
      assert.equal((reader.error as ClientError).code, Status.UNAVAILABLE);
      channel.close();
    } finally {
      child?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
