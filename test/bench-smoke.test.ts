import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

// Only that the bench runs end to end and prints its table: timings never go into tests.
describe('bench smoke', function () {
  this.timeout(180_000);

  it('runs a tiny bench against the hub and the baseline and prints a table', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pushhub-bench-smoke-'));
    const out = join(dir, 'bench.json');
    try {
      const { stdout } = await run(
        process.execPath,
        ['--import', 'tsx', 'test/bench/run.ts', '--tiny', '--phases=w1,w3', `--out=${out}`],
        { maxBuffer: 16 * 1024 * 1024 },
      );
      assert.match(stdout, /\| metric \| pushhub \| baseline \(bare grpc-js\) \|/);
      assert.match(stdout, /acked pushes\/s/);
      const results = JSON.parse(readFileSync(out, 'utf8'));
      for (const target of ['pushhub', 'baseline']) {
        const w1 = results.targets[target].w1.value;
        assert.equal(w1.stream.lost, 0, `${target} stream lost`);
        assert.equal(w1.stream.dups, 0, `${target} stream dups`);
        assert.equal(w1.unary.lost, 0, `${target} unary lost`);
        assert.equal(results.targets[target].w3.value.lost, 0, `${target} w3 lost`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
