import assert from 'node:assert/strict';
import { formatReport, passed, runTorture } from '../torture/torture.js';

/**
 * The crash torture (`npm run torture`) at a size that fits the suite: the hub as a real
 * process, SIGKILLed mid-storm three times (once while starting), then every acknowledged
 * write checked against receivers' streams, snapshots and the database.
 */
describe('crash torture (small)', function () {
  this.timeout(120_000);

  it('SIGKILL mid-storm loses, duplicates and reorders nothing acknowledged; cursors resume without gaps', async () => {
    const report = await runTorture({
      rounds: 3,
      merchants: 3,
      receivers: 16,
      subscribers: 10,
      workersPerMerchant: 4,
      minRunMs: 150,
      maxRunMs: 500,
      killDuringStartEvery: 2,
      seed: 42,
    });
    assert.ok(passed(report), `${formatReport(report)}\n${report.violations.slice(0, 20).join('\n')}`);
    assert.ok(report.acknowledged >= 60, `only ${report.acknowledged} writes acknowledged`);
    assert.ok(report.retriedAfterCrash > 0, 'no write was cut off by a crash: the kill landed in a quiet moment');
    assert.equal(report.lost, 0);
    assert.equal(report.duplicated, 0);
  });
});
