import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { MerchantClient, PushHubError, ReceiverBlockedError } from '../../sdk/src/merchant.js';
import { ReceiverClient } from '../../sdk/src/receiver.js';
import { runAdminCommand } from '../../src/admin/cli.js';
import { TestHub } from '../support/hub.js';

const DAEMON = resolve('sdk/src/bin/pushhub-receiver.ts');

describe('accounts: SDK, daemon and admin --help', function () {
  this.timeout(60_000);
  let hub: TestHub;
  beforeEach(async () => {
    hub = await TestHub.start();
  });
  afterEach(() => hub.stop());

  it('receiver block, blocked, unblock; the merchant gets a ReceiverBlockedError; both delete their accounts', async () => {
    const merchantCredentials = await MerchantClient.register(hub.address, { displayName: 'shop' });
    const receiverCredentials = await ReceiverClient.register(hub.address, { displayName: 'phone' });
    const merchant = new MerchantClient({ address: hub.address, ...merchantCredentials });
    const receiver = new ReceiverClient({ address: hub.address, ...receiverCredentials });
    try {
      await merchant.pushSpecific(receiver.id, { title: 'hello' });
      const sequence = await receiver.block(merchant.id);
      assert.ok(sequence > 0);
      const [blocked] = await receiver.blocked();
      assert.equal(blocked!.merchantId, merchant.id);
      assert.match(blocked!.blockedAt, /^\d{4}-\d{2}-\d{2}T/);
      const refused = await merchant.pushSpecific(receiver.id, { title: 'again' }).then(() => undefined, (e: unknown) => e);
      assert.ok(refused instanceof ReceiverBlockedError, String(refused));
      assert.ok(refused instanceof PushHubError);
      assert.equal(refused.receiverId, receiver.id);
      assert.equal(refused.reason, 'RECEIVER_BLOCKED_MERCHANT');
      await receiver.unblock(merchant.id);
      assert.deepEqual(await receiver.blocked(), []);
      await merchant.pushSpecific(receiver.id, { title: 'welcome back' });

      await receiver.deleteAccount();
      const gone = await receiver.blocked().then(() => undefined, (e: unknown) => e);
      assert.equal((gone as PushHubError).reason, 'UNAUTHENTICATED');
      await merchant.deleteAccount();
      const merchantGone = await merchant.pushPublic({ title: 'x' }).then(() => undefined, (e: unknown) => e);
      assert.ok(merchantGone instanceof PushHubError);
    } finally {
      merchant.close();
      receiver.close();
    }
  });

  it('the daemon blocks and unblocks a merchant as one-shot commands', async () => {
    const merchant = await MerchantClient.register(hub.address);
    const receiver = await ReceiverClient.register(hub.address);
    const run = (flag: string) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', DAEMON, '--address', hub.address, '--id', receiver.id, flag, merchant.id], {
        env: { ...process.env, PUSHHUB_RECEIVER_PASSWORD: receiver.password },
      });
    const blocked = JSON.parse((await run('--block')).stdout) as { blocked: string; sequence: number };
    assert.equal(blocked.blocked, merchant.id);
    const client = new ReceiverClient({ address: hub.address, ...receiver });
    try {
      assert.deepEqual((await client.blocked()).map((b) => b.merchantId), [merchant.id]);
      const unblocked = JSON.parse((await run('--unblock')).stdout) as { unblocked: string; sequence: number };
      assert.equal(unblocked.unblocked, merchant.id);
      assert.deepEqual(await client.blocked(), []);
    } finally {
      client.close();
    }
  });

  it('pushhub admin --help names every command and option', async () => {
    let out = '';
    assert.equal(await runAdminCommand(['--help'], {}, (t) => void (out += t)), 0);
    for (const word of ['list', 'show', 'suspend', 'resume', 'delete', 'rotate', 'stats', '--db', '--database-url', '--json', '--role', '--created-since', '--active-since', '--search', '--min-items', '--include-deleted', '--limit', 'Exit codes']) {
      assert.ok(out.includes(word), `--help mentions ${word}`);
    }
  });
});
