// Mocha's spec reporter, plus a last line "N passed, N failed" that CI reads.
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    let passed = 0;
    let failed = 0;
    runner.on(Mocha.Runner.constants.EVENT_TEST_PASS, () => passed++);
    runner.on(Mocha.Runner.constants.EVENT_TEST_FAIL, () => failed++);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      // Registered after the spec reporter's epilogue, so this is the final line; written
      // synchronously because mocha's --exit ends the process right after this event.
      process.stdout.write(`${passed} passed, ${failed} failed\n`);
    });
  }
}

module.exports = SummaryReporter;
