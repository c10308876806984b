// Publisher and subscriber for the hub target. The bench payload (binary) travels base64 in
// ServiceInfo.body, so a subscriber hands back the exact published bytes.
import { Metadata, createChannel, createClient } from 'nice-grpc';
import { PushHubServiceDefinition, type PushStreamRequest, type ServiceInfo, type PushStreamResponse } from '../../../src/gen/pushhub/v1/pushhub.js';
import type { HubConn } from './pushhub.js';
import { receiverId } from './pushhub.js';
import type { PublishMode, Publisher, Subscriber } from './types.js';

const basic = (id: string, password: string) =>
  Metadata({ authorization: `Basic ${Buffer.from(`${id}:${password}`).toString('base64')}` });

/** Each client its own HTTP/2 connection, like separate devices. */
const channelOf = (address: string) => createChannel(address, undefined, { 'grpc.use_local_subchannel_pool': 1 });

const infoOf = (payload: Buffer): ServiceInfo => ({
  key: '',
  title: 'bench',
  body: payload.toString('base64'),
  validUntil: undefined,
  offer: undefined,
  data: {},
});

/** Last sequence each subscriber processed, so a reconnect resumes after it (W3). */
const cursors = new Map<number, bigint>();

async function connectPublisher(conn: HubConn, mode: PublishMode): Promise<Publisher> {
  const channel = channelOf(conn.address);
  const client = createClient(PushHubServiceDefinition, channel);
  const metadata = basic(conn.merchant.id, conn.merchant.password);
  if (mode === 'unary') {
    return {
      publishTargeted: async (idx, payload) => {
        await client.pushSpecific({ receiverId: receiverId(idx), info: infoOf(payload), requestId: '' }, { metadata });
      },
      publishBroadcast: async (payload) => {
        await client.pushPublic({ info: infoOf(payload), requestId: '' }, { metadata });
      },
      close: async () => channel.close(),
    };
  }

  // One PushStream; each push resolves when its ack (matched by ref) comes back.
  const waiting = new Map<bigint, { resolve: () => void; reject: (error: Error) => void }>();
  const outbox: PushStreamRequest[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  let nextRef = 1n;
  async function* requests(): AsyncGenerator<PushStreamRequest> {
    for (;;) {
      while (outbox.length > 0) yield outbox.shift()!;
      if (closed) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  }
  const abort = new AbortController();
  const responses = client.pushStream(requests(), { metadata, signal: abort.signal });
  const reading = (async () => {
    try {
      for await (const response of responses as AsyncIterable<PushStreamResponse>) {
        const entry = waiting.get(response.ref);
        if (!entry) continue;
        waiting.delete(response.ref);
        if (response.code === 0) entry.resolve();
        else entry.reject(new Error(`push rejected: ${response.code} ${response.message}`));
      }
    } catch (error) {
      for (const entry of waiting.values()) entry.reject(error as Error);
      waiting.clear();
    }
  })();
  const send = (push: PushStreamRequest['push']) =>
    new Promise<void>((resolve, reject) => {
      const ref = nextRef++;
      waiting.set(ref, { resolve, reject });
      outbox.push({ ref, push });
      wake?.();
    });
  return {
    publishTargeted: (idx, payload) =>
      send({ $case: 'specific', value: { receiverId: receiverId(idx), info: infoOf(payload), requestId: '' } }),
    publishBroadcast: (payload) => send({ $case: 'public', value: { info: infoOf(payload), requestId: '' } }),
    close: async () => {
      closed = true;
      wake?.();
      await Promise.race([reading, new Promise((resolve) => setTimeout(resolve, 5000))]);
      abort.abort();
      channel.close();
    },
  };
}

async function connectSubscriber(conn: HubConn, idx: number, onMessage: (payload: Buffer) => void): Promise<Subscriber> {
  const channel = channelOf(conn.address);
  const client = createClient(PushHubServiceDefinition, channel);
  const abort = new AbortController();
  const stream = client.subscribe(
    { afterSequence: cursors.get(idx) ?? 0n },
    { metadata: basic(receiverId(idx), conn.receiverPassword), signal: abort.signal },
  );
  let markCaughtUp!: () => void;
  let fail!: (error: unknown) => void;
  const caughtUp = new Promise<void>((resolve, reject) => {
    markCaughtUp = resolve;
    fail = reject;
  });
  const reading = (async () => {
    try {
      for await (const response of stream) {
        const event = response.event;
        if (event?.$case === 'item') {
          cursors.set(idx, event.value.sequence);
          onMessage(Buffer.from(event.value.info!.body, 'base64'));
        } else if (event?.$case === 'caughtUp') {
          cursors.set(idx, event.value.sequence);
          markCaughtUp();
        }
      }
    } catch (error) {
      fail(error);
    }
  })();
  await caughtUp;
  return {
    close: async () => {
      abort.abort();
      await reading;
      channel.close();
    },
  };
}

export const benchClients = { connectPublisher, connectSubscriber };
