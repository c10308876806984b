import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningHub, startHub } from '../../src/hub.js';
import { type Logger, redactSecrets } from '../../src/logger.js';
import { testConfig } from '../support/hub.js';
import { METHOD_PATH } from './support.js';

/** A logger that keeps every line, as it would be written. */
function capturingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const write = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push(JSON.stringify({ level, msg, ...fields }));
  return { lines, debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/** Sends one raw HTTP/2 request with the given headers and waits for its end. */
async function rawCall(address: string, headers: http2.OutgoingHttpHeaders): Promise<void> {
  const session = http2.connect(`http://${address}`);
  try {
    await new Promise<void>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': METHOD_PATH('ListItems'), 'content-type': 'application/grpc', te: 'trailers', ...headers });
      stream.on('error', reject);
      stream.on('close', () => resolve());
      stream.resume();
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  } finally {
    session.close();
  }
}

describe('grpc-js logs', function () {
  let dir: string;
  let hub: RunningHub;
  let logger: ReturnType<typeof capturingLogger>;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pushhub-logs-'));
    logger = capturingLogger();
    hub = await startHub(testConfig(dir), { logger });
  });
  afterEach(async () => {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an authorization value grpc-js refuses (a tab in it) reaches the hub log without the secret', async () => {
    const secret = Buffer.from('M00-1234567812345678:hunter2-very-secret').toString('base64');
    await rawCall(hub.address, { authorization: `Basic\t${secret}` });
    const grpcLines = logger.lines.filter((line) => line.includes('grpc-js'));
    assert.ok(grpcLines.some((line) => line.includes('Failed to add metadata entry authorization')), `grpc-js's complaint is in the hub log: ${logger.lines.join('\n')}`);
    for (const line of logger.lines) {
      assert.ok(!line.includes(secret), `secret in log: ${line}`);
      assert.ok(!line.includes('hunter2'), `password in log: ${line}`);
    }
  });

  it('redaction removes authorization values and Basic/Bearer tokens anywhere in a line', () => {
    assert.equal(redactSecrets('Failed to add metadata entry authorization: Basic\tabc=. Error'), 'Failed to add metadata entry authorization: [redacted]');
    assert.equal(redactSecrets('header was basic  QUJDOkRFRg== end'), 'header was basic  [redacted] end');
    assert.equal(redactSecrets('Bearer eyJ.x.y'), 'Bearer [redacted]');
    assert.equal(redactSecrets('nothing secret here'), 'nothing secret here');
  });
});
