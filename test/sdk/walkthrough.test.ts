import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MerchantClient } from '../../sdk/src/merchant.js';
import { ReceiverClient, type ReceiverEvent } from '../../sdk/src/receiver.js';
import { TestHub } from '../support/hub.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const BUF = join(ROOT, 'node_modules/.bin/buf');

/** The README walk-through's `$CURL`: buf curl speaking gRPC over plaintext HTTP/2. */
const curl = (...args: string[]) => run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', ...args], { cwd: ROOT });

describe('README walk-through without grpcurl', function () {
  this.timeout(60_000);
  let hub: TestHub;

  before(async () => {
    hub = await TestHub.start();
  });
  after(async () => {
    await hub.stop();
  });

  it('buf curl lists the services and methods by reflection', async () => {
    const services = await curl('--list-services', `http://${hub.address}`);
    assert.deepEqual(services.stdout.trim().split('\n'), ['grpc.health.v1.Health', 'pushhub.v1.PushHubService']);
    const methods = (await curl('--list-methods', `http://${hub.address}`)).stdout.trim().split('\n');
    for (const method of ['Register', 'PushSpecific', 'PushPublic', 'PushStream', 'Withdraw', 'ListItems', 'Subscribe', 'RotatePassword']) {
      assert.ok(methods.includes(`pushhub.v1.PushHubService/${method}`), `${method} in ${methods.join(', ')}`);
    }
  });

  it("buf build shows a message's fields (ServiceInfo), as the README's jq filter reads them", async () => {
    const { stdout } = await run(BUF, ['build', '-o', '-#format=json'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
    const image = JSON.parse(stdout) as { file: { name: string; messageType?: { name: string; field: { name: string }[] }[] }[] };
    const file = image.file.find((f) => f.name === 'pushhub/v1/pushhub.proto');
    const info = file?.messageType?.find((m) => m.name === 'ServiceInfo');
    assert.ok(info, 'ServiceInfo in the schema');
    assert.deepEqual(
      info.field.map((f) => f.name),
      ['key', 'title', 'body', 'valid_until', 'discount', 'points', 'voucher', 'data'],
    );
  });

  it('a resume skips changes superseded after the cursor: the newer item and the withdrawal arrive in their place', async () => {
    const merchant = new MerchantClient({ address: hub.address, ...(await MerchantClient.register(hub.address)) });
    const credentials = await ReceiverClient.register(hub.address);
    const before = await merchant.pushSpecific(credentials.id, { title: 'before the cursor' });
    const v1 = await merchant.pushSpecific(credentials.id, { key: 'points', title: 'v1' });
    const voucher = await merchant.pushSpecific(credentials.id, { title: 'voucher' });
    const v2 = await merchant.pushSpecific(credentials.id, { key: 'points', title: 'v2' });
    const withdrawn = await merchant.withdraw({ itemId: voucher.itemId });
    merchant.close();

    const receiver = new ReceiverClient({ address: hub.address, ...credentials });
    const events: ReceiverEvent[] = [];
    for await (const event of receiver.subscribe({ afterSequence: before.sequence })) {
      events.push(event);
      if (event.type === 'caughtUp') break;
    }
    receiver.close();
    const seen = events.map((e) =>
      e.type === 'item' ? ['item', e.item.sequence, e.item.info?.title] : e.type === 'withdrawal' ? ['withdrawal', e.withdrawal.sequence, e.withdrawal.itemId] : e.type === 'caughtUp' ? ['caughtUp', e.sequence] : [e.type],
    );
    // v1 (replaced by v2) and the voucher (withdrawn) are not replayed; v1's tombstone (written
    // just before v2) is; no sequence is out of order.
    assert.deepEqual(seen, [
      ['withdrawal', v2.sequence - 1n, v1.itemId],
      ['item', v2.sequence, 'v2'],
      ['withdrawal', withdrawn.sequence, voucher.itemId],
      ['caughtUp', withdrawn.sequence],
    ]);
    assert.ok(v1.sequence > before.sequence && voucher.sequence < v2.sequence);
  });
});
