import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.js';
import { CommitQueue } from '../delivery/commit-queue.js';
import type { AccountRole } from '../core/records.js';
import type { HubBackend } from '../store/ports.js';
import { SqliteOwnedError, describeOwner, readSqliteOwner } from '../store/sqlite/owner.js';
import { type AdminCommand, createAdminActions, defaultActor } from './actions.js';
import { type AdminReply, type AdminRequest, adminSocketOf, runAdminRequest, sendAdminRequest } from './socket.js';

/** Exit codes: 0 done, 1 the action failed (e.g. ACCOUNT_NOT_FOUND), 2 usage, 3 the SQLite file's owner cannot be reached. */
const EXIT = { ok: 0, failed: 1, usage: 2, owned: 3 } as const;

const COMMANDS: readonly AdminCommand[] = ['list', 'show', 'suspend', 'resume', 'delete', 'rotate', 'stats'];
const NEEDS_ID: readonly AdminCommand[] = ['show', 'suspend', 'resume', 'delete', 'rotate'];

export const ADMIN_HELP = `Usage: pushhub admin COMMAND [ID] [--db FILE | --database-url URL] [--json] [options]

Operator actions on a pushhub database, without SQL. Works on PostgreSQL while hubs run, and
on a SQLite file while a hub runs on it (the command then goes through that hub's admin
socket, FILE-admin.sock, so its effect is immediate and the hub stays the file's one owner);
with no hub running it opens the file itself. Every action that changes an account is logged
(who, what, when, which account; never a secret) in the database's admin log and by the hub.

Commands:
  list              Accounts, newest first, with live items and blocks. Filters:
                      --role merchant|receiver   only this role
                      --created-since WHEN       created at or after WHEN
                      --active-since WHEN        last login at or after WHEN
                      --search TEXT              id or display name contains TEXT
                      --min-items N              at least N live items
                      --include-deleted          deleted accounts too
                      --limit N                  at most N rows (default 100)
  show ID           One account, with its latest admin actions.
  suspend ID        Suspend: a merchant's pushes are refused (ACCOUNT_SUSPENDED) and its public
                    items are withdrawn from every receiver until resumed; a receiver cannot
                    subscribe. Open streams of the account end. At once on every node.
  resume ID         Undo suspend: a merchant's current public items come back to receivers.
  delete ID         Delete the account as DeleteAccount does: a merchant's items are withdrawn
                    everywhere; a receiver's items, cursor, confirmations and blocks go. Its
                    credentials stop working at once; the id is never issued again.
  rotate ID         Replace the account's password and print the new one, once. The old one
                    stops working at once, and streams opened with it end.
  stats             The hub's totals and the most blocked merchants.

Options:
  --db FILE               SQLite database (env PUSHHUB_DB; default ./data/pushhub.db)
  --database-url URL      PostgreSQL database (env PUSHHUB_DATABASE_URL)
  --json                  JSON on stdout, for scripts (default: a table for people)
  --scrypt-log-n N        scrypt cost of a rotated password when no hub serves the file (env PUSHHUB_SCRYPT_LOG_N)
  -h, --help              This text

WHEN is an ISO-8601 date or time (2026-12-01, 2026-12-01T08:00:00Z) or an age: 30m, 24h, 7d.

Exit codes: 0 done; 1 the action failed (the reason is printed, e.g. ACCOUNT_NOT_FOUND);
2 a usage error; 3 the SQLite file is owned by a process whose admin socket does not answer.

Examples:
  pushhub admin list --role merchant --created-since 7d --db ./data/pushhub.db
  pushhub admin stats --json --database-url postgres://pushhub@db:5432/pushhub
  pushhub admin suspend M11-4829104729104829 --db ./data/pushhub.db
`;

class UsageError extends Error {}

/** Parses WHEN (see the help) into epoch ms. */
export function parseWhen(flag: string, value: string, nowMs: number): number {
  const age = /^(\d+)(m|h|d)$/.exec(value);
  if (age) return nowMs - Number(age[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 'm' | 'h' | 'd'];
  const at = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(at)) throw new UsageError(`--${flag}: "${value}" is neither an ISO-8601 date nor an age like 7d`);
  return at;
}

const iso = (ms: number | undefined) => (ms === undefined ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));

