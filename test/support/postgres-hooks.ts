import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stopSharedPostgres } from './postgres.js';

/**
 * Mocha root hooks (registered in .mocharc.json), loaded before any test file:
 *
 * - One temp root per run. TMPDIR points into it, so os.tmpdir() in every test and in every
 *   process a test starts (hubs, daemons, the embedded PostgreSQL, nginx) lands there, and the
 *   last hook removes it whole: whatever a test forgets to remove, the run does not leave it
 *   behind (issue 16 item 5; `.ci/run` checks that the temp directory is unchanged).
 * - The run's one PostgreSQL, started lazily by the first test that needs it, is stopped
 *   after the last test. Its handle lives on globalThis (see test/support/postgres.ts): this
 *   file is loaded as CommonJS and test files as ESM, so each has its own module instance.
 */
const runRoot = mkdtempSync(join(tmpdir(), 'pushhub-test-run-'));
// The embedded PostgreSQL runs as the system user `postgres` when the tests run as root: it
// must traverse the root, and every directory above it, to reach its data directory and the
// password file initdb reads. A TMPDIR made by `mktemp -d` (as .ci/run does) is 0700, so as
// root each ancestor gets search permission for others (o+x: traverse, not list).
chmodSync(runRoot, 0o755);
if (process.getuid?.() === 0) letOthersTraverse(dirname(runRoot));
process.env.TMPDIR = runRoot;

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    try {
      await stopSharedPostgres();
    } finally {
      rmSync(runRoot, { recursive: true, force: true, maxRetries: 3 });
    }
  },
};

/** Adds o+x to dir and each of its ancestors that lacks it (as root, for the postgres user). */
function letOthersTraverse(dir: string): void {
  for (let current = dir; ; current = dirname(current)) {
    const mode = statSync(current).mode & 0o7777;
    if ((mode & 0o001) === 0) chmodSync(current, mode | 0o001);
    if (dirname(current) === current) return;
  }
}
