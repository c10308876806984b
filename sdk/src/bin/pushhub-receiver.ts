#!/usr/bin/env node
/**
 * pushhub-receiver: keeps a receiver's local store current and prints each change as a JSON
 * line on stdout (logs go to stderr). Stops cleanly on SIGTERM or SIGINT.
 *
 *   pushhub-receiver --address hub:50051 --register            # first run: registers, saves credentials
 *   pushhub-receiver --address hub:50051                        # later runs: reads them
 *   PUSHHUB_RECEIVER_PASSWORD=... pushhub-receiver --address hub:50051 --id R00-...
 *
 * The password is never a flag: flags are visible to every user in `ps`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type ReceiverDaemonLine, ReceiverClient, type StoreChange, createReceiverStore } from '../receiver.js';
import type { Credentials } from '../connection.js';
import { ensureSqlite } from '../sqlite.js';
import { stopWhenLauncherExits } from './launcher-watch.js';
import { sdkVersion } from './version.js';

const USAGE = `usage: pushhub-receiver --address HOST:PORT [options]

  --address HOST:PORT        the hub (or PUSHHUB_ADDRESS); several nodes: a,b or dns:NAME:PORT
  --credentials FILE         JSON {"id","password"} of the receiver (default ./pushhub-receiver.json)
  --register                 when FILE does not exist: register a new receiver and save its
                             credentials there, readable only by you (mode 0600)
  --id ID                    use this receiver id with PUSHHUB_RECEIVER_PASSWORD instead of a file
  --store FILE               the local SQLite store (default ./pushhub-receiver.db)
  --ca FILE                  PEM root certificate: connect with TLS
  --display-name NAME        with --register
  --region-code NN           with --register
  --registration-token TOKEN with --register, when the hub requires one
  --registration-token-file FILE
                             the same, read from FILE (e.g. a systemd credential; not in ps)
  --register-only            register (as --register) and exit without syncing: a first-run step
  --version                  print the version and exit
  --receipts on|off          share delivery receipts with merchants (stored on the hub; the
                             daemon confirms what its store has committed) or opt out
  --block MERCHANT           one-shot: block this merchant on the hub (its specific pushes are
                             refused, its items leave this receiver; the next sync removes them
                             from the store), print {"blocked":ID,"sequence":N} and exit
  --unblock MERCHANT         one-shot: lift a block (the merchant's current public items come
                             back at the next sync), print {"unblocked":ID,"sequence":N} and exit
  --help

Exit status: 0 stopped cleanly (SIGTERM, SIGINT), 1 failed, 2 bad usage.
`;

function log(message: string): void {
  process.stderr.write(`pushhub-receiver: ${message}\n`);
}

/**
 * One JSON line per change: what happened, and the item in its JSON form (the SDK's Item). A
 * reset is its own line, {"change":"reset","reason":...,"historyId":...}: every item printed
 * before it is gone (nothing was withdrawn), and the new state follows as "added" lines.
 */
function changeLine(change: StoreChange): string {
  const line: ReceiverDaemonLine =
    change.type === 'added'
      ? { change: 'added', itemId: change.item.itemId, replacedItemId: change.replaced?.itemId, item: change.item }
      : change.type === 'removed'
        ? { change: 'removed', itemId: change.item.itemId, cause: change.cause, item: change.item }
        : { change: 'reset', reason: change.reason, historyId: change.historyId };
  return `${JSON.stringify(line)}\n`;
}

