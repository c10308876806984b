import { stopSharedPostgres } from './postgres.js';

/**
 * Mocha root hooks (registered in .mocharc.json): the run's one PostgreSQL, started lazily by
 * the first test that needs it, is stopped after the last test.
 */
export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    await stopSharedPostgres();
  },
};
