// pushhub as a target of the peers harness (../shared/bench/peers; see its README, "Adding a
// target"). Installed into a copy of the harness by run-with-peers.sh, which sets PUSHHUB_REPO.
// The hub runs as its own process (node --import tsx src/main.ts) on a temp database with
// production settings; clients are the pushhub SDK (MerchantClient push stream,
// ReceiverClient.subscribe), loaded from TypeScript source through tsx's tsImport.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const REPO = process.env.PUSHHUB_REPO;
if (!REPO) throw new Error('PUSHHUB_REPO is not set (use test/bench/peers/run-with-peers.sh)');
const { tsImport } = await import(pathToFileURL(path.join(REPO, 'node_modules/tsx/dist/esm/api/index.mjs')).href);
const load = (file) => tsImport(pathToFileURL(path.join(REPO, file)).href, import.meta.url);
const { pushhubTarget } = await load('test/bench/targets/pushhub.ts');
const { benchClients } = await load('test/bench/targets/pushhub-clients.ts');

/**
 * Receivers' stored password hashes use scrypt logN 10 here (the hub itself runs logN 15, and
 * the merchant's hash is logN 15): logins happen only while subscribers connect, outside every
 * measured window but W4's connect time, and 8,000 logins at logN 15 would add ~7 min.
 */
const RECEIVER_LOG_N = 10;

export const meta = {
  name: 'pushhub',
  label: 'pushhub (gRPC, SQLite WAL synchronous=FULL, ack after commit)',
  durable: true,
  notes: 'every push fsynced (synchronous=FULL) before its ack; W1/W3 publish over the PushStream RPC; receivers logged in with scrypt logN 10 hashes (W4 connect time)',
};

export function versions() {
  let rev = '';
  try { rev = execFileSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']).toString().trim(); } catch {}
  return { server: `pushhub ${rev} on node ${process.version}`, client: 'pushhub SDK (TypeScript, via tsx)' };
}

export async function startServer({ dir, params }) {
  const receivers = Math.max(params.w1.subscribers, params.w2.subscribers, params.w4.subscribers, 1);
  const server = await pushhubTarget.startServer({ dir, receivers, receiverLogN: RECEIVER_LOG_N });
  return { pid: server.pid, conn: server.conn, config: server.command, stop: server.stop };
}

const indexOf = (id) => Number(id.slice(1)); // harness ids are s<index>

export async function connectPublisher(conn) {
  const pub = await benchClients.connectPublisher(conn, 'stream');
  return {
    publishTargeted: (id, payload) => pub.publishTargeted(indexOf(id), payload),
    publishBroadcast: (payload) => pub.publishBroadcast(payload),
    close: () => pub.close(),
  };
}

// A receiver always gets its own and the public items, so { targeted, broadcast } need no setup.
export async function connectSubscriber(conn, id, onMessage) {
  return benchClients.connectSubscriber(conn, indexOf(id), onMessage);
}
