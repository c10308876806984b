import { randomUUID } from 'node:crypto';
import { type Credentials, type HubAddress, type TlsOptions, createHubChannel, createHubClient } from './connection.js';
import { Role } from './gen/pushhub/v1/pushhub.js';
import { DEFAULT_RETRY, withRetry } from './retry.js';
import { checkInteger, checkString } from './values.js';

/** Options for registering a new account. */
export interface RegisterOptions {
  /** A human-readable name, at most 200 characters. */
  displayName?: string;
  /** Two digits that become part of the id (default "00"). */
  regionCode?: string;
  /** Required when the hub was started with a registration token for this role. */
  registrationToken?: string;
  /** TLS settings when the hub serves TLS. */
  tls?: TlsOptions;
  /** Deadline of each attempt, in ms (default 10 000). */
  deadlineMs?: number;
}

/**
 * Registers an account on its own short-lived channel, retrying on UNAVAILABLE. Every attempt
 * carries one random request id, so a retry after a lost reply returns the same account, with
 * a fresh password that replaces the one whose reply was lost (the hub keeps only hashes); no
 * spare account is made.
 */
export async function registerAccount(address: HubAddress, role: Role, options: RegisterOptions = {}): Promise<Credentials> {
  // Types checked before the wire: a wrong one is INVALID_ARGUMENT naming the option.
  const path = '/pushhub.v1.PushHubService/Register';
  for (const name of ['displayName', 'regionCode', 'registrationToken'] as const) checkString(options[name], `options.${name}`, path);
  checkInteger(options.deadlineMs, 'options.deadlineMs', path, { min: 1 });
  const channel = createHubChannel(address, options.tls);
  // Random (122 bits): within 24 h the id works like a password for this registration.
  const requestId = randomUUID();
  try {
    const client = createHubClient(channel);
    const response = await withRetry(
      () =>
        client.register(
          {
            role,
            displayName: options.displayName ?? '',
            regionCode: options.regionCode ?? '',
            registrationToken: options.registrationToken ?? '',
            requestId,
          },
          { deadline: options.deadlineMs ?? 10_000 },
        ),
      DEFAULT_RETRY,
    );
    return { id: response.id, password: response.password };
  } finally {
    channel.close();
  }
}
