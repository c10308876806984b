// Markdown table of a bench run: the hub, the bare grpc-js baseline, their ratio, the target.
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const fmt = (v: unknown, digits = 0): string =>
  v == null || (typeof v === 'number' && Number.isNaN(v))
    ? '–'
    : typeof v === 'number'
      ? v.toLocaleString('en-US', { maximumFractionDigits: digits })
      : String(v);

const get = (o: Json | undefined, path: string): unknown =>
  path.split('.').reduce<unknown>((x, k) => (x == null ? undefined : (x as Json)[k]), o);

interface Row {
  label: string;
  path: string;
  digits?: number;
  /** Target check on the hub's value, or (ratio) on hub ÷ baseline. */
  target?: { text: string; ok: (v: number) => boolean; ratio?: boolean };
  /** Derived value instead of a path. */
  value?: (t: Json) => unknown;
  noRatio?: boolean;
}

const cpu = (w: string) => (t: Json) => {
  const c = get(t, `${w}.cpu`) as Json | undefined;
  return c ? `${fmt(c.server_pct)} / ${fmt(c.publisher_pct)} / ${fmt(c.subscribers_pct)} (other ${fmt(c.other_pct)})` : undefined;
};
const lostDups = (w: string) => (t: Json) => {
  const lost = get(t, `${w}.lost`);
  return lost == null ? undefined : `${fmt(lost)} / ${fmt(get(t, `${w}.dups`))}`;
};

