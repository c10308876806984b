import { setMaxListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type Channel, ClientError, Metadata, Status, createChannel, createClient } from 'nice-grpc';
import {
  Audience,
  PushHubServiceDefinition,
  type PushStreamEntry,
  type PushStreamRequest,
  Role,
  type ServiceInfo,
} from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { HubProcess, freePort } from '../support/hub-process.js';
import { prng } from '../support/prng.js';

/**
 * Crash torture: the hub runs as a real process and is SIGKILLed at random moments while
 * merchants push (unary and PushStream; specific and public; with replacement keys and
 * withdrawals) and receivers follow their streams. Every write carries a request_id and is
 * retried after the crash until it gets a definite answer (as the SDK does), so at the end
 * every write has exactly one outcome, and the expected state can be computed from the
 * acknowledgements alone. Then the receivers' streams, fresh snapshots and the database
 * itself are checked against it.
 */

export interface TortureOptions {
  rounds: number;
  merchants: number;
  receivers: number;
  /** How many of the receivers follow a stream (resuming by cursor); the rest only take a snapshot at the end. */
  subscribers: number;
  /** Concurrent unary workers per merchant (each merchant also runs one PushStream). */
  workersPerMerchant: number;
  /** A round's storm runs this long before the kill, drawn uniformly (ms). */
  minRunMs: number;
  maxRunMs: number;
  /** Every this-many rounds the kill lands while the hub is still starting (0 = never). */
  killDuringStartEvery: number;
  seed: number;
  log?: (line: string) => void;
}

export const DEFAULT_TORTURE: TortureOptions = {
  rounds: 24,
  merchants: 4,
  receivers: 60,
  subscribers: 40,
  workersPerMerchant: 6,
  minRunMs: 150,
  maxRunMs: 1200,
  killDuringStartEvery: 6,
  seed: 1,
};

export interface TortureReport {
  rounds: number;
  kills: number;
  killsDuringStart: number;
  /** Writes the hub acknowledged (pushes and withdrawals), after retries. */
  acknowledged: number;
  acknowledgedPushes: { specific: number; public: number; replacing: number };
  acknowledgedWithdrawals: number;
  /** Withdrawals answered NOT_FOUND (the item was already replaced or withdrawn): definite answers too. */
  rejectedWithdrawals: number;
  /** Writes whose first attempt was cut off by a crash and were retried with their request_id. */
  retriedAfterCrash: number;
  /** Retries the hub answered from its idempotency record (the first attempt had committed). */
  replayedByRequestId: number;
  /** Item deliveries to following receivers (live and on resume) plus final snapshots of the others. */
  delivered: number;
  /** Live acknowledged items a receiver should hold and did not receive (must be 0). */
  lost: number;
  /** Same item id received twice by one receiver (must be 0). */
  duplicated: number;
  /** Changes in the database a following receiver never saw (must be 0). */
  gaps: number;
  /** Events that arrived out of sequence order (must be 0). */
  outOfOrder: number;
  /** Items delivered to a receiver they were not for (must be 0). */
  misdelivered: number;
  /** Items superseded (replaced or withdrawn) before a disconnected receiver came back: legitimately never delivered. */
  supersededBeforeDelivery: number;
  /** Other inconsistencies, described (must be empty). */
  violations: string[];
  elapsedMs: number;
}


interface Account {
  id: string;
  password: string;
  metadata: Metadata;
}

type WriteKind = 'specific' | 'public' | 'withdraw';

/** One write, with its request id; its outcome is known once acked or rejected. */
interface Write {
  requestId: string;
  merchant: number;
  kind: WriteKind;
  receiverId: string; // '' for public
  key: string;
  withdrawItemId: string; // withdraw by id; '' = by key
  attempts: number;
  cutOffByCrash: boolean;
  state: 'new' | 'in-flight' | 'acked' | 'rejected';
  ack?: { itemId: string; seq: number };
}

interface ModelItem {
  itemId: string;
  seq: number;
  merchantId: string;
  receiverId: string; // '' for public
  key: string;
}