/** A plain text table: a header and left-aligned columns. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

interface Summary {
  id: string;
  role: string;
  displayName: string;
  createdAtMs: number;
  suspendedAtMs?: number;
  deletedAtMs?: number;
  lastSeenAtMs?: number;
  liveItems: number;
  blocks: number;
}
const stateOf = (a: Summary) => (a.deletedAtMs !== undefined ? 'deleted' : a.suspendedAtMs !== undefined ? 'suspended' : 'active');

function formatResult(command: AdminCommand, result: unknown): string {
  if (command === 'list') {
    const rows = (result as Summary[]).map((a) => [a.id, a.role, stateOf(a), iso(a.createdAtMs), iso(a.lastSeenAtMs), String(a.liveItems), String(a.blocks), a.displayName]);
    return formatTable(['ID', 'ROLE', 'STATE', 'CREATED', 'LAST LOGIN', 'ITEMS', 'BLOCKS', 'NAME'], rows);
  }
  if (command === 'rotate') {
    const { id, password } = result as { id: string; password: string };
    return `${id}: new password (shown once, store it now):\n${password}\n`;
  }
  if (command === 'stats') {
    const s = result as Record<string, number> & { mostBlocked: { merchantId: string; blocks: number }[] };
    const rows = ['merchants', 'receivers', 'suspended', 'deleted', 'liveItems', 'livePublicItems', 'blocks', 'headSequence'].map((k) => [k, String(s[k])]);
    const top = s.mostBlocked.length === 0 ? '' : `\nmost blocked merchants:\n${formatTable(['MERCHANT', 'BLOCKS'], s.mostBlocked.map((m) => [m.merchantId, String(m.blocks)]))}`;
    return formatTable(['TOTAL', 'VALUE'], rows) + top;
  }
  const a = result as Summary & { recentActions?: { atMs: number; actor: string; action: string; outcome: string }[] };
  const rows = [
    ['id', a.id],
    ['role', a.role],
    ['state', stateOf(a)],
    ['name', a.displayName],
    ['created', iso(a.createdAtMs)],
    ['last login', iso(a.lastSeenAtMs)],
    ['suspended', iso(a.suspendedAtMs)],
    ['deleted', iso(a.deletedAtMs)],
    ['live items', String(a.liveItems)],
    [a.role === 'merchant' ? 'blocked by' : 'blocks', String(a.blocks)],
  ];
  const actions = a.recentActions?.length
    ? `\nadmin actions:\n${formatTable(['WHEN', 'WHO', 'ACTION', 'OUTCOME'], a.recentActions.map((e) => [iso(e.atMs), e.actor, e.action, e.outcome]))}`
    : '';
  return formatTable(['FIELD', 'VALUE'], rows) + actions;
}

/** Carries one request out on a backend this process opened (PostgreSQL, or a SQLite file no hub owns). */
async function runOnBackend(backend: HubBackend, request: AdminRequest, scryptLogN: number): Promise<AdminReply> {
  const commits = new CommitQueue(backend.committer, Date.now);
  await commits.ready();
  const reply = await runAdminRequest(
    (actor) =>
      createAdminActions({
        admin: backend.admin,
        submit: (op) => commits.submit(op),
        accountChanged: (kind, accountId) => backend.feed.publishAccountEvent({ kind, accountId }),
        scryptLogN,
        now: Date.now,
        actor,
      }),
    request,
  );
  await commits.drained();
  return reply;
}

