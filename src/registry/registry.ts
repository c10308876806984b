import { Status } from 'nice-grpc';
import type { HubConfig } from '../config.js';
import { HubError, Reason } from '../errors.js';
import type { AccountRole, HubStore } from '../store/types.js';
import { FailedLoginThrottle, VerifiedCredentialCache, hashPassword, scryptCostOf, secretsEqual, verifyPassword } from './credentials.js';
import { newAccountId, newPassword } from './ids.js';

export interface Account {
  id: string;
  role: AccountRole;
}

export interface Registry {
  register(role: AccountRole, displayName: string, regionCode: string, token: string): Promise<{ id: string; password: string }>;
  /** Resolves to the account, or throws UNAUTHENTICATED (same for unknown id and wrong password). */
  authenticate(id: string, password: string): Promise<Account>;
  /** Replaces the password; the old one stops working at once, and revocation watchers are told. */
  rotatePassword(account: Account): Promise<string>;
  /**
   * Calls `onRevoked` when the account's password is rotated, so calls authenticated with the
   * old password (open streams) can be ended. Returns the function that stops watching.
   */
  watchRevocation(id: string, onRevoked: () => void): () => void;
  isReceiver(id: string): boolean;
  /**
   * scrypt verifications run so far (a push with remembered credentials runs none); of those,
   * decoyVerifications ran against the decoy hash for an unknown id, and lastScryptCost is
   * the cost (log2 N) of the hash the latest one ran against: tests check that an unknown id
   * costs a full scrypt at the configured cost, like a known one.
   */
  readonly stats: { scryptVerifications: number; decoyVerifications: number; lastScryptCost: number };
}

const UNAUTHENTICATED = () => new HubError(Status.UNAUTHENTICATED, Reason.Unauthenticated, 'authorization: unknown id or wrong password');

export function createRegistry(store: HubStore, config: HubConfig): Registry {
  const cache = new VerifiedCredentialCache();
  const throttle = new FailedLoginThrottle(config.maxFailedLogins, config.failedLoginWindowMs);
  // Roles of accounts seen, so a cached credential needs no database read.
  const roles = new Map<string, AccountRole>();
  // Concurrent first pushes with the same credentials share one scrypt run.
  const inFlight = new Map<string, Promise<Account>>();
  // Unknown ids are checked against this hash so they cost the same scrypt as known ones.
  const decoyHash = hashPassword(newPassword(), config.scryptLogN);

  // Open streams per account, told when the password they were opened with is rotated.
  const revocationWatchers = new Map<string, Set<() => void>>();

  const stats = { scryptVerifications: 0, decoyVerifications: 0, lastScryptCost: 0 };

  async function verifyWithScrypt(id: string, password: string, digest: Buffer): Promise<Account> {
    const now = Date.now();
    if (throttle.isThrottled(id, now)) {
      throw new HubError(Status.RESOURCE_EXHAUSTED, Reason.LoginThrottled, `authorization: too many failed logins for this id; retry in ${Math.ceil(config.failedLoginWindowMs / 1000)} s`);
    }
    const account = store.getAccount(id);
    const hash = account?.passwordHash ?? (await decoyHash);
    const ok = await verifyPassword(hash, password);
    stats.scryptVerifications++;
    if (!account) stats.decoyVerifications++;
    stats.lastScryptCost = scryptCostOf(hash);
    // Re-read: a rotation during the scrypt run must not let the old password in.
    const current = store.getAccount(id);
    if (!account || !ok || !current || !current.passwordHash.equals(account.passwordHash)) {
      throttle.recordFailure(id, Date.now());
      throw UNAUTHENTICATED();
    }
    throttle.recordSuccess(id);
    roles.set(id, account.role);
    cache.remember(id, digest);
    return { id, role: account.role };
  }

  return {
    stats,
    async register(role, displayName, regionCode, token) {
      const required = role === 'merchant' ? config.merchantRegistrationToken : config.receiverRegistrationToken;
      if (required !== undefined && !secretsEqual(token, required)) {
        throw new HubError(Status.PERMISSION_DENIED, Reason.RegistrationClosed, `registration_token: ${role} registration requires a valid token`);
      }
      const password = newPassword();
      const passwordHash = await hashPassword(password, config.scryptLogN);
      // 10^16 ids per region: a collision is astronomically rare, but retry rather than fail.
      for (let attempt = 0; attempt < 5; attempt++) {
        const id = newAccountId(role, regionCode);
        if (store.insertAccount({ id, role, displayName, passwordHash, createdAtMs: Date.now() })) {
          roles.set(id, role);
          return { id, password };
        }
      }
      throw new Error('could not allocate a unique account id');
    },

    async authenticate(id, password) {
      const digest = cache.digest(id, password);
      if (cache.matches(id, digest)) return { id, role: roles.get(id)! };
      const key = digest.toString('base64');
      let pending = inFlight.get(key);
      if (!pending) {
        pending = verifyWithScrypt(id, password, digest).finally(() => inFlight.delete(key));
        inFlight.set(key, pending);
      }
      return pending;
    },

    async rotatePassword(account) {
      const password = newPassword();
      const passwordHash = await hashPassword(password, config.scryptLogN);
      store.updatePasswordHash(account.id, passwordHash);
      cache.forget(account.id);
      for (const onRevoked of revocationWatchers.get(account.id) ?? []) onRevoked();
      return password;
    },

    watchRevocation(id, onRevoked) {
      let watchers = revocationWatchers.get(id);
      if (!watchers) revocationWatchers.set(id, (watchers = new Set()));
      watchers.add(onRevoked);
      return () => {
        watchers.delete(onRevoked);
        if (watchers.size === 0 && revocationWatchers.get(id) === watchers) revocationWatchers.delete(id);
      };
    },

    isReceiver: (id) => {
      const role = roles.get(id);
      if (role !== undefined) return role === 'receiver';
      return store.isReceiver(id);
    },
  };
}

