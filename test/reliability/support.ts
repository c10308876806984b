import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { ClientError, Metadata, Status } from 'nice-grpc';
import { PushHubServiceDefinition, RegisterRequest, RegisterResponse, Role } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { REASON_TRAILER } from '../../src/middleware/error-status.js';
import type { Credentials, HubClient } from '../support/hub.js';

/** The outcome of one call: its status code, message and stable reason (from the trailer). */
export interface CallOutcome {
  code: Status;
  details: string;
  reason: string | undefined;
}

/**
 * Runs a call and reports its status instead of throwing; `run` receives the call options
 * to pass so the reason trailer is captured.
 */
export async function outcomeOf(
  run: (options: { onTrailer(trailer: Metadata): void }) => Promise<unknown>,
): Promise<CallOutcome> {
  let reason: string | undefined;
  const onTrailer = (trailer: Metadata) => {
    reason = trailer.get(REASON_TRAILER);
  };
  try {
    await run({ onTrailer });
    return { code: Status.OK, details: '', reason };
  } catch (error) {
    if (error instanceof ClientError) return { code: error.code, details: error.details, reason };
    throw error;
  }
}

export const statusName = (code: Status) => Status[code] ?? String(code);

/** A random id of the right shape that no account has (10^16 ids per region). */
export const unknownId = (letter: 'M' | 'R') =>
  `${letter}00-${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;

/** Reads a receiver's snapshot (cursor 0) until CaughtUp and returns the item ids. */
export async function snapshotItemIds(client: HubClient, receiver: Credentials, afterSequence = 0n): Promise<string[]> {
  const abort = new AbortController();
  const ids: string[] = [];
  try {
    const metadata = Metadata({ authorization: `Basic ${Buffer.from(`${receiver.id}:${receiver.password}`).toString('base64')}` });
    for await (const event of client.subscribe({ afterSequence }, { metadata, signal: abort.signal })) {
      for (const { event: e } of event.events) if (e?.$case === 'item') ids.push(e.value.itemId);
      if (event.events.some((e) => e.event?.$case === 'caughtUp')) break;
    }
  } finally {
    abort.abort();
  }
  return ids;
}

export const METHOD_PATH = (method: string) => `/${PushHubServiceDefinition.fullName}/${method}`;

/**
 * A grpc-js client with identity serializers: sends hand-crafted protobuf bytes, so tests can
 * put what no generated client would produce on the wire (invalid UTF-8, bad varints, ...).
 */
export class RawClient {
  readonly client: grpc.Client;

  constructor(address: string, credentials = grpc.credentials.createInsecure()) {
    this.client = new grpc.Client(address, credentials);
  }

  unary(method: string, body: Buffer, metadata: Record<string, string> = {}): Promise<{ code: Status; details: string; body?: Buffer }> {
    const md = new grpc.Metadata();
    for (const [key, value] of Object.entries(metadata)) md.set(key, value);
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        METHOD_PATH(method),
        (x: Buffer) => x,
        (x: Buffer) => x,
        body,
        md,
        { deadline: Date.now() + 10_000 },
        (error, response) =>
          resolve(error ? { code: error.code as number as Status, details: error.details } : { code: Status.OK, details: '', body: response }),
      );
    });
  }

  /** Opens a server stream and returns its first message's status (or OK when one arrived). */
  firstOfServerStream(method: string, body: Buffer, metadata: Record<string, string> = {}): Promise<{ code: Status; details: string }> {
    const md = new grpc.Metadata();
    for (const [key, value] of Object.entries(metadata)) md.set(key, value);
    return new Promise((resolve) => {
      const call = this.client.makeServerStreamRequest(METHOD_PATH(method), (x: Buffer) => x, (x: Buffer) => x, body, md, {
        deadline: Date.now() + 10_000,
      });
      call.on('data', () => {
        resolve({ code: Status.OK, details: '' });
        call.cancel();
      });
      call.on('error', (error: grpc.ServiceError) => resolve({ code: error.code as number as Status, details: error.details }));
      call.on('end', () => resolve({ code: Status.OK, details: '' }));
    });
  }

  /** Writes raw messages on a bidi stream, half-closes, and collects responses and the status. */
  bidi(method: string, bodies: Buffer[], metadata: Record<string, string> = {}): Promise<{ code: Status; details: string; responses: Buffer[] }> {
    const md = new grpc.Metadata();
    for (const [key, value] of Object.entries(metadata)) md.set(key, value);
    return new Promise((resolve) => {
      const responses: Buffer[] = [];
      const call = this.client.makeBidiStreamRequest(METHOD_PATH(method), (x: Buffer) => x, (x: Buffer) => x, md, {
        deadline: Date.now() + 10_000,
      });
      call.on('data', (response: Buffer) => responses.push(response));
      call.on('error', (error: grpc.ServiceError) => resolve({ code: error.code as number as Status, details: error.details, responses }));
      call.on('end', () => resolve({ code: Status.OK, details: '', responses }));
      for (const body of bodies) call.write(body);
      call.end();
    });
  }

  close(): void {
    this.client.close();
  }
}

export const basicHeader = ({ id, password }: Credentials) => `Basic ${Buffer.from(`${id}:${password}`).toString('base64')}`;

/**
 * A gRPC client whose connection comes from a chosen loopback address (all of 127.0.0.0/8 is
 * loopback), so a test can play an attacker and an owner on different source addresses.
 * grpc-js cannot bind a local address, so this speaks gRPC over node's http2 itself: unary
 * calls only, each message framed as a 5-byte prefix (not compressed, big-endian length)
 * followed by the protobuf bytes.
 */
export class SourceClient {
  private readonly session: http2.ClientHttp2Session;

  constructor(hubAddress: string, readonly localAddress: string) {
    const [host, port] = [hubAddress.slice(0, hubAddress.lastIndexOf(':')), Number(hubAddress.slice(hubAddress.lastIndexOf(':') + 1))];
    this.session = http2.connect(`http://${hubAddress}`, {
      createConnection: () => net.connect({ host, port, localAddress }),
    });
    this.session.on('error', () => {}); // surfaced per call as UNAVAILABLE
  }

  /** One unary call; resolves with its status, message, reason trailer and response bytes. */
  unary(method: string, body: Uint8Array, metadata: Record<string, string> = {}): Promise<CallOutcome & { body?: Buffer }> {
    return this.unaryPath(METHOD_PATH(method), body, metadata);
  }

  /** {@link unary} for any service's method, by its full path (`/grpc.health.v1.Health/Check`). */
  unaryPath(path: string, body: Uint8Array, metadata: Record<string, string> = {}): Promise<CallOutcome & { body?: Buffer }> {
    return new Promise((resolve) => {
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(body.length, 1);
      Buffer.from(body).copy(frame, 5);
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.session.request({
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': '10S',
          ...metadata,
        });
      } catch (error) {
        resolve({ code: Status.UNAVAILABLE, details: String(error), reason: undefined });
        return;
      }
      const chunks: Buffer[] = [];
      let headers: http2.IncomingHttpHeaders = {};
      const finish = (trailers: http2.IncomingHttpHeaders) => {
        const all = { ...headers, ...trailers };
        const code = Number(all['grpc-status'] ?? Status.UNKNOWN) as Status;
        const details = decodeURIComponent(String(all['grpc-message'] ?? ''));
        const reason = all[REASON_TRAILER] === undefined ? undefined : String(all[REASON_TRAILER]);
        const data = Buffer.concat(chunks);
        resolve({ code, details, reason, body: code === Status.OK && data.length >= 5 ? data.subarray(5, 5 + data.readUInt32BE(1)) : undefined });
      };
      let trailers: http2.IncomingHttpHeaders | undefined;
      stream.on('response', (h) => (headers = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => finish(trailers ?? {}));
      stream.on('error', (error) => resolve({ code: Status.UNAVAILABLE, details: String(error), reason: undefined }));
      stream.end(frame);
    });
  }

  /** Register from this source address. */
  async register(role: 'merchant' | 'receiver', registrationToken = ''): Promise<CallOutcome & { credentials?: Credentials }> {
    const request = RegisterRequest.encode({
      role: role === 'merchant' ? Role.ROLE_MERCHANT : Role.ROLE_RECEIVER,
      displayName: `from ${this.localAddress}`,
      regionCode: '',
      registrationToken,
      requestId: '',
    }).finish();
    const outcome = await this.unary('Register', request);
    if (!outcome.body) return outcome;
    const { id, password } = RegisterResponse.decode(outcome.body);
    return { ...outcome, credentials: { id, password } };
  }

  /** ListItems (default request) as `credentials`, from this source address: a cheap authenticated call. */
  listItems(credentials: Credentials): Promise<CallOutcome> {
    return this.unary('ListItems', new Uint8Array(0), { authorization: basicHeader(credentials) });
  }

  close(): void {
    this.session.close();
  }
}