/** A receiver following its stream across crashes. */
interface Follower {
  account: Account;
  cursor: number;
  /** The history the cursor belongs to (a SIGKILL must never start a new one). */
  historyId: string;
  /** Every item and withdrawal event, in arrival order, across all rounds. */
  events: { kind: 'item' | 'withdrawal'; itemId: string; seq: number; merchantId: string; audience: Audience; key: string; receiverId: string }[];
  caughtUpAt: number;
  violations: string[];
}

const RETRYABLE = new Set([Status.UNAVAILABLE, Status.CANCELLED, Status.DEADLINE_EXCEEDED, Status.INTERNAL, Status.UNKNOWN]);

const basic = (id: string, password: string) => Metadata({ authorization: `Basic ${Buffer.from(`${id}:${password}`).toString('base64')}` });

export async function runTorture(options: Partial<TortureOptions> = {}): Promise<TortureReport> {
  const opts = { ...DEFAULT_TORTURE, ...options };
  const log = opts.log ?? (() => {});
  const random = prng(opts.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'pushhub-torture-'));
  const hub = new HubProcess(join(dir, 'hub.db'), await freePort(), ['--heartbeat-ms', '500']);

  const report: TortureReport = {
    rounds: opts.rounds,
    kills: 0,
    killsDuringStart: 0,
    acknowledged: 0,
    acknowledgedPushes: { specific: 0, public: 0, replacing: 0 },
    acknowledgedWithdrawals: 0,
    rejectedWithdrawals: 0,
    retriedAfterCrash: 0,
    replayedByRequestId: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    gaps: 0,
    outOfOrder: 0,
    misdelivered: 0,
    supersededBeforeDelivery: 0,
    violations: [],
    elapsedMs: 0,
  };

  let channels: Channel[] = [];
  const newClient = () => {
    const channel = createChannel(hub.address);
    channels.push(channel);
    return createClient(PushHubServiceDefinition, channel);
  };
  const closeChannels = () => {
    for (const channel of channels) channel.close();
    channels = [];
  };

  try {
    // Accounts, on a first run of the hub.
    await hub.start();
    const setup = newClient();
    const register = async (role: Role): Promise<Account> => {
      const { id, password } = await setup.register({ role, displayName: 'torture', regionCode: '', registrationToken: '' });
      return { id, password, metadata: basic(id, password) };
    };
    const merchants: Account[] = [];
    for (let i = 0; i < opts.merchants; i++) merchants.push(await register(Role.ROLE_MERCHANT));
    const receivers: Account[] = [];
    for (let i = 0; i < opts.receivers; i++) receivers.push(await register(Role.ROLE_RECEIVER));
    const followers: Follower[] = receivers
      .slice(0, opts.subscribers)
      .map((account) => ({ account, cursor: 0, historyId: '', events: [], caughtUpAt: -1, violations: [] }));
    closeChannels();
    await hub.stop();

    const writes: Write[] = [];
    // The hub's head sequence when the current run started (read from the database).
    let headAtStart = 0;
    let acksThisRun = 0;
    const readHead = () => {
      const db = new Database(hub.dbPath, { readonly: true });
      try {
        return db.prepare("SELECT value FROM meta WHERE name = 'head_seq'").pluck().get() as number;
      } finally {
        db.close();
      }
    };
    const retryQueues: Write[][] = merchants.map(() => []);
    // Each merchant's view of its own live items, from acks: what it may try to withdraw.
    const liveByMerchant: Map<string, ModelItem>[] = merchants.map(() => new Map());
    let counter = 0;

    const newWrite = (m: number): Write => {
      const roll = random();
      const live = [...liveByMerchant[m]!.values()];
      let write: Write;
      const base = { requestId: `${opts.seed}-${m}-${++counter}`, merchant: m, attempts: 0, cutOffByCrash: false, state: 'new' as const };
      if (roll < 0.12 && live.length > 0) {
        const target = pick(live);
        const byKey = target.key !== '' && random() < 0.5;
        write = { ...base, kind: 'withdraw', receiverId: byKey ? target.receiverId : '', key: byKey ? target.key : '', withdrawItemId: byKey ? '' : target.itemId };
      } else if (roll < 0.27) {
        write = { ...base, kind: 'public', receiverId: '', key: random() < 0.5 ? `p${Math.floor(random() * 3)}` : '', withdrawItemId: '' };
      } else {
        const receiver = pick(receivers);
        write = { ...base, kind: 'specific', receiverId: receiver.id, key: random() < 0.4 ? `k${Math.floor(random() * 4)}` : '', withdrawItemId: '' };
      }
      writes.push(write);
      return write;
    };

    const infoOf = (w: Write): ServiceInfo => ({ key: w.key, title: `t ${w.requestId}`, body: '', data: {}, validUntil: undefined, offer: undefined });

    const settle = (w: Write, outcome: { itemId: string; seq: number } | ClientError | { code: Status; message: string }) => {
      if ('seq' in outcome) {
        if (w.ack && (w.ack.seq !== outcome.seq || w.ack.itemId !== outcome.itemId)) {
          report.violations.push(`${w.requestId}: two different acks (${w.ack.seq}, ${outcome.seq})`);
        }
        // A retry answered with a sequence from before this hub run is the idempotency
        // record of a first attempt that had committed before the crash.
        if (w.attempts > 1 && outcome.seq <= headAtStart) report.replayedByRequestId++;
        w.ack = outcome;
        w.state = 'acked';
        acksThisRun++;
        const merchantId = merchants[w.merchant]!.id;
        const live = liveByMerchant[w.merchant]!;
        if (w.kind === 'withdraw') live.delete(outcome.itemId);
        else live.set(outcome.itemId, { itemId: outcome.itemId, seq: outcome.seq, merchantId, receiverId: w.receiverId, key: w.key });
        return;
      }
      const code = outcome.code;
      if (RETRYABLE.has(code) && w.attempts > 50) {
        w.state = 'rejected';
        report.violations.push(`${w.requestId}: still ${Status[code]} after ${w.attempts} attempts`);
        return;
      }
      if (RETRYABLE.has(code)) {
        w.state = 'new';
        w.cutOffByCrash = true;
        retryQueues[w.merchant]!.push(w);
        return;
      }
      if (code === Status.NOT_FOUND && w.kind === 'withdraw') {
        w.state = 'rejected';
        return;
      }
      w.state = 'rejected';
      report.violations.push(`${w.requestId} (${w.kind}): unexpected ${Status[code]} ${'details' in outcome ? outcome.details : outcome.message}`);
    };

    const sendUnary = async (client: ReturnType<typeof newClient>, w: Write): Promise<void> => {
      const metadata = merchants[w.merchant]!.metadata;
      w.state = 'in-flight';
      w.attempts++;
      try {
        const ack =
          w.kind === 'specific'
            ? await client.pushSpecific({ receiverId: w.receiverId, info: infoOf(w), requestId: w.requestId }, { metadata })
            : w.kind === 'public'
              ? await client.pushPublic({ info: infoOf(w), requestId: w.requestId }, { metadata })
              : await client.withdraw({ itemId: w.withdrawItemId, key: w.key, receiverId: w.receiverId, requestId: w.requestId }, { metadata });
        settle(w, { itemId: ack.itemId, seq: Number(ack.sequence) });
      } catch (error) {
        if (!(error instanceof ClientError)) throw error;
        settle(w, error);
      }
    };

    const toStreamEntry = (w: Write, ref: number): PushStreamEntry => ({
      ref: BigInt(ref),
      push:
        w.kind === 'specific'
          ? { $case: 'specific', value: { receiverId: w.receiverId, info: infoOf(w), requestId: w.requestId } }
          : w.kind === 'public'
            ? { $case: 'public', value: { info: infoOf(w), requestId: w.requestId } }
            : { $case: 'withdraw', value: { itemId: w.withdrawItemId, key: w.key, receiverId: w.receiverId, requestId: w.requestId } },
    });

    const follow = async (client: ReturnType<typeof newClient>, f: Follower, signal: AbortSignal): Promise<void> => {
      try {
        const stream = client.subscribe({ afterSequence: BigInt(f.cursor), historyId: f.historyId }, { metadata: f.account.metadata, signal });
        for await (const response of stream) for (const { event } of response.events) {
          if (!event) continue;
          if (event.$case === 'item' || event.$case === 'withdrawal') {
            const v = event.value;
            const seq = Number(v.sequence);
            f.cursor = Math.max(f.cursor, seq);
            f.events.push({
              kind: event.$case,
              itemId: v.itemId,
              seq,
              merchantId: v.merchantId,
              audience: v.audience,
              key: event.$case === 'item' ? event.value.info!.key : event.value.key,
              receiverId: event.$case === 'item' ? event.value.receiverId : '',
            });
          } else if (event.$case === 'reset') {
            f.violations.push(`reset (reason ${event.value.reason}) at cursor ${f.cursor} after a restart: the hub lost its history or its head`);
          } else if (event.$case === 'caughtUp' || event.$case === 'heartbeat') {
            const seq = Number(event.value.sequence);
            if (seq < f.cursor) f.violations.push(`${event.$case} at ${seq} behind cursor ${f.cursor}`);
            f.cursor = Math.max(f.cursor, seq);
            if (f.historyId !== '' && event.value.historyId !== f.historyId) f.violations.push(`history ${f.historyId} became ${event.value.historyId}`);
            f.historyId = event.value.historyId;
            if (event.$case === 'caughtUp') f.caughtUpAt = seq;
          }
        }
      } catch (error) {
        if (error instanceof ClientError && error.code === Status.OUT_OF_RANGE) {
          f.violations.push(`cursor ${f.cursor} was beyond the hub's head after a restart: ${error.details}`);
        } else if (!(error instanceof ClientError) && !(error instanceof Error && error.name === 'AbortError')) {
          throw error;
        }
      }
    };

    /** One round: start (maybe kill mid-start), storm, kill. Returns once the hub is dead. */
    const round = async (n: number, final: boolean) => {
      if (!final && opts.killDuringStartEvery > 0 && n % opts.killDuringStartEvery === 0) {
        hub.spawn();
        await new Promise((r) => setTimeout(r, random() * 400));
        await hub.kill();
        report.kills++;
        report.killsDuringStart++;
      }
      await hub.start();
      headAtStart = readHead();
      acksThisRun = 0;
      const abort = new AbortController();
      setMaxListeners(0, abort.signal); // one signal for every follower's stream
      const streamClient = newClient();
      const following = followers.map((f) => follow(streamClient, f, abort.signal));
      if (n === 1) {
        // The first time, every follower takes its (empty) snapshot before the storm, so
        // every change in the database must later be found in its stream (the gap check).
        const deadline = Date.now() + 20_000;
        while (followers.some((f) => f.caughtUpAt < 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      }

      let storming = true;
      const workers: Promise<void>[] = [];
      for (let m = 0; m < merchants.length; m++) {
        const client = newClient();
        for (let w = 0; w < opts.workersPerMerchant; w++) {
          workers.push(
            (async () => {
              while (storming || (final && retryQueues[m]!.length > 0)) {
                const write = retryQueues[m]!.shift() ?? (final ? undefined : newWrite(m));
                if (!write) break;
                if (write.cutOffByCrash && write.attempts === 1) report.retriedAfterCrash++;
                await sendUnary(client, write);
                if (write.state === 'new' && !final) break; // the hub is gone: stop this worker
              }
            })(),
          );
        }
        if (!final) workers.push(pushStreamWorker(client, m, () => storming));
      }

      if (final) {
        await Promise.all(workers);
        return { abort, following };
      }
      // The random moment is counted from the first acknowledgement of this run, so the
      // storm is in full swing (connections up, credentials verified) when the kill lands.
      const firstAckBy = Date.now() + 10_000;
      while (acksThisRun === 0 && Date.now() < firstAckBy) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, opts.minRunMs + random() * (opts.maxRunMs - opts.minRunMs)));
      await hub.kill();
      report.kills++;
      storming = false;
      await Promise.all(workers);
      // Anything still marked in flight (a push stream's last writes) has an unknown outcome.
      for (const w of writes) if (w.state === 'in-flight') settle(w, { code: Status.UNAVAILABLE, message: 'cut off' });
      abort.abort();
      await Promise.all(following);
      closeChannels();
      return { abort, following };
    };

    /** A merchant's PushStream: a window of writes in flight, acked in order; cut off by the crash. */
    const pushStreamWorker = async (client: ReturnType<typeof newClient>, m: number, storming: () => boolean) => {
      const sent = new Map<number, Write>();
      let ref = 0;
      const window = 16;
      let wake: (() => void) | undefined;
      async function* requests() {
        while (storming()) {
          while (sent.size >= window && storming()) await new Promise<void>((r) => (wake = r));
          if (!storming()) return;
          const write = retryQueues[m]!.shift() ?? newWrite(m);
          if (write.cutOffByCrash && write.attempts === 1) report.retriedAfterCrash++;
          write.state = 'in-flight';
          write.attempts++;
          sent.set(++ref, write);
          yield { entries: [toStreamEntry(write, ref)] } satisfies PushStreamRequest;
        }
      }
      try {
        for await (const { results } of client.pushStream(requests(), { metadata: merchants[m]!.metadata })) for (const response of results) {
          const write = sent.get(Number(response.ref))!;
          sent.delete(Number(response.ref));
          if (response.code === Status.OK) settle(write, { itemId: response.itemId, seq: Number(response.sequence) });
          else settle(write, { code: response.code as Status, message: response.message });
          wake?.();
        }
      } catch (error) {
        if (!(error instanceof ClientError)) throw error;
      }
      // Whatever was unanswered when the stream broke has an unknown outcome: retry it.
      for (const write of sent.values()) settle(write, { code: Status.UNAVAILABLE, message: 'stream cut off' });
      wake?.();
    };

    for (let n = 1; n <= opts.rounds; n++) {
      await round(n, false);
      const acked = writes.filter((w) => w.state === 'acked').length;
      log(`round ${n}/${opts.rounds}: ${writes.length} writes so far, ${acked} acknowledged, ${retryQueues.flat().length} to retry`);
    }

    // Final run: retry every write cut off by a crash until it has a definite answer, then
    // let every follower catch up to the head.
    const retried = await round(opts.rounds + 1, true);
    const unsettled = writes.filter((w) => w.state === 'new' || w.state === 'in-flight');
    if (unsettled.length > 0) report.violations.push(`${unsettled.length} writes never got a definite answer`);
    // Every follower resumes once more from its cursor and catches up to the final head.
    retried.abort.abort();
    await Promise.all(retried.following);
    const head = Math.max(0, ...writes.filter((w) => w.ack).map((w) => w.ack!.seq));
    for (const f of followers) f.caughtUpAt = -1;
    const abort = new AbortController();
    setMaxListeners(0, abort.signal);
    const resumeClient = newClient();
    const following = followers.map((f) => follow(resumeClient, f, abort.signal));
    const deadline = Date.now() + 30_000;
    while (followers.some((f) => f.caughtUpAt < head) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const f of followers) if (f.caughtUpAt < head) report.violations.push(`${f.account.id} caught up only to ${f.caughtUpAt} < head ${head}`);

    // Final snapshots (cursor 0) of every receiver.
    const snapshotClient = newClient();
    const snapshots = new Map<string, string[]>();
    for (const r of receivers) {
      const ids: string[] = [];
      const snapAbort = new AbortController();
      for await (const response of snapshotClient.subscribe({ afterSequence: 0n }, { metadata: r.metadata, signal: snapAbort.signal })) {
        for (const { event } of response.events) if (event?.$case === 'item') ids.push(event.value.itemId);
        if (response.events.some((e) => e.event?.$case === 'caughtUp')) break;
      }
      snapAbort.abort();
      snapshots.set(r.id, ids);
    }
    abort.abort();
    await Promise.all(following);
    closeChannels();
    const exitCode = await hub.stop();
    if (exitCode !== 0) report.violations.push(`graceful stop exited with ${exitCode}`);

    verify(report, { writes, merchants, receivers, followers, snapshots, dbPath: hub.dbPath });
    report.violations.push(...hub.errorLines.map((line) => `hub logged: ${line.slice(0, 300)}`));
    for (const f of followers) report.violations.push(...f.violations.map((v) => `${f.account.id}: ${v}`));
  } finally {
    await hub.kill();
    closeChannels();
    rmSync(dir, { recursive: true, force: true });
    report.elapsedMs = Date.now() - started;
  }
  return report;
}

