/**
 * The operators' queries (pushhub admin, abuse metrics), written once for both backends: the
 * schemas hold the same tables and columns, and `param` spells a parameter the backend's way
 * (SQLite `@name`, PostgreSQL `$n`). Reads only; every write goes through the committer.
 */
import type { AccountRole } from '../core/records.js';
import type { AccountQuery, AccountSummary, HubTotals } from './ports.js';

/** The parameters of accountListSql, in the order PostgreSQL numbers them. */
export const ACCOUNT_LIST_PARAMS = ['now', 'role', 'created', 'active', 'search', 'deleted', 'minItems', 'id', 'limit'] as const;

export function accountListParams(q: Partial<AccountQuery> & { nowMs: number; limit: number }, id?: string): Record<(typeof ACCOUNT_LIST_PARAMS)[number], string | number | null> {
  return {
    now: q.nowMs,
    role: q.role ?? null,
    created: q.createdSinceMs ?? null,
    active: q.activeSinceMs ?? null,
    search: q.search === undefined ? null : `%${q.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`,
    deleted: q.includeDeleted || id !== undefined ? 1 : 0,
    minItems: q.minItems ?? 0,
    id: id ?? null,
    limit: q.limit,
  };
}

/**
 * Accounts with their live items (a merchant's own, a receiver's specific ones) and blocks
 * (receivers blocking a merchant, merchants a receiver blocks), newest first.
 */
export function accountListSql(param: (name: (typeof ACCOUNT_LIST_PARAMS)[number], type: 'int' | 'text') => string): string {
  const p = param;
  return `SELECT * FROM (
    SELECT a.id, a.role, a.display_name, a.created_at_ms, a.suspended_at_ms, a.deleted_at_ms, a.last_seen_at_ms,
      CASE WHEN a.role = 'merchant'
        THEN (SELECT count(*) FROM changes c WHERE c.merchant_id = a.id AND c.kind = 1 AND c.valid_until_ms > ${p('now', 'int')})
        ELSE (SELECT count(*) FROM changes c WHERE c.receiver_id = a.id AND c.kind = 1 AND c.valid_until_ms > ${p('now', 'int')}) END AS live_items,
      CASE WHEN a.role = 'merchant'
        THEN (SELECT count(*) FROM bars b WHERE b.merchant_id = a.id AND b.cause = 'blocked')
        ELSE (SELECT count(*) FROM bars b WHERE b.receiver_id = a.id AND b.cause = 'blocked') END AS blocks
    FROM accounts a
    WHERE (${p('role', 'text')} IS NULL OR a.role = ${p('role', 'text')})
      AND (${p('created', 'int')} IS NULL OR a.created_at_ms >= ${p('created', 'int')})
      AND (${p('active', 'int')} IS NULL OR a.last_seen_at_ms >= ${p('active', 'int')})
      AND (${p('search', 'text')} IS NULL OR a.id LIKE ${p('search', 'text')} ESCAPE '\\' OR a.display_name LIKE ${p('search', 'text')} ESCAPE '\\')
      AND (${p('deleted', 'int')} = 1 OR a.deleted_at_ms IS NULL)
      AND (${p('id', 'text')} IS NULL OR a.id = ${p('id', 'text')})
  ) AS listed
  WHERE live_items >= ${p('minItems', 'int')}
  ORDER BY created_at_ms DESC, id
  LIMIT ${p('limit', 'int')}`;
}

export interface AccountListRow {
  id: string;
  role: AccountRole;
  display_name: string;
  created_at_ms: number;
  suspended_at_ms: number | null;
  deleted_at_ms: number | null;
  last_seen_at_ms: number | null;
  live_items: number | string;
  blocks: number | string;
}

export const toSummary = (r: AccountListRow): AccountSummary => ({
  id: r.id,
  role: r.role,
  displayName: r.display_name,
  createdAtMs: Number(r.created_at_ms),
  ...(r.suspended_at_ms !== null && { suspendedAtMs: Number(r.suspended_at_ms) }),
  ...(r.deleted_at_ms !== null && { deletedAtMs: Number(r.deleted_at_ms) }),
  ...(r.last_seen_at_ms !== null && { lastSeenAtMs: Number(r.last_seen_at_ms) }),
  liveItems: Number(r.live_items),
  blocks: Number(r.blocks),
});

/** The hub's totals; `now` is the one parameter. */
export function totalsSql(now: string): string {
  return `SELECT
    (SELECT count(*) FROM accounts WHERE role = 'merchant' AND deleted_at_ms IS NULL) AS merchants,
    (SELECT count(*) FROM accounts WHERE role = 'receiver' AND deleted_at_ms IS NULL) AS receivers,
    (SELECT count(*) FROM accounts WHERE suspended_at_ms IS NOT NULL AND deleted_at_ms IS NULL) AS suspended,
    (SELECT count(*) FROM accounts WHERE deleted_at_ms IS NOT NULL) AS deleted,
    (SELECT count(*) FROM changes WHERE kind = 1 AND valid_until_ms > ${now}) AS live_items,
    (SELECT count(*) FROM changes WHERE kind = 1 AND receiver_id = '' AND valid_until_ms > ${now}) AS live_public_items,
    (SELECT count(*) FROM bars WHERE cause = 'blocked') AS blocks`;
}

export const toTotals = (r: Record<string, number | string>, headSequence: number): HubTotals => ({
  merchants: Number(r.merchants),
  receivers: Number(r.receivers),
  suspended: Number(r.suspended),
  deleted: Number(r.deleted),
  liveItems: Number(r.live_items),
  livePublicItems: Number(r.live_public_items),
  blocks: Number(r.blocks),
  headSequence,
});

export const MOST_BLOCKED_SQL = (limit: string) =>
  `SELECT merchant_id, count(*) AS n FROM bars WHERE cause = 'blocked' GROUP BY merchant_id ORDER BY n DESC, merchant_id LIMIT ${limit}`;
