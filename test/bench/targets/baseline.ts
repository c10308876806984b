// The bare grpc-js baseline as a bench target: its own process, one channel per subscriber.
import { type ClientDuplexStream, type Client, credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
import { fileURLToPath } from 'node:url';
import { freePort, spawnWithUlimit, stopChild, waitForPort } from '../util.js';
import { BaselineService, dec, enc } from './baseline-proto.js';
import type { BenchTarget } from './types.js';

const SERVER = fileURLToPath(new URL('./baseline-server.ts', import.meta.url));
/** Allocation and thread probe (test/bench/probe.ts), idle until the bench signals it. */
const PROBE = new URL('../probe.ts', import.meta.url).href;
const BaselineClient = makeGenericClientConstructor(BaselineService, 'Push');
type Rpc = Client & Record<string, (...args: unknown[]) => unknown>;
const newClient = (address: string) =>
  new BaselineClient(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as Rpc;

export const baselineTarget: BenchTarget = {
  name: 'baseline',
  label: 'bare grpc-js (server-streaming, in-memory fan-out, no store, no auth)',

  async startServer(options) {
    const port = await freePort();
    const args = ['--import', 'tsx', '--import', PROBE, SERVER, String(port)];
    const child = spawnWithUlimit(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, BENCH_PROBE_DIR: options.dir } });
    await waitForPort(port);
    return { pid: child.pid!, conn: { address: `127.0.0.1:${port}` }, command: `node ${args.join(' ')}`, stop: () => stopChild(child) };
  },

  async connectPublisher(conn, mode) {
    const client = newClient(conn.address);
    if (mode === 'unary') {
      const publish = (request: Parameters<typeof enc.publish>[0]) =>
        new Promise<void>((resolve, reject) =>
          client.Publish!(enc.publish(request), (error: Error | null) => (error ? reject(error) : resolve())),
        );
      return {
        publishTargeted: (idx, payload) => publish({ target: `s${idx}`, broadcast: false, payload, ref: 0 }),
        publishBroadcast: (payload) => publish({ target: '', broadcast: true, payload, ref: 0 }),
        close: async () => client.close(),
      };
    }
    const call = client.PublishStream!() as ClientDuplexStream<Buffer, Buffer>;
    const waiting = new Map<number, () => void>();
    let nextRef = 1;
    call.on('data', (bytes: Buffer) => {
      const { ref } = dec.reply(bytes);
      waiting.get(ref)?.();
      waiting.delete(ref);
    });
    call.on('error', () => {});
    const send = (target: string, broadcast: boolean, payload: Buffer) =>
      new Promise<void>((resolve) => {
        const ref = nextRef++;
        waiting.set(ref, resolve);
        call.write(enc.publish({ target, broadcast, payload, ref }));
      });
    return {
      publishTargeted: (idx, payload) => send(`s${idx}`, false, payload),
      publishBroadcast: (payload) => send('', true, payload),
      close: async () => {
        call.end();
        client.close();
      },
    };
  },

  async connectSubscriber(conn, idx, onMessage) {
    const client = newClient(conn.address);
    const call = client.Subscribe!(enc.subscribe(`s${idx}`)) as NodeJS.EventEmitter & { cancel(): void };
    call.on('data', (bytes: Buffer) => onMessage(dec.delivery(bytes)));
    call.on('error', () => {}); // CANCELLED on close
    await new Promise((resolve, reject) => {
      call.once('metadata', resolve);
      call.once('error', reject);
    });
    return {
      close: async () => {
        call.cancel();
        client.close();
      },
    };
  },
};
