import { readFileSync } from 'node:fs';

/**
 * The hub's version, from its package.json: `src/` runs from the repository root's child
 * (under tsx) and `dist/src/` one level deeper (the build), so both places are tried.
 */
function readVersion(): string {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'pushhub' && pkg.version) return pkg.version;
    } catch {
      // Not at this level: try the next one.
    }
  }
  return 'unknown';
}

export const HUB_VERSION = readVersion();