async function loadCredentials(
  values: Record<string, string | boolean | undefined>,
  address: string,
  tls: { ca?: Buffer } | undefined,
): Promise<Credentials> {
  if (typeof values.id === 'string') {
    const password = process.env.PUSHHUB_RECEIVER_PASSWORD;
    if (!password) throw new Error('--id needs the password in PUSHHUB_RECEIVER_PASSWORD');
    return { id: values.id, password };
  }
  const file = (values.credentials as string | undefined) ?? './pushhub-receiver.json';
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<Credentials>;
    if (typeof parsed.id !== 'string' || typeof parsed.password !== 'string') throw new Error(`${file}: expected {"id","password"}`);
    return { id: parsed.id, password: parsed.password };
  }
  if (!values.register && !values['register-only']) throw new Error(`${file} does not exist; pass --register to register a new receiver`);
  const credentials = await ReceiverClient.register(address, {
    displayName: values['display-name'] as string | undefined,
    regionCode: values['region-code'] as string | undefined,
    registrationToken: values['registration-token'] as string | undefined,
    tls,
  });
  // 'wx': never overwrite credentials another process just saved; 0600: the password is a secret.
  writeFileSync(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  log(`registered receiver ${credentials.id}; credentials saved to ${file}`);
  return credentials;
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        address: { type: 'string' },
        credentials: { type: 'string' },
        register: { type: 'boolean' },
        'register-only': { type: 'boolean' },
        id: { type: 'string' },
        store: { type: 'string' },
        ca: { type: 'string' },
        'display-name': { type: 'string' },
        'region-code': { type: 'string' },
        'registration-token': { type: 'string' },
        'registration-token-file': { type: 'string' },
        receipts: { type: 'string' },
        block: { type: 'string' },
        unblock: { type: 'string' },
        version: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (error) {
    // A bad flag is a usage error: say which, show the usage, exit 2 (never 1, a failure).
    process.stderr.write(`pushhub-receiver: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`pushhub-receiver ${sdkVersion()}\n`);
    return 0;
  }
  if (values['registration-token-file'] !== undefined) {
    if (values['registration-token'] !== undefined) {
      process.stderr.write(`pushhub-receiver: --registration-token and --registration-token-file both give the token: give one\n\n${USAGE}`);
      return 2;
    }
    values['registration-token'] = readFileSync(values['registration-token-file'], 'utf8').replace(/\r?\n$/, '');
  }
  const address = values.address ?? process.env.PUSHHUB_ADDRESS;
  if (!address) {
    process.stderr.write(USAGE);
    return 2;
  }
  if (values.receipts !== undefined && values.receipts !== 'on' && values.receipts !== 'off') {
    process.stderr.write(`--receipts must be on or off, got "${values.receipts}"\n`);
    return 2;
  }
  if (values.block !== undefined && values.unblock !== undefined) {
    process.stderr.write('--block and --unblock: give one\n');
    return 2;
  }
  const tls = values.ca ? { ca: readFileSync(values.ca) } : undefined;
  if (values.block !== undefined || values.unblock !== undefined) {
    // One-shot: no store, no stream; the running daemon's stream carries the effect.
    const credentials = await loadCredentials({ ...values, register: false }, address, tls);
    const receiver = new ReceiverClient({ address, ...credentials, tls });
    try {
      const line =
        values.block !== undefined
          ? { blocked: values.block, sequence: await receiver.block(values.block) }
          : { unblocked: values.unblock!, sequence: await receiver.unblock(values.unblock!) };
      process.stdout.write(`${JSON.stringify(line)}\n`);
      return 0;
    } finally {
      receiver.close();
    }
  }
  // Before registering: without the store's SQLite driver there is nothing to register for.
  ensureSqlite();
  const credentials = await loadCredentials(values, address, tls);
  if (values['register-only']) {
    log(`receiver ${credentials.id}: registered; start the daemon without --register-only to sync`);
    return 0;
  }

  const abort = new AbortController();
  const stop = (signal: string) => {
    log(`${signal}: stopping`);
    abort.abort();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  stopWhenLauncherExits(() => stop('the npm process that started the daemon exited'));

  const store = createReceiverStore(values.store ?? './pushhub-receiver.db');
  const receiver = new ReceiverClient({
    address,
    ...credentials,
    tls,
    onReconnect: ({ error, delayMs, afterSequence }) =>
      log(`connection lost (${error instanceof Error ? error.message : String(error)}); resuming after ${afterSequence} in ${Math.round(delayMs)} ms`),
  });
  if (values.receipts !== undefined) {
    const policy = await receiver.receiptPolicy(values.receipts === 'on' ? 'share' : 'opt-out');
    log(`delivery receipts: ${policy === 'share' ? 'shared with merchants' : 'off (opted out)'}`);
  }
  store.on('change', (change) => process.stdout.write(changeLine(change)));
  log(`receiver ${credentials.id}: syncing ${store.items().length} stored items after sequence ${store.cursor}`);
  try {
    await store.sync(receiver, {
      signal: abort.signal,
      onCaughtUp: (sequence) => log(`caught up at sequence ${sequence}`),
      onConfirmError: (error) => log(`delivery confirmation failed (the next one covers it): ${error instanceof Error ? error.message : String(error)}`),
    });
  } finally {
    receiver.close();
    store.close();
  }
  log('stopped');
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    log(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  },
);
