import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestHub } from '../support/hub.js';

const ROOT = join(import.meta.dirname, '../..');
const RULES = join(ROOT, 'ops/prometheus/pushhub-alerts.yml');
const RULE_TESTS = join(ROOT, 'ops/prometheus/pushhub-alerts.test.yml');
const DASHBOARD = join(ROOT, 'ops/grafana/pushhub-dashboard.json');

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { uid: string };
  targets?: { expr: string; refId: string }[];
}

/** promtool (Debian package prometheus, installed by .ci/run); missing, the test fails, never skips. */
function promtool(...args: string[]): string {
  const result = spawnSync('promtool', args, { encoding: 'utf8' });
  assert.ok(!result.error, `promtool is missing: install Debian package prometheus (.ci/run does): ${result.error?.message}`);
  assert.equal(result.status, 0, `promtool ${args.join(' ')}:\n${result.stdout}${result.stderr}`);
  return result.stdout;
}

/**
 * Metric names in PromQL: the hub's own, gRPC's and the process's (not `up`, which Prometheus
 * adds). Label matchers `{...}` and groupings `by (...)` hold label names, not metrics.
 */
function metricNames(expr: string): string[] {
  const bare = expr.replace(/\{[^}]*\}/g, '').replace(/\b(?:by|without)\s*\([^)]*\)/g, '');
  return [...bare.matchAll(/\b(?:pushhub|grpc|process|nodejs)_[a-z0-9_]+\b/g)].map((m) => m[0]);
}

const dashboard = () => JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { __inputs: { name: string }[]; panels: Panel[]; templating: { list: { name: string }[] } };
const dashboardExprs = () => dashboard().panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, expr: t.expr })));
const ruleExprs = () => [...readFileSync(RULES, 'utf8').matchAll(/^\s+expr: (.*)$/gm)].map((m) => m[1]!);

describe('operator assets (ops/): alerting rules and the Grafana dashboard', function () {
  this.timeout(60_000);

  it('the alerting rules pass promtool check rules and their unit tests (promtool test rules)', () => {
    assert.match(promtool('check', 'rules', RULES), /SUCCESS: \d+ rules found/);
    promtool('test', 'rules', RULE_TESTS);
    const rules = readFileSync(RULES, 'utf8');
    for (const alert of ['PushhubDown', 'PushhubStorageUnavailable', 'PushhubSlowConsumersCut', 'PushhubThrottlesRising', 'PushhubConfirmationLag']) {
      assert.match(rules, new RegExp(`alert: ${alert}\\n`), alert);
    }
  });

  it('the dashboard is importable: a Prometheus input, unique panel ids, every query valid PromQL', () => {
    const board = dashboard();
    assert.deepEqual(board.__inputs.map((i) => i.name), ['DS_PROMETHEUS']);
    assert.ok(board.templating.list.some((v) => v.name === 'instance'));
    const ids = board.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'unique panel ids');
    for (const panel of board.panels.filter((p) => p.type !== 'row')) {
      assert.equal(panel.datasource?.uid, '${DS_PROMETHEUS}', `${panel.title}: the imported data source`);
      assert.ok(panel.gridPos.x + panel.gridPos.w <= 24, `${panel.title} fits the grid`);
      assert.ok((panel.targets ?? []).length > 0, `${panel.title} has a query`);
    }
    // Grafana's variables resolved as Grafana would, then promtool parses each query as a recording rule.
    const dir = mkdtempSync(join(tmpdir(), 'pushhub-dashboard-'));
    try {
      const rules = dashboardExprs().map(({ panel, expr }, i) => {
        const promql = expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');
        return `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(promql)}\n        # ${panel.title}`;
      });
      writeFileSync(join(dir, 'dashboard-queries.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
      assert.match(promtool('check', 'rules', join(dir, 'dashboard-queries.yml')), new RegExp(`SUCCESS: ${rules.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the dashboard and the rules use only metric names a real hub serves on /metrics, and chart every pushhub_ metric', async () => {
    const hub = await TestHub.start({ metricsAddress: '127.0.0.1:0' });
    let exposition: string;
    try {
      exposition = await (await fetch(`http://${hub.hub.metricsAddress}/metrics`)).text();
    } finally {
      await hub.stop();
    }
    const served = new Set<string>();
    for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      served.add(name!);
      if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) served.add(name! + suffix);
      if (type === 'summary') for (const suffix of ['_sum', '_count']) served.add(name! + suffix);
    }
    const used = new Set([...dashboardExprs().flatMap(({ expr }) => metricNames(expr)), ...ruleExprs().flatMap(metricNames)]);
    assert.deepEqual([...used].filter((name) => !served.has(name)), [], 'names in ops/ that /metrics does not serve');
    const charted = new Set(dashboardExprs().flatMap(({ expr }) => metricNames(expr).map((n) => n.replace(/_(bucket|sum|count)$/, ''))));
    const ours = [...exposition.matchAll(/^# TYPE (pushhub_\S+) /gm)].map((m) => m[1]!);
    assert.deepEqual(ours.filter((name) => !charted.has(name)), [], 'pushhub_ metrics without a panel: add one to ops/grafana/pushhub-dashboard.json');
  });
});
