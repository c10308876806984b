import { readFileSync } from 'node:fs';
import { MerchantClient, computeOffers, syncReceiverOffers, validateRules } from '@pushhub/sdk';

const address = process.env.PUSHHUB_ADDRESS ?? '127.0.0.1:50051';
// The example rules shipped in the package: one rule of each kind.
const rules = validateRules(JSON.parse(readFileSync('node_modules/@pushhub/sdk/examples/rules.json', 'utf8')));
const receiverId = process.argv[2] ?? process.env.PUSHHUB_RECEIVER_ID;
if (!receiverId) throw new Error('usage: node offers.mjs RECEIVER_ID (or set PUSHHUB_RECEIVER_ID)');

// Purchases of that receiver, e.g. from your till system: yesterday and today at 00:00 UTC
// (fixed times, so a rerun today computes the same offers and sends nothing).
const today = Date.parse(`${new Date().toISOString().slice(0, 10)}T00:00:00Z`);
const records = [
  { receiverId, time: new Date(today - 86_400_000), place: 'main', amount: 1250, currency: 'EUR', category: 'coffee' },
  { receiverId, time: new Date(today), place: 'main', amount: 8900, currency: 'EUR', category: 'food' },
];
for (const offer of computeOffers(records, rules, new Date())) console.log('offer', offer.key, offer.title);

// The credentials merchant.mjs saved on its first run.
const merchant = new MerchantClient({ address, ...JSON.parse(readFileSync('./merchant.json', 'utf8')) });
const summary = await syncReceiverOffers(merchant, receiverId, records, rules);
console.log(JSON.stringify(summary)); // a second run pushes nothing: {"receivers":1,"pushed":0,"unchanged":2,…}
merchant.close();
