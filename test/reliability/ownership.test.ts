import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub } from '../../src/hub.js';
import { silentLogger } from '../../src/logger.js';
import {
  EXIT_DATABASE_OWNED,
  SqliteOwnedError,
  acquireSqliteOwnership,
  readSqliteOwner,
} from '../../src/store/sqlite/owner.js';
import { HubProcess, REPO_ROOT, freePort } from '../support/hub-process.js';
import { testConfig } from '../support/hub.js';

/** Runs `pushhub ARGS` from source to its end: exit code and stderr. */
export function runPushhub(args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stderr, stdout }));
  });
}

describe('one owner per SQLite file', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'pushhub-owner-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a second hub on the same file is refused, naming the file and the owner; the file is free again after stop', async () => {
    const config = testConfig(dir);
    const first = await startHub(config, { logger: silentLogger });
    try {
      const owner = readSqliteOwner(config.dbPath);
      assert.deepEqual({ ...owner, since: undefined }, { pid: process.pid, host: hostname(), command: 'hub', since: undefined });
      const refused = await startHub(config, { logger: silentLogger }).then(
        (hub) => hub.stop().then(() => undefined),
        (error: unknown) => error,
      );
      assert.ok(refused instanceof SqliteOwnedError, `expected a refusal, got ${String(refused)}`);
      assert.match(refused.message, new RegExp(`${config.dbPath}.*pid ${process.pid} on ${hostname()}, since ${owner!.since}`));
    } finally {
      await first.stop();
    }
    assert.equal(readSqliteOwner(config.dbPath), undefined);
    const again = await startHub(config, { logger: silentLogger });
    await again.stop();
  });

  it('a writing command in this process is refused while the hub owns the file', async () => {
    const config = testConfig(dir);
    const hub = await startHub(config, { logger: silentLogger });
    try {
      assert.throws(() => acquireSqliteOwnership(config.dbPath, 'admin'), SqliteOwnedError);
    } finally {
      await hub.stop();
    }
    const ownership = acquireSqliteOwnership(config.dbPath, 'admin');
    assert.equal(readSqliteOwner(config.dbPath)?.command, 'admin');
    ownership.release();
  });

  it('a second hub process exits with the documented code; after SIGKILL of the owner a restart needs no cleanup', async () => {
    const db = join(dir, 'hub.db');
    const hub = new HubProcess(db, await freePort());
    await hub.start();
    try {
      const second = await runPushhub(['--db', db, '--address', `127.0.0.1:${await freePort()}`, '--scrypt-log-n', '4']);
      assert.equal(second.code, EXIT_DATABASE_OWNED, second.stderr);
      assert.match(second.stderr, new RegExp(`${db} is in use by pushhub hub \\(pid ${hub.pid} on ${hostname()}, since `));
      await hub.kill();
      assert.equal(readSqliteOwner(db), undefined, 'a killed owner holds nothing');
      await hub.start(); // no manual step between
    } finally {
      await hub.stop();
    }
  });
});