/** `pushhub admin ...`: returns the exit code; output goes to the given streams. */
export async function runAdminCommand(
  argv: string[],
  env: NodeJS.ProcessEnv,
  out: (text: string) => void = (t) => void process.stdout.write(t),
  err: (text: string) => void = (t) => void process.stderr.write(t),
): Promise<number> {
  try {
    if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
      out(ADMIN_HELP);
      return argv.length === 0 ? EXIT.usage : EXIT.ok;
    }
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        allowPositionals: true,
        strict: true,
        options: {
          db: { type: 'string' },
          'database-url': { type: 'string' },
          json: { type: 'boolean' },
          role: { type: 'string' },
          'created-since': { type: 'string' },
          'active-since': { type: 'string' },
          search: { type: 'string' },
          'min-items': { type: 'string' },
          'include-deleted': { type: 'boolean' },
          limit: { type: 'string' },
          'scrypt-log-n': { type: 'string' },
        },
      });
    } catch (error) {
      throw new UsageError(`${(error as Error).message}; see pushhub admin --help`);
    }
    const { values, positionals } = parsed;
    const command = positionals[0] as AdminCommand;
    if (!COMMANDS.includes(command)) throw new UsageError(`unknown command "${positionals[0] ?? ''}"; one of ${COMMANDS.join(', ')}`);
    const id = positionals[1];
    if (NEEDS_ID.includes(command) && id === undefined) throw new UsageError(`${command} needs an account ID`);
    if (!NEEDS_ID.includes(command) && id !== undefined) throw new UsageError(`${command} takes no ID`);
    if (positionals.length > 2) throw new UsageError(`unexpected argument "${positionals[2]}"`);
    const now = Date.now();
    const role = values.role;
    if (role !== undefined && role !== 'merchant' && role !== 'receiver') throw new UsageError('--role: merchant or receiver');
    const count = (flag: string, v: string | undefined) => {
      if (v === undefined) return undefined;
      if (!/^\d{1,7}$/.test(v)) throw new UsageError(`--${flag}: a whole number`);
      return Number(v);
    };
    const query = {
      limit: count('limit', values.limit) ?? 100,
      ...(role !== undefined && { role: role as AccountRole }),
      ...(values['created-since'] !== undefined && { createdSinceMs: parseWhen('created-since', values['created-since'], now) }),
      ...(values['active-since'] !== undefined && { activeSinceMs: parseWhen('active-since', values['active-since'], now) }),
      ...(values.search !== undefined && { search: values.search }),
      ...(values['min-items'] !== undefined && { minItems: count('min-items', values['min-items']) }),
      ...(values['include-deleted'] && { includeDeleted: true }),
    };
    // The hub's own config table reads --db / --database-url / --scrypt-log-n and their env.
    const hubArgs = [
      ...(values.db !== undefined ? ['--db', values.db] : []),
      ...(values['database-url'] !== undefined ? ['--database-url', values['database-url']] : []),
      ...(values['scrypt-log-n'] !== undefined ? ['--scrypt-log-n', values['scrypt-log-n']] : []),
    ];
    let config;
    try {
      config = loadConfig(hubArgs, env);
    } catch (error) {
      if (error instanceof ConfigError) throw new UsageError(error.message);
      throw error;
    }
    const request: AdminRequest = { command, ...(id !== undefined && { id }), query, actor: defaultActor() };

    let reply: AdminReply | undefined;
    const limits = { idempotencyWindowMs: config.idempotencyWindowMs, maxPublicItemsPerMerchant: config.maxPublicItemsPerMerchant };
    if (config.databaseUrl !== undefined) {
      const { openPostgresBackend } = await import('../store/postgres/postgres-backend.js');
      const backend = await openPostgresBackend(config.databaseUrl, { limits, leaderRetryMs: 3_600_000 });
      try {
        reply = await runOnBackend(backend, request, config.scryptLogN);
      } finally {
        await backend.close();
      }
    } else {
      const file = config.dbPath;
      if (!existsSync(file)) throw new UsageError(`--db ${file}: no database there`);
      const socket = adminSocketOf(file);
      // A hub owns the file: it carries the action out (one owner, immediate effect).
      for (let attempt = 0; attempt < 2 && reply === undefined; attempt++) {
        const owner = readSqliteOwner(file);
        if (owner) {
          reply = await sendAdminRequest(socket, request);
          if (reply === undefined) {
            err(`pushhub admin: ${file} is owned by ${describeOwner(owner)}, whose admin socket ${socket} does not answer; stop it or run this on the hub's host as its user\n`);
            return EXIT.owned;
          }
          break;
        }
        const { openSqliteBackend } = await import('../store/sqlite/sqlite-backend.js');
        let backend;
        try {
          backend = await openSqliteBackend(file, { limits, ownerCommand: 'admin' });
        } catch (error) {
          if (error instanceof SqliteOwnedError) continue; // a hub started meanwhile: ask it
          throw error;
        }
        try {
          reply = await runOnBackend(backend, request, config.scryptLogN);
        } finally {
          await backend.close();
        }
      }
    }
    if (reply === undefined) {
      err(`pushhub admin: ${config.dbPath} is owned by another process; retry\n`);
      return EXIT.owned;
    }
    if (!reply.ok) {
      if (values.json) out(`${JSON.stringify({ error: { reason: reply.reason, message: reply.message } })}\n`);
      err(`pushhub admin ${command}: ${reply.reason}: ${reply.message}\n`);
      return EXIT.failed;
    }
    out(values.json ? `${JSON.stringify(reply.result, null, 2)}\n` : formatResult(command, reply.result));
    return EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError) {
      err(`pushhub admin: ${error.message}\n`);
      return EXIT.usage;
    }
    err(`pushhub admin: ${String((error as Error)?.message ?? error)}\n`);
    return EXIT.failed;
  }
}
