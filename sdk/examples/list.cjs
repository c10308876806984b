// CommonJS works too (Node.js 20.19+ or 22.12+ load the SDK's ES modules with require).
const { readFileSync } = require('node:fs');
const { MerchantClient } = require('@pushhub/sdk');

async function main() {
  const address = process.env.PUSHHUB_ADDRESS ?? '127.0.0.1:50051';
  // The credentials merchant.mjs saved on its first run.
  const merchant = new MerchantClient({ address, ...JSON.parse(readFileSync('./merchant.json', 'utf8')) });
  // Every item is plain data: one JSON line each, numbers and ISO-8601 strings.
  for await (const item of merchant.listItems()) console.log(JSON.stringify(item));
  merchant.close();
}

main().catch((error) => {
  console.error(error.message);
  process.exitCode = 1;
});
