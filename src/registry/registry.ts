import type { HubConfig } from '../config.js';
import { HubError, Reason } from '../core/errors.js';
import type { AccountRole } from '../core/records.js';
import { createHash } from 'node:crypto';
import type { AccountEvent, AccountStore, ChangeFeed } from '../store/ports.js';
import { VerifiedCredentialCache, hashPassword, scryptCostOf, secretsEqual, verifyPassword } from './credentials.js';
import { LoginThrottle } from './login-throttle.js';
import { Revocations } from './revocations.js';
import { ACCOUNT_ID_PATTERN, newAccountId, newPassword } from '../core/ids.js';
import { RegistrationThrottle, WRONG_TOKEN_COST } from './registration-throttle.js';
import { type ScryptQueue, createScryptQueue } from './scrypt-queue.js';

export interface Account {
  id: string;
  role: AccountRole;
  /**
   * The stored hash the caller's password was verified against: RotatePassword replaces
   * exactly this hash (compare-and-set), so a rotation that lost a race, or one made with a
   * password another rotation already revoked, never reports a password that does not work.
   * Absent only in the bench mode that skips the password check.
   */
  verifiedHash?: Buffer;
}

export interface Registry {
  /**
   * Registers an account. `source` is the caller's address: registrations and wrong tokens
   * are throttled per source (REGISTRATION_THROTTLED), and the hash waits in the scrypt queue.
   * With a request id, a repeat within the idempotency window returns the same account with
   * a fresh password that replaces the earlier one (the hub keeps only hashes).
   */
  register(role: AccountRole, displayName: string, regionCode: string, token: string, source: string, requestId?: string): Promise<{ id: string; password: string }>;
  /** Checks `password` against the account's current hash (DeleteAccount's confirmation); UNAUTHENTICATED when wrong. */
  confirmPassword(account: Account, password: string, source: string): Promise<void>;
  /** Whether an operator suspended the account (read from the store; cached credentials do not hide it). */
  isSuspended(id: string): Promise<boolean>;
  /**
   * An account action committed (suspend, resume, delete): this node forgets the cached
   * credentials and ends the account's streams at once, every other node through the feed.
   */
  accountChanged(kind: AccountEvent['kind'], accountId: string): Promise<void>;
  /**
   * Resolves to the account, or throws UNAUTHENTICATED (same for unknown id and wrong
   * password; an id that is not an account id at all is refused before any scrypt work).
   * Throttled per (id, source) and per source (LOGIN_THROTTLED), queued (AUTH_BUSY).
   */
  authenticate(id: string, password: string, source: string): Promise<Account>;
  /**
   * Replaces the password; the old one stops working at once, and revocation watchers are
   * told. Compare-and-set on the hash the caller was verified against: of concurrent
   * rotations one wins, the others get ABORTED (ROTATION_CONFLICT).
   */
  rotatePassword(account: Account, source: string): Promise<string>;
  /**
   * Calls `onRevoked` when the account's password is rotated, so calls authenticated with the
   * old password (open streams) can be ended. Returns the function that stops watching.
   */
  watchRevocation(id: string, onRevoked: (cause: AccountEvent['kind']) => void): () => void;
  /**
   * A number that changes whenever the account's password is rotated (on any node): whoever
   * remembers a verified credential beyond the registry (middleware/auth.ts, per connection)
   * keeps the epoch it was verified at and drops the credential once it moved on.
   */
  credentialEpoch(id: string): number;
  /**
   * scrypt verifications run so far (a push with remembered credentials runs none); of those,
   * decoyVerifications ran against the decoy hash for an unknown id, and lastScryptCost is
   * the cost (log2 N) of the hash the latest one ran against: tests check that an unknown id
   * costs a full scrypt at the configured cost, like a known one.
   */
  readonly stats: { scryptVerifications: number; decoyVerifications: number; lastScryptCost: number };
  /** The scrypt queue's state (tests check that a flood was refused, not queued without bound). */
  readonly scryptQueue: ScryptQueue['stats'];
}

const UNAUTHENTICATED = () => new HubError(Reason.Unauthenticated, 'authorization: unknown id or wrong password');
// The id format is public (every delivered item carries ids), so refusing a malformed id
// early tells an attacker nothing, and it costs no scrypt.
const MALFORMED_ID = () =>
  new HubError(Reason.Unauthenticated, 'authorization: the id is not an account id (like M11-4829104729104829)');

/**
 * Accounts, credentials and their throttles. `feed` carries password rotations between hub
 * nodes: a rotation on any node makes every node forget the remembered credential and end
 * the streams opened with the old password.
 */
