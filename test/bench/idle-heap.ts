// npx tsx --expose-gc test/bench/idle-heap.ts [streams=1000] [broadcasts=0]
//
// What one idle Subscribe stream holds on the hub's heap: starts a hub in this process
// (TestHub: temp SQLite, tiny scrypt), opens N Subscribe streams from a child process (each on
// its own HTTP/2 connection, so the hub's side is all that is measured here), and reports the
// heap (after full GCs) per stream, plus the object counts per constructor that grew by at
// least N/2 (from two heap snapshots). Used to find what an idle stream holds beyond grpc-js.
// With broadcasts > 0 it then pushes that many public items, one every 20 ms (W2's pace), and
// reports the hub process's CPU (all its threads) per delivery until every stream has them all.
import { fork } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { createChannel, createClient } from 'nice-grpc';
import { PushHubServiceDefinition } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { TestHub, basicAuth } from '../support/hub.js';

const gc = (globalThis as { gc?: () => void }).gc;

if (process.argv[2] === '--child') {
  // Child: N subscribers, one channel each; tells the parent when all got CaughtUp.
  const [address, file] = [process.argv[3]!, process.argv[4]!];
  const creds = JSON.parse(readFileSync(file, 'utf8')) as { id: string; password: string }[];
  const broadcasts = Number(process.argv[5] ?? 0);
  process.on('message', (m) => m === 'exit' && process.exit(0)); // exits normally, so --cpu-prof writes its profile
  let ready = 0;
  let complete = 0;
  // IDLE_HEAP_SDK=1: the subscribers are the SDK's ReceiverClient; the child then reports its
  // own CPU per event handed to the application (from the first item to the last).
  let cpu0: NodeJS.CpuUsage | undefined;
  const completeOne = () => {
    if (++complete < creds.length) return;
    const cpu = process.cpuUsage(cpu0);
    process.send!(`complete ${((cpu.user + cpu.system) / (broadcasts * creds.length)).toFixed(2)}`);
  };
  if (process.env.IDLE_HEAP_SDK === '1') {
    const { ReceiverClient } = await import('../../sdk/src/receiver.js');
    for (const c of creds) {
      const receiver = new ReceiverClient({ address, id: c.id, password: c.password });
      let items = 0;
      void (async () => {
        for await (const event of receiver.subscribe()) {
          if (event.type === 'caughtUp' && ++ready === creds.length) process.send!('ready');
          if (event.type === 'item') {
            cpu0 ??= process.cpuUsage();
            if (++items === broadcasts) completeOne();
          }
        }
      })().catch((error) => process.send!(`error ${String(error)}`));
    }
  }
  for (const c of process.env.IDLE_HEAP_SDK === '1' ? [] : creds) {
    const client = createClient(PushHubServiceDefinition, createChannel(address));
    let items = 0;
    void (async () => {
      for await (const response of client.subscribe({ afterSequence: 0n }, { metadata: basicAuth(c) })) {
        for (const e of response.events) {
          if (e.event?.$case === 'caughtUp' && ++ready === creds.length) process.send!('ready');
          if (e.event?.$case === 'item') {
            cpu0 ??= process.cpuUsage();
            if (++items === broadcasts) completeOne();
          }
        }
      }
    })().catch((error) => process.send!(`error ${String(error)}`));
  }
} else {
  if (!gc) throw new Error('run with --expose-gc');
  const n = Number(process.argv[2] ?? 1000);
  const hub = await TestHub.start({ heartbeatIntervalMs: 60_000, maxConnections: 0, scryptQueueLimit: 100_000, scryptQueuePerSource: 100_000 });
  const creds = [];
  for (let i = 0; i < n; i++) creds.push(await hub.register('receiver'));
  const file = join(tmpdir(), `idle-heap-${process.pid}.json`);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, JSON.stringify(creds));
  const settle = async () => {
    for (let i = 0; i < 4; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await settle();
  const before = process.memoryUsage();
  // IDLE_HEAP_SNAPSHOTS=0 skips the snapshots (e.g. to profile only the broadcasts).
  const snapshots = process.env.IDLE_HEAP_SNAPSHOTS !== '0';
  const snapBefore = !snapshots ? new Map() : countsByConstructor(writeHeapSnapshot(join(tmpdir(), `idle-heap-before-${process.pid}.heapsnapshot`)));
  const broadcasts = Number(process.argv[3] ?? 0);
  const child = fork(new URL(import.meta.url).pathname, ['--child', hub.address, file, String(broadcasts)], {
    // IDLE_HEAP_CHILD_PROF=dir profiles the subscriber process (--cpu-prof).
    execArgv: ['--import', 'tsx', ...(process.env.IDLE_HEAP_CHILD_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.IDLE_HEAP_CHILD_PROF}`] : [])],
  });
  let onComplete = (_childCpuPerEvent: string) => {};
  await new Promise<void>((resolve, reject) =>
    child.on('message', (m) => (m === 'ready' ? resolve() : String(m).startsWith('complete') ? onComplete(String(m).split(' ')[1]!) : reject(new Error(String(m))))),
  );
  await new Promise((r) => setTimeout(r, 2000));
  await settle();
  const after = process.memoryUsage();
  const snapAfter = !snapshots ? new Map() : countsByConstructor(writeHeapSnapshot(join(tmpdir(), `idle-heap-after-${process.pid}.heapsnapshot`)));
  const per = (k: keyof NodeJS.MemoryUsage) => ((after[k] - before[k]) / n / 1024).toFixed(2);
  console.log(`${n} idle Subscribe streams: per stream KiB heapUsed ${per('heapUsed')}, external ${per('external')}, arrayBuffers ${per('arrayBuffers')}, rss ${per('rss')}`);
  const rows = [...snapAfter.entries()]
    .map(([name, a]) => {
      const b = snapBefore.get(name) ?? { count: 0, bytes: 0 };
      return { name, perStream: (a.count - b.count) / n, bytesPerStream: (a.bytes - b.bytes) / n };
    })
    .filter((r) => r.perStream >= 0.5)
    .sort((x, y) => y.bytesPerStream - x.bytesPerStream);
  let total = 0;
  for (const r of rows) total += r.bytesPerStream;
  console.log(`objects grown by >= 0.5 per stream (${rows.length} kinds, ${(total / 1024).toFixed(2)} KiB per stream):`);
  for (const r of rows.slice(0, 60)) console.log(`  ${r.perStream.toFixed(2).padStart(6)} × ${r.name.slice(0, 110).padEnd(110)} ${r.bytesPerStream.toFixed(0).padStart(6)} B`);
  if (broadcasts > 0) {
    const merchant = await hub.register('merchant');
    const client = hub.client();
    const done = new Promise<string>((resolve) => (onComplete = resolve));
    const cpu0 = process.cpuUsage();
    const mark0 = process.hrtime.bigint() / 1000n; // µs, the clock of --cpu-prof's timestamps
    const t0 = performance.now();
    for (let i = 0; i < broadcasts; i++) {
      void client.pushPublic({ info: { title: `broadcast ${i}`, body: 'x'.repeat(150) } }, { metadata: basicAuth(merchant) });
      await new Promise((r) => setTimeout(r, 20));
    }
    const childCpuPerEvent = await done;
    const cpu = process.cpuUsage(cpu0);
    const wall = performance.now() - t0;
    if (process.execArgv.includes('--cpu-prof')) console.log(`profile window (µs): ${mark0} ${process.hrtime.bigint() / 1000n}`);
    const deliveries = broadcasts * n;
    console.log(
      `${broadcasts} broadcasts to ${n} streams: hub CPU ${(((cpu.user + cpu.system) / deliveries)).toFixed(2)} µs per delivery (user ${(cpu.user / deliveries).toFixed(2)}), subscriber process CPU ${childCpuPerEvent} µs per event${process.env.IDLE_HEAP_SDK === '1' ? ' (SDK ReceiverClient)' : ' (bare nice-grpc client)'}, wall ${wall.toFixed(0)} ms`,
    );
  }
  child.send('exit');
  await new Promise((r) => child.once('exit', r));
  await hub.stop();
  rmSync(file, { force: true });
  process.exit(0);
}

/**
 * Object count and self size per node kind, from a V8 heap snapshot file (deleted after).
 * Anonymous kinds (plain arrays, Objects, anonymous closures, contexts, strings) are named by
 * the first object that holds them, to tell whose they are.
 */
function countsByConstructor(path: string): Map<string, { count: number; bytes: number }> {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  rmSync(path, { force: true });
  const { meta } = snap.snapshot;
  const width = meta.node_fields.length;
  const edgeWidth = meta.edge_fields.length;
  const [typeAt, nameAt, sizeAt, edgeCountAt] = ['type', 'name', 'self_size', 'edge_count'].map((f) => meta.node_fields.indexOf(f)) as [number, number, number, number];
  const [edgeTypeAt, toAt] = [meta.edge_fields.indexOf('type'), meta.edge_fields.indexOf('to_node')];
  const types = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const count = snap.nodes.length / width;
  const own = (i: number) => {
    const type = types[snap.nodes[i * width + typeAt]!]!;
    let name = snap.strings[snap.nodes[i * width + nameAt]!]!;
    if (type.includes('string') || type === 'number' || type === 'array') name = '';
    return { type, name, key: `${type}:${name.slice(0, 60)}` };
  };
  const anonymous = (k: { type: string; name: string }) =>
    k.type === 'array' || k.type.includes('string') || k.name === 'Object' || k.name === 'system / Context' || (k.type === 'closure' && k.name === '') || k.name === 'Array' || k.name === 'Map' || k.name === 'Set' || k.name === 'system / PropertyArray';
  const owner = new Int32Array(count).fill(-1);
  let edge = 0;
  for (let i = 0; i < count; i++) {
    const edges = snap.nodes[i * width + edgeCountAt]!;
    for (let e = 0; e < edges; e++, edge += edgeWidth) {
      const edgeType = edgeTypes[snap.edges[edge + edgeTypeAt]!];
      if (edgeType === 'weak' || edgeType === 'shortcut') continue;
      const to = snap.edges[edge + toAt]! / width;
      if (owner[to] === -1) owner[to] = i;
    }
  }
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < count; i++) {
    const k = own(i);
    let key = k.key;
    if (anonymous(k)) {
      // Walk up through anonymous holders (at most 3) to a named one.
      let o = owner[i]!;
      for (let hops = 0; o >= 0 && hops < 6 && anonymous(own(o)); hops++) o = owner[o]!;
      key = `${k.key} in ${o >= 0 ? own(o).key : '?'}`;
    }
    const entry = out.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += snap.nodes[i * width + sizeAt]!;
    out.set(key, entry);
  }
  return out;
}
