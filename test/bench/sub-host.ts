// Subscriber host process (spawned by run.ts): holds many subscribers of one target, each on
// its own connection, checks every delivery for loss, duplication and misrouting, and keeps
// latency statistics. Talks to run.ts over IPC: {rid, cmd, ...} -> {rid, ok, ...}.
import { AllocationMeter } from './probe.js';
import { TARGETS } from './targets/index.js';
import type { BenchTarget, Conn, Subscriber } from './targets/types.js';
import { Hist, KIND, decodePayload, nowUs, pool, selfCpuSeconds, sleep, withTimeout } from './util.js';

let target: BenchTarget;
let conn: Conn;
const subs = new Map<number, Subscriber>();
const warm = { n: 0 };
const allocation = new AllocationMeter();

interface Arm {
  expected?: number;
  seenSize?: number;
  nMsgs?: number;
  localIdx?: number[];
}

function freshStats(a: Arm) {
  return {
    expected: a.expected ?? 0,
    unique: 0,
    dups: 0,
    misrouted: 0,
    other: 0,
    hist: new Hist(),
    tFirst: null as number | null,
    tLast: null as number | null,
    doneSent: false,
    seen: new Uint8Array(a.seenSize ?? 0),
    nMsgs: a.nMsgs ?? 0,
    local: new Map((a.localIdx ?? []).map((g, i) => [g, i])),
    perMsgCount: new Uint32Array(a.nMsgs ?? 0),
    perMsgLast: new Float64Array(a.nMsgs ?? 0),
  };
}
let st = freshStats({});

const send = (message: object) => process.send!(message);

function onMessage(idx: number, payload: Buffer) {
  const t = nowUs();
  let p: ReturnType<typeof decodePayload>;
  try {
    p = decodePayload(payload);
  } catch {
    st.other++;
    return;
  }
  if (p.kind === KIND.WARM) {
    warm.n++;
    return;
  }
  st.tFirst ??= t;
  if (p.kind === KIND.TARGETED || p.kind === KIND.CATCHUP) {
    if (p.targetIdx !== idx) st.misrouted++;
    if (p.seq >= st.seen.length) {
      st.other++;
      return;
    }
    if (st.seen[p.seq]) {
      st.dups++;
      return;
    }
    st.seen[p.seq] = 1;
  } else if (p.kind === KIND.BROADCAST) {
    const li = st.local.get(idx);
    if (li === undefined || p.seq >= st.nMsgs) {
      st.other++;
      return;
    }
    const k = li * st.nMsgs + p.seq;
    if (st.seen[k]) {
      st.dups++;
      return;
    }
    st.seen[k] = 1;
    st.perMsgCount[p.seq]!++;
    if (t > st.perMsgLast[p.seq]!) st.perMsgLast[p.seq] = t;
  } else {
    st.other++;
    return;
  }
  st.unique++;
  st.tLast = t;
  st.hist.add(t - p.sentUs);
  if (!st.doneSent && st.expected && st.unique >= st.expected) {
    st.doneSent = true;
    send({ ev: 'done', tLast: t });
  }
}

const connectOne = async (idx: number) => {
  subs.set(idx, await target.connectSubscriber(conn, idx, (payload) => onMessage(idx, payload)));
};

type Handler = (a: Record<string, unknown>) => Promise<object>;
const handlers: Record<string, Handler> = {
  async init(a) {
    target = TARGETS[a.target as string]!;
    conn = a.conn as Conn;
    return { pid: process.pid };
  },
  async connect(a) {
    const ids = a.ids as number[];
    const before = subs.size;
    const ticker = setInterval(() => send({ ev: 'progress', connected: subs.size - before }), 2000);
    try {
      const t0 = Date.now();
      const r = await pool(ids, a.concurrency as number, (idx) => withTimeout(connectOne(idx), a.perConnTimeoutMs as number, `connect s${idx}`), a.deadlineMs as number);
      return { ...r, ms: Date.now() - t0 };
    } finally {
      clearInterval(ticker);
    }
  },
  async close(a) {
    const ids = (a.ids as number[] | undefined) ?? [...subs.keys()];
    return pool(ids, 64, async (idx) => {
      const sub = subs.get(idx);
      subs.delete(idx);
      if (sub) await withTimeout(sub.close(), 10_000, `close s${idx}`);
    });
  },
  async arm(a) {
    st = freshStats(a as Arm);
    return {};
  },
  async warmCount() {
    return { n: warm.n };
  },
  async cpu() {
    return { cpu: selfCpuSeconds(), rssKB: Math.round(process.memoryUsage().rss / 1024) };
  },
  async allocStart() {
    allocation.start();
    return {};
  },
  async allocStop() {
    return allocation.stop();
  },
  async stats(a) {
    const out: Record<string, unknown> = {
      unique: st.unique,
      dups: st.dups,
      misrouted: st.misrouted,
      other: st.other,
      tFirst: st.tFirst,
      tLast: st.tLast,
      hist: st.hist.toJSON(),
      subs: subs.size,
    };
    if (a.perMsg) {
      out.perMsgCount = [...st.perMsgCount];
      out.perMsgLast = [...st.perMsgLast];
    }
    return out;
  },
  // W3: reconnect one subscriber (resuming after its cursor) and time the catch-up.
  async reconnect(a) {
    const tStart = nowUs();
    await withTimeout(connectOne(a.idx as number), a.perConnTimeoutMs as number, 'reconnect');
    const tConnected = nowUs();
    const deadline = Date.now() + (a.deadlineMs as number);
    while (st.unique < st.expected && Date.now() < deadline) await sleep(5);
    return { tStart, tConnected, tFirst: st.tFirst, tLast: st.tLast, unique: st.unique, dups: st.dups, misrouted: st.misrouted };
  },
};

process.on('message', async (m: { rid: number; cmd: string } & Record<string, unknown>) => {
  if (m.cmd === 'exit') process.exit(0);
  try {
    send({ rid: m.rid, ok: true, ...(await handlers[m.cmd]!(m)) });
  } catch (error) {
    send({ rid: m.rid, ok: false, error: String((error as Error)?.stack ?? error) });
  }
});
process.on('disconnect', () => process.exit(0));
process.on('uncaughtException', (error) => send({ ev: 'error', error: String(error?.stack ?? error) }));
process.on('unhandledRejection', (error) => send({ ev: 'error', error: String((error as Error)?.stack ?? error) }));
send({ ev: 'ready' });
