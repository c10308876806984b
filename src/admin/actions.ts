import { userInfo, hostname } from 'node:os';
import { HubError, Reason } from '../core/errors.js';
import { newPassword } from '../core/ids.js';
import type { AccountOp, WriteAck } from '../core/write-ops.js';
import { hashPassword } from '../registry/credentials.js';
import type { AccountEvent, AccountQuery, AccountSummary, AdminLogEntry, AdminStore, HubTotals } from '../store/ports.js';

/** What an operator can do (`pushhub admin`), the same on both backends and through a hub's admin socket. */
export interface AdminActions {
  list(q: Omit<AccountQuery, 'nowMs'>): Promise<AccountSummary[]>;
  show(id: string): Promise<AccountSummary & { recentActions: AdminLogEntry[] }>;
  suspend(id: string): Promise<AccountSummary>;
  resume(id: string): Promise<AccountSummary>;
  delete(id: string): Promise<AccountSummary>;
  /** A new password, returned once (printed once by the command); the old one stops working at once. */
  rotate(id: string): Promise<{ id: string; password: string }>;
  stats(): Promise<HubTotals & { mostBlocked: { merchantId: string; blocks: number }[] }>;
}

export type AdminCommand = 'list' | 'show' | 'suspend' | 'resume' | 'delete' | 'rotate' | 'stats';

export interface AdminDeps {
  admin: AdminStore;
  /** The commit path (a hub's queue, or the command's own): account actions take sequences. */
  submit(op: AccountOp): Promise<WriteAck>;
  /** Tells every node (this one at once): cached credentials go, streams end. */
  accountChanged(kind: AccountEvent['kind'], accountId: string): Promise<void>;
  scryptLogN: number;
  now: () => number;
  /** Who acts: "user@host" of the operator (logged with every action, never a secret). */
  actor: string;
  /** Each action, as logged (also written to the admin log table). */
  onAction?: (entry: AdminLogEntry) => void;
  /** Counted in pushhub_account_actions_total when the hub runs the action. */
  onMetric?: (action: string) => void;
}

/** "user@host", the operator as the OS knows them. */
export function defaultActor(): string {
  let user = process.env.SUDO_USER ?? '';
  if (user === '') {
    try {
      user = userInfo().username;
    } catch {
      user = `uid ${process.getuid?.() ?? '?'}`;
    }
  }
  return `${user}@${hostname()}`;
}

const notFound = (id: string) => new HubError(Reason.AccountNotFound, `id: no account ${id}`);

export function createAdminActions(deps: AdminDeps): AdminActions {
  const { admin } = deps;
  const account = async (id: string, allowDeleted = false) => {
    const found = await admin.showAccount(id, deps.now());
    if (!found || (!allowDeleted && found.deletedAtMs !== undefined)) throw notFound(id);
    return found;
  };
  /** Runs an action and logs it (who, what, when, which account, outcome), whatever the outcome. */
  const logged = async <T>(action: string, accountId: string, run: () => Promise<T>): Promise<T> => {
    let outcome = 'ok';
    try {
      return await run();
    } catch (error) {
      outcome = `failed: ${error instanceof HubError ? error.reason : 'internal error'}`;
      throw error;
    } finally {
      const entry = { atMs: deps.now(), actor: deps.actor, action, accountId, outcome };
      deps.onAction?.(entry);
      deps.onMetric?.(action);
      await admin.logAction(entry).catch(() => undefined);
    }
  };
  const op = (kind: AccountOp['kind'], accountId: string): AccountOp => ({ kind, accountId, merchantId: '', requestId: '', requestDigest: '' });

  return {
    list: (q) => admin.listAccounts({ ...q, nowMs: deps.now() }),
    async show(id) {
      const found = await account(id, true);
      const recentActions = (await admin.recentActions(200)).filter((e) => e.accountId === id).slice(0, 10);
      return { ...found, recentActions };
    },
    suspend: (id) =>
      logged('suspend', id, async () => {
        await account(id);
        await deps.submit(op('suspend', id));
        await deps.accountChanged('suspended', id);
        return account(id);
      }),
    resume: (id) =>
      logged('resume', id, async () => {
        await account(id);
        await deps.submit(op('resume', id));
        await deps.accountChanged('resumed', id);
        return account(id);
      }),
    delete: (id) =>
      logged('delete', id, async () => {
        await account(id);
        await deps.submit(op('delete', id));
        await deps.accountChanged('deleted', id);
        return account(id, true);
      }),
    rotate: (id) =>
      logged('rotate', id, async () => {
        await account(id);
        const password = newPassword();
        if (!(await admin.setPasswordHash(id, await hashPassword(password, deps.scryptLogN)))) throw notFound(id);
        // The old password stops working on every node, and streams opened with it end.
        await deps.accountChanged('password-rotated', id);
        return { id, password };
      }),
    async stats() {
      return { ...(await admin.totals(deps.now())), mostBlocked: await admin.mostBlocked(10) };
    },
  };
}
