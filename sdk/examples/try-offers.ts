// Tries the example rules and records against a running hub:
//   npm start &                                   # a hub on 127.0.0.1:50051
//   npx tsx sdk/examples/try-offers.ts [--address 127.0.0.1:50051]
//
// It registers a merchant and three receivers, rewrites records.csv for them (the receiver
// ids), runs pushhub-offers twice with --records-now set to the file's "now",
// 2025-06-01T12:00Z, so that every record moves to the same local time of day on the same
// day relative to today (in the rules' time zone, across daylight-saving changes too), and
// prints each receiver's offers as its local store holds them. The second run sends nothing.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { main } from '../src/bin/pushhub-offers.js';
import { MerchantClient } from '../src/merchant.js';
import { ReceiverClient, createReceiverStore } from '../src/receiver.js';

const { values } = parseArgs({ options: { address: { type: 'string', default: '127.0.0.1:50051' } } });
const address = values.address!;
const here = import.meta.dirname;
/** The time records.csv was written for. */
const FILE_NOW = '2025-06-01T12:00:00Z';

const merchant = await MerchantClient.register(address, { displayName: 'Example cafe' });
const receivers = new Map<string, { id: string; password: string }>();
const lines = readFileSync(join(here, 'records.csv'), 'utf8').trimEnd().split('\n');
const rewritten = [lines[0]];
for (const line of lines.slice(1)) {
  const [exampleId, time, ...rest] = line.split(',');
  if (!receivers.has(exampleId!)) receivers.set(exampleId!, await ReceiverClient.register(address));
  rewritten.push([receivers.get(exampleId!)!.id, time, ...rest].join(','));
}
const dir = mkdtempSync(join(tmpdir(), 'pushhub-offers-example-'));
writeFileSync(join(dir, 'records.csv'), `${rewritten.join('\n')}\n`);

const env = { ...process.env, PUSHHUB_MERCHANT_ID: merchant.id, PUSHHUB_MERCHANT_PASSWORD: merchant.password };
const args = ['--address', address, '--rules', join(here, 'rules.json'), '--records', join(dir, 'records.csv'), '--records-now', FILE_NOW];
try {
  for (const run of ['first run', 'second run']) {
    process.stdout.write(`${run}: `);
    await main(args, { stdout: process.stdout, stderr: process.stderr, env });
  }
} finally {
  // The rewritten records file was only the runs' input: leave nothing in the temp directory.
  rmSync(dir, { recursive: true, force: true });
}

for (const [exampleId, credentials] of receivers) {
  const client = new ReceiverClient({ address, ...credentials });
  const store = createReceiverStore(':memory:');
  for await (const event of client.subscribe()) {
    store.apply(event);
    if (event.type === 'caughtUp') break;
  }
  process.stdout.write(`\n${exampleId} (${credentials.id}):\n`);
  for (const item of store.itemsByMerchant(merchant.id)) {
    const info = item.info;
    process.stdout.write(`  ${info.key}  ${info.title}  (valid until ${info.validUntil})\n    ${info.body}\n`);
  }
  store.close();
  client.close();
}
