import * as grpc from '@grpc/grpc-js';
import { ClientError, Metadata, Status } from 'nice-grpc';
import { PushHubServiceDefinition } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
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
