import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';

/** Everything the hub can be configured with; one typed object, built once in main. */
export interface HubConfig {
  /** host:port to listen on. */
  address: string;
  /** SQLite database file; created (with its folder) on first run. */
  dbPath: string;
  /**
   * PostgreSQL URL (postgres://user:pass@host:port/db): when set, the hub stores everything
   * there instead of in the SQLite file, and several hubs may share it (a cluster).
   */
  databaseUrl?: string;
  /** scrypt cost as log2(N). 15 costs ~60 ms per hash here: strong, and verified once per credential. */
  scryptLogN: number;
  /** Lifetime of an item pushed without valid_until, in ms (30 days). */
  defaultItemLifetimeMs: number;
  /** Interval between heartbeats on a quiet Subscribe stream, in ms (30 s). */
  heartbeatIntervalMs: number;
  /** Events a subscriber may have queued before its stream is ended with RESOURCE_EXHAUSTED. */
  subscriberBufferLimit: number;
  /**
   * Bytes of encoded events a subscriber may have queued (1 MiB), checked with
   * subscriberBufferLimit: a stream that stops reading holds at most this much live data.
   */
  subscriberBufferBytes: number;
  /**
   * A Subscribe stream whose client accepts no data for this long is reset, in ms (60 s).
   * The stream's memory is then freed; a healthy client reads at least every heartbeat.
   */
  subscriberStallTimeoutMs: number;
  /** Open TCP connections the hub accepts; past it new ones are refused at accept (10,000). */
  maxConnections: number;
  /**
   * Open TCP connections from one source address (an IPv4 address or an IPv6 /64) (1,000):
   * one address cannot take every slot, and a carrier NAT address fronting many devices still
   * fits. Trusted proxies are exempt (they carry many clients).
   */
  maxConnectionsPerSource: number;
  /** A connection that has not sent the HTTP/2 preface within this time is closed, in ms (10 s). */
  handshakeTimeoutMs: number;
  /**
   * A call whose request message has not fully arrived this long after the call started is
   * ended with DEADLINE_EXCEEDED (REQUEST_TIMEOUT), in ms (10 s): a call that never completes
   * its request cannot hold a connection open. Request streams (PushStream) are exempt.
   */
  requestTimeoutMs: number;
  /**
   * Peers (addresses or CIDR blocks) whose `X-Real-IP` / `X-Forwarded-For` names the client
   * for every per-source limit; none by default, so a forwarded header changes nothing.
   */
  trustedProxies: string[];
  /** A connection with no open call for this long is closed with GOAWAY, in ms (5 min). */
  connectionIdleTimeoutMs: number;
  /** Concurrent streams on one HTTP/2 connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxStreamsPerConnection: number;
  /**
   * Concurrent unauthenticated streams (Health/Watch, reflection) in total and per source
   * address; past either, RESOURCE_EXHAUSTED. Nobody anonymous can hold unbounded memory.
   */
  maxAnonymousStreams: number;
  maxAnonymousStreamsPerSource: number;
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
  /**
   * ConfirmDelivery calls per second per receiver (10, burst 2 s worth; 0 = unlimited). The
   * SDK confirms about once a second; a resume confirms too and is never refused.
   */
  receiptConfirmRatePerSec: number;
  /**
   * GetDeliveryStatus calls per second per merchant (20, burst 2 s worth; 0 = unlimited): up
   * to 20,000 item states a second, for polling dashboards; WatchDeliveries is the live path.
   */
  receiptStatusRatePerSec: number;
  /** Concurrent WatchDeliveries streams per merchant (8); more get RESOURCE_EXHAUSTED TOO_MANY_STREAMS. */
  maxWatchStreamsPerMerchant: number;
  /**
   * How long expired items (and their receipts) stay stored past valid_until, in ms (1 h), so
   * a merchant can still read EXPIRED_BEFORE_DELIVERY or DELIVERED after the item ended.
   * Never delivered: every read filters on valid_until.
   */
  endedItemRetentionMs: number;
  /**
   * Failed logins (plus attempts in flight) per (id, source address) inside
   * failedLoginWindowMs before that pair is throttled (10). Never per id alone: ids are
   * public, so a per-id limit would let anyone lock the owner out.
   */
  maxFailedLogins: number;
  /**
   * Failed logins (plus attempts in flight) per source address, any ids, inside
   * failedLoginWindowMs before that address is throttled (100): caps guessing across ids.
   */
  maxFailedLoginsPerSource: number;
  /** Window for counting failed logins, in ms (1 min); the throttle lifts when it passes. */
  failedLoginWindowMs: number;
  /**
   * scrypt runs at once, all kinds together (logins, decoys, registrations, rotations) (2):
   * leaves CPU for the event loop and the commit worker, so remembered credentials stay fast.
   */
  scryptConcurrency: number;
  /** scrypt runs waiting in all (64, ~2 s of work at logN 15); more get RESOURCE_EXHAUSTED AUTH_BUSY. */
  scryptQueueLimit: number;
  /**
   * scrypt runs one source address keeps waiting once the queue is full (8): below it, it takes
   * the place of the heaviest source's newest run; at it, AUTH_BUSY. While the queue has room a
   * source may queue more (a burst of logins from one NAT or proxy address).
   */
  scryptQueuePerSource: number;
  /**
   * Registrations per second per source address, sustained (1; 0 = unlimited). A wrong
   * registration token costs 10 registrations: guessing is 10 times slower than registering.
   */
  registrationRatePerSourcePerSec: number;
  /** Registrations one source address may make at once before the rate applies (10). */
  registrationBurstPerSource: number;
  /**
   * Files holding the registration tokens (the whole file, one trailing newline dropped):
   * for systemd's LoadCredential= and other secret stores, and so the token is not in `ps`.
   * Read once at start; the token is then as if given with the flag above.
   */
  merchantRegistrationTokenFile?: string;
  receiverRegistrationTokenFile?: string;
  /**
   * Secure by default (issue 16): on an address other than loopback the hub refuses to start
   * in plaintext unless this is set, because Basic credentials would cross the network in clear.
   */
  insecurePlaintext: boolean;
  /**
   * Secure by default: on an address other than loopback, a role without a registration token
   * is refused unless this is set (anyone who reaches the port could register accounts).
   */
  openRegistration: boolean;
  /** PEM certificate and key files; when both are set the hub serves TLS. */
  tlsCertPath?: string;
  tlsKeyPath?: string;
  /** Least severe log level written (pino levels); `info` logs start, stop and every rejection worth a look. */
  logLevel: LogLevel;
  /** host:port serving Prometheus `/metrics` over plain HTTP; unset = no metrics endpoint. */
  metricsAddress?: string;
  /**
   * Bench only, never on in production: authenticate calls by the id in their credentials
   * without checking the password, so `npm run bench` can measure what the check costs.
   */
  insecureBenchSkipPasswordCheck: boolean;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_CONFIG: HubConfig = {
  address: '127.0.0.1:50051',
  dbPath: './data/pushhub.db',
  scryptLogN: 15,
  defaultItemLifetimeMs: 30 * 24 * 3600 * 1000,
  heartbeatIntervalMs: 30_000,
  subscriberBufferLimit: 10_000,
  subscriberBufferBytes: 1024 * 1024,
  subscriberStallTimeoutMs: 60_000,
  maxConnections: 10_000,
  maxConnectionsPerSource: 1000,
  handshakeTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  trustedProxies: [],
  connectionIdleTimeoutMs: 5 * 60_000,
  maxStreamsPerConnection: 1000,
  maxAnonymousStreams: 1000,
  maxAnonymousStreamsPerSource: 32,
  idempotencyWindowMs: 24 * 3600 * 1000,
  purgeIntervalMs: 60_000,
  maxMessageBytes: 64 * 1024,
  maxMetadataBytes: 16 * 1024,
  merchantPushRatePerSec: 1000,
  maxPublicItemsPerMerchant: 1000,
  maxStreamsPerReceiver: 8,
  receiptConfirmRatePerSec: 10,
  receiptStatusRatePerSec: 20,
  maxWatchStreamsPerMerchant: 8,
  endedItemRetentionMs: 3600 * 1000,
  maxFailedLogins: 10,
  maxFailedLoginsPerSource: 100,
  failedLoginWindowMs: 60_000,
  logLevel: 'info',
  scryptConcurrency: 2,
  scryptQueueLimit: 64,
  scryptQueuePerSource: 8,
  registrationRatePerSourcePerSec: 1,
  registrationBurstPerSource: 10,
  insecureBenchSkipPasswordCheck: false,
  insecurePlaintext: false,
  openRegistration: false,
};

/** A command line or environment the hub refuses to start with; the message says why and how to fix it. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** How a value is read from its flag or environment variable, and what it must satisfy. */
type OptionKind =
  | { type: 'integer'; min: number; max: number; unit?: string }
  | { type: 'address' }
  | { type: 'string'; secret?: boolean }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'boolean' }
  /** Repeatable flag; the environment variable holds a comma-separated list. */
  | { type: 'cidr-list' };

