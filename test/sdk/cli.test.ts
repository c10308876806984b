import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/hub-process.js';

/** The three commands, from source, as `node --import tsx FILE` (the built ones run the same code). */
const COMMANDS = [
  { name: 'pushhub', script: 'src/main.ts', pkg: 'package.json', usage: /usage: pushhub \[options\]/ },
  { name: 'pushhub-receiver', script: 'sdk/src/bin/pushhub-receiver.ts', pkg: 'sdk/package.json', usage: /usage: pushhub-receiver --address HOST:PORT \[options\]/ },
  { name: 'pushhub-offers', script: 'sdk/src/bin/pushhub-offers.ts', pkg: 'sdk/package.json', usage: /Usage: pushhub-offers --rules FILE --records FILE \[options\]/ },
] as const;

const run = (script: string, args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });

describe('every command explains itself', function () {
  this.timeout(120_000);

  for (const command of COMMANDS) {
    it(`${command.name} --version prints its package version and exits 0`, () => {
      const { version } = JSON.parse(readFileSync(join(REPO_ROOT, command.pkg), 'utf8')) as { version: string };
      const result = run(command.script, ['--version']);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout, `${command.name} ${version}\n`);
    });

    it(`${command.name} with a bad flag exits 2, naming the flag, with its usage`, () => {
      const result = run(command.script, ['--no-such-flag']);
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, new RegExp(`^${command.name}: Unknown option '--no-such-flag'`));
      assert.match(result.stderr, command.usage);
      assert.equal(result.stdout, '');
    });
  }
});