export function createRegistry(accounts: AccountStore, feed: Pick<ChangeFeed, 'onAccountEvent' | 'publishAccountEvent'>, config: HubConfig): Registry {
  const cache = new VerifiedCredentialCache();
  const throttle = new LoginThrottle(config.maxFailedLogins, config.maxFailedLoginsPerSource, config.failedLoginWindowMs);
  const registrations = new RegistrationThrottle(config.registrationRatePerSourcePerSec, config.registrationBurstPerSource);
  const queue = createScryptQueue({
    concurrency: config.scryptConcurrency,
    maxQueued: config.scryptQueueLimit,
    maxQueuedPerSource: config.scryptQueuePerSource,
  });
  // Roles of accounts seen, so a cached credential needs no database read.
  const roles = new Map<string, AccountRole>();
  // Concurrent first pushes with the same credentials share one scrypt run.
  const inFlight = new Map<string, Promise<Account>>();
  // Unknown ids are checked against this hash so they cost the same scrypt as known ones.
  const decoyHash = hashPassword(newPassword(), config.scryptLogN);

  // Open streams per account, told when the password they were opened with is rotated.
  const revocations = new Revocations();

  const stats = { scryptVerifications: 0, decoyVerifications: 0, lastScryptCost: 0 };

  // Rotations (and suspensions, deletions) per account seen by this node (see credentialEpoch).
  const epochs = new Map<string, number>();
  const revoke = (accountId: string, cause: AccountEvent['kind'] = 'password-rotated') => {
    epochs.set(accountId, (epochs.get(accountId) ?? 0) + 1);
    cache.forget(accountId);
    // A resumed account's streams have nothing to end; its cached credentials go all the same.
    if (cause !== 'resumed') revocations.revoke(accountId, cause);
  };
  feed.onAccountEvent((event) => revoke(event.accountId, event.kind));

  const throttled = (limit: 'pair' | 'source') =>
    new HubError(Reason.LoginThrottled,
      `authorization: too many failed logins ${limit === 'pair' ? 'for this id from this address' : 'from this address'}; retry in ${Math.ceil(config.failedLoginWindowMs / 1000)} s`,
    );

  async function verifyWithScrypt(id: string, password: string, digest: Buffer, source: string): Promise<Account> {
    const refused = throttle.tryBegin(id, source, Date.now());
    if (refused) throw throttled(refused);
    // The attempt counts against the throttle from here on, while it waits and while scrypt runs.
    let outcome: 'failed' | 'succeeded' | 'refused' | 'not-run' = 'not-run';
    try {
      const { account, ok, hash } = await queue
        .run(source, 'authorization', async () => {
          // Waited in the queue while its source failed out: refused without scrypt work.
          const since = throttle.throttledSince(id, source, Date.now());
          if (since) throw throttled(since);
          const found = await accounts.getAccount(id);
          // A deleted account is an unknown id: same answer, same scrypt cost.
          const account = found?.deletedAtMs === undefined ? found : undefined;
          const hash = account?.passwordHash ?? (await decoyHash);
          const ok = await verifyPassword(hash, password);
          return { account, ok, hash };
        })
        .catch((error: unknown) => {
          // AUTH_BUSY counts against the source that filled its share of the queue, as a
          // failure would: a flood of refused attempts ends in LOGIN_THROTTLED (no queue work)
          // instead of refusals forever.
          if (error instanceof HubError && error.reason === Reason.AuthBusy) outcome = 'refused';
          throw error;
        });
      stats.scryptVerifications++;
      if (!account) stats.decoyVerifications++;
      stats.lastScryptCost = scryptCostOf(hash);
      // Re-read: a rotation during the scrypt run must not let the old password in.
      const current = await accounts.getAccount(id);
      if (!account || !ok || !current || current.deletedAtMs !== undefined || !current.passwordHash.equals(account.passwordHash)) {
        outcome = 'failed';
        throw UNAUTHENTICATED();
      }
      outcome = 'succeeded';
      // "Last seen" for operators: a login, not every call (cached credentials cost no write).
      accounts.touch(id, Date.now()).catch(() => undefined);
      roles.set(id, account.role);
      return { id, role: account.role, verifiedHash: cache.remember(id, digest, account.passwordHash) };
    } finally {
      throttle.finish(id, source, outcome, Date.now());
    }
  }

  return {
    stats,
    scryptQueue: queue.stats,
    async register(role, displayName, regionCode, token, source, requestId = '') {
      registrations.check(source, Date.now());
      const required = role === 'merchant' ? config.merchantRegistrationToken : config.receiverRegistrationToken;
      if (required !== undefined && !secretsEqual(token, required)) {
        registrations.charge(source, WRONG_TOKEN_COST, Date.now());
        throw new HubError(Reason.RegistrationClosed, `registration_token: ${role} registration requires a valid token`);
      }
      // Charged before the hash: concurrent registrations from one source cannot all pass the check.
      registrations.charge(source, 1, Date.now());
      const password = newPassword();
      // Refused by a full queue (AUTH_BUSY), the registration stays charged: the refusal
      // counts against the source that caused it, so a flood of registrations is throttled.
      const passwordHash = await queue.run(source, 'registration', () => hashPassword(password, config.scryptLogN));
      // 10^16 ids per region: a collision is astronomically rare, but retry rather than fail.
      // Deleted accounts keep their rows, so their ids are never drawn again.
      for (let attempt = 0; attempt < 5; attempt++) {
        const id = newAccountId(role, regionCode);
        const account = { id, role, displayName, passwordHash, createdAtMs: Date.now() };
        if (requestId === '') {
          if (await accounts.insertAccount(account)) {
            roles.set(id, role);
            return { id, password };
          }
          continue;
        }
        // Only a hash of the request id is stored: it works like a password until it ages out.
        const requestHash = createHash('sha256').update(requestId).digest('hex');
        const digest = createHash('sha256').update(`${role}\n${regionCode}\n${displayName}`).digest('hex');
        const windowStart = Date.now() - config.idempotencyWindowMs;
        const { outcome, accountId } = await accounts.registerWithRequest(account, requestHash, digest, windowStart);
        if (outcome === 'id-taken') continue;
        if (outcome === 'reused') {
          throw new HubError(Reason.RequestIdReused, 'request_id: already used within 24 h for a registration with another role, region or name');
        }
        if (outcome === 'replaced') {
          // The lost reply's password stops working on every node, as a rotation's does.
          revoke(accountId);
          await feed.publishAccountEvent({ kind: 'password-rotated', accountId });
        }
        roles.set(accountId, role);
        return { id: accountId, password };
      }
      throw new Error('could not allocate a unique account id');
    },

    async authenticate(id, password, source) {
      if (!ACCOUNT_ID_PATTERN.test(id)) throw MALFORMED_ID();
      const digest = cache.digest(id, password);
      const verifiedHash = cache.lookup(id, digest);
      if (verifiedHash) return { id, role: roles.get(id)!, verifiedHash };
      const key = digest.toString('base64');
      let pending = inFlight.get(key);
      if (!pending) {
        pending = verifyWithScrypt(id, password, digest, source).finally(() => inFlight.delete(key));
        inFlight.set(key, pending);
      }
      return pending;
    },

    async rotatePassword(account, source) {
      const expected = account.verifiedHash ?? (await accounts.getAccount(account.id))?.passwordHash;
      if (!expected) throw UNAUTHENTICATED();
      const password = newPassword();
      const passwordHash = await queue.run(source, 'authorization', () => hashPassword(password, config.scryptLogN));
      // Compare-and-set in the database, so it also holds across hub processes on one file.
      if (!(await accounts.replacePasswordHash(account.id, expected, passwordHash))) {
        throw new HubError(Reason.RotationConflict,
          'authorization: the password was rotated by another call meanwhile; authenticate with the current password and retry',
        );
      }
      // This node at once, then every other node through the feed (revoking twice is harmless).
      revoke(account.id);
      await feed.publishAccountEvent({ kind: 'password-rotated', accountId: account.id });
      return password;
    },

    watchRevocation: (id, onRevoked) => revocations.watch(id, onRevoked),
    credentialEpoch: (id) => epochs.get(id) ?? 0,

    async confirmPassword(account, password, source) {
      const ok = await queue.run(source, 'authorization', async () => {
        const current = await accounts.getAccount(account.id);
        if (!current || current.deletedAtMs !== undefined) return false;
        return verifyPassword(current.passwordHash, password);
      });
      if (!ok) throw new HubError(Reason.Unauthenticated, 'password: does not match this account\'s password');
    },

    async isSuspended(id) {
      return (await accounts.getAccount(id))?.suspendedAtMs !== undefined;
    },

    async accountChanged(kind, accountId) {
      revoke(accountId, kind);
      await feed.publishAccountEvent({ kind, accountId });
    },

  };
}