/** One row of the options table: parsing, validation and --help are all derived from these. */
export interface OptionSpec {
  key: keyof HubConfig;
  /** Command-line flag without the leading dashes. */
  flag: string;
  /** Environment variable; absent for flags that must never be switched on by accident. */
  env?: string;
  kind: OptionKind;
  /** One line for --help: what it does and, where it matters, why the default is what it is. */
  doc: string;
}

const int = (min: number, max: number, unit?: string): OptionKind => ({ type: 'integer', min, max, unit });

/**
 * The options table. To add an option: a field in HubConfig, its default in DEFAULT_CONFIG,
 * and one row here. Ranges are "sane", not tight: they catch typos (`--heartbeat-ms 0`,
 * seconds given as ms) without second-guessing an operator.
 */
export const OPTIONS: readonly OptionSpec[] = [
  { key: 'address', flag: 'address', env: 'PUSHHUB_ADDRESS', kind: { type: 'address' }, doc: 'gRPC listen address, HOST:PORT (IPv6 as [::1]:50051; port 0 picks a free one)' },
  { key: 'dbPath', flag: 'db', env: 'PUSHHUB_DB', kind: { type: 'string' }, doc: 'SQLite database file; created with its folder on first run' },
  { key: 'databaseUrl', flag: 'database-url', env: 'PUSHHUB_DATABASE_URL', kind: { type: 'string', secret: true }, doc: 'PostgreSQL URL instead of the SQLite file; several hubs may share one database (never together with --db)' },
  { key: 'logLevel', flag: 'log-level', env: 'PUSHHUB_LOG_LEVEL', kind: { type: 'enum', values: LOG_LEVELS }, doc: 'least severe level logged (JSON lines on stderr)' },
  { key: 'metricsAddress', flag: 'metrics-address', env: 'PUSHHUB_METRICS_ADDRESS', kind: { type: 'address' }, doc: 'HOST:PORT serving Prometheus /metrics over HTTP, e.g. 127.0.0.1:9464 (default: off)' },
  { key: 'tlsCertPath', flag: 'tls-cert', env: 'PUSHHUB_TLS_CERT', kind: { type: 'string' }, doc: 'PEM certificate file; with --tls-key the hub serves TLS' },
  { key: 'tlsKeyPath', flag: 'tls-key', env: 'PUSHHUB_TLS_KEY', kind: { type: 'string' }, doc: 'PEM private key file for --tls-cert' },
  { key: 'merchantRegistrationToken', flag: 'merchant-registration-token', env: 'PUSHHUB_MERCHANT_REGISTRATION_TOKEN', kind: { type: 'string', secret: true }, doc: 'token required to register a merchant (default: open registration)' },
  { key: 'receiverRegistrationToken', flag: 'receiver-registration-token', env: 'PUSHHUB_RECEIVER_REGISTRATION_TOKEN', kind: { type: 'string', secret: true }, doc: 'token required to register a receiver (default: open registration)' },
  { key: 'merchantRegistrationTokenFile', flag: 'merchant-registration-token-file', env: 'PUSHHUB_MERCHANT_REGISTRATION_TOKEN_FILE', kind: { type: 'string' }, doc: 'file holding the merchant registration token (e.g. a systemd credential); instead of the token itself' },
  { key: 'receiverRegistrationTokenFile', flag: 'receiver-registration-token-file', env: 'PUSHHUB_RECEIVER_REGISTRATION_TOKEN_FILE', kind: { type: 'string' }, doc: 'file holding the receiver registration token; instead of the token itself' },
  // Flags only (no environment variable): switching a safeguard off is said on the command line.
  { key: 'openRegistration', flag: 'open-registration', kind: { type: 'boolean' }, doc: 'on a non-loopback address, let roles without a registration token register openly (default: refuse to start)' },
  { key: 'insecurePlaintext', flag: 'insecure-plaintext', kind: { type: 'boolean' }, doc: 'on a non-loopback address, serve without TLS: passwords cross the network in clear (default: refuse to start)' },
  { key: 'scryptLogN', flag: 'scrypt-log-n', env: 'PUSHHUB_SCRYPT_LOG_N', kind: int(1, 20), doc: 'scrypt cost as log2(N); 15 costs ~60 ms per hash, checked once per credential' },
  { key: 'heartbeatIntervalMs', flag: 'heartbeat-ms', env: 'PUSHHUB_HEARTBEAT_MS', kind: int(100, HOUR, 'ms'), doc: 'heartbeat interval on a quiet Subscribe stream' },
  { key: 'subscriberBufferLimit', flag: 'subscriber-buffer-limit', env: 'PUSHHUB_SUBSCRIBER_BUFFER_LIMIT', kind: int(1, 10_000_000, 'events'), doc: 'events queued for one subscriber before it is cut off as too slow' },
  { key: 'subscriberBufferBytes', flag: 'subscriber-buffer-bytes', env: 'PUSHHUB_SUBSCRIBER_BUFFER_BYTES', kind: int(1024, 1024 * 1024 * 1024, 'bytes'), doc: 'bytes of events queued for one subscriber before it is cut off as too slow' },
  { key: 'subscriberStallTimeoutMs', flag: 'subscriber-stall-timeout-ms', env: 'PUSHHUB_SUBSCRIBER_STALL_TIMEOUT_MS', kind: int(100, DAY, 'ms'), doc: 'a stream whose sends make no progress this long is reset (ENHANCE_YOUR_CALM)' },
  { key: 'maxConnections', flag: 'max-connections', env: 'PUSHHUB_MAX_CONNECTIONS', kind: int(1, 10_000_000, 'connections'), doc: 'TCP connections at once; more are refused at accept' },
  { key: 'maxConnectionsPerSource', flag: 'max-connections-per-source', env: 'PUSHHUB_MAX_CONNECTIONS_PER_SOURCE', kind: int(1, 10_000_000, 'connections'), doc: 'TCP connections at once from one source address (IPv6: one /64); trusted proxies are exempt' },
  { key: 'requestTimeoutMs', flag: 'request-timeout-ms', env: 'PUSHHUB_REQUEST_TIMEOUT_MS', kind: int(100, HOUR, 'ms'), doc: 'a call whose request message has not arrived this long after it started is ended (DEADLINE_EXCEEDED)' },
  { key: 'trustedProxies', flag: 'trusted-proxy', env: 'PUSHHUB_TRUSTED_PROXIES', kind: { type: 'cidr-list' }, doc: 'repeatable: a proxy (address or CIDR) whose X-Real-IP / X-Forwarded-For names the client for per-source limits (default: none, headers ignored)' },
  { key: 'handshakeTimeoutMs', flag: 'handshake-timeout-ms', env: 'PUSHHUB_HANDSHAKE_TIMEOUT_MS', kind: int(100, HOUR, 'ms'), doc: 'a connection that sends no HTTP/2 preface this long is closed' },
  { key: 'connectionIdleTimeoutMs', flag: 'connection-idle-timeout-ms', env: 'PUSHHUB_CONNECTION_IDLE_TIMEOUT_MS', kind: int(SECOND, 30 * DAY, 'ms'), doc: 'a connection with no open call this long is closed (grpc.max_connection_idle_ms)' },
  { key: 'maxStreamsPerConnection', flag: 'max-streams-per-connection', env: 'PUSHHUB_MAX_STREAMS_PER_CONNECTION', kind: int(1, 1_000_000, 'streams'), doc: 'concurrent calls on one HTTP/2 connection' },
  { key: 'maxAnonymousStreams', flag: 'max-anonymous-streams', env: 'PUSHHUB_MAX_ANONYMOUS_STREAMS', kind: int(1, 10_000_000, 'streams'), doc: 'unauthenticated streaming calls (Health/Watch, reflection) at once, all sources' },
  { key: 'maxAnonymousStreamsPerSource', flag: 'max-anonymous-streams-per-source', env: 'PUSHHUB_MAX_ANONYMOUS_STREAMS_PER_SOURCE', kind: int(1, 10_000_000, 'streams'), doc: 'unauthenticated streaming calls at once from one source address' },
  { key: 'merchantPushRatePerSec', flag: 'merchant-push-rate', env: 'PUSHHUB_MERCHANT_PUSH_RATE', kind: int(0, 10_000_000, 'pushes/s'), doc: 'pushes per second per merchant, burst 2 s worth; 0 = unlimited' },
  { key: 'maxPublicItemsPerMerchant', flag: 'max-public-items-per-merchant', env: 'PUSHHUB_MAX_PUBLIC_ITEMS_PER_MERCHANT', kind: int(0, 10_000_000, 'items'), doc: 'live public items per merchant (bounds every new receiver\'s snapshot); 0 = unlimited' },
  { key: 'maxStreamsPerReceiver', flag: 'max-streams-per-receiver', env: 'PUSHHUB_MAX_STREAMS_PER_RECEIVER', kind: int(1, 10_000, 'streams'), doc: 'concurrent Subscribe streams per receiver' },
  { key: 'receiptConfirmRatePerSec', flag: 'receipt-confirm-rate', env: 'PUSHHUB_RECEIPT_CONFIRM_RATE', kind: int(0, 1_000_000, 'calls/s'), doc: 'ConfirmDelivery calls per second per receiver, burst 2 s worth; 0 = unlimited' },
  { key: 'receiptStatusRatePerSec', flag: 'receipt-status-rate', env: 'PUSHHUB_RECEIPT_STATUS_RATE', kind: int(0, 1_000_000, 'calls/s'), doc: 'GetDeliveryStatus calls per second per merchant (up to 1,000 items each), burst 2 s worth; 0 = unlimited' },
  { key: 'maxWatchStreamsPerMerchant', flag: 'max-watch-streams-per-merchant', env: 'PUSHHUB_MAX_WATCH_STREAMS_PER_MERCHANT', kind: int(1, 10_000, 'streams'), doc: 'concurrent WatchDeliveries streams per merchant' },
  { key: 'endedItemRetentionMs', flag: 'ended-item-retention-ms', env: 'PUSHHUB_ENDED_ITEM_RETENTION_MS', kind: int(0, 365 * DAY, 'ms'), doc: 'how long expired items and their receipts stay readable (GetDeliveryStatus) after valid_until' },
  { key: 'maxFailedLogins', flag: 'max-failed-logins', env: 'PUSHHUB_MAX_FAILED_LOGINS', kind: int(1, 1_000_000, 'attempts'), doc: 'failed logins per id inside the window before the id is throttled' },
  { key: 'maxFailedLoginsPerSource', flag: 'max-failed-logins-per-source', env: 'PUSHHUB_MAX_FAILED_LOGINS_PER_SOURCE', kind: int(1, 10_000_000, 'attempts'), doc: 'failed logins from one source address, any ids, inside the window before that address is throttled' },
  { key: 'scryptConcurrency', flag: 'scrypt-concurrency', env: 'PUSHHUB_SCRYPT_CONCURRENCY', kind: int(1, 64, 'runs'), doc: 'scrypt runs at once (logins, registrations, rotations); leaves CPU for the event loop and the commit worker' },
  { key: 'scryptQueueLimit', flag: 'scrypt-queue-limit', env: 'PUSHHUB_SCRYPT_QUEUE_LIMIT', kind: int(1, 1_000_000, 'runs'), doc: 'scrypt runs waiting in all; more get RESOURCE_EXHAUSTED AUTH_BUSY' },
  { key: 'scryptQueuePerSource', flag: 'scrypt-queue-per-source', env: 'PUSHHUB_SCRYPT_QUEUE_PER_SOURCE', kind: int(1, 1_000_000, 'runs'), doc: 'scrypt runs one source address keeps waiting once the queue is full; a source below it displaces the heaviest source' },
  { key: 'registrationRatePerSourcePerSec', flag: 'registration-rate-per-source', env: 'PUSHHUB_REGISTRATION_RATE_PER_SOURCE', kind: int(0, 1_000_000, 'registrations/s'), doc: 'registrations per second per source address (a wrong token costs 10); 0 = unlimited' },
  { key: 'registrationBurstPerSource', flag: 'registration-burst-per-source', env: 'PUSHHUB_REGISTRATION_BURST_PER_SOURCE', kind: int(1, 1_000_000, 'registrations'), doc: 'registrations one source address may make at once before the rate applies' },
  { key: 'failedLoginWindowMs', flag: 'failed-login-window-ms', env: 'PUSHHUB_FAILED_LOGIN_WINDOW_MS', kind: int(SECOND, DAY, 'ms'), doc: 'window for counting failed logins; the throttle lifts when it passes' },
  { key: 'defaultItemLifetimeMs', flag: 'item-lifetime-ms', env: 'PUSHHUB_ITEM_LIFETIME_MS', kind: int(SECOND, 3650 * DAY, 'ms'), doc: 'lifetime of an item pushed without valid_until' },
  { key: 'idempotencyWindowMs', flag: 'idempotency-window-ms', env: 'PUSHHUB_IDEMPOTENCY_WINDOW_MS', kind: int(SECOND, 365 * DAY, 'ms'), doc: 'how long a request_id is remembered for retries' },
  { key: 'purgeIntervalMs', flag: 'purge-interval-ms', env: 'PUSHHUB_PURGE_INTERVAL_MS', kind: int(SECOND, DAY, 'ms'), doc: 'how often expired items, tombstones and old request ids are purged' },
  { key: 'maxMessageBytes', flag: 'max-message-bytes', env: 'PUSHHUB_MAX_MESSAGE_BYTES', kind: int(1024, 64 * 1024 * 1024, 'bytes'), doc: 'largest gRPC message accepted (a push is at most ~12 KiB of content)' },
  { key: 'maxMetadataBytes', flag: 'max-metadata-bytes', env: 'PUSHHUB_MAX_METADATA_BYTES', kind: int(1024, 1024 * 1024, 'bytes'), doc: 'largest request metadata accepted, keys plus values' },
  // A flag only (no environment variable), so it cannot be switched on by accident.
  { key: 'insecureBenchSkipPasswordCheck', flag: 'insecure-bench-skip-password-check', kind: { type: 'boolean' }, doc: 'BENCH ONLY: accept any password' },
];

