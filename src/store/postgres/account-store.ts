import type pg from 'pg';
import type { AccountStore } from '../ports.js';
import type { AccountRecord, AccountRole } from '../../core/records.js';
import { storageFaultsOf } from './storage-fault.js';

interface AccountRow {
  id: string;
  role: AccountRole;
  display_name: string;
  password_hash: Buffer;
  created_at_ms: number;
}

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
        text: 'SELECT id, role, display_name, password_hash, created_at_ms FROM accounts WHERE id = $1',
        values: [id],
      }));
      const row = rows[0];
      if (!row) return undefined;
      return {
        id: row.id,
        role: row.role,
        displayName: row.display_name,
        passwordHash: row.password_hash,
        createdAtMs: row.created_at_ms,
      };
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
        text: "SELECT 1 FROM accounts WHERE id = $1 AND role = 'receiver'",
        values: [id],
      }));
      return rows.length > 0;
    },
  };
}
