import { setMaxListeners } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type Channel, ClientError, Metadata, Status, createChannel, createClient } from 'nice-grpc';
import { PushHubServiceDefinition, Role, SubscribeRequest } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { HubProcess, freePort } from '../support/hub-process.js';

/**
 * `npm run soak [-- --subscribers 2000 --rate 100 --duration-s 60 --slow 20]`
 *
 * The hub as its own process; thousands of receivers hold Subscribe streams while merchants
 * push at a steady rate (specific to random receivers, some public to everyone) for a
 * bounded time. A few receivers open a stream and never read it. Reports the hub's RSS at
 * the start and end of the push phase (sampled from /proc), every delivery checked, and
 * what happened to the receivers that stopped reading. Exits 1 on a lost push, a stream
 * error, or memory that kept growing.
 */
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const SUBSCRIBERS = arg('subscribers', 2000);
const RATE = arg('rate', 100); // pushes per second, all merchants together
const DURATION_S = arg('duration-s', 60);
const SLOW = arg('slow', 20); // receivers that open a stream and never read
const PUBLIC_SHARE = arg('public-share', 0.05);
const MERCHANTS = 4;
const STREAMS_PER_CONNECTION = 200;
/** The slow receivers' streams are cut after this many queued events (the hub's --subscriber-buffer-limit). */
const BUFFER_LIMIT = arg('buffer-limit', 1000);

const rssMb = (pid: number) => {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
};
const basic = (id: string, password: string) => Metadata({ authorization: `Basic ${Buffer.from(`${id}:${password}`).toString('base64')}` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'pushhub-soak-'));
const hub = new HubProcess(join(dir, 'hub.db'), await freePort(), ['--heartbeat-ms', '10000', '--subscriber-buffer-limit', String(BUFFER_LIMIT)]);
const channels: Channel[] = [];
const newClient = () => {
  const channel = createChannel(hub.address, undefined, { 'grpc.use_local_subchannel_pool': 1 });
  channels.push(channel);
  return createClient(PushHubServiceDefinition, channel);
};

let failed = false;
const fail = (why: string) => {
  failed = true;
  console.log(`FAIL: ${why}`);
};

