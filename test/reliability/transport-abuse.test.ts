import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import { Status } from 'nice-grpc';
import { type Credentials, TestHub, basicAuth } from '../support/hub.js';
import { METHOD_PATH, basicHeader } from './support.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Opens a TCP connection, writes bytes, and resolves once the socket is open (it stays open). */
function rawSocket(port: number, bytes?: Buffer): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      if (bytes) socket.write(bytes);
      resolve(socket);
    });
    socket.on('error', () => {}); // the hub may reset us; that is the point
    socket.once('error', reject);
  });
}

/** A gRPC message frame: compressed flag, 4-byte length, then the bytes. */
const frame = (body: Buffer, declaredLength = body.length) => {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([header, body]);
};

describe('transport abuse: garbage bytes and half-open HTTP/2 connections', function () {
  let hub: TestHub;
  let merchant: Credentials;
  const sockets: net.Socket[] = [];
  const sessions: http2.ClientHttp2Session[] = [];

  before(async () => {
    hub = await TestHub.start();
    merchant = await hub.register('merchant');
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    for (const session of sessions) session.destroy();
    await hub.stop();
  });

  /** The hub still answers a real client on a fresh connection. */
  async function assertServing(): Promise<void> {
    const listed = await hub.client().listItems({ receiverId: '', audience: 0, pageSize: 0, pageToken: '' }, { metadata: basicAuth(merchant) });
    assert.ok(Array.isArray(listed.items));
    const fresh = await hub.register('receiver');
    assert.match(fresh.id, /^R00-/);
  }

  it('random bytes, HTTP/1.1, TLS hellos and a broken HTTP/2 preface do not take the hub down', async () => {
    const port = hub.hub.port;
    const payloads = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), // a TLS ClientHello start
      Buffer.concat([PREFACE, randomBytes(4096)]),
      Buffer.concat([PREFACE.subarray(0, 10)]),
      // A valid preface, then a frame header that declares a 16 MiB frame.
      Buffer.concat([PREFACE, Buffer.from([0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00])]),
      ...Array.from({ length: 40 }, () => randomBytes(1 + Math.floor(Math.random() * 8192))),
    ];
    for (const bytes of payloads) {
      const socket = await rawSocket(port, bytes);
      // Half of them hang up at once, half stay open half-written.
      if (Math.random() < 0.5) socket.destroy();
      else sockets.push(socket);
    }
    await assertServing();
  });

  it('many half-open connections (preface only, or nothing at all) do not block real clients', async () => {
    const port = hub.hub.port;
    for (let i = 0; i < 200; i++) sockets.push(await rawSocket(port, i % 2 === 0 ? PREFACE : undefined));
    await assertServing();
  });

  it('half-open gRPC streams (headers and a partial message, never finished) do not block real clients', async () => {
    const session = http2.connect(`http://${hub.address}`);
    session.on('error', () => {});
    sessions.push(session);
    const streams: http2.ClientHttp2Stream[] = [];
    for (let i = 0; i < 50; i++) {
      const stream = session.request({
        ':method': 'POST',
        ':path': METHOD_PATH(i % 2 === 0 ? 'PushPublic' : 'PushStream'),
        'content-type': 'application/grpc',
        te: 'trailers',
        authorization: basicHeader(merchant),
      });
      stream.on('error', () => {});
      // Declares 1000 bytes and sends 10: the hub waits for the rest without a worker blocked.
      stream.write(frame(randomBytes(10), 1000));
      streams.push(stream);
    }
    await assertServing();
    // Streams the client then abandons are cleaned up without harm.
    for (const stream of streams) stream.close(http2.constants.NGHTTP2_CANCEL);
    await assertServing();
  });

  it('a gRPC frame that declares more than maxMessageBytes is refused with RESOURCE_EXHAUSTED', async () => {
    const session = http2.connect(`http://${hub.address}`);
    session.on('error', () => {});
    sessions.push(session);
    const status = await new Promise<string | undefined>((resolve) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': METHOD_PATH('PushPublic'),
        'content-type': 'application/grpc',
        te: 'trailers',
        authorization: basicHeader(merchant),
      });
      stream.on('error', () => resolve(undefined));
      let grpcStatus: string | undefined;
      stream.on('response', (headers) => (grpcStatus ??= headers['grpc-status'] as string | undefined));
      stream.on('trailers', (trailers) => (grpcStatus ??= trailers['grpc-status'] as string | undefined));
      stream.on('close', () => resolve(grpcStatus));
      stream.resume();
      stream.end(frame(randomBytes(16), 0xffffffff));
    });
    assert.equal(status, String(Status.RESOURCE_EXHAUSTED));
    await assertServing();
  });

  it('the hub advertises a per-connection limit on concurrent streams', async () => {
    const session = http2.connect(`http://${hub.address}`);
    session.on('error', () => {});
    sessions.push(session);
    await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
    assert.ok(session.remoteSettings.maxConcurrentStreams !== undefined && session.remoteSettings.maxConcurrentStreams <= 1000);
    await assertServing();
  });
});