/** HOST:PORT, with IPv6 hosts in brackets; a bare port or a URL is refused. */
const ADDRESS = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+)):(\d{1,5})$/;

function checkAddress(name: string, value: string): string {
  const match = ADDRESS.exec(value);
  if (!match || Number(match[3]) > 65_535) {
    throw new ConfigError(`${name}: must be HOST:PORT such as 127.0.0.1:50051 or [::1]:50051, got "${value}"`);
  }
  return value;
}

function checkValue(spec: OptionSpec, name: string, raw: string): unknown {
  const { kind } = spec;
  switch (kind.type) {
    case 'integer': {
      // Digits only: "1e3", "0x10", " 5" and "5ms" are typos, not numbers to guess at.
      if (!/^\d+$/.test(raw) || Number(raw) < kind.min || Number(raw) > kind.max) {
        const unit = kind.unit ? ` (${kind.unit})` : '';
        throw new ConfigError(`${name}: must be an integer from ${kind.min} to ${kind.max}${unit}, got "${raw}"`);
      }
      return Number(raw);
    }
    case 'address':
      return checkAddress(name, raw);
    case 'enum':
      if (!kind.values.includes(raw)) throw new ConfigError(`${name}: must be one of ${kind.values.join(', ')}, got "${raw}"`);
      return raw;
    case 'string':
      if (raw === '') throw new ConfigError(`${name}: must not be empty`);
      return raw;
    case 'boolean':
      return true;
    case 'cidr-list':
      return checkCidrList(name, raw.split(','));
  }
}