try {
  await hub.start();
  const pid = hub.pid!;
  console.log(`hub pid ${pid}, RSS after start ${rssMb(pid).toFixed(1)} MB`);
  const setup = newClient();
  const register = async (role: Role) => {
    const r = await setup.register({ role, displayName: 'soak', regionCode: '', registrationToken: '' });
    return { id: r.id, password: r.password, metadata: basic(r.id, r.password) };
  };
  const merchants = await Promise.all(Array.from({ length: MERCHANTS }, () => register(Role.ROLE_MERCHANT)));
  const receivers = [];
  for (let i = 0; i < SUBSCRIBERS + SLOW; i += 100) {
    receivers.push(...(await Promise.all(Array.from({ length: Math.min(100, SUBSCRIBERS + SLOW - i) }, () => register(Role.ROLE_RECEIVER)))));
  }
  const readers = receivers.slice(0, SUBSCRIBERS);
  const slowOnes = receivers.slice(SUBSCRIBERS);
  console.log(`registered ${merchants.length} merchants and ${receivers.length} receivers`);

  // Subscribers: STREAMS_PER_CONNECTION streams per HTTP/2 connection.
  const abort = new AbortController();
  setMaxListeners(0, abort.signal);
  const got = readers.map(() => ({ specific: new Set<string>(), public: 0, caughtUp: false, cursor: 0n, resumes: 0, error: undefined as unknown }));
  let client = newClient();
  const following = readers.map(async (r, i) => {
    if (i % STREAMS_PER_CONNECTION === 0 && i > 0) client = newClient();
    const mine = client;
    const g = got[i]!;
    // Like the SDK: a stream the hub cut because this reader fell behind resumes from its cursor.
    for (;;) {
      try {
        for await (const response of mine.subscribe({ afterSequence: g.cursor }, { metadata: r.metadata, signal: abort.signal })) for (const { event } of response.events) {
          if (event?.$case === 'caughtUp') {
            g.caughtUp = true;
            if (event.value.sequence > g.cursor) g.cursor = event.value.sequence;
          } else if (event?.$case === 'item' && event.value.sequence > g.cursor) {
            g.cursor = event.value.sequence;
            if (event.value.receiverId === '') g.public++;
            else g.specific.add(event.value.itemId);
          }
        }
        return;
      } catch (error) {
        if (error instanceof ClientError && error.code === Status.RESOURCE_EXHAUSTED) {
          g.resumes++;
          continue;
        }
        if (!(error instanceof Error && error.name === 'AbortError')) g.error = error;
        return;
      }
    }
  });
  while (got.some((g) => !g.caughtUp && !g.error)) await sleep(50);
  console.log(`${readers.length} subscribers caught up`);

  // Slow receivers: a raw grpc-js stream with no reader; it stops pulling after a few messages.
  const slowClient = new grpc.Client(hub.address, grpc.credentials.createInsecure());
  const slowCalls = slowOnes.map((r) => {
    const md = new grpc.Metadata();
    md.set('authorization', r.metadata.get('authorization')!);
    const call = slowClient.makeServerStreamRequest(
      `/${PushHubServiceDefinition.fullName}/Subscribe`,
      (req: SubscribeRequest) => Buffer.from(SubscribeRequest.encode(req).finish()),
      (bytes: Buffer) => bytes,
      { afterSequence: 0n, historyId: '' },
      md,
    );
    const outcome = { status: undefined as grpc.StatusObject | undefined, received: 0 };
    call.on('status', (status: grpc.StatusObject) => (outcome.status = status));
    call.on('error', () => {});
    return { call, outcome };
  });

  // Steady pushes.
  const pushers = merchants.map(() => newClient());
  const expected = new Map<string, Set<string>>(readers.map((r) => [r.id, new Set()]));
  let publicPushes = 0;
  let pushErrors = 0;
  let pushed = 0;
  const rss: { t: number; mb: number }[] = [];
  const startedAt = Date.now();
  const warmupS = Math.min(10, DURATION_S / 6);
  let rssStart = NaN;
  const inFlight = new Set<Promise<void>>();
  let next = startedAt;
  while (Date.now() - startedAt < DURATION_S * 1000) {
    const elapsedS = (Date.now() - startedAt) / 1000;
    if (rss.length === 0 || elapsedS - rss[rss.length - 1]!.t >= 5) {
      rss.push({ t: elapsedS, mb: rssMb(pid) });
      if (Number.isNaN(rssStart) && elapsedS >= warmupS) rssStart = rss[rss.length - 1]!.mb;
      console.log(`t=${elapsedS.toFixed(0)}s pushed ${pushed} (public ${publicPushes}), hub RSS ${rss[rss.length - 1]!.mb.toFixed(1)} MB`);
    }
    const due = Math.floor(((Date.now() - startedAt) / 1000) * RATE) - pushed;
    for (let k = 0; k < due; k++) {
      const m = pushed % MERCHANTS;
      const client = pushers[m]!;
      const isPublic = Math.random() < PUBLIC_SHARE;
      const info = { key: '', title: `soak ${pushed}`, body: 'x'.repeat(100), data: {}, validUntil: undefined, offer: undefined };
      pushed++;
      let p: Promise<void>;
      if (isPublic) {
        publicPushes++;
        p = client.pushPublic({ info, requestId: '' }, { metadata: merchants[m]!.metadata }).then(
          () => {},
          () => void pushErrors++,
        );
      } else {
        const r = readers[Math.floor(Math.random() * readers.length)]!;
        p = client.pushSpecific({ receiverId: r.id, info, requestId: '' }, { metadata: merchants[m]!.metadata }).then(
          (ack) => void expected.get(r.id)!.add(ack.itemId),
          () => void pushErrors++,
        );
      }
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    next += 20;
    await sleep(Math.max(0, next - Date.now()));
  }
  await Promise.all(inFlight);
  const rssEnd = rssMb(pid);
  rss.push({ t: (Date.now() - startedAt) / 1000, mb: rssEnd });
  if (Number.isNaN(rssStart)) rssStart = rss[0]!.mb;

  // Every push delivered to every subscriber it was for.
  const deadline = Date.now() + 60_000;
  const missing = () => {
    let n = 0;
    readers.forEach((r, i) => {
      for (const id of expected.get(r.id)!) if (!got[i]!.specific.has(id)) n++;
      n += Math.max(0, publicPushes - pushErrors - got[i]!.public);
    });
    return n;
  };
  while (missing() > 0 && Date.now() < deadline) await sleep(200);
  const lost = missing();
  const streamErrors = got.filter((g) => g.error).length;
  const resumes = got.reduce((sum, g) => sum + g.resumes, 0);
  const delivered = got.reduce((sum, g) => sum + g.specific.size + g.public, 0);

  // Slow-consumer phase: the readers leave; a burst of public pushes goes to the receivers
  // that never read, well past the buffer limit. Their queues are cut at the limit, so the
  // hub's memory does not follow the burst.
  abort.abort();
  await Promise.all(following);
  const burst = BUFFER_LIMIT * 4;
  const rssBeforeBurst = rssMb(pid);
  async function* burstPushes() {
    for (let ref = 1n; ref <= BigInt(burst); ref++) {
      yield { entries: [{ ref, push: { $case: 'public' as const, value: { info: { key: '', title: `burst ${ref}`, body: 'x'.repeat(100), data: {}, validUntil: undefined, offer: undefined }, requestId: '' } } }] };
    }
  }
  let burstAcked = 0;
  for await (const response of pushers[0]!.pushStream(burstPushes(), { metadata: merchants[0]!.metadata })) {
    for (const result of response.results) if (result.code === Status.OK) burstAcked++;
  }
  await sleep(2000);
  const rssAfterBurst = rssMb(pid);
  console.log(`burst: ${burstAcked}/${burst} public pushes to ${SLOW} receivers that never read; hub RSS ${rssBeforeBurst.toFixed(1)} -> ${rssAfterBurst.toFixed(1)} MB`);

  // The slow receivers now read: they get what was buffered and then the hub's verdict.
  for (const { call, outcome } of slowCalls) call.on('data', () => outcome.received++);
  const slowDeadline = Date.now() + 30_000;
  while (slowCalls.some((s) => !s.outcome.status) && Date.now() < slowDeadline) await sleep(100);
  const slowCut = slowCalls.filter((s) => s.outcome.status?.code === grpc.status.RESOURCE_EXHAUSTED).length;
  const maxRss = Math.max(...rss.map((s) => s.mb));

  slowClient.close();

  console.log('');
  console.log(`subscribers: ${readers.length} (+${SLOW} that never read), ${MERCHANTS} merchants, ${RATE} pushes/s for ${DURATION_S} s`);
  console.log(`pushed: ${pushed} (${publicPushes} public), push errors: ${pushErrors}`);
  console.log(`delivered: ${delivered} items, lost: ${lost}, subscriber stream errors: ${streamErrors}, resumes after falling ${BUFFER_LIMIT} behind: ${resumes}`);
  console.log(`hub RSS: ${rss[0]!.mb.toFixed(1)} MB at the first sample, ${rssStart.toFixed(1)} MB after ${warmupS.toFixed(0)} s warm-up, ${rssEnd.toFixed(1)} MB at the end, max ${maxRss.toFixed(1)} MB`);
  console.log(`slow receivers: ${slowCut}/${SLOW} ended by the hub with RESOURCE_EXHAUSTED (buffer limit ${BUFFER_LIMIT}) after ${burst} burst pushes; hub RSS ${rssBeforeBurst.toFixed(1)} MB before the burst, ${rssAfterBurst.toFixed(1)} MB after`);
  if (lost > 0) fail(`${lost} deliveries missing`);
  if (pushErrors > 0) fail(`${pushErrors} pushes failed`);
  if (streamErrors > 0) fail(`${streamErrors} subscriber streams failed: ${String(got.find((g) => g.error)?.error)}`);
  if (rssEnd > rssStart * 1.5 + 64) fail(`hub memory grew from ${rssStart.toFixed(1)} to ${rssEnd.toFixed(1)} MB`);
  if (slowCut < SLOW) fail(`only ${slowCut} of ${SLOW} slow receivers were cut off`);
  if (burstAcked < burst) fail(`only ${burstAcked} of ${burst} burst pushes acknowledged`);
  if (rssAfterBurst > rssBeforeBurst + 64) fail(`hub memory followed the burst: ${rssBeforeBurst.toFixed(1)} -> ${rssAfterBurst.toFixed(1)} MB`);
  if (hub.errorLines.length > 0) fail(`hub logged errors: ${hub.errorLines[0]}`);
} catch (error) {
  fail(error instanceof ClientError ? `${Status[error.code]} ${error.details}` : String((error as Error)?.stack ?? error));
} finally {
  for (const channel of channels) channel.close();
  await hub.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log(failed ? 'FAIL' : 'PASS');
process.exit(failed ? 1 : 0);
