import { inspect } from 'node:util';
import * as grpc from '@grpc/grpc-js';

/** Minimal structured logger: one JSON line per event on stderr, quiet under tests. */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(enabled = true): Logger {
  const write = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
    if (!enabled) return;
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n');
  };
  return { info: write('info'), warn: write('warn'), error: write('error') };
}

export const silentLogger: Logger = createLogger(false);

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
