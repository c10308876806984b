import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SUBCOMMANDS } from '../../src/commands/index.js';
import { startHub } from '../../src/hub.js';
import { silentLogger } from '../../src/logger.js';
import {
  EXIT_DATABASE_OWNED,
  SqliteOwnedError,
  acquireSqliteOwnership,
  readSqliteOwner,
} from '../../src/store/sqlite/owner.js';
import { HubProcess, freePort, runPushhub } from '../support/hub-process.js';
import { testConfig } from '../support/hub.js';

/** Runs a subcommand in this process (no tsx start-up per call), capturing what it prints. */
async function runCommand(name: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  process.stdout.write = ((chunk: string) => ((out.stdout += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((out.stderr += chunk), true)) as typeof process.stderr.write;
  try {
    const code = await (await SUBCOMMANDS[name]!()).run(args);
    return { code, ...out };
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
  }
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

  it('pushhub restore is refused while a hub owns the file (exit 3, owner named); backup and restore take --help and refuse bad flags with usage (exit 2)', async () => {
    const config = testConfig(dir);
    const hub = await startHub(config, { logger: silentLogger });
    try {
      const backup = join(dir, 'backup.db');
      assert.equal((await runCommand('backup', ['--db', config.dbPath, '--to', backup])).code, 0);
      const refused = await runCommand('restore', ['--db', config.dbPath, '--from', backup]);
      assert.equal(refused.code, EXIT_DATABASE_OWNED);
      assert.match(refused.stderr, new RegExp(`${config.dbPath} is in use by pushhub hub \\(pid ${process.pid} on ${hostname()}, since `));
      const again = await runCommand('backup', ['--db', config.dbPath, '--to', backup]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already exists/);
    } finally {
      await hub.stop();
    }
    for (const command of ['backup', 'restore']) {
      const help = await runCommand(command, ['--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, new RegExp(`^usage: pushhub ${command} --db FILE`));
      const bad = await runCommand(command, ['--db', config.dbPath, '--bad-flag']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, new RegExp(`pushhub ${command}: Unknown option '--bad-flag'\nusage: pushhub ${command}`));
    }
    // The process entry passes the subcommand's exit code on.
    const process_ = await runPushhub(['restore', '--bad-flag']);
    assert.equal(process_.code, 2, process_.stderr);
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
