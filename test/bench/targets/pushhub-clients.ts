// Publisher and subscriber for the hub target, through the SDK (MerchantClient with its push
// stream, ReceiverClient.subscribe). The bench payload (binary) travels base64 in
// ServiceInfo.body, so a subscriber hands back the exact published bytes.
import { MerchantClient } from '../../../sdk/src/merchant.js';
import { ReceiverClient } from '../../../sdk/src/receiver.js';
import type { HubConn } from './pushhub.js';
import { receiverId } from './pushhub.js';
import type { PublishMode, Publisher, Subscriber } from './types.js';

const infoOf = (payload: Buffer) => ({ title: 'bench', body: payload.toString('base64') });

/** Last sequence each subscriber processed, so a reconnect resumes after it (W3). */
const cursors = new Map<number, number>();

async function connectPublisher(conn: HubConn, mode: PublishMode): Promise<Publisher> {
  const merchant = new MerchantClient({ address: conn.address, ...conn.merchant });
  if (mode === 'unary') {
    return {
      publishTargeted: async (idx, payload) => void (await merchant.pushSpecific(receiverId(idx), infoOf(payload))),
      publishBroadcast: async (payload) => void (await merchant.pushPublic(infoOf(payload))),
      close: async () => merchant.close(),
    };
  }
  // The window is the workload's (at most 256 in flight); the SDK's own window must not bind first.
  const stream = merchant.openPushStream({ window: 1024 });
  return {
    publishTargeted: async (idx, payload) => void (await stream.pushSpecific(receiverId(idx), infoOf(payload))),
    publishBroadcast: async (payload) => void (await stream.pushPublic(infoOf(payload))),
    close: async () => {
      await stream.close();
      merchant.close();
    },
  };
}

async function connectSubscriber(conn: HubConn, idx: number, onMessage: (payload: Buffer) => void): Promise<Subscriber> {
  const receiver = new ReceiverClient({ address: conn.address, id: receiverId(idx), password: conn.receiverPassword });
  const abort = new AbortController();
  let markCaughtUp!: () => void;
  let fail!: (error: unknown) => void;
  const caughtUp = new Promise<void>((resolve, reject) => {
    markCaughtUp = resolve;
    fail = reject;
  });
  const reading = (async () => {
    try {
      for await (const event of receiver.subscribe({ afterSequence: cursors.get(idx) ?? 0, signal: abort.signal })) {
        if (event.type === 'item') {
          cursors.set(idx, event.item.sequence);
          onMessage(Buffer.from(event.item.info.body, 'base64'));
        } else if (event.type === 'caughtUp') {
          cursors.set(idx, event.sequence);
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
      receiver.close();
    },
  };
}

export const benchClients = { connectPublisher, connectSubscriber };
