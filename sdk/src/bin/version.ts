import { readFileSync } from 'node:fs';

/**
 * The SDK package's version, for `--version`: its package.json is two levels up both from
 * `sdk/src/bin/` (sources) and from `dist/bin/` (the published package).
 */
export function sdkVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
