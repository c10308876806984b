import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const BUF = join(ROOT, 'node_modules/.bin/buf');
/** The contract of the last release (git tag v0.1.0), checked in because a CI clone may have no tags. */
const RELEASED = join(ROOT, 'proto/released/pushhub-v1.binpb');

/** `buf breaking` of the module in `dir` against the released image: its exit code and findings. */
async function breaking(dir: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(BUF, ['breaking', dir, '--against', RELEASED], { cwd: ROOT });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, output: stdout + stderr };
  }
}

describe('wire contract: buf breaking against the released pushhub.v1 (docs/compatibility.md)', function () {
  this.timeout(60_000);

  it('the contract in proto/ keeps everything the released one has (additions only)', async () => {
    const { code, output } = await breaking('.');
    assert.equal(code, 0, `breaking changes against proto/released/pushhub-v1.binpb; see docs/compatibility.md:\n${output}`);
  });

  it('the checked-in image is the contract of the release tag v0.1.0 (compared where the clone has the tag)', async () => {
    const tagged = await run('git', ['rev-parse', '--verify', '--quiet', 'v0.1.0^{commit}'], { cwd: ROOT }).then(
      () => true,
      () => false,
    );
    // A shallow CI clone without tags has only the image, which is why it is checked in.
    if (!tagged) return;
    const dir = mkdtempSync(join(tmpdir(), 'pushhub-released-'));
    try {
      await run('sh', ['-c', `git archive v0.1.0 proto buf.yaml | tar -x -C '${dir}'`], { cwd: ROOT });
      rmSync(join(dir, 'proto/released'), { recursive: true, force: true });
      await run(BUF, ['build', '--exclude-source-info', '-o', join(dir, 'image.binpb')], { cwd: dir });
      assert.deepEqual(readFileSync(join(dir, 'image.binpb')), readFileSync(RELEASED), 'buf build of v0.1.0 equals proto/released/pushhub-v1.binpb');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('the check is not vacuous', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'pushhub-breaking-'));
      cpSync(join(ROOT, 'buf.yaml'), join(dir, 'buf.yaml'));
      cpSync(join(ROOT, 'proto'), join(dir, 'proto'), { recursive: true, filter: (src) => !src.includes('released') });
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const edit = (change: (proto: string) => string) => {
      const file = join(dir, 'proto/pushhub/v1/pushhub.proto');
      const before = readFileSync(file, 'utf8');
      const after = change(before);
      assert.notEqual(after, before, 'the edit applies');
      writeFileSync(file, after);
    };

    it('a removed field, a renumbered field and a changed type are reported', async () => {
      edit((proto) =>
        proto
          .replace(/\n\s*\/\/[^\n]*\n\s*string display_name = 2;/, '\n')
          .replace('string receiver_id = 1;\n  // The content; required.', 'string receiver_id = 9;\n  // The content; required.')
          .replace('uint32 percent_off = 1;', 'uint64 percent_off = 1;'),
      );
      const { code, output } = await breaking(dir);
      assert.notEqual(code, 0);
      assert.match(output, /Previously present field "2" with name "display_name" on message "RegisterRequest" was deleted/);
      assert.match(output, /"percent_off" on message "Discount" changed type/);
      assert.match(output, /field "1" with name "receiver_id" on message "PushSpecificRequest" was deleted/);
    });

    it('an added RPC, message and field pass', async () => {
      edit((proto) =>
        proto
          .replace('  string region_code = 3;', '  string region_code = 3;\n  // A new field.\n  string locale = 90;')
          .replace(/\n}\n/, '\n  // A new RPC.\n  rpc Ping(PingRequest) returns (PingResponse);\n}\n') +
          '\n// PingRequest is new.\nmessage PingRequest {}\n\n// PingResponse is new.\nmessage PingResponse {}\n',
      );
      const { code, output } = await breaking(dir);
      assert.equal(code, 0, output);
    });
  });
});
