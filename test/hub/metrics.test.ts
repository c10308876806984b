import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { type ClientError, Metadata, Status } from 'nice-grpc';
import type { PushStreamRequest } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import { StreamReader, TestHub, basicAuth } from '../support/hub.js';

/** One sample of a scrape: name, labels (as written) and value. */
function sample(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
  assert.ok(line, `the scrape has ${name}{${labels}}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/**
 * promtool (Debian's `prometheus` package) validates the exposition format. .ci/run installs
 * it; a machine without it fails this test loudly rather than skipping the check.
 */
function promtoolAvailable(): boolean {
  return spawnSync('promtool', ['--version']).status === 0;
}

describe('metrics', function () {
  this.timeout(30_000);
  let t: TestHub;
  beforeEach(async () => {
    t = await TestHub.start({ metricsAddress: '127.0.0.1:0' });
  });
  afterEach(async () => {
    await t.stop();
  });

  const scrape = async () => {
    const response = await fetch(`http://${t.hub.metricsAddress}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return response.text();
  };

  it('a scrape after real traffic reports what happened, in valid Prometheus text format', async () => {
    const client = t.client();
    const merchant = await t.register('merchant');
    const receiver = await t.register('receiver');
    const asMerchant = { metadata: basicAuth(merchant) };
    const reader = new StreamReader(t.client(), receiver);
    await reader.waitFor((r) => r.caughtUp(), 'caught up');

    // A push stream held open (counted as an open stream), which also pushes one item.
    const abort = new AbortController();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    async function* requests(): AsyncGenerator<PushStreamRequest> {
      yield { entries: [{ ref: 1n, push: { $case: 'public', value: { info: { title: 'via stream' }, requestId: '' } } }] } as PushStreamRequest;
      yield { entries: [{ ref: 2n, push: { $case: 'specific', value: { receiverId: '', info: { title: 'bad' }, requestId: '' } } }] } as PushStreamRequest;
      await held;
    }
    const stream = client.pushStream(requests(), { ...asMerchant, signal: abort.signal });
    const answers: number[] = [];
    const streaming = (async () => {
      try {
        for await (const answer of stream) for (const result of answer.results) answers.push(result.code);
      } catch {
        // aborted at the end of the test
      }
    })();

    const specific = 5;
    const acks = [];
    for (let i = 0; i < specific; i++) acks.push(await client.pushSpecific({ receiverId: receiver.id, info: { title: `s${i}`, key: `k${i}` } }, asMerchant));
    await client.pushPublic({ info: { title: 'public' } }, asMerchant);
    await client.withdraw({ itemId: acks[0]!.itemId }, asMerchant);
    await assert.rejects(client.pushSpecific({ receiverId: '', info: { title: 'x' } }, asMerchant));
    await assert.rejects(client.pushPublic({ info: { title: 'x' } }, { metadata: Metadata({ authorization: 'Basic bm9ib2R5OndoYXRldmVy' }) }));
    while (answers.length < 2) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(answers.sort(), [Status.OK, Status.INVALID_ARGUMENT]);
    // Every change reached the receiver: 5 specific, 2 public, 1 withdrawal.
    await reader.waitFor((r) => r.items().length === specific + 2 && r.withdrawals().length === 1, 'all changes');

    const text = await scrape();
    const pushes = specific + 2;
    assert.equal(sample(text, 'pushhub_changes_committed_total', 'kind="push"'), pushes);
    assert.equal(sample(text, 'pushhub_changes_committed_total', 'kind="withdrawal"'), 1);
    assert.equal(sample(text, 'pushhub_commit_batch_size_sum'), pushes + 1, 'every committed write is in a batch');
    const batches = sample(text, 'pushhub_commit_batch_size_count');
    assert.ok(batches >= 2 && batches <= pushes + 1, `batches: ${batches}`);
    assert.equal(sample(text, 'pushhub_commit_duration_seconds_count'), batches);
    assert.equal(sample(text, 'pushhub_ack_latency_seconds_count'), batches);
    assert.ok(sample(text, 'pushhub_commit_duration_seconds_sum') > 0);
    assert.equal(sample(text, 'pushhub_deliveries_total'), pushes + 1, 'one subscriber got every change');
    assert.equal(sample(text, 'pushhub_head_sequence'), Number(reader.sequences().at(-1)));
    assert.equal(sample(text, 'pushhub_open_streams', 'method="Subscribe"'), 1);
    assert.equal(sample(text, 'pushhub_open_streams', 'method="PushStream"'), 1);
    assert.equal(sample(text, 'pushhub_rejections_total', 'method="PushSpecific",reason="INVALID_ARGUMENT"'), 1);
    assert.equal(sample(text, 'pushhub_rejections_total', 'method="PushStream",reason="INVALID_ARGUMENT"'), 1);
    assert.equal(sample(text, 'pushhub_rejections_total', 'method="PushPublic",reason="UNAUTHENTICATED"'), 1);
    assert.equal(sample(text, 'pushhub_failed_logins_total'), 1);
    assert.ok(sample(text, 'pushhub_database_size_bytes') > 4096);
    // Per-RPC counts from nice-grpc-prometheus, and the default process metrics.
    assert.equal(
      sample(text, 'grpc_server_handled_total', 'grpc_type="unary",grpc_service="pushhub.v1.PushHubService",grpc_method="PushSpecific",grpc_path="/pushhub.v1.PushHubService/PushSpecific",grpc_code="OK"'),
      specific,
    );
    assert.ok(sample(text, 'process_cpu_user_seconds_total') > 0);
    assert.ok(sample(text, 'process_resident_memory_bytes') > 0);

    assert.ok(promtoolAvailable(), 'promtool is missing: install Debian package prometheus (.ci/run does)');
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    // prom-client's own default gauges nodejs_active_{handles,requests,resources}_total break
    // one naming lint (a _total gauge); they are the library's names, not ours. Anything else,
    // a parse error included, fails the test.
    const PROM_CLIENT_DEFAULTS = /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;
    const problems = `${check.stdout}${check.stderr}`.split('\n').filter((l) => l.trim() !== '' && !PROM_CLIENT_DEFAULTS.test(l));
    assert.deepEqual(problems, [], `promtool check metrics (exit ${check.status})`);
    assert.ok(check.status === 0 || check.status === 3, `promtool exit ${check.status} (3 = lint findings only)`);

    release();
    abort.abort();
    await streaming;
    await reader.close();
  });

  it('a slow consumer cut off and a login throttle are counted', async () => {
    await t.restart({ subscriberBufferLimit: 1, maxFailedLogins: 1, metricsAddress: '127.0.0.1:0' });
    const client = t.client();
    const merchant = await t.register('merchant');
    const receiver = await t.register('receiver');
    // A stream nobody reads, on its own connection: its buffer overflows and the hub ends it.
    const abort = new AbortController();
    const unread = t.client().subscribe({ afterSequence: 0n }, { metadata: basicAuth(receiver), signal: abort.signal })[Symbol.asyncIterator]();
    await unread.next();
    const body = 'x'.repeat(4000);
    for (let round = 0; round < 6; round++) {
      await Promise.all(Array.from({ length: 50 }, () => client.pushPublic({ info: { title: 'big', body } }, { metadata: basicAuth(merchant) })));
    }
    // The end reaches the client once it drains what was already sent.
    await assert.rejects(
      (async () => {
        for (let r = await unread.next(); !r.done; r = await unread.next());
      })(),
      (e: ClientError) => e.code === Status.RESOURCE_EXHAUSTED,
    );
    const wrong = { metadata: basicAuth({ id: merchant.id, password: 'wrong' }) };
    await assert.rejects(client.pushPublic({ info: { title: 'x' } }, wrong));
    await assert.rejects(client.pushPublic({ info: { title: 'x' } }, wrong));
    const text = await scrape();
    abort.abort();
    assert.equal(sample(text, 'pushhub_streams_too_slow_total'), 1);
    assert.equal(sample(text, 'pushhub_throttled_total', 'kind="login"'), 1);
    assert.equal(sample(text, 'pushhub_failed_logins_total'), 1);
  });

  it('without --metrics-address nothing is served', async () => {
    await t.restart({ metricsAddress: undefined });
    assert.equal(t.hub.metricsAddress, undefined);
    assert.equal(t.hub.context.metrics, undefined);
  });
});
