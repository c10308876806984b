/** Why an account's open streams end. */
export type RevocationCause = 'password-rotated' | 'suspended' | 'resumed' | 'deleted';

/**
 * Open streams per account, each told when the password it was opened with is rotated (on
 * this node or, through the feed, on another), so a stream opened with a leaked password does
 * not outlive the rotation.
 */
export class Revocations {
  private readonly watchers = new Map<string, Set<(cause: RevocationCause) => void>>();

  /** Calls onRevoked at the account's next rotation (or suspension, deletion); returns the function that stops watching. */
  watch(accountId: string, onRevoked: (cause: RevocationCause) => void): () => void {
    let watchers = this.watchers.get(accountId);
    if (!watchers) this.watchers.set(accountId, (watchers = new Set()));
    watchers.add(onRevoked);
    return () => {
      watchers.delete(onRevoked);
      if (watchers.size === 0 && this.watchers.get(accountId) === watchers) this.watchers.delete(accountId);
    };
  }

  revoke(accountId: string, cause: RevocationCause = 'password-rotated'): void {
    for (const onRevoked of [...(this.watchers.get(accountId) ?? [])]) onRevoked(cause);
  }
}