/**
 * Checks one `--trusted-proxy` value: an address or a CIDR block (`10.0.0.0/8`,
 * `2001:db8::/32`, `192.0.2.1`). Returns the problem, or undefined when it is valid.
 */
function checkCidr(value: string): string | undefined {
  const [address, bits, extra] = value.split('/');
  const family = isIP(address ?? '');
  if (extra !== undefined || family === 0) return 'must be an IP address or a CIDR block such as 10.0.0.0/8 or 2001:db8::/32';
  if (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128))) {
    return `the prefix length must be 0 to ${family === 4 ? 32 : 128}`;
  }
  return undefined;
}

function checkCidrList(name: string, values: readonly string[]): string[] {
  return values.map((value) => {
    const problem = checkCidr(value.trim());
    if (problem) throw new ConfigError(`${name}: "${value}": ${problem}`);
    return value.trim();
  });
}

/** True when the command line asks for --help (or -h); main prints helpText() and exits 0. */
export function wantsHelp(argv: string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/**
 * Builds the config from command-line flags, then PUSHHUB_* environment variables, then
 * defaults. The only place that reads the environment. Throws ConfigError naming the flag
 * (or variable) and the problem.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): HubConfig {
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: Object.fromEntries(
        OPTIONS.map((o) => [o.flag, { type: o.kind.type === 'boolean' ? 'boolean' : 'string', multiple: o.kind.type === 'cidr-list' }] as const),
      ),
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    // parseArgs says "Unknown option '--x'" or "Option '--x <value>' argument missing": keep
    // its words, add where to look.
    throw new ConfigError(`${(error as Error).message}; see pushhub --help`);
  }
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const spec of OPTIONS) {
    const fromFlag = values[spec.flag];
    if (spec.kind.type === 'boolean') {
      if (fromFlag === true) config[spec.key] = true;
      continue;
    }
    if (Array.isArray(fromFlag)) {
      config[spec.key] = checkCidrList(`--${spec.flag}`, fromFlag.map(String));
    } else if (typeof fromFlag === 'string') {
      config[spec.key] = checkValue(spec, `--${spec.flag}`, fromFlag);
    } else if (spec.env && env[spec.env] !== undefined) {
      config[spec.key] = checkValue(spec, spec.env, env[spec.env]!);
    }
  }
  const result = config as unknown as HubConfig;
  // Two stores named at once would leave one silently unused: refuse instead.
  if (result.databaseUrl !== undefined && (typeof values.db === 'string' || env.PUSHHUB_DB !== undefined)) {
    throw new ConfigError('--db and --database-url name two stores: give one (SQLite file or PostgreSQL URL)');
  }
  // One without the other would silently serve plaintext: refuse to start instead.
  if ((result.tlsCertPath === undefined) !== (result.tlsKeyPath === undefined)) {
    throw new ConfigError('--tls-cert and --tls-key must be given together (or neither, for plaintext)');
  }
  readTokenFiles(result);
  checkSecureDefaults(result);
  return result;
}

/** Fills each role's token from its --*-registration-token-file; a token given twice is refused. */
function readTokenFiles(config: HubConfig): void {
  const roles = [
    ['merchant', 'merchantRegistrationToken', 'merchantRegistrationTokenFile'],
    ['receiver', 'receiverRegistrationToken', 'receiverRegistrationTokenFile'],
  ] as const;
  for (const [role, tokenKey, fileKey] of roles) {
    const file = config[fileKey];
    if (file === undefined) continue;
    if (config[tokenKey] !== undefined) {
      throw new ConfigError(`--${role}-registration-token and --${role}-registration-token-file both give the ${role} token: give one`);
    }
    let token: string;
    try {
      token = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new ConfigError(`--${role}-registration-token-file ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    if (token.trim() === '') throw new ConfigError(`--${role}-registration-token-file ${file}: the file is empty`);
    config[tokenKey] = token;
  }
}

/** postgres://user:secret@host:5432/db -> postgres://host:5432/db (never the credentials). */
export function describeDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return 'postgres (unparsable URL)';
  }
}

/** The host part of HOST:PORT, without IPv6 brackets. */
export function addressHost(address: string): string {
  const host = address.slice(0, address.lastIndexOf(':'));
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

/**
 * Whether only this machine can reach HOST: `localhost`, 127.0.0.0/8, ::1 (and the IPv4-mapped
 * ::ffff:127.x). Any other name may resolve to a public address, so it counts as public.
 */
export function isLoopbackHost(host: string): boolean {
  const lower = host.toLowerCase();
  if (lower === 'localhost') return true;
  const v4 = lower.startsWith('::ffff:') ? lower.slice(7) : lower;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return isIP(lower) === 6 && /^(0{0,4}:){2,7}0{0,3}1$|^::1$/.test(lower);
}

/**
 * Secure by default, as Mosquitto 2.0 after exposed brokers: on loopback anything goes (a
 * developer's machine); on any other address the hub starts only with TLS, or with
 * --insecure-plaintext, and only with a registration token for each role, or with
 * --open-registration. The message names the flags that fix it.
 */
function checkSecureDefaults(config: HubConfig): void {
  if (isLoopbackHost(addressHost(config.address))) return;
  const where = `--address ${config.address} is reachable from other machines`;
  if (config.tlsCertPath === undefined && !config.insecurePlaintext) {
    throw new ConfigError(
      `${where}, and without TLS passwords would cross the network in clear: ` +
        'serve TLS with --tls-cert and --tls-key (see docs/tls.md), or pass --insecure-plaintext to accept it (e.g. behind a TLS proxy on the same host)',
    );
  }
  const open = [
    ...(config.merchantRegistrationToken === undefined ? ['merchant'] : []),
    ...(config.receiverRegistrationToken === undefined ? ['receiver'] : []),
  ];
  if (open.length > 0 && !config.openRegistration) {
    throw new ConfigError(
      `${where}, and anyone who reaches it could register ${open.join(' and ')} accounts: ` +
        `require a token with ${open.map((role) => `--${role}-registration-token-file`).join(' and ')}, or pass --open-registration to allow it`,
    );
  }
}

/** The --help text, derived from the options table: every flag with its env var and default. */
export function helpText(): string {
  const lines = [
    'pushhub: real-time push hub (gRPC)',
    '',
    'Usage: pushhub [options]      (flags win over PUSHHUB_* environment variables, which win over defaults)',
    '',
    'Options:',
  ];
  for (const spec of OPTIONS) {
    const value = spec.kind.type === 'boolean' ? '' : spec.kind.type === 'integer' ? ' <n>' : spec.kind.type === 'address' ? ' <host:port>' : ' <value>';
    const fallback = DEFAULT_CONFIG[spec.key];
    const shown = fallback === undefined ? 'unset' : Array.isArray(fallback) && fallback.length === 0 ? 'none' : spec.kind.type === 'integer' && spec.kind.unit ? `${fallback} ${spec.kind.unit}` : String(fallback);
    const range = spec.kind.type === 'integer' ? `, ${spec.kind.min}..${spec.kind.max}` : spec.kind.type === 'enum' ? `, one of ${spec.kind.values.join('|')}` : '';
    lines.push(`  --${spec.flag}${value}`);
    lines.push(`      ${spec.doc}`);
    lines.push(`      env: ${spec.env ?? '(flag only)'}   default: ${shown}${range}`);
  }
  lines.push('  -h, --help', '      print this help and exit');
  return lines.join('\n') + '\n';
}
