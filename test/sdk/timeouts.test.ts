import assert from 'node:assert/strict';
import { type Http2Server, type ServerHttp2Stream, createServer as createHttp2Server } from 'node:http2';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { MerchantClient, PushHubError, Status } from '../../sdk/src/merchant.js';
import { ReceiverClient } from '../../sdk/src/receiver.js';

/** A hub that never answers: either a bare TCP listener, or one that speaks HTTP/2 but leaves every call open. */
interface SilentHub {
  address: string;
  /** Calls (HTTP/2 streams) that arrived and were left unanswered; always 0 for the TCP listener. */
  calls: () => number;
  close(): Promise<void>;
}

/** Accepts TCP connections and never sends a byte (not even the HTTP/2 preface). */
async function startSilentTcp(): Promise<SilentHub> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls: () => 0,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An HTTP/2 server that takes every call and never answers it (no headers, no trailers). */
async function startSilentHttp2(): Promise<SilentHub> {
  const streams = new Set<ServerHttp2Stream>();
  let calls = 0;
  const server: Http2Server = createHttp2Server();
  server.on('stream', (stream) => {
    calls++;
    streams.add(stream);
    stream.on('error', () => {});
    stream.on('close', () => streams.delete(stream));
  });
  server.on('sessionError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls: () => calls,
    async close() {
      for (const stream of streams) stream.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Asserts that `promise` rejects with a PushHubError whose code is DEADLINE_EXCEEDED. */
async function rejectsWithDeadline(promise: Promise<unknown>): Promise<PushHubError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof PushHubError, `expected a PushHubError, got ${String((caught as Error)?.constructor?.name)}: ${String(caught)}`);
  assert.equal(caught.code, Status.DEADLINE_EXCEEDED, caught.message);
  assert.equal(caught.reason, '');
  return caught;
}

for (const [kind, start] of [
  ['a TCP listener that never answers', startSilentTcp],
  ['an HTTP/2 server that never answers the call', startSilentHttp2],
] as const) {
  describe(`sdk: timeouts against ${kind}`, function () {
    this.timeout(20_000);
    let silent: SilentHub;
    const closers: (() => unknown)[] = [];

    beforeEach(async () => {
      silent = await start();
    });
    afterEach(async () => {
      for (const close of closers.splice(0).reverse()) await close();
      await silent.close();
    });

    const merchant = () => {
      const client = new MerchantClient({ address: silent.address, id: 'M11-0000000000000001', password: 'x', deadlineMs: 300 });
      closers.push(() => client.close());
      return client;
    };

    it('MerchantClient.pushPublic rejects with a PushHubError DEADLINE_EXCEEDED', async () => {
      const error = await rejectsWithDeadline(merchant().pushPublic({ title: 'never answered' }));
      assert.equal(error.path, '/pushhub.v1.PushHubService/PushPublic');
      if (start === startSilentHttp2) assert.ok(silent.calls() >= 1, 'the call reached the HTTP/2 server');
    });

    it('MerchantClient.withdraw and listItems reject with a PushHubError DEADLINE_EXCEEDED', async () => {
      const client = merchant();
      await rejectsWithDeadline(client.withdraw({ key: 'k' }));
      await rejectsWithDeadline(
        (async () => {
          for await (const _ of client.listItems()) assert.fail('no item can arrive');
        })(),
      );
    });

    it('register rejects with a PushHubError DEADLINE_EXCEEDED', async () => {
      await rejectsWithDeadline(MerchantClient.register(silent.address, { deadlineMs: 300 }));
      await rejectsWithDeadline(ReceiverClient.register(silent.address, { deadlineMs: 300 }));
    });

    it('ReceiverClient.subscribe gives up with a PushHubError DEADLINE_EXCEEDED when reconnects are exhausted', async () => {
      const receiver = new ReceiverClient({
        address: silent.address,
        id: 'R00-0000000000000001',
        password: 'x',
        heartbeatIntervalMs: 150,
        reconnect: { maxAttempts: 2, initialBackoffMs: 10, maxBackoffMs: 20 },
      });
      closers.push(() => receiver.close());
      const error = await rejectsWithDeadline(
        (async () => {
          for await (const _ of receiver.subscribe()) assert.fail('no event can arrive');
        })(),
      );
      assert.match(error.details, /no message from the hub for 300 ms/);
    });
  });
}
