// Receiver host of the cluster bench (forked by cluster.ts): holds many Subscribe streams on
// one hub node, over a few connections, and checks every delivery. Each item's title is
// `<phase>|<sent µs, CLOCK_MONOTONIC>`, so latency is measured across processes. Talks to the
// bench over IPC: {cmd, ...} -> {ok, ...}.
import { setMaxListeners } from 'node:events';
import type { Channel } from 'nice-grpc';
import { createHubChannel, createHubClient } from '../../sdk/src/connection.js';
import { Hist, nowUs } from './util.js';

interface ReceiverSpec {
  idx: number;
  id: string;
  password: string;
}

interface Held {
  idx: number;
  lastSequence: number;
  caughtUp: boolean;
  sequences: number[];
  seen: Set<number>;
}

const CONNECTIONS = 8;
const channels: Channel[] = [];
const held: Held[] = [];
const abort = new AbortController();
setMaxListeners(0, abort.signal); // one listener per stream: hundreds, by design
const latency = new Map<string, Hist>();
const totals = { duplicated: 0, skipped: 0, streamErrors: 0, firstError: '' };

function onItem(receiver: Held, sequence: number, title: string): void {
  const at = nowUs();
  if (receiver.seen.has(sequence)) {
    totals.duplicated++;
    return;
  }
  // A sequence below one already delivered: a cursor-based client would never see it.
  if (sequence < receiver.lastSequence) totals.skipped++;
  receiver.seen.add(sequence);
  receiver.sequences.push(sequence);
  if (sequence > receiver.lastSequence) receiver.lastSequence = sequence;
  const bar = title.indexOf('|');
  if (bar < 0) return;
  const phase = title.slice(0, bar);
  let hist = latency.get(phase);
  if (!hist) latency.set(phase, (hist = new Hist()));
  hist.add(at - Number(title.slice(bar + 1)));
}

async function hold(address: string, spec: ReceiverSpec, channel: Channel): Promise<void> {
  const receiver: Held = { idx: spec.idx, lastSequence: 0, caughtUp: false, sequences: [], seen: new Set() };
  held.push(receiver);
  const client = createHubClient(channel, () => ({ id: spec.id, password: spec.password }));
  try {
    for await (const response of client.subscribe({ afterSequence: 0n }, { signal: abort.signal })) {
      for (const { event } of response.events) {
        if (event?.$case === 'item') onItem(receiver, Number(event.value.sequence), event.value.info?.title ?? '');
        else if (event?.$case === 'caughtUp') receiver.caughtUp = true;
      }
    }
  } catch (error) {
    if (abort.signal.aborted) return;
    totals.streamErrors++;
    totals.firstError ||= `${address}: ${String((error as Error)?.message ?? error)}`;
  }
}

process.on('message', async (message: { cmd: string; address?: string; receivers?: ReceiverSpec[] }) => {
  const reply = (body: object) => process.send!({ cmd: message.cmd, ...body });
  try {
    if (message.cmd === 'subscribe') {
      for (let i = 0; i < CONNECTIONS; i++) channels.push(createHubChannel(message.address!, undefined, { private: true }));
      const specs = message.receivers!;
      const first = held.length;
      specs.forEach((spec, i) => void hold(message.address!, spec, channels[i % CONNECTIONS]!));
      const deadline = Date.now() + 120_000;
      while (held.slice(first).some((r) => !r.caughtUp)) {
        if (Date.now() > deadline) throw new Error(`receivers not caught up after 120 s: ${totals.firstError}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      reply({ ok: true });
    } else if (message.cmd === 'count') {
      reply({ ok: true, received: held.reduce((n, r) => n + r.sequences.length, 0), ...totals });
    } else if (message.cmd === 'report') {
      reply({
        ok: true,
        ...totals,
        latency: Object.fromEntries([...latency].map(([phase, hist]) => [phase, hist.toJSON()])),
        received: Object.fromEntries(held.map((r) => [r.idx, r.sequences])),
      });
    } else if (message.cmd === 'close') {
      abort.abort();
      for (const channel of channels) channel.close();
      reply({ ok: true });
      setTimeout(() => process.exit(0), 50);
    }
  } catch (error) {
    reply({ ok: false, error: String((error as Error)?.message ?? error) });
  }
});
