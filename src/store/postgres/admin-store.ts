import type pg from 'pg';
import { ACCOUNT_LIST_PARAMS, type AccountListRow, MOST_BLOCKED_SQL, accountListParams, accountListSql, toSummary, toTotals, totalsSql } from '../admin-sql.js';
import type { AdminStore } from '../ports.js';
import { storageFaultsOf } from './storage-fault.js';

/** The operators' reads on the node's pool (see ../admin-sql.ts). */
export function createPostgresAdminStore(pool: pg.Pool): AdminStore {
  const listText = accountListSql((name, type) => `$${ACCOUNT_LIST_PARAMS.indexOf(name) + 1}::${type === 'int' ? 'bigint' : 'text'}`);
  const run = async (params: Record<string, string | number | null>) =>
    (await storageFaultsOf(pool.query<AccountListRow>(listText, ACCOUNT_LIST_PARAMS.map((n) => params[n])))).rows.map(toSummary);
  return {
    listAccounts: (q) => run(accountListParams(q)),
    async showAccount(id, nowMs) {
      return (await run(accountListParams({ nowMs, limit: 1 }, id)))[0];
    },
    async totals(nowMs) {
      const { rows } = await storageFaultsOf(pool.query<Record<string, string>>(totalsSql('$1::bigint'), [nowMs]));
      const head = (await storageFaultsOf(pool.query<{ seq: number }>('SELECT seq FROM head WHERE id = 1'))).rows[0]!.seq;
      return toTotals(rows[0]!, head);
    },
    async mostBlocked(limit) {
      const { rows } = await storageFaultsOf(pool.query<{ merchant_id: string; n: string }>(MOST_BLOCKED_SQL('$1'), [limit]));
      return rows.map((r) => ({ merchantId: r.merchant_id, blocks: Number(r.n) }));
    },
    async logAction(e) {
      await storageFaultsOf(pool.query(
        'INSERT INTO admin_log (at_ms, actor, action, account_id, outcome) VALUES ($1, $2, $3, $4, $5)',
        [e.atMs, e.actor, e.action, e.accountId, e.outcome],
      ));
    },
    async recentActions(limit) {
      const { rows } = await storageFaultsOf(pool.query<{ at_ms: number; actor: string; action: string; account_id: string; outcome: string }>(
        'SELECT at_ms, actor, action, account_id, outcome FROM admin_log ORDER BY id DESC LIMIT $1',
        [limit],
      ));
      return rows.map((r) => ({ atMs: r.at_ms, actor: r.actor, action: r.action, accountId: r.account_id, outcome: r.outcome }));
    },
    async setPasswordHash(id, hash) {
      const result = await storageFaultsOf(pool.query(
        'UPDATE accounts SET password_hash = $2 WHERE id = $1 AND deleted_at_ms IS NULL',
        [id, Buffer.from(hash)],
      ));
      return result.rowCount === 1;
    },
  };
}
