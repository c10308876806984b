import type pg from 'pg';
import type { AccountStore } from '../ports.js';
import type { AccountRecord, AccountRole } from '../../core/records.js';
import { inTransaction } from './connection.js';
import { storageFaultsOf } from './storage-fault.js';

interface AccountRow {
  id: string;
  role: AccountRole;
  display_name: string;
  password_hash: Buffer;
  created_at_ms: number;
  suspended_at_ms: number | null;
  deleted_at_ms: number | null;
  last_seen_at_ms: number | null;
}

export const ACCOUNT_COLUMNS = 'id, role, display_name, password_hash, created_at_ms, suspended_at_ms, deleted_at_ms, last_seen_at_ms';

export const toAccount = (row: AccountRow): AccountRecord => ({
  id: row.id,
  role: row.role,
  displayName: row.display_name,
  passwordHash: row.password_hash,
  createdAtMs: row.created_at_ms,
  ...(row.suspended_at_ms !== null && { suspendedAtMs: row.suspended_at_ms }),
  ...(row.deleted_at_ms !== null && { deletedAtMs: row.deleted_at_ms }),
  ...(row.last_seen_at_ms !== null && { lastSeenAtMs: row.last_seen_at_ms }),
});

/** Accounts on the node's shared pool; each method is one statement (autocommit). */
export function createPostgresAccountStore(pool: pg.Pool): AccountStore {
  return {
    async insertAccount(a: AccountRecord) {
      const result = await storageFaultsOf(pool.query({
        name: 'account-insert',
        text: `INSERT INTO accounts (id, role, display_name, password_hash, created_at_ms)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
        values: [a.id, a.role, a.displayName, a.passwordHash, a.createdAtMs],
      }));
      return result.rowCount === 1;
    },
    async getAccount(id: string) {
      const { rows } = await storageFaultsOf(pool.query<AccountRow>({
        name: 'account-get',
        text: `SELECT ${ACCOUNT_COLUMNS} FROM accounts WHERE id = $1`,
        values: [id],
      }));
      const row = rows[0];
      return row && toAccount(row);
    },
    async replacePasswordHash(id: string, expected: Uint8Array, next: Uint8Array) {
      // The compare runs in the UPDATE itself, so of two nodes rotating at once only one wins.
      const result = await storageFaultsOf(pool.query({
        name: 'account-replace-hash',
        text: 'UPDATE accounts SET password_hash = $3 WHERE id = $1 AND password_hash = $2',
        values: [id, Buffer.from(expected), Buffer.from(next)],
      }));
      return result.rowCount === 1;
    },
    async isReceiver(id: string) {
      const { rows } = await storageFaultsOf(pool.query({
        name: 'account-is-receiver',
        text: "SELECT 1 FROM accounts WHERE id = $1 AND role = 'receiver' AND deleted_at_ms IS NULL",
        values: [id],
      }));
      return rows.length > 0;
    },
    async touch(id, atMs) {
      await storageFaultsOf(pool.query({ name: 'account-touch', text: 'UPDATE accounts SET last_seen_at_ms = $2 WHERE id = $1', values: [id, atMs] }));
    },
    async listBlocks(receiverId) {
      const { rows } = await storageFaultsOf(pool.query<{ merchant_id: string; at_ms: number }>({
        name: 'blocks-of-receiver',
        text: "SELECT merchant_id, at_ms FROM bars WHERE receiver_id = $1 AND cause = 'blocked' ORDER BY at_ms, merchant_id",
        values: [receiverId],
      }));
      return rows.map((r) => ({ merchantId: r.merchant_id, atMs: r.at_ms }));
    },
    async suspendedMerchants() {
      const { rows } = await storageFaultsOf(pool.query<{ merchant_id: string }>(
        "SELECT merchant_id FROM bars WHERE receiver_id = '' AND cause = 'suspended'",
      ));
      return rows.map((r) => r.merchant_id);
    },
    async registerWithRequest(account, requestHash, digest, windowStartMs) {
      const client = await storageFaultsOf(pool.connect());
      try {
        return await storageFaultsOf(inTransaction(client, async () => {
          // The row lock on the request's hash serialises two retries of one registration.
          await client.query(
            `INSERT INTO registrations (request_hash, account_id, digest, created_at_ms) VALUES ($1, '', $2, $3)
             ON CONFLICT (request_hash) DO NOTHING`,
            [requestHash, digest, account.createdAtMs],
          );
          const known = (await client.query<{ account_id: string; digest: string; created_at_ms: number }>(
            'SELECT account_id, digest, created_at_ms FROM registrations WHERE request_hash = $1 FOR UPDATE',
            [requestHash],
          )).rows[0]!;
          if (known.account_id !== '' && known.created_at_ms >= windowStartMs) {
            const live = await client.query('SELECT 1 FROM accounts WHERE id = $1 AND deleted_at_ms IS NULL', [known.account_id]);
            if (live.rows.length > 0) {
              if (known.digest !== digest) return { outcome: 'reused' as const, accountId: known.account_id };
              await client.query('UPDATE accounts SET password_hash = $2 WHERE id = $1', [known.account_id, account.passwordHash]);
              return { outcome: 'replaced' as const, accountId: known.account_id };
            }
          }
          const inserted = await client.query(
            `INSERT INTO accounts (id, role, display_name, password_hash, created_at_ms)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
            [account.id, account.role, account.displayName, account.passwordHash, account.createdAtMs],
          );
          if (inserted.rowCount !== 1) return { outcome: 'id-taken' as const, accountId: account.id };
          await client.query(
            'UPDATE registrations SET account_id = $2, digest = $3, created_at_ms = $4 WHERE request_hash = $1',
            [requestHash, account.id, digest, account.createdAtMs],
          );
          return { outcome: 'created' as const, accountId: account.id };
        }));
      } finally {
        client.release();
      }
    },
  };
}
