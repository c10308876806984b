import { parseArgs } from 'node:util';

/** Everything the hub can be configured with; one typed object, built once in main. */
export interface HubConfig {
  /** host:port to listen on. */
  address: string;
  /** SQLite database file; created (with its folder) on first run. */
  dbPath: string;
  /** scrypt cost as log2(N). 15 costs ~60 ms per hash here: strong, and verified once per credential. */
  scryptLogN: number;
  /** Lifetime of an item pushed without valid_until, in ms (30 days). */
  defaultItemLifetimeMs: number;
  /** Interval between heartbeats on a quiet Subscribe stream, in ms (30 s). */
  heartbeatIntervalMs: number;
  /** Events a subscriber may have queued before its stream is ended with RESOURCE_EXHAUSTED. */
  subscriberBufferLimit: number;
  /** How long a request_id is remembered for idempotent retries, in ms (24 h). */
  idempotencyWindowMs: number;
  /** How often expired items, tombstones and old request ids are purged, in ms (1 min). */
  purgeIntervalMs: number;
  /** Largest gRPC message accepted, in bytes (64 KiB: a push is at most ~12 KiB of content). */
  maxMessageBytes: number;
  /** Largest request metadata accepted, keys plus values, in bytes (16 KiB: credentials need ~100). */
  maxMetadataBytes: number;
  /** When set, registering a merchant requires this token. Default: open registration. */
  merchantRegistrationToken?: string;
  /** When set, registering a receiver requires this token. Default: open registration. */
  receiverRegistrationToken?: string;
  /**
   * Pushes (and withdrawals) per second one merchant may make (token bucket, burst = 2 s
   * worth); 0 = unlimited. Default 1,000/s: far above any real merchant's steady rate, and it
   * keeps one merchant (registration is open by default) from filling the disk or the log.
   */
  merchantPushRatePerSec: number;
  /**
   * Live public items one merchant may have; a public push past it gets RESOURCE_EXHAUSTED
   * (PUBLIC_ITEM_LIMIT); replacing one by key does not count twice. 0 = unlimited. Default
   * 1,000: every receiver's snapshot holds every merchant's public items, so this bounds
   * what one merchant adds to it (at most 1,000 items of ~12.5 KiB each, ~12 MiB).
   */
  maxPublicItemsPerMerchant: number;
  /** Concurrent Subscribe streams per receiver; more get RESOURCE_EXHAUSTED. */
  maxStreamsPerReceiver: number;
  /** Failed logins per id inside failedLoginWindowMs before further attempts are throttled. */
  maxFailedLogins: number;
  /** Window for counting failed logins, in ms (1 min); the throttle lifts when it passes. */
  failedLoginWindowMs: number;
  /** PEM certificate and key files; when both are set the hub serves TLS. */
  tlsCertPath?: string;
  tlsKeyPath?: string;
  /**
   * Bench only, never on in production: authenticate calls by the id in their credentials
   * without checking the password, so `npm run bench` can measure what the check costs.
   */
  insecureBenchSkipPasswordCheck: boolean;
}

export const DEFAULT_CONFIG: HubConfig = {
  address: '127.0.0.1:50051',
  dbPath: './data/pushhub.db',
  scryptLogN: 15,
  defaultItemLifetimeMs: 30 * 24 * 3600 * 1000,
  heartbeatIntervalMs: 30_000,
  subscriberBufferLimit: 10_000,
  idempotencyWindowMs: 24 * 3600 * 1000,
  purgeIntervalMs: 60_000,
  maxMessageBytes: 64 * 1024,
  maxMetadataBytes: 16 * 1024,
  merchantPushRatePerSec: 1000,
  maxPublicItemsPerMerchant: 1000,
  maxStreamsPerReceiver: 8,
  maxFailedLogins: 10,
  failedLoginWindowMs: 60_000,
  insecureBenchSkipPasswordCheck: false,
};

