import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

/** The repository root, where `src/main.ts` lives. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A port that was free a moment ago (the hub binds it again after every restart). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

// Torture, soak and reliability runs register and push in bulk from 127.0.0.1: no registration
// limit, room in the scrypt queue, and no push rate or public item cap unless a test asks.
const HARNESS_ARGS = ['--registration-rate-per-source', '0', '--scrypt-queue-limit', '100000', '--scrypt-queue-per-source', '100000', '--merchant-push-rate', '0', '--max-public-items-per-merchant', '0'];

/** The flags selecting the hub's store: a PostgreSQL URL or a SQLite file. */
function storeArgs(dbPath: string): string[] {
  return /^postgres(ql)?:\/\//.test(dbPath) ? ['--database-url', dbPath] : ['--db', dbPath];
}

/**
 * The hub as a real child process (`node --import tsx src/main.ts`), as `npm start` runs it,
 * so SIGKILL is a real crash: no finally blocks, no shutdown hooks, the OS closes the files.
 */
export class HubProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  /** Log lines at level error (unexpected errors the hub reported), across all runs. */
  readonly errorLines: string[] = [];
  /** Every log line, across all runs. */
  readonly lines: string[] = [];

  constructor(
    /** A SQLite file (`--db`), or a `postgres://` URL (`--database-url`: a node of a cluster). */
    readonly dbPath: string,
    readonly port: number,
    private readonly extraArgs: string[] = [],
    /** How to run the hub: node arguments before the hub's flags (default: from source under tsx). */
    private readonly entry: string[] = ['--import', 'tsx', 'src/main.ts'],
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Spawns the hub; without waitReady it returns at once (to kill it mid-start). */
  spawn(): void {
    const child = spawn(
      process.execPath,
      [...this.entry, ...storeArgs(this.dbPath), '--address', this.address, '--scrypt-log-n', '4', ...HARNESS_ARGS, ...this.extraArgs],
      { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    let pending = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        this.lines.push(line);
        if (line.includes('"level":"error"')) this.errorLines.push(line);
        child.emit('log-line', line);
      }
    });
  }

  /** Resolves once the hub logs that it listens; rejects if it exits first. */
  waitReady(timeoutMs = 30_000): Promise<void> {
    const child = this.child!;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('hub did not start in time')), timeoutMs);
      const onLine = (line: string) => {
        if (line.includes('pushhub listening')) {
          clearTimeout(timer);
          child.off('log-line', onLine);
          resolve();
        }
      };
      child.on('log-line', onLine);
      void this.exited!.then((code) => {
        clearTimeout(timer);
        reject(new Error(`hub exited (${code}) before listening: ${this.errorLines.at(-1) ?? ''}`));
      });
    });
  }

  async start(): Promise<void> {
    this.spawn();
    await this.waitReady();
  }

  /** SIGKILL: a crash at whatever the hub was doing. */
  async kill(): Promise<void> {
    if (!this.child) return;
    this.child.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
  }

  /** SIGTERM: the graceful stop; resolves to the exit code. */
  async stop(): Promise<number | null> {
    if (!this.child) return null;
    this.child.kill('SIGTERM');
    const code = await this.exited!;
    this.child = undefined;
    return code;
  }
}

/** Runs `pushhub ARGS` from source to its end: exit code and stderr. */
export function runPushhub(args: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stderr, stdout }));
  });
}