/** Computes the expected state from the acknowledgements and checks streams, snapshots and the database against it. */
function verify(
  report: TortureReport,
  run: { writes: Write[]; merchants: Account[]; receivers: Account[]; followers: Follower[]; snapshots: Map<string, string[]>; dbPath: string },
): void {
  const acked = run.writes.filter((w) => w.state === 'acked').sort((a, b) => a.ack!.seq - b.ack!.seq);
  report.acknowledged = acked.length;
  report.rejectedWithdrawals = run.writes.filter((w) => w.state === 'rejected' && w.kind === 'withdraw').length;
  report.replayedByRequestId = run.writes.filter((w) => w.cutOffByCrash && w.state === 'acked' && w.attempts > 1).length;

  // Apply acknowledged writes in sequence order: the expected live items.
  const seqs = new Set<number>();
  const live = new Map<string, ModelItem>(); // by item id
  const byKey = new Map<string, string>(); // merchant|receiver|key -> item id
  const pushedItems = new Map<string, ModelItem>();
  for (const w of acked) {
    const { itemId, seq } = w.ack!;
    if (seqs.has(seq)) report.violations.push(`sequence ${seq} acknowledged twice`);
    seqs.add(seq);
    const merchantId = run.merchants[w.merchant]!.id;
    if (w.kind === 'withdraw') {
      report.acknowledgedWithdrawals++;
      const item = live.get(itemId);
      if (!item) report.violations.push(`withdrawal ${w.requestId} acked for ${itemId}, which was not live`);
      else if (item.merchantId !== merchantId) report.violations.push(`withdrawal ${w.requestId} removed another merchant's item`);
      else {
        live.delete(itemId);
        if (item.key !== '') byKey.delete(`${item.merchantId}|${item.receiverId}|${item.key}`);
      }
      continue;
    }
    if (w.kind === 'specific') report.acknowledgedPushes.specific++;
    else report.acknowledgedPushes.public++;
    const item: ModelItem = { itemId, seq, merchantId, receiverId: w.receiverId, key: w.key };
    pushedItems.set(itemId, item);
    if (w.key !== '') {
      const slot = `${merchantId}|${w.receiverId}|${w.key}`;
      const older = byKey.get(slot);
      if (older) {
        live.delete(older);
        report.acknowledgedPushes.replacing++;
      }
      byKey.set(slot, itemId);
    }
    live.set(itemId, item);
  }
  const visibleTo = (receiverId: string) =>
    [...live.values()].filter((i) => i.receiverId === '' || i.receiverId === receiverId).sort((a, b) => a.seq - b.seq);

  // The database holds exactly the expected live items, and a tombstone per acked withdrawal.
  const db = new Database(run.dbPath, { readonly: true });
  try {
    const rows = db.prepare('SELECT seq, kind, item_id, receiver_id FROM changes ORDER BY seq').all() as { seq: number; kind: number; item_id: string; receiver_id: string }[];
    const dbItems = new Set(rows.filter((r) => r.kind === 1).map((r) => r.item_id));
    for (const item of live.values()) {
      if (!dbItems.has(item.itemId)) {
        report.lost++;
        report.violations.push(`acked item ${item.itemId} (seq ${item.seq}) is not in the database`);
      }
    }
    for (const id of dbItems) if (!live.has(id)) report.violations.push(`database holds ${id}, which should be replaced or withdrawn`);
    const tombstones = new Set(rows.filter((r) => r.kind === 2).map((r) => r.seq));
    for (const w of acked) if (w.kind === 'withdraw' && !tombstones.has(w.ack!.seq)) report.violations.push(`withdrawal at ${w.ack!.seq} has no tombstone`);

    // Followers: what they received, replayed into a receiver store, equals the expected
    // state; nothing twice, nothing of others, nothing missing from the log.
    for (const f of run.followers) {
      const me = f.account.id;
      const store = new Map<string, { merchantId: string; audience: Audience; key: string }>();
      const seen = new Set<string>();
      const received = new Set<number>();
      let last = 0;
      for (const e of f.events) {
        if (e.seq <= last) report.outOfOrder++;
        last = Math.max(last, e.seq);
        received.add(e.seq);
        if (e.kind === 'withdrawal') {
          store.delete(e.itemId);
          continue;
        }
        const pushed = pushedItems.get(e.itemId);
        if (e.audience === Audience.AUDIENCE_SPECIFIC && e.receiverId !== me) report.misdelivered++;
        if (pushed && pushed.receiverId !== '' && pushed.receiverId !== me) report.misdelivered++;
        if (seen.has(e.itemId)) report.duplicated++;
        seen.add(e.itemId);
        report.delivered++;
        if (e.key !== '') {
          for (const [id, held] of store) {
            if (held.merchantId === e.merchantId && held.audience === e.audience && held.key === e.key) store.delete(id);
          }
        }
        store.set(e.itemId, { merchantId: e.merchantId, audience: e.audience, key: e.key });
      }
      const expected = visibleTo(me);
      for (const item of expected) {
        if (!seen.has(item.itemId)) {
          report.lost++;
          report.violations.push(`${me} never received live item ${item.itemId} (seq ${item.seq})`);
        }
      }
      const expectedIds = new Set(expected.map((i) => i.itemId));
      for (const id of store.keys()) if (!expectedIds.has(id)) report.violations.push(`${me} still holds ${id}, which was replaced or withdrawn`);
      for (const row of rows) {
        if ((row.receiver_id === '' || row.receiver_id === me) && !received.has(row.seq)) {
          report.gaps++;
          report.violations.push(`${me} never saw change ${row.seq}`);
        }
      }
      for (const item of pushedItems.values()) {
        if ((item.receiverId === '' || item.receiverId === me) && !seen.has(item.itemId) && !live.has(item.itemId)) report.supersededBeforeDelivery++;
      }
    }
  } finally {
    db.close();
  }

  // Snapshots: every receiver, following or not, holds exactly its expected items, in order.
  const following = new Set(run.followers.map((f) => f.account.id));
  for (const r of run.receivers) {
    const got = run.snapshots.get(r.id) ?? [];
    const want = visibleTo(r.id).map((i) => i.itemId);
    if (!following.has(r.id)) report.delivered += got.length;
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      const missing = want.filter((id) => !got.includes(id));
      report.lost += missing.length;
      report.violations.push(`${r.id} snapshot differs: ${missing.length} missing, ${got.filter((id) => !want.includes(id)).length} unexpected`);
    }
    const unique = new Set(got);
    report.duplicated += got.length - unique.size;
  }
}

