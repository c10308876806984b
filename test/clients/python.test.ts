import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TestHub } from '../support/hub.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const EXAMPLES = join(ROOT, 'examples/python');

/**
 * A python3 that has grpcio and grpc_tools (Debian: python3-grpcio, python3-grpc-tools, which
 * .ci/run installs). A python3 earlier on PATH without them (pyenv, a venv) is passed over for
 * the system one. None at all fails the suite: the Python client is part of what CI proves.
 */
async function findPython(): Promise<string> {
  const candidates = [process.env.PUSHHUB_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => !!c);
  for (const python of candidates) {
    try {
      await run(python, ['-c', 'import grpc, grpc_tools.protoc']);
      return python;
    } catch {
      // Not this one; try the next.
    }
  }
  throw new Error(`no python3 with grpcio and grpc_tools among ${candidates.join(', ')}: apt-get install python3-grpcio python3-grpc-tools`);
}

/** An example script as a child process, its stdout collected line by line. */
class PythonScript {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private stderr = '';

  constructor(python: string, cwd: string, gen: string, script: string, args: string[]) {
    this.child = spawn(python, ['-u', join(EXAMPLES, script), ...args], { cwd, env: { ...process.env, PYTHONPATH: gen, PYTHONDONTWRITEBYTECODE: '1' } });
    let partial = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString()).split('\n');
      partial = parts.pop()!;
      this.lines.push(...parts);
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  /** Waits until the script has printed `count` lines (bounded by the test's timeout) or exited. */
  async waitForLines(count: number): Promise<string[]> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    while (this.lines.length < count && !exited) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(this.lines.length >= count, `${count} lines expected; stdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`);
    return this.lines.slice(0, count);
  }

  async finish(signal?: NodeJS.Signals): Promise<{ code: number | null; stdout: string[]; stderr: string }> {
    if (signal) this.child.kill(signal);
    return { code: await this.exited, stdout: this.lines, stderr: this.stderr };
  }
}

describe('Python client (examples/python, stubs from protoc)', function () {
  this.timeout(120_000);
  let python: string;
  let dir: string;
  let gen: string;
  let hub: TestHub;

  before(async () => {
    python = await findPython();
    dir = mkdtempSync(join(tmpdir(), 'pushhub-python-'));
    gen = join(dir, 'gen');
    mkdirSync(gen);
    // As docs/clients.md says, from the repository root.
    await run(python, ['-m', 'grpc_tools.protoc', '-I', 'proto', `--python_out=${gen}`, `--grpc_python_out=${gen}`, 'proto/pushhub/v1/pushhub.proto'], { cwd: ROOT });
    hub = await TestHub.start();
  });
  after(async () => {
    await hub?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a receiver keeps its store by the stream while a merchant pushes, withdraws and lists; both resume with their saved credentials', async () => {
    const merchant = async () => {
      const { stdout, stderr } = await run(python, [join(EXAMPLES, 'merchant.py'), '--address', hub.address, receiverId], { cwd: dir, env: { ...process.env, PYTHONPATH: gen, PYTHONDONTWRITEBYTECODE: '1' } });
      assert.equal(stderr, '');
      return stdout.trim().split('\n');
    };

    let receiver = new PythonScript(python, dir, gen, 'receiver.py', ['--address', hub.address]);
    const [first, caughtUp] = await receiver.waitForLines(2);
    const receiverId = /^receiver (R\d\d-\d{16})$/.exec(first!)?.[1] ?? assert.fail(first);
    assert.equal(caughtUp, 'caught up at 0 (0 items)');

    const run1 = await merchant();
    const merchantId = /^merchant (M11-\d{16})$/.exec(run1[0]!)?.[1] ?? assert.fail(run1[0]);
    assert.deepEqual(
      run1.map((line) => line.replace(/I[0-9a-f]{32}/g, 'I…')),
      [`merchant ${merchantId}`, 'pushed I… at sequence 1', 'pushed I… at sequence 2', 'live I… bread5 5 EUR off', 'withdrew I… at sequence 3', 'failed NOT_FOUND ITEM_NOT_FOUND'],
    );
    const run2 = await merchant();
    assert.equal(run2[0], `merchant ${merchantId}`, 'the second run reuses the saved merchant');
    assert.equal(run2[1]!.replace(/I[0-9a-f]{32}/, 'I…'), 'pushed I… at sequence 5', 'the points replace the first ones (tombstone 4)');

    assert.deepEqual((await receiver.waitForLines(9)).slice(2), [
      'added Your points',
      'added 5 EUR off',
      'removed 5 EUR off (withdrawn)',
      'removed Your points (replaced)',
      'added Your points',
      'added 5 EUR off',
      'removed 5 EUR off (withdrawn)',
    ]);
    const stopped = await receiver.finish('SIGINT');
    assert.equal(stopped.code, 0, stopped.stderr);

    // The next run resumes after its saved cursor: nothing replayed, one item kept.
    receiver = new PythonScript(python, dir, gen, 'receiver.py', ['--address', hub.address]);
    assert.deepEqual(await receiver.waitForLines(2), [`receiver ${receiverId}`, 'caught up at 7 (1 items)']);
    await receiver.finish('SIGINT');

    // Another receiver's credentials on this store: refused, as the SDK's store does.
    const other = new PythonScript(python, dir, gen, 'receiver.py', ['--address', hub.address, '--credentials', 'other.json']);
    const refused = await other.finish();
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`this store belongs to receiver ${receiverId}, not R\\d\\d-\\d{16}`));
  });
});
