import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ReceiverClient, createReceiverStore } from '@pushhub/sdk/receiver';

const address = process.env.PUSHHUB_ADDRESS ?? '127.0.0.1:50051';
// The store belongs to one receiver: register on the first run, then reuse the saved
// credentials (as pushhub-receiver does). The password is shown once.
const file = './receiver.json';
if (!existsSync(file)) {
  const registered = await ReceiverClient.register(address);
  writeFileSync(file, JSON.stringify(registered), { mode: 0o600, flag: 'wx' }); // readable only by you
}
const credentials = JSON.parse(readFileSync(file, 'utf8'));
console.log('receiver', credentials.id);
const receiver = new ReceiverClient({ address, ...credentials });
const store = createReceiverStore('./receiver.db');

store.on('change', (change) =>
  console.log(change.type, change.type === 'reset' ? change.reason : change.item.info.title, change.type === 'removed' ? change.cause : ''),
);
const abort = new AbortController();
process.once('SIGINT', () => abort.abort());
// Resolves when aborted; caught up once the stored backlog is applied, live after that.
await store.sync(receiver, { signal: abort.signal, onCaughtUp: (sequence) => console.log(`caught up at ${sequence}`) });

console.log(store.items().length, 'items;', store.itemsByOfferKind('voucher').length, 'vouchers');
store.close();
receiver.close();
