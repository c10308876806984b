import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Timeouts of the proxy in front of the hub; docs/cluster.md's example uses the production values. */
export interface GrpcProxyTimeouts {
  /** Longest silence nginx allows on a response stream; must exceed the hub's heartbeat interval. */
  readTimeout: string;
  /** Longest silence on a request stream (PushStream bodies stay open between pushes). */
  bodyTimeout: string;
}

export const PRODUCTION_TIMEOUTS: GrpcProxyTimeouts = { readTimeout: '1h', bodyTimeout: '1h' };

/**
 * The nginx configuration docs/cluster.md documents for a gRPC front end (grpc_pass to every hub
 * node), with the file paths of one test instance filled in.
 */
export function grpcProxyConfig(options: { dir: string; listen: string; upstreams: string[]; timeouts: GrpcProxyTimeouts }): string {
  const { dir, listen, upstreams, timeouts } = options;
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;

  upstream pushhub {
${upstreams.map((u) => `    server ${u} max_fails=1 fail_timeout=5s;`).join('\n')}
    keepalive 64;
  }

  server {
    listen ${listen} http2;
    # Subscribe and PushStream are long-lived streams: a PushStream request body has no size,
    # and nginx's 1 MiB default would end a busy push stream with 413.
    client_max_body_size 0;
    client_body_timeout ${timeouts.bodyTimeout};
    # A quiet Subscribe stream carries a heartbeat every 30 s (the hub's default).
    grpc_read_timeout ${timeouts.readTimeout};
    grpc_send_timeout ${timeouts.readTimeout};
    grpc_socket_keepalive on;
    location / {
      grpc_pass grpc://pushhub;
      # Only calls that never reached a hub are tried on the next node.
      grpc_next_upstream error timeout;
      # The client's address, for hubs run with --trusted-proxy (it replaces any X-Real-IP the client sent).
      grpc_set_header X-Real-IP $remote_addr;
    }
  }
}
`;
}

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A real nginx (Debian's package) in front of one or more hubs. Fails loudly when nginx is not
 * installed: `.ci/run` installs it, and a missing proxy must not turn into a skipped test.
 */
export class GrpcProxy {
  private constructor(
    readonly address: string,
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(upstreams: string[], timeouts: GrpcProxyTimeouts = PRODUCTION_TIMEOUTS): Promise<GrpcProxy> {
    const binary = spawnSync('nginx', ['-v']);
    if (binary.error) throw new Error(`nginx is not installed (apt-get install -y nginx): ${binary.error.message}`);
    const dir = mkdtempSync(join(tmpdir(), 'pushhub-nginx-'));
    chmodSync(dir, 0o777); // nginx's workers run as an unprivileged user when started as root
    const address = `127.0.0.1:${await freeLoopbackPort()}`;
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, grpcProxyConfig({ dir, listen: address, upstreams, timeouts }));
    const check = spawnSync('nginx', ['-t', '-p', dir, '-c', conf], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`nginx rejected its configuration: ${check.stderr}`);
    const child = spawn('nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const port = Number(address.slice(address.lastIndexOf(':') + 1));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${stderr}`);
      if (await canConnect(port)) break;
      if (Date.now() > deadline) throw new Error(`nginx did not listen on ${address}: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return new GrpcProxy(address, dir, child);
  }

  /** nginx's error log, for failure messages. */
  errorLog(): string {
    try {
      return readFileSync(join(this.dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function canConnect(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
