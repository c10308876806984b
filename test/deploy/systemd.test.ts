import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { REPO_ROOT } from '../support/hub-process.js';

const UNITS_DIR = join(REPO_ROOT, 'deploy/systemd');
const UNITS = ['pushhub.service', 'pushhub-receiver.service', 'pushhub-receiver-register.service'];

/** A unit's `Key=value` lines, continuations joined, comments dropped; repeated keys kept in order. */
function unitSettings(name: string): [string, string][] {
  const text = readFileSync(join(UNITS_DIR, name), 'utf8').replace(/\\\n\s*/g, ' ');
  return text
    .split('\n')
    .filter((line) => /^[A-Za-z]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1).trim()]);
}
const values = (name: string, key: string) => unitSettings(name).filter(([k]) => k === key).map(([, v]) => v);
const value = (name: string, key: string) => values(name, key).at(-1);

/**
 * systemd-analyze (Debian package systemd) checks the units. .ci/run installs it; a machine
 * without it fails this test loudly rather than skipping the check.
 */
const systemdAnalyzeAvailable = () => spawnSync('systemd-analyze', ['--version']).status === 0;

describe('deploy/systemd: production units that work as written', () => {
  it('the folder holds exactly the documented units', () => {
    assert.deepEqual(readdirSync(UNITS_DIR).sort(), [...UNITS].sort());
  });

  it('systemd-analyze verify passes every unit, without a warning', () => {
    assert.ok(systemdAnalyzeAvailable(), 'systemd-analyze is missing: install Debian package systemd (.ci/run does)');
    const run = spawnSync('systemd-analyze', ['verify', ...UNITS.map((unit) => join(UNITS_DIR, unit))], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stderr.trim(), '', 'no warnings');
  });

  it('service users, state directories, no restart on exit 2, hardening, node as the main process', () => {
    for (const unit of UNITS) {
      assert.equal(value(unit, 'DynamicUser'), 'yes', `${unit}: a user made by systemd (no 217/USER)`);
      assert.match(value(unit, 'StateDirectory') ?? '', /^pushhub/, `${unit}: StateDirectory`);
      assert.match(value(unit, 'ExecStart') ?? '', /^\/usr\/bin\/node \/opt\//, `${unit}: node runs the program itself, so SIGTERM reaches it`);
      for (const [key, expected] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'], ['CapabilityBoundingSet', '']]) {
        assert.equal(value(unit, key), expected, `${unit}: ${key}=${expected}`);
      }
    }
    for (const unit of ['pushhub.service', 'pushhub-receiver.service']) {
      assert.equal(value(unit, 'Restart'), 'on-failure', unit);
      assert.equal(value(unit, 'RestartPreventExitStatus'), '2', `${unit}: a refused configuration is not restarted`);
    }
    assert.equal(value('pushhub-receiver-register.service', 'Type'), 'oneshot');
    assert.equal(value('pushhub-receiver-register.service', 'Restart'), undefined, 'the first-run step is never restarted');
    assert.equal(value('pushhub-receiver-register.service', 'User'), 'pushhub-receiver', 'the daemon\'s own (dynamic) user writes its credentials');
  });

  it('the receiver daemon waits for its first-run step instead of restarting in a loop', () => {
    const credentials = '/var/lib/pushhub-receiver/pushhub-receiver.json';
    assert.equal(value('pushhub-receiver.service', 'ConditionPathExists'), credentials);
    assert.equal(value('pushhub-receiver-register.service', 'ConditionPathExists'), `!${credentials}`);
    assert.match(value('pushhub-receiver-register.service', 'ExecStart')!, /--register-only .*--registration-token-file %d\/registration-token/);
    assert.match(value('pushhub-receiver.service', 'ExecStart')!, / --ca \/etc\/pushhub-receiver\/hub-ca\.pem /, 'the daemon uses TLS');
  });

  it('the hub unit serves TLS with a registration token from root-only files, and the hub accepts its flags', () => {
    const exec = value('pushhub.service', 'ExecStart')!;
    assert.doesNotMatch(exec, /--insecure-plaintext|--open-registration/);
    const credentials = values('pushhub.service', 'LoadCredential').map((v) => v.split(':')[0]);
    assert.deepEqual(credentials.sort(), ['merchant-registration-token', 'receiver-registration-token', 'tls-cert', 'tls-key']);
    // The flags as systemd passes them (%S: /var/lib, %d: the credentials directory), to the
    // hub's own parser: it must accept them, secure defaults included.
    const dir = mkdtempSync(join(tmpdir(), 'pushhub-units-'));
    try {
      mkdirSync(join(dir, 'credentials'));
      for (const name of credentials) writeFileSync(join(dir, 'credentials', name!), `${name}\n`);
      const argv = exec
        .split(/\s+/)
        .slice(2)
        .map((arg) => arg.replaceAll('%S', join(dir, 'state')).replaceAll('%d', join(dir, 'credentials')));
      const config = loadConfig(argv, {});
      assert.equal(config.address, '0.0.0.0:50051');
      assert.equal(config.dbPath, join(dir, 'state/pushhub/hub.db'));
      assert.equal(config.tlsCertPath, join(dir, 'credentials/tls-cert'));
      assert.equal(config.merchantRegistrationToken, 'merchant-registration-token');
      assert.equal(config.receiverRegistrationToken, 'receiver-registration-token');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
