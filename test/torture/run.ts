import { DEFAULT_TORTURE, formatReport, passed, runTorture } from './torture.js';

/**
 * `npm run torture [-- --rounds N --seed S]`: the crash torture at full size. Prints the
 * report; exits 1 if anything acknowledged was lost, duplicated or out of place.
 */
const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
};
const report = await runTorture({
  rounds: arg('rounds') ?? DEFAULT_TORTURE.rounds,
  seed: arg('seed') ?? Date.now() % 100_000,
  log: (line) => console.log(line),
});
console.log('');
console.log(formatReport(report));
for (const violation of report.violations.slice(0, 30)) console.log(`  violation: ${violation}`);
console.log(passed(report) ? '\nPASS: no acknowledged write lost, duplicated or out of place' : '\nFAIL');
process.exit(passed(report) ? 0 : 1);
