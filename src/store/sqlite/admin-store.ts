import type Database from 'better-sqlite3';
import { ACCOUNT_LIST_PARAMS, type AccountListRow, MOST_BLOCKED_SQL, accountListParams, accountListSql, toSummary, toTotals, totalsSql } from '../admin-sql.js';
import type { AdminLogEntry, AdminStore } from '../ports.js';

/** The operators' reads on a SQLite connection (see ../admin-sql.ts). */
export function createSqliteAdminStore(db: Database.Database): AdminStore {
  void ACCOUNT_LIST_PARAMS;
  const list = db.prepare(accountListSql((name) => `@${name}`));
  const totals = db.prepare(totalsSql('@now'));
  const head = db.prepare("SELECT value FROM meta WHERE name = 'head_seq'").pluck();
  const mostBlocked = db.prepare(MOST_BLOCKED_SQL('?'));
  const log = db.prepare('INSERT INTO admin_log (at_ms, actor, action, account_id, outcome) VALUES (?, ?, ?, ?, ?)');
  const recent = db.prepare('SELECT at_ms, actor, action, account_id, outcome FROM admin_log ORDER BY id DESC LIMIT ?');
  const setHash = db.prepare('UPDATE accounts SET password_hash = ? WHERE id = ? AND deleted_at_ms IS NULL');
  return {
    async listAccounts(q) {
      return (list.all(accountListParams(q)) as AccountListRow[]).map(toSummary);
    },
    async showAccount(id, nowMs) {
      const row = list.get(accountListParams({ nowMs, limit: 1 }, id)) as AccountListRow | undefined;
      return row && toSummary(row);
    },
    async totals(nowMs) {
      return toTotals(totals.get({ now: nowMs }) as Record<string, number>, head.get() as number);
    },
    async mostBlocked(limit) {
      return (mostBlocked.all(limit) as { merchant_id: string; n: number }[]).map((r) => ({ merchantId: r.merchant_id, blocks: r.n }));
    },
    async logAction(e: AdminLogEntry) {
      log.run(e.atMs, e.actor, e.action, e.accountId, e.outcome);
    },
    async recentActions(limit) {
      return (recent.all(limit) as { at_ms: number; actor: string; action: string; account_id: string; outcome: string }[]).map((r) => ({
        atMs: r.at_ms,
        actor: r.actor,
        action: r.action,
        accountId: r.account_id,
        outcome: r.outcome,
      }));
    },
    async setPasswordHash(id, hash) {
      return setHash.run(Buffer.from(hash), id).changes === 1;
    },
  };
}
