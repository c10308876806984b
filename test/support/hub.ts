import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Channel, type Client, Metadata, createChannel, createClient } from 'nice-grpc';
import { DEFAULT_CONFIG, type HubConfig } from '../../src/config.js';
import { PushHubServiceDefinition, Role, type SubscribeEvent } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { type RunningHub, startHub } from '../../src/hub.js';
import { silentLogger } from '../../src/logger.js';

export type HubClient = Client<typeof PushHubServiceDefinition>;

export interface Credentials {
  id: string;
  password: string;
}

/**
 * Test settings: tiny scrypt cost, short heartbeat, no per-source registration limit (every
 * test client registers from 127.0.0.1), no push rate or public item cap (tests push in
 * bulk); the limits' own tests set them. Everything else as in production.
 */
export function testConfig(dir: string, overrides: Partial<HubConfig> = {}): HubConfig {
  return {
    ...DEFAULT_CONFIG,
    address: '127.0.0.1:0',
    dbPath: join(dir, 'hub.db'),
    scryptLogN: 4,
    heartbeatIntervalMs: 1000,
    registrationRatePerSourcePerSec: 0,
    merchantPushRatePerSec: 0,
    maxPublicItemsPerMerchant: 0,
    ...overrides,
  };
}

export const basicAuth = ({ id, password }: Credentials) =>
  Metadata({ authorization: `Basic ${Buffer.from(`${id}:${password}`).toString('base64')}` });

/** The storage backends the hub's behaviour tests run on. */
export type TestBackend = 'sqlite' | 'postgres';
export const BACKENDS: readonly TestBackend[] = ['sqlite', 'postgres'];

/** The backend TestHub.start uses; set per suite by describeOnBackends. */
let currentBackend: TestBackend = 'sqlite';

/**
 * Runs a suite once per backend: on SQLite (a temp file) and on PostgreSQL (a fresh database
 * on the run's embedded server, test/support/postgres.ts), so every behaviour it checks holds
 * on both. Suites run one after another, so the backend is set around each.
 */
export function describeOnBackends(title: string, suite: (this: Mocha.Suite, backend: TestBackend) => void): void {
  for (const backend of BACKENDS) {
    describe(`${title} [${backend}]`, function () {
      before(() => void (currentBackend = backend));
      after(() => void (currentBackend = 'sqlite'));
      suite.call(this, backend);
    });
  }
}

/** Overrides for the current backend: none for SQLite (testConfig's file), a fresh PostgreSQL database otherwise. */
export async function backendOverrides(): Promise<Partial<HubConfig>> {
  if (currentBackend === 'sqlite') return {};
  const { freshDatabase } = await import('./postgres.js');
  return { databaseUrl: await freshDatabase() };
}

/**
 * A real hub on 127.0.0.1:0 with a temp SQLite file, or a fresh PostgreSQL database inside
 * describeOnBackends. restart() stops it and starts a new process-equivalent on the same
 * database (and the same port when possible).
 */
export class TestHub {
  readonly dir = mkdtempSync(join(tmpdir(), 'pushhub-test-'));
  hub!: RunningHub;
  private channels: Channel[] = [];

  constructor(private readonly overrides: Partial<HubConfig> = {}) {}

  static async start(overrides: Partial<HubConfig> = {}): Promise<TestHub> {
    const t = new TestHub({ ...(await backendOverrides()), ...overrides });
    t.hub = await startHub(testConfig(t.dir, t.overrides), { logger: silentLogger });
    return t;
  }

  get address(): string {
    return this.hub.address;
  }

  get config(): HubConfig {
    return this.hub.context.config;
  }

  /** A client on its own channel (its own HTTP/2 connection), closed by stop(). */
  client(): HubClient {
    const channel = createChannel(this.address);
    this.channels.push(channel);
    return createClient(PushHubServiceDefinition, channel);
  }

  async register(role: 'merchant' | 'receiver', regionCode = ''): Promise<Credentials> {
    return this.client().register({
      role: role === 'merchant' ? Role.ROLE_MERCHANT : Role.ROLE_RECEIVER,
      regionCode,
      displayName: `test ${role}`,
    });
  }

  async restart(overrides: Partial<HubConfig> = {}): Promise<void> {
    const port = this.hub.port;
    await this.hub.stop();
    this.hub = await startHub(testConfig(this.dir, { ...this.overrides, address: `127.0.0.1:${port}`, ...overrides }), {
      logger: silentLogger,
    });
  }

  async stop(): Promise<void> {
    for (const channel of this.channels) channel.close();
    this.channels = [];
    await this.hub.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Reads a Subscribe stream in the background, collecting events (each response's events, in
 * order) until aborted or ended. waitFor() polls the collected events with a bounded deadline.
 */
export class StreamReader {
  readonly events: SubscribeEvent[] = [];
  /** Events per response, in arrival order (how the hub batched them). */
  readonly batchSizes: number[] = [];
  error: unknown;
  ended = false;
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;

  constructor(client: HubClient, credentials: Credentials, afterSequence = 0n, historyId = '') {
    const stream = client.subscribe({ afterSequence, historyId }, { metadata: basicAuth(credentials), signal: this.abort.signal });
    this.done = (async () => {
      try {
        for await (const response of stream) {
          this.batchSizes.push(response.events.length);
          this.events.push(...response.events);
        }
      } catch (error) {
        this.error = error;
      } finally {
        this.ended = true;
      }
    })();
  }

  items() {
    return this.events.flatMap((e) => (e.event?.$case === 'item' ? [e.event.value] : []));
  }

  withdrawals() {
    return this.events.flatMap((e) => (e.event?.$case === 'withdrawal' ? [e.event.value] : []));
  }

  /** Sequences of items and withdrawals, in arrival order. */
  sequences(): bigint[] {
    return this.events.flatMap((e) =>
      e.event?.$case === 'item' || e.event?.$case === 'withdrawal' ? [e.event.value.sequence] : [],
    );
  }

  caughtUp(): boolean {
    return this.events.some((e) => e.event?.$case === 'caughtUp');
  }

  async waitFor(predicate: (reader: StreamReader) => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${this.events.length}, error: ${String(this.error)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}
