import { parseArgs } from 'node:util';

/** Exit code of a command line a subcommand refuses (as for the hub itself). */
export const EXIT_USAGE = 2;

type Values = Record<string, string | boolean | undefined>;

/**
 * Parses a subcommand's flags (all strings, plus --help): the values, or the exit code after
 * printing usage (0 for --help on stdout, 2 with the problem on stderr).
 */
export function parseSubcommand(
  name: string,
  usage: string,
  args: string[],
  flags: string[],
  required: string[],
): { values: Values } | { exit: number } {
  let values: Values;
  try {
    const options = Object.fromEntries([...flags.map((flag) => [flag, { type: 'string' as const }]), ['help', { type: 'boolean' as const, short: 'h' }]]);
    values = parseArgs({ args, options, strict: true, allowPositionals: false }).values as Values;
  } catch (error) {
    process.stderr.write(`pushhub ${name}: ${(error as Error).message}\n${usage}`);
    return { exit: EXIT_USAGE };
  }
  if (values.help) {
    process.stdout.write(usage);
    return { exit: 0 };
  }
  const missing = required.filter((flag) => typeof values[flag] !== 'string' || values[flag] === '');
  if (missing.length > 0) {
    process.stderr.write(`pushhub ${name}: ${missing.map((flag) => `--${flag}`).join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required\n${usage}`);
    return { exit: EXIT_USAGE };
  }
  return { values };
}

/** A refusal or failure, in plain words on stderr; returns the exit code. */
export function fail(name: string, message: string, code = 1): number {
  process.stderr.write(`pushhub ${name}: ${message}\n`);
  return code;
}