export function renderTable(R: Json): string {
  const hub = R.targets.pushhub as Json | undefined;
  const base = R.targets.baseline as Json | undefined;
  const sections: [string, Row[]][] = [];
  const budgetRows = (mode: string, per: string, targets: { cpu?: number; alloc?: number; subCpu?: number; subAlloc?: number }): Row[] => {
    const at = `budget.value.${mode}`;
    const ratioTarget = (max: number | undefined) => (max === undefined ? undefined : { text: `<= ×${max}`, ok: (r: number) => r <= max, ratio: true });
    const bytesTarget = (max: number | undefined) => (max === undefined ? undefined : { text: `<= ${fmt(max)}`, ok: (v: number) => v <= max });
    return [
      { label: `hub CPU µs per ${per}, all threads`, path: `${at}.server_cpu_us.total`, digits: 1, target: ratioTarget(targets.cpu) },
      { label: '… main thread', path: `${at}.server_cpu_us.main`, digits: 1 },
      { label: '… V8 helper threads (GC, compiler)', path: `${at}.server_cpu_us.v8_helpers`, digits: 1 },
      { label: '… commit worker', path: `${at}.server_cpu_us.commit_worker`, digits: 1 },
      { label: `hub bytes allocated per ${per} (main thread JS heap)`, path: `${at}.server_alloc_bytes`, target: bytesTarget(targets.alloc) },
      { label: 'subscriber (SDK) CPU µs per event', path: `${at}.subscriber_cpu_us_per_event`, digits: 1, target: ratioTarget(targets.subCpu) },
      { label: 'subscriber (SDK) bytes allocated per event', path: `${at}.subscriber_alloc_bytes_per_event`, target: bytesTarget(targets.subAlloc) },
      { label: 'lost / duplicated', path: '', value: lostDups(at), noRatio: true },
    ];
  };
  if (hub?.budget || base?.budget) {
    const b = R.params.budget;
    sections.push([`Budget: PushStream, ${fmt(b.streamPushes)} targeted pushes to ${fmt(b.subscribers)} subscribers (one event per message)`, budgetRows('stream', 'acked push', { alloc: 5000, subCpu: 1.1, subAlloc: 2000 })]);
    sections.push([`Budget: unary PushSpecific, ${fmt(b.unaryPushes)} pushes, same subscribers`, budgetRows('unary', 'acked push', { cpu: 1.2, alloc: 10_000 })]);
    sections.push([`Budget: ${b.broadcasts} broadcasts at ${b.ratePerSec}/s to the same subscribers (per delivery)`, budgetRows('broadcast', 'delivery', { cpu: 0.8, alloc: 1000, subCpu: 1.1, subAlloc: 2000 })]);
  }
  const w1rows = (mode: string, target: Row['target']): Row[] => [
    { label: 'acked pushes/s', path: `w1.value.${mode}.publish.acked_per_s`, target },
    { label: 'delivered msgs/s', path: `w1.value.${mode}.delivered.per_s` },
    { label: 'e2e latency p50 (ms)', path: `w1.value.${mode}.latency.p50_ms`, digits: 1 },
    {
      label: 'e2e latency p99 (ms)',
      path: `w1.value.${mode}.latency.p99_ms`,
      digits: 1,
      target: mode === 'stream' ? { text: '<= 50', ok: (v) => v <= 50 } : undefined,
    },
    { label: 'e2e latency max (ms)', path: `w1.value.${mode}.latency.max_ms`, digits: 1 },
    { label: 'lost / duplicated', path: '', value: lostDups(`w1.value.${mode}`), noRatio: true },
    { label: 'CPU % server / publisher / subscribers', path: '', value: cpu(`w1.value.${mode}`), noRatio: true },
    { label: 'server RSS (MiB)', path: `w1.value.${mode}.server_rss_MiB`, digits: 1 },
  ];
  sections.push([`W1 targeted, streaming push path — ${fmt(R.params.w1.subscribers)} subscribers, ${fmt(R.params.w1.messages)} pushes, window ${R.params.w1.window}`, w1rows('stream', { text: '>= 35,000', ok: (v) => v >= 35_000 })]);
  sections.push([`W1 targeted, unary PushSpecific — same subscribers`, w1rows('unary', { text: '>= 8,000', ok: (v) => v >= 8000 })]);
  const w2rows = (prefix: string, target?: Row['target']): Row[] => [
    { label: 'deliveries (expected)', path: '', value: (t) => get(t, `${prefix}.deliveries.unique`) == null ? undefined : `${fmt(get(t, `${prefix}.deliveries.unique`))} (${fmt(get(t, `${prefix}.deliveries.expected`))})`, noRatio: true },
    { label: 'fan-out completion p50 (ms)', path: `${prefix}.fanout_completion.p50_ms`, digits: 1 },
    { label: 'fan-out completion p99 (ms)', path: `${prefix}.fanout_completion.p99_ms`, digits: 1, target },
    { label: 'fan-out completion max (ms)', path: `${prefix}.fanout_completion.max_ms`, digits: 1 },
    { label: 'per-delivery latency p99 (ms)', path: `${prefix}.delivery_latency.p99_ms`, digits: 1 },
    { label: 'lost / duplicated', path: '', value: lostDups(prefix), noRatio: true },
    { label: 'CPU % server / publisher / subscribers', path: '', value: cpu(prefix), noRatio: true },
  ];
  sections.push([`W2 broadcast — ${fmt(R.params.w2.subscribers)} subscribers, ${R.params.w2.messages} broadcasts at ${R.params.w2.ratePerSec}/s`, w2rows('w2.value', { text: '<= 100', ok: (v) => v <= 100 })]);
  sections.push([
    `W3 offline catch-up — ${fmt(R.params.w3.messages)} pushes to one offline subscriber`,
    [
      { label: 'offline pushes acked/s', path: 'w3.value.offline_publish.acked_per_s' },
      { label: 'reconnect → first item (ms)', path: 'w3.value.reconnect_to_first_ms', digits: 1 },
      { label: 'reconnect → all items (ms)', path: 'w3.value.reconnect_to_all_ms', digits: 0, target: { text: '<= 150', ok: (v) => v <= 150 } },
      { label: 'catch-up items/s', path: 'w3.value.catchup_msgs_per_s' },
      { label: 'lost / duplicated', path: '', value: lostDups('w3.value'), noRatio: true },
      { label: 'CPU % server / – / subscriber', path: '', value: cpu('w3.value'), noRatio: true },
    ],
  ]);
  sections.push([
    `W4 idle subscribers — ${fmt(R.params.w4.subscribers)} (targeted + broadcast)`,
    [
      { label: 'connected (connect time s)', path: '', value: (t) => get(t, 'w4.value.connect.ok') == null ? undefined : `${fmt(get(t, 'w4.value.connect.ok'))} (${fmt(get(t, 'w4.value.connect.seconds'), 1)})`, noRatio: true },
      { label: 'server RSS before → after (MiB)', path: '', value: (t) => get(t, 'w4.value.server_rss_before_MiB') == null ? undefined : `${fmt(get(t, 'w4.value.server_rss_before_MiB'), 1)} → ${fmt(get(t, 'w4.value.server_rss_after_MiB'), 1)}`, noRatio: true },
      { label: 'server KiB per idle subscriber', path: 'w4.value.server_kib_per_subscriber', digits: 1, target: { text: '<= 16', ok: (v) => v <= 16 } },
      { label: 'idle CPU % server (settle)', path: 'w4.value.idle_cpu.server_pct' },
      { label: 'client RSS (MiB)', path: 'w4.value.client_rss_MiB' },
    ],
  ]);
  sections.push([`W2 broadcast at ${fmt(R.params.w4.subscribers)} subscribers (the W4 connections)`, w2rows('w4.value.w2')]);

  const out: string[] = [];
  out.push(`# pushhub bench — ${R.scale} — ${R.stamp}`, '');
  const m = R.machine;
  out.push(`Machine: ${m.nproc} cores (${m.cpu_model}), ${m.mem_GiB} GiB, kernel ${m.kernel}, node ${m.node}. Total wall ${fmt(R.total_wall_s)} s.`, '');
  out.push('| metric | pushhub | baseline (bare grpc-js) | ratio hub/baseline | target | met |');
  out.push('|---|---:|---:|---:|---:|:---:|');
  const valueOf = (row: Row, t: Json | undefined) => (row.value ? (t ? row.value(t) : undefined) : get(t, row.path));
  for (const [title, rows] of sections) {
    // Phases that did not run leave no rows.
    if (rows.every((row) => valueOf(row, hub) === undefined && valueOf(row, base) === undefined)) continue;
    out.push(`| **${title}** | | | | | |`);
    for (const row of rows) {
      const hv = valueOf(row, hub);
      const bv = valueOf(row, base);
      const ratio = !row.noRatio && typeof hv === 'number' && typeof bv === 'number' && bv !== 0 ? `×${fmt(hv / bv, 2)}` : '';
      const checked = row.target?.ratio ? (typeof hv === 'number' && typeof bv === 'number' && bv !== 0 ? hv / bv : undefined) : hv;
      const met = row.target && typeof checked === 'number' ? (row.target.ok(checked) ? 'yes' : '**no**') : '';
      out.push(`| ${row.label} | ${fmt(hv, row.digits ?? 0)} | ${fmt(bv, row.digits ?? 0)} | ${ratio} | ${row.target?.text ?? ''} | ${met} |`);
    }
  }
  const auth = hub?.auth as Json | undefined;
  if (auth?.checked) {
    const mean = (xs: Json[], k: string) => xs.reduce((a, x) => a + (x[k] as number), 0) / xs.length;
    const rate = [mean(auth.checked, 'acked_per_s'), mean(auth.bypassed, 'acked_per_s')] as const;
    const cpuUs = [mean(auth.checked, 'server_cpu_us_per_push'), mean(auth.bypassed, 'server_cpu_us_per_push')] as const;
    const overhead = (cpuUs[0] / cpuUs[1] - 1) * 100;
    out.push(`| **Auth overhead — ${fmt(R.params.auth.messages)} unary PushSpecific to ${fmt(R.params.auth.receivers)} receivers, credentials checked vs check bypassed (mean of ${auth.checked.length} alternating rounds)** | | | | | |`);
    out.push(`| acked pushes/s checked / bypassed | ${fmt(rate[0])} / ${fmt(rate[1])} | | ×${fmt(rate[0] / rate[1], 3)} | | |`);
    out.push(`| server CPU µs per push checked / bypassed | ${fmt(cpuUs[0], 1)} / ${fmt(cpuUs[1], 1)} | | | | |`);
    out.push(`| auth overhead (server CPU per push) | ${fmt(overhead, 1)} % | | | <= 5 % | ${overhead <= 5 ? 'yes' : '**no**'} |`);
  }
  out.push('');
  out.push('Budget rows: CPU from /proc/PID/task/*/stat over the measured window (publish until the last delivery), divided by acked pushes or deliveries; bytes allocated on the main thread\'s JS heap from v8.GCProfiler (heap growth + what each GC freed; off-heap Buffer stores not counted). The baseline has no store, so its commit worker is 0; its subscriber decodes only the payload.');
  out.push('CPU % is of one core (100 = one core) over the measured window: server / publisher (this process) / subscriber hosts; "other" = the rest of the machine (other jobs, kernel I/O threads) over the same window.');
  out.push(`W1 runs the streaming pass, then the unary pass, on the same server and subscribers. Receivers' password hashes: scrypt logN ${R.receiver_log_n.w1_w2_w3} in W1-W3 (the hub runs logN 15), logN ${R.receiver_log_n.w4} for the W4 logins (10,000 logins at logN 15 take ~9 min of CPU here).`);
  const failures: string[] = [];
  for (const [name, t] of Object.entries(R.targets as Json)) {
    for (const [k, v] of Object.entries(t as Json)) if ((v as Json)?.error) failures.push(`${name}/${k}: ${String((v as Json).error).split('\n')[0]}`);
  }
  if (failures.length) out.push('', 'Failures:', ...failures.map((f) => `- ${f}`));
  return `${out.join('\n')}\n`;
}
