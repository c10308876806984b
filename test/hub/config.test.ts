import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, DEFAULT_CONFIG, OPTIONS, helpText, isLoopbackHost, loadConfig } from '../../src/config.js';

const refused = (argv: string[], message: RegExp, env: NodeJS.ProcessEnv = {}) =>
  assert.throws(() => loadConfig(argv, env), (error: unknown) => error instanceof ConfigError && message.test(error.message));

describe('config', () => {
  let dir: string;
  let tokenFile: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pushhub-config-'));
    tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'file-token\n', { mode: 0o600 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('no flags and no environment give the defaults', () => {
    assert.deepEqual(loadConfig([], {}), DEFAULT_CONFIG);
  });

  it('every option of the table is read from its flag, and from its env var when it has one', () => {
    for (const option of OPTIONS) {
      const sample =
        option.kind.type === 'integer' ? String(option.kind.min + 1)
        : option.kind.type === 'address' ? '127.0.0.1:4242'
        : option.kind.type === 'enum' ? option.kind.values[1]!
        : option.kind.type === 'cidr-list' ? '10.0.0.0/8'
        : option.flag.endsWith('-file') ? tokenFile
        : 'some-value';
      const expected = option.kind.type === 'integer' ? Number(sample) : option.kind.type === 'boolean' ? true : option.kind.type === 'cidr-list' ? [sample] : sample;
      // TLS files come in pairs; give the other one too.
      const pair = option.key === 'tlsCertPath' ? ['--tls-key', 'k'] : option.key === 'tlsKeyPath' ? ['--tls-cert', 'c'] : [];
      const argv = option.kind.type === 'boolean' ? [`--${option.flag}`] : [`--${option.flag}`, sample];
      assert.deepEqual(loadConfig([...argv, ...pair], {})[option.key], expected, `--${option.flag}`);
      if (option.env && option.kind.type !== 'boolean') {
        assert.deepEqual(loadConfig(pair, { [option.env]: sample })[option.key], expected, option.env);
      }
    }
  });

  it('--trusted-proxy is repeatable, takes addresses and CIDR blocks, and is none by default', () => {
    assert.deepEqual(DEFAULT_CONFIG.trustedProxies, []);
    assert.deepEqual(loadConfig(['--trusted-proxy', '10.0.0.0/8', '--trusted-proxy', '2001:db8::1'], {}).trustedProxies, ['10.0.0.0/8', '2001:db8::1']);
    assert.deepEqual(loadConfig([], { PUSHHUB_TRUSTED_PROXIES: '127.0.0.1, fd00::/8' }).trustedProxies, ['127.0.0.1', 'fd00::/8']);
    refused(['--trusted-proxy', 'nginx.internal'], /^--trusted-proxy: "nginx.internal": must be an IP address or a CIDR block/);
    refused(['--trusted-proxy', '10.0.0.0/33'], /^--trusted-proxy: "10.0.0.0\/33": the prefix length must be 0 to 32/);
    refused([], /^PUSHHUB_TRUSTED_PROXIES: "10.0.0.0\/8\/8": must be/, { PUSHHUB_TRUSTED_PROXIES: '10.0.0.0/8/8' });
  });

  it('a flag wins over its environment variable', () => {
    assert.equal(loadConfig(['--heartbeat-ms', '500'], { PUSHHUB_HEARTBEAT_MS: '900' }).heartbeatIntervalMs, 500);
  });

  it('--address must be HOST:PORT; IPv6 in brackets is fine', () => {
    assert.equal(loadConfig(['--address', '[::1]:50051'], {}).address, '[::1]:50051');
    const open = ['--insecure-plaintext', '--open-registration'];
    assert.equal(loadConfig(['--address', '0.0.0.0:0', ...open], {}).address, '0.0.0.0:0');
    assert.equal(loadConfig(['--address', 'hub.example.com:443', ...open], {}).address, 'hub.example.com:443');
    refused(['--address', '50070'], /^--address: must be HOST:PORT such as 127\.0\.0\.1:50051 or \[::1\]:50051, got "50070"$/);
    refused(['--address', '127.0.0.1:70000'], /^--address: must be HOST:PORT/);
    refused(['--address', 'http://127.0.0.1:50051'], /^--address: must be HOST:PORT/);
    refused(['--address', '::1:50051'], /^--address: must be HOST:PORT/);
    refused([], /^PUSHHUB_ADDRESS: must be HOST:PORT/, { PUSHHUB_ADDRESS: '50070' });
  });

  it('numbers must be integers within their range, from flags and from the environment', () => {
    refused(['--heartbeat-ms', '0'], /^--heartbeat-ms: must be an integer from 100 to 3600000 \(ms\), got "0"$/);
    refused(['--heartbeat-ms', '-5'], /argument is ambiguous|--heartbeat-ms: must be an integer/);
    refused(['--heartbeat-ms', '1.5'], /^--heartbeat-ms: must be an integer/);
    refused(['--heartbeat-ms', '1e3'], /^--heartbeat-ms: must be an integer/);
    refused(['--heartbeat-ms', '5s'], /^--heartbeat-ms: must be an integer/);
    refused(['--scrypt-log-n', '40'], /^--scrypt-log-n: must be an integer from 1 to 20, got "40"$/);
    refused(['--max-streams-per-receiver', '0'], /^--max-streams-per-receiver: must be an integer from 1/);
    refused([], /^PUSHHUB_SUBSCRIBER_BUFFER_LIMIT: must be an integer from 1/, { PUSHHUB_SUBSCRIBER_BUFFER_LIMIT: 'lots' });
    // 0 is meaningful for the push rate (unlimited), so it is in range there.
    assert.equal(loadConfig(['--merchant-push-rate', '0'], {}).merchantPushRatePerSec, 0);
  });

  it('an unknown flag, a missing value or a stray argument is refused with a hint to --help', () => {
    refused(['--frobnicate'], /^Unknown option '--frobnicate'.*; see pushhub --help$/);
    refused(['--db'], /--db.*argument missing; see pushhub --help$/);
    refused(['50070'], /unexpected argument '50070'.*; see pushhub --help$/i);
  });

  it('--log-level takes pino level names only', () => {
    assert.equal(loadConfig(['--log-level', 'debug'], {}).logLevel, 'debug');
    refused(['--log-level', 'verbose'], /^--log-level: must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"$/);
  });

  it('the bench-only password bypass has no environment variable', () => {
    assert.equal(loadConfig([], { PUSHHUB_INSECURE_BENCH_SKIP_PASSWORD_CHECK: '1' }).insecureBenchSkipPasswordCheck, false);
    assert.equal(loadConfig(['--insecure-bench-skip-password-check'], {}).insecureBenchSkipPasswordCheck, true);
  });

  it('--help text comes from the table and never shows a secret value', () => {
    const text = helpText();
    for (const option of OPTIONS) assert.ok(text.includes(`--${option.flag}`), option.flag);
    assert.match(text, /--merchant-registration-token <value>\n.*\n\s+env: PUSHHUB_MERCHANT_REGISTRATION_TOKEN\s+default: unset/);
  });

  describe('secure by default', () => {
    it('loopback hosts are recognised; every other host counts as reachable from other machines', () => {
      for (const host of ['localhost', '127.0.0.1', '127.8.9.10', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) assert.ok(isLoopbackHost(host), host);
      for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.5', 'hub.example.com', 'localhost.example.com', '::2']) assert.ok(!isLoopbackHost(host), host);
    });

    it('on loopback the hub starts in plaintext with open registration (a developer machine)', () => {
      for (const address of ['127.0.0.1:50051', '[::1]:50051', 'localhost:50051']) {
        const config = loadConfig(['--address', address], {});
        assert.equal(config.insecurePlaintext, false);
        assert.equal(config.merchantRegistrationToken, undefined);
      }
    });

    it('plaintext on a public address is refused, naming --tls-cert and --insecure-plaintext', () => {
      for (const address of ['0.0.0.0:50051', '[::]:50051', '10.1.2.3:50051', 'hub.example.com:50051']) {
        refused(['--address', address, '--open-registration'], new RegExp(`^--address ${address.replace(/[[\].]/g, '\\$&')} is reachable from other machines, and without TLS passwords would cross the network in clear: serve TLS with --tls-cert and --tls-key .*or pass --insecure-plaintext`));
      }
      refused([], /^--address 0\.0\.0\.0:50051 is reachable.*--insecure-plaintext/, { PUSHHUB_ADDRESS: '0.0.0.0:50051', PUSHHUB_OPEN_REGISTRATION: '1' });
      assert.equal(loadConfig(['--address', '0.0.0.0:50051', '--insecure-plaintext', '--open-registration'], {}).insecurePlaintext, true);
      assert.equal(loadConfig(['--address', '0.0.0.0:50051', '--tls-cert', 'c', '--tls-key', 'k', '--open-registration'], {}).tlsCertPath, 'c');
    });

    it('open registration on a public address is refused per role, naming the token file flags and --open-registration', () => {
      const tls = ['--address', '0.0.0.0:50051', '--tls-cert', 'c', '--tls-key', 'k'];
      refused(tls, /could register merchant and receiver accounts: require a token with --merchant-registration-token-file and --receiver-registration-token-file, or pass --open-registration/);
      refused([...tls, '--merchant-registration-token-file', tokenFile], /could register receiver accounts: require a token with --receiver-registration-token-file, or pass --open-registration/);
      const both = loadConfig([...tls, '--merchant-registration-token-file', tokenFile], { PUSHHUB_RECEIVER_REGISTRATION_TOKEN: 'r' });
      assert.equal(both.merchantRegistrationToken, 'file-token', 'the file without its trailing newline');
      assert.equal(both.receiverRegistrationToken, 'r');
      // With --open-registration a role without a token is open on purpose.
      assert.equal(loadConfig([...tls, '--merchant-registration-token-file', tokenFile, '--open-registration'], {}).receiverRegistrationToken, undefined);
      // The safeguards have no environment variables: switching one off is said on the command line.
      refused(tls, /--open-registration/, { PUSHHUB_OPEN_REGISTRATION: '1', PUSHHUB_INSECURE_PLAINTEXT: '1' });
    });

    it('a token file that cannot be read, is empty, or comes with the token itself is refused', () => {
      refused(['--merchant-registration-token-file', join(dir, 'missing')], /^--merchant-registration-token-file .*missing: cannot read it \(ENOENT\)$/);
      const empty = join(dir, 'empty');
      writeFileSync(empty, '\n');
      refused(['--receiver-registration-token-file', empty], /^--receiver-registration-token-file .*empty: the file is empty$/);
      refused(['--merchant-registration-token-file', tokenFile, '--merchant-registration-token', 'x'], /both give the merchant token: give one/);
    });
  });
});
