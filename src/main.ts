import { loadConfig } from './config.js';
import { startHub } from './hub.js';
import { createLogger } from './logger.js';

/** Process entry: config from flags and environment, listen, stop cleanly on SIGTERM/SIGINT. */
const logger = createLogger();
try {
  const config = loadConfig(process.argv.slice(2), process.env);
  if (config.insecureBenchSkipPasswordCheck) logger.warn('INSECURE: passwords are not checked (--insecure-bench-skip-password-check, bench only)');
  const hub = await startHub(config, { logger });
  logger.info('pushhub listening', { address: hub.address, db: config.dbPath, tls: Boolean(config.tlsCertPath) });
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
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
} catch (error) {
  logger.error('failed to start', { error: String((error as Error)?.message ?? error) });
  process.exit(1);
}
