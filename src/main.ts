#!/usr/bin/env node
import { ConfigError, describeDatabaseUrl, helpText, loadConfig, wantsHelp } from './config.js';
import { SUBCOMMANDS, subcommandHelp } from './commands/index.js';
import { startHub } from './hub.js';
import { stopWhenLauncherExits } from '../sdk/src/bin/launcher-watch.js';
import { createLogger } from './logger.js';
import { EXIT_DATABASE_OWNED, SqliteOwnedError } from './store/sqlite/owner.js';
import { HUB_VERSION } from './version.js';

/**
 * Process entry: config from flags and environment, listen, stop cleanly on SIGTERM/SIGINT.
 * Exit codes: 0 after a clean stop or --help, 1 when the hub failed or was stopped uncleanly,
 * 2 for a command line or environment it refuses (a usage error, as for most Unix tools),
 * 3 when another process owns the SQLite file (EXIT_DATABASE_OWNED; see docs/backups.md).
 */
const argv = process.argv.slice(2);
const subcommand = SUBCOMMANDS[argv[0] ?? ''];
if (subcommand) process.exit(await (await subcommand()).run(argv.slice(1)));
// `pushhub admin ...`: operator actions (src/admin/cli.ts, docs/accounts.md).
if (argv[0] === 'admin') {
  const { runAdminCommand } = await import('./admin/cli.js');
  process.exit(await runAdminCommand(argv.slice(1), process.env));
}
if (wantsHelp(argv)) {
  process.stdout.write(helpText() + (await subcommandHelp()));
  process.exit(0);
}
if (argv.includes('--version') || argv.includes('-V')) {
  process.stdout.write(`pushhub ${HUB_VERSION}\n`);
  process.exit(0);
}

let config;
try {
  config = loadConfig(argv, process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  // Before a logger exists (its level is config): plain words, on stderr, for a human.
  process.stderr.write(`pushhub: ${error.message}\nusage: pushhub [options]   (pushhub --help lists every option)\n`);
  process.exit(2);
}

const logger = createLogger({ level: config.logLevel });
try {
  if (config.insecureBenchSkipPasswordCheck) logger.warn('INSECURE: passwords are not checked (--insecure-bench-skip-password-check, bench only)');
  const hub = await startHub(config, { logger });
  logger.info('pushhub listening', {
    address: hub.address,
    // A PostgreSQL URL may carry a password: only its host and database are logged.
    db: config.databaseUrl === undefined ? config.dbPath : describeDatabaseUrl(config.databaseUrl),
    tls: Boolean(config.tlsCertPath),
    metrics: hub.metricsAddress ? `http://${hub.metricsAddress}/metrics` : 'off',
    pid: process.pid,
  });
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals | 'launcher exited') => {
    if (signalled) return;
    signalled = true;
    logger.info('shutting down', { signal });
    hub.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error) => {
        logger.error('shutdown failed', { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  stopWhenLauncherExits(() => onSignal('launcher exited'));
} catch (error) {
  logger.error('failed to start', { error: String((error as Error)?.message ?? error) });
  process.exit(error instanceof SqliteOwnedError ? EXIT_DATABASE_OWNED : 1);
}
