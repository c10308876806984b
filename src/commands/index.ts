/**
 * The hub command's subcommands (`pushhub <name> ...`): each is loaded only when it runs, and
 * returns the process's exit code. Every subcommand takes `--help`, exits 2 with its usage on
 * a bad flag, and 3 (EXIT_DATABASE_OWNED) when a writing command finds its SQLite file owned.
 */
export interface Subcommand {
  /** One line for `pushhub --help`. */
  summary: string;
  run(args: string[]): Promise<number>;
}

export const SUBCOMMANDS: Record<string, () => Promise<Subcommand>> = {
  backup: async () => (await import('./backup.js')).backupCommand,
  restore: async () => (await import('./restore.js')).restoreCommand,
};

/** The subcommands' lines for `pushhub --help`. */
export async function subcommandHelp(): Promise<string> {
  const lines = ['', 'Commands:'];
  for (const [name, load] of Object.entries(SUBCOMMANDS)) lines.push(`  pushhub ${name.padEnd(10)} ${(await load()).summary}`);
  lines.push('  (pushhub COMMAND --help for its options)', '');
  return lines.join('\n');
}
