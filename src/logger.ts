import { inspect } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import type { LogLevel } from './config.js';

/**
 * The hub's log surface: a message plus structured fields, one JSON line per event (pino).
 * The (msg, fields) order is kept so call sites read as before; the adapter hands pino its
 * (fields, msg) order.
 */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Field paths that may carry a secret. The hub never logs these on purpose; redaction is the
 * second line, for a field added later by mistake (a whole metadata object, a config dump).
 */
export const REDACTED_PATHS = [
  'authorization',
  'databaseUrl',
  '*.databaseUrl',
  'password',
  'newPassword',
  'registrationToken',
  'merchantRegistrationToken',
  'receiverRegistrationToken',
  '*.authorization',
  '*.password',
  '*.newPassword',
  '*.registrationToken',
  '*.merchantRegistrationToken',
  '*.receiverRegistrationToken',
  '*.metadata.authorization',
  '*.headers.authorization',
];

export interface LoggerOptions {
  level?: LogLevel;
  /** Where JSON lines go; default stderr (stdout stays free for a program's own output). */
  destination?: pino.DestinationStream;
}

/** Wraps a pino logger in the hub's surface (see Logger). */
export function fromPino(base: pino.Logger): Logger {
  return {
    debug: (msg, fields) => base.debug(fields ?? {}, msg),
    info: (msg, fields) => base.info(fields ?? {}, msg),
    warn: (msg, fields) => base.warn(fields ?? {}, msg),
    error: (msg, fields) => base.error(fields ?? {}, msg),
  };
}

/**
 * The process logger: JSON lines on stderr with an ISO time and the level as a word (so
 * `grep '"level":"error"'` and `jq` work without a level table), secrets redacted. Written
 * synchronously, so the last lines before process.exit are not lost. For a terminal, pipe it
 * through pino-pretty: `npm start 2>&1 | npx pino-pretty`.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const base = pino(
    {
      level: options.level ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
  return fromPino(base);
}

const nothing = () => {};
/** Logs nothing (tests); no pino instance behind it. */
export const silentLogger: Logger = { debug: nothing, info: nothing, warn: nothing, error: nothing };
/**
 * Removes credentials from a log line: everything after an `authorization` key (grpc-js
 * prints rejected metadata whole, e.g. "Failed to add metadata entry authorization:
 * Basic\t<b64>") and any `Basic`/`Bearer` token wherever it appears.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/(authorization["']?\s*[:=]\s*)[^\n]*/gi, '$1[redacted]')
    .replace(/\b(basic|bearer)(\s+)[A-Za-z0-9+/=_.~-]+/gi, '$1$2[redacted]');
}

/**
 * Routes grpc-js's own log lines (at ERROR verbosity) through `logger`, redacted. grpc-js
 * has one process-wide logger, so the last hub started owns it.
 */
export function routeGrpcLogs(logger: Logger): void {
  const forward = (level: 'info' | 'error') => (...args: unknown[]) =>
    logger[level]('grpc-js', { detail: redactSecrets(args.map((a) => (typeof a === 'string' ? a : inspect(a))).join(' ')) });
  grpc.setLogger({ error: forward('error'), info: forward('info'), debug: forward('info') });
  grpc.setLogVerbosity(grpc.logVerbosity.ERROR);
}