/** The report as the lines the script prints. */
export function formatReport(r: TortureReport): string {
  return [
    `rounds: ${r.rounds}, SIGKILLs: ${r.kills} (${r.killsDuringStart} while starting), ${(r.elapsedMs / 1000).toFixed(1)} s`,
    `acknowledged: ${r.acknowledged} writes = ${r.acknowledgedPushes.specific} specific + ${r.acknowledgedPushes.public} public pushes (${r.acknowledgedPushes.replacing} replacing by key) + ${r.acknowledgedWithdrawals} withdrawals`,
    `retried after a crash: ${r.retriedAfterCrash} (${r.replayedByRequestId} answered from the idempotency record); withdrawals answered NOT_FOUND: ${r.rejectedWithdrawals}`,
    `delivered: ${r.delivered} item deliveries; superseded before a disconnected receiver came back: ${r.supersededBeforeDelivery}`,
    `lost: ${r.lost}, duplicated: ${r.duplicated}, gaps: ${r.gaps}, out of order: ${r.outOfOrder}, misdelivered: ${r.misdelivered}, other violations: ${r.violations.length}`,
  ].join('\n');
}

export const passed = (r: TortureReport) =>
  r.lost === 0 && r.duplicated === 0 && r.gaps === 0 && r.outOfOrder === 0 && r.misdelivered === 0 && r.violations.length === 0 && r.acknowledged > 0;