/**
 * Builds the config from command-line flags, then PUSHHUB_* environment variables, then
 * defaults. The only place that reads the environment.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): HubConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      address: { type: 'string' },
      db: { type: 'string' },
      'scrypt-log-n': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'merchant-registration-token': { type: 'string' },
      'receiver-registration-token': { type: 'string' },
      'merchant-push-rate': { type: 'string' },
      'max-public-items-per-merchant': { type: 'string' },
      'max-streams-per-receiver': { type: 'string' },
      'max-failed-logins': { type: 'string' },
      'subscriber-buffer-limit': { type: 'string' },
      'failed-login-window-ms': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'insecure-bench-skip-password-check': { type: 'boolean' },
    },
    strict: true,
  });
  const pick = (flag: string | undefined, envName: string) => flag ?? env[envName] ?? undefined;
  const num = (value: string | undefined, fallback: number, name: string) => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${value}"`);
    return n;
  };
  const tlsCertPath = pick(values['tls-cert'], 'PUSHHUB_TLS_CERT');
  const tlsKeyPath = pick(values['tls-key'], 'PUSHHUB_TLS_KEY');
  // One without the other would silently serve plaintext: refuse to start instead.
  if ((tlsCertPath === undefined) !== (tlsKeyPath === undefined)) {
    throw new Error('--tls-cert and --tls-key must be given together (or neither, for plaintext)');
  }
  return {
    ...DEFAULT_CONFIG,
    address: pick(values.address, 'PUSHHUB_ADDRESS') ?? DEFAULT_CONFIG.address,
    dbPath: pick(values.db, 'PUSHHUB_DB') ?? DEFAULT_CONFIG.dbPath,
    scryptLogN: num(pick(values['scrypt-log-n'], 'PUSHHUB_SCRYPT_LOG_N'), DEFAULT_CONFIG.scryptLogN, 'scrypt-log-n'),
    heartbeatIntervalMs: num(pick(values['heartbeat-ms'], 'PUSHHUB_HEARTBEAT_MS'), DEFAULT_CONFIG.heartbeatIntervalMs, 'heartbeat-ms'),
    merchantRegistrationToken: pick(values['merchant-registration-token'], 'PUSHHUB_MERCHANT_REGISTRATION_TOKEN'),
    receiverRegistrationToken: pick(values['receiver-registration-token'], 'PUSHHUB_RECEIVER_REGISTRATION_TOKEN'),
    merchantPushRatePerSec: num(pick(values['merchant-push-rate'], 'PUSHHUB_MERCHANT_PUSH_RATE'), DEFAULT_CONFIG.merchantPushRatePerSec, 'merchant-push-rate'),
    maxPublicItemsPerMerchant: num(pick(values['max-public-items-per-merchant'], 'PUSHHUB_MAX_PUBLIC_ITEMS_PER_MERCHANT'), DEFAULT_CONFIG.maxPublicItemsPerMerchant, 'max-public-items-per-merchant'),
    maxStreamsPerReceiver: num(pick(values['max-streams-per-receiver'], 'PUSHHUB_MAX_STREAMS_PER_RECEIVER'), DEFAULT_CONFIG.maxStreamsPerReceiver, 'max-streams-per-receiver'),
    subscriberBufferLimit: num(pick(values['subscriber-buffer-limit'], 'PUSHHUB_SUBSCRIBER_BUFFER_LIMIT'), DEFAULT_CONFIG.subscriberBufferLimit, 'subscriber-buffer-limit'),
    maxFailedLogins: num(pick(values['max-failed-logins'], 'PUSHHUB_MAX_FAILED_LOGINS'), DEFAULT_CONFIG.maxFailedLogins, 'max-failed-logins'),
    failedLoginWindowMs: num(pick(values['failed-login-window-ms'], 'PUSHHUB_FAILED_LOGIN_WINDOW_MS'), DEFAULT_CONFIG.failedLoginWindowMs, 'failed-login-window-ms'),
    tlsCertPath,
    tlsKeyPath,
    // A flag only (no environment variable), so it cannot be switched on by accident.
    insecureBenchSkipPasswordCheck: values['insecure-bench-skip-password-check'] === true,
  };
}
