import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Status, createChannel, createClient } from 'nice-grpc';
import { HealthDefinition } from 'nice-grpc-server-health';
import { HealthCheckResponse_ServingStatus } from 'nice-grpc-server-health/lib/proto/grpc/health/v1/health.js';
import { PushHubServiceDefinition, Role } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { type RunningHub, startHub } from '../../src/hub.js';
import { silentLogger } from '../../src/logger.js';
import { REPO_ROOT } from '../support/hub-process.js';
import { type Credentials, basicAuth, testConfig } from '../support/hub.js';
import { outcomeOf, statusName } from './support.js';

const bigInfo = (title: string) => ({ key: '', title, body: 'x'.repeat(4000), data: {}, validUntil: undefined, offer: undefined });

describe('storage faults', function () {
  this.timeout(30_000);

  describe('a full disk', () => {
    let dir: string;
    let hub: RunningHub;
    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'pushhub-faults-'));
      hub = await startHub(testConfig(dir), { logger: silentLogger, testHooks: true });
    });
    afterEach(async () => {
      await hub.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('gets UNAVAILABLE with reason STORAGE_UNAVAILABLE, health NOT_SERVING; nothing rejected is stored, nothing acked lost, writes resume', async () => {
      const channel = createChannel(hub.address);
      try {
        const client = createClient(PushHubServiceDefinition, channel);
        const health = createClient(HealthDefinition, channel);
        const merchant: Credentials = await client.register({ role: Role.ROLE_MERCHANT, displayName: 'm', regionCode: '', registrationToken: '' });
        const asMerchant = basicAuth(merchant);
        const acked = await client.pushPublic({ info: bigInfo('before'), requestId: '' }, { metadata: asMerchant });
        const serving = async () => (await health.check({ service: 'pushhub.v1.PushHubService' })).status;
        assert.equal(await serving(), HealthCheckResponse_ServingStatus.SERVING);

        // The database may not grow past the pages it has now: the next pages are "the disk".
        const pages = await hub.probe.testPragma('page_count');
        await hub.probe.testPragma(`max_page_count = ${pages}`);
        const rejected: string[] = [];
        let fault;
        for (let i = 0; i < 50 && !fault; i++) {
          const requestId = `full-${i}`;
          const outcome = await outcomeOf((o) => client.pushPublic({ info: bigInfo(`during ${i}`), requestId }, { ...o, metadata: asMerchant }));
          if (outcome.code !== Status.OK) {
            fault = outcome;
            rejected.push(requestId);
          }
        }
        assert.ok(fault, 'a push past max_page_count failed');
        assert.equal(statusName(fault.code), 'UNAVAILABLE');
        assert.equal(fault.reason, 'STORAGE_UNAVAILABLE');
        assert.match(fault.details, /^storage: the disk is full \(SQLITE_FULL\)/);
        assert.equal(await serving(), HealthCheckResponse_ServingStatus.NOT_SERVING);
        assert.equal((await health.check({ service: '' })).status, HealthCheckResponse_ServingStatus.NOT_SERVING);

        const titles = async () => {
          const page = await client.listItems({ receiverId: '', audience: 0, pageSize: 1000, pageToken: '' }, { metadata: asMerchant });
          return page.items.map((item) => item.info?.title);
        };
        const whileFull = await titles();
        assert.ok(whileFull.includes('before'), 'the acknowledged push is still there');
        assert.ok(!whileFull.some((t) => t === `during ${rejected.length > 0 ? rejected[0]!.slice(5) : ''}`), 'the rejected push was not stored');

        // Space returns: the retry with the same request id is stored, health is SERVING again.
        await hub.probe.testPragma('max_page_count = 1073741823');
        const retried = await client.pushPublic({ info: bigInfo(`during ${rejected[0]!.slice(5)}`), requestId: rejected[0]! }, { metadata: asMerchant });
        assert.ok(BigInt(retried.sequence) > BigInt(acked.sequence));
        assert.equal(await serving(), HealthCheckResponse_ServingStatus.SERVING);
        const after = await titles();
        assert.equal(after.filter((t) => t === `during ${rejected[0]!.slice(5)}`).length, 1, 'the retry is stored once');
      } finally {
        channel.close();
      }
    });

    it('a database that turned read-only gets UNAVAILABLE (STORAGE_UNAVAILABLE) until it is writable again', async () => {
      const channel = createChannel(hub.address);
      try {
        const client = createClient(PushHubServiceDefinition, channel);
        const health = createClient(HealthDefinition, channel);
        const merchant: Credentials = await client.register({ role: Role.ROLE_MERCHANT, displayName: 'm', regionCode: '', registrationToken: '' });
        const push = (requestId: string) =>
          outcomeOf((o) => client.pushPublic({ info: bigInfo(requestId), requestId }, { ...o, metadata: basicAuth(merchant) }));
        // query_only makes every write on the commit worker's connection fail with SQLITE_READONLY.
        await hub.probe.testPragma('query_only = 1');
        const refused = await push('ro-1');
        assert.equal(statusName(refused.code), 'UNAVAILABLE');
        assert.equal(refused.reason, 'STORAGE_UNAVAILABLE');
        assert.match(refused.details, /^storage: the database is read-only \(SQLITE_READONLY/);
        assert.equal((await health.check({ service: '' })).status, HealthCheckResponse_ServingStatus.NOT_SERVING);
        await hub.probe.testPragma('query_only = 0');
        assert.equal((await push('ro-1')).code, Status.OK);
        assert.equal((await health.check({ service: '' })).status, HealthCheckResponse_ServingStatus.SERVING);
        const listed = await client.listItems({ receiverId: '', audience: 0, pageSize: 100, pageToken: '' }, { metadata: basicAuth(merchant) });
        assert.deepEqual(listed.items.map((item) => item.info?.title), ['ro-1']);
      } finally {
        channel.close();
      }
    });
  });

  describe('a database the hub cannot write', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'pushhub-unwritable-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const unwritablePaths = () => {
      const file = join(dir, 'a-file');
      writeFileSync(file, 'not a folder');
      const folder = join(dir, 'a-folder.db');
      mkdirSync(folder);
      return [
        { what: 'a path under a regular file', path: join(file, 'hub.db'), reason: /EEXIST|ENOTDIR/ },
        { what: 'a directory', path: folder, reason: /SQLITE_CANTOPEN|directory/i },
        { what: 'a file in /proc', path: '/proc/version', reason: /SQLITE_CANTOPEN|EACCES|EROFS|EPERM/ },
      ];
    };

    it('startHub refuses, naming the path and the reason', async () => {
      for (const { what, path, reason } of unwritablePaths()) {
        await assert.rejects(
          startHub(testConfig(dir, { dbPath: path }), { logger: silentLogger }),
          (error: Error) => {
            assert.ok(error.message.includes(path), `${what}: ${error.message}`);
            assert.match(error.message, /cannot open it for writing/, what);
            assert.match(error.message, reason, what);
            return true;
          },
          what,
        );
      }
    });

    it('the process exits 1 with the path in its log', () => {
      const path = join(dir, 'a-file', 'hub.db');
      writeFileSync(join(dir, 'a-file'), 'not a folder');
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', '--db', path, '--address', '127.0.0.1:0'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        timeout: 20_000,
      });
      assert.equal(run.status, 1, run.stderr);
      assert.ok(run.stderr.includes('failed to start') && run.stderr.includes(path), run.stderr);
    });
  });
});
