import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { MerchantClient, PushHubError } from '@pushhub/sdk/merchant';

const address = process.env.PUSHHUB_ADDRESS ?? '127.0.0.1:50051';
// The password is shown once: register on the first run, then reuse the saved credentials.
const file = './merchant.json';
if (!existsSync(file)) {
  const registered = await MerchantClient.register(address, { displayName: 'Bakery', regionCode: '11' });
  writeFileSync(file, JSON.stringify(registered), { mode: 0o600, flag: 'wx' }); // readable only by you
}
const credentials = JSON.parse(readFileSync(file, 'utf8'));
const merchant = new MerchantClient({ address, ...credentials });
console.log('merchant', merchant.id);

// The receiver to push to: `node merchant.mjs R00-…`, or PUSHHUB_RECEIVER_ID.
const receiverId = process.argv[2] ?? process.env.PUSHHUB_RECEIVER_ID;
if (receiverId) {
  // Same key again later replaces it on the receiver.
  const pushed = await merchant.pushSpecific(receiverId, {
    key: 'points',
    title: 'Your points',
    offer: { $case: 'points', value: { balance: 120, earned: 20 } },
  });
  console.log(`pushed ${pushed.itemId} at sequence ${pushed.sequence}`);
  console.log(JSON.stringify(pushed)); // results are plain data: {"itemId":"I…","sequence":7}
}

// Public info reaches every receiver; a key makes a rerun replace it instead of adding one.
const voucher = await merchant.pushPublic({
  key: 'bread5',
  title: '5 EUR off',
  validUntil: new Date(Date.now() + 7 * 24 * 3600 * 1000), // or an ISO-8601 string, or epoch ms
  offer: { $case: 'voucher', value: { code: 'BREAD5', amountOff: 500, currency: 'EUR' } },
});
// Bulk: many pushes in flight on one stream, each resolved when committed.
const stream = merchant.openPushStream({ window: 256 });
await Promise.all([1, 2, 3].map((n) => stream.pushPublic({ key: `deal-${n}`, title: `Deal ${n}` })));
await stream.close();

for await (const item of merchant.listItems({ audience: 'public' })) console.log('live', item.itemId, item.info.key, item.info.title);

await merchant.withdraw({ itemId: voucher.itemId }); // or { key, receiverId } / { key } for public
console.log('withdrew', voucher.itemId);

try {
  await merchant.withdraw({ key: 'no-such-key' });
} catch (error) {
  if (error instanceof PushHubError) console.log('failed', error.code, error.reason); // 5 ITEM_NOT_FOUND
}
merchant.close();
