/* eslint-disable no-template-curly-in-string -- Grafana's ${DS_PROMETHEUS} placeholders are literal text here */
// Issue #5: a real /metrics scrape (after traffic with shadows, mismatches and shadow errors) is
// lint-clean for promtool, carries the metric contract, and the Grafana dashboard only queries
// metrics penumbra exports or recording rules the rules file defines.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  DASHBOARD_FILE, PROMTOOL, RULES_FILE, XSS_INSTANCE, getText, metricNames, recordingRuleNames, ruleGroups, run, sendTraffic, startStack, tempDir, waitSettled, type Stack
} from './helpers/observability-harness.js'
import { dashboardExpressions, promqlMetricNames, substituteGrafanaVariables } from './helpers/observability-promql.js'

/** The metric contract of issues #2–#4 and #14 (src/metrics/metrics.ts), with the Prometheus type. */
const CONTRACT: Record<string, string> = {
  penumbra_requests_total: 'counter',
  penumbra_request_duration_seconds: 'histogram',
  penumbra_upstream_duration_seconds: 'histogram',
  penumbra_upstream_errors_total: 'counter',
  penumbra_inflight_requests: 'gauge',
  penumbra_client_connections: 'gauge',
  penumbra_client_connections_dropped_total: 'counter',
  penumbra_request_body_too_large_total: 'counter',
  penumbra_upgrades_total: 'counter',
  penumbra_upgrades_open: 'gauge',
  penumbra_backend_requests_total: 'counter',
  penumbra_primary_switches_total: 'counter',
  penumbra_primary_backend: 'gauge',
  penumbra_shadow_requests_total: 'counter',
  penumbra_shadow_skipped_total: 'counter',
  penumbra_shadow_inflight: 'gauge',
  penumbra_comparisons_total: 'counter',
  penumbra_comparisons_dropped_total: 'counter',
  penumbra_field_mismatches_total: 'counter',
  penumbra_instances_compared_total: 'counter',
  penumbra_instance_disagreements_total: 'counter',
  penumbra_score_delta: 'histogram',
  penumbra_latency_delta_seconds: 'histogram',
  penumbra_noise_requests_total: 'counter',
  penumbra_mismatch_sink_dropped_total: 'counter',
  penumbra_config_reloads_total: 'counter',
  penumbra_build_info: 'gauge',
  penumbra_experiment_exposures_total: 'counter',
  penumbra_experiment_not_enrolled_total: 'counter',
  penumbra_experiment_requests_total: 'counter',
  penumbra_experiment_duration_seconds: 'histogram',
  penumbra_experiment_units_total: 'counter',
  penumbra_canary_weight: 'gauge',
  penumbra_canary_step: 'gauge',
  penumbra_canary_decisions_total: 'counter',
  penumbra_canary_state: 'gauge',
  penumbra_experiment_outcome_count_total: 'counter',
  penumbra_experiment_outcome_sum_total: 'counter',
  penumbra_experiment_outcome_sum_squares_total: 'counter',
  penumbra_events_total: 'counter',
  penumbra_llm_agreement_total: 'counter',
  penumbra_llm_time_to_first_token_seconds: 'histogram',
  penumbra_llm_time_per_output_token_seconds: 'histogram',
  penumbra_llm_tokens_total: 'counter',
  penumbra_comparison_shadow_errors_total: 'counter',
  penumbra_feedback_total: 'counter',
  penumbra_feedback_labelled_total: 'counter',
  penumbra_feedback_correct_total: 'counter',
  penumbra_feedback_class_total: 'counter',
  penumbra_feedback_abs_error_sum: 'counter',
  penumbra_feedback_sq_error_sum: 'counter',
  penumbra_feedback_predictions_total: 'counter',
  penumbra_feedback_store_errors_total: 'counter',
  penumbra_faults_injected_total: 'counter',
  penumbra_chaos_active: 'gauge',
  // Issue #19, drift and assertions (docs/drift.md).
  penumbra_prediction_drift: 'gauge',
  penumbra_assertion_violations_total: 'counter',
  penumbra_assertion_checks_total: 'counter'
}

/** Series Prometheus itself adds to every target. */
const PROMETHEUS_SYNTHETIC = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'scrape_samples_post_metric_relabeling', 'scrape_series_added'])

let stack: Stack
let scrape = ''
const REQUESTS = 60

before(async () => {
  stack = await startStack({ shadows: [{ name: 'v2', server: 'hostile', disagreeRate: 0.3 }, { name: 'broken', server: 'dead' }] })
  assert.equal(await sendTraffic(stack.proxyUrl, REQUESTS, { extra: [XSS_INSTANCE] }), REQUESTS)
  const report = await waitSettled(stack.adminUrl, REQUESTS)
  const v2 = report.shadows.find((s) => s.shadow === 'v2')!
  const broken = report.shadows.find((s) => s.shadow === 'broken')!
  assert.ok(v2.comparisons.mismatch > 0, 'the traffic produced mismatches')
  assert.ok(broken.comparisons.shadow_error > 0, 'the traffic produced shadow errors')
  const res = await getText(`${stack.adminUrl}/metrics`)
  assert.equal(res.status, 200)
  assert.match(res.contentType, /^text\/plain; version=0\.0\.4/)
  scrape = res.body
}, { timeout: 30_000 })

after(async () => {
  await stack?.stop()
})

/** Every name a query may use: sample names, families, histogram series, rules, Prometheus' own. */
function knownNames (): Set<string> {
  const { samples, families } = metricNames(scrape)
  const names = new Set([...samples, ...families, ...PROMETHEUS_SYNTHETIC, ...recordingRuleNames(readFileSync(RULES_FILE, 'utf8'))])
  for (const line of scrape.split('\n')) {
    const m = /^# TYPE (\S+) (histogram|summary)$/.exec(line)
    if (m !== null) for (const suffix of ['_bucket', '_sum', '_count']) names.add(m[1]! + suffix)
  }
  return names
}

test('promtool check metrics finds nothing wrong with penumbra\'s metrics on a real scrape', { skip: PROMTOOL.skip, timeout: 30_000 }, async () => {
  const r = await run(PROMTOOL.path(), ['check', 'metrics'], { input: scrape, timeoutMs: 20_000 })
  // The two error sums of issue #19 keep the names the issue gave them (documented in docs/feedback.md).
  const allowed = /^penumbra_feedback_(abs|sq)_error_sum (counter metrics should have "_total" suffix|non-histogram and non-summary metrics should not have "_sum" suffix)$/
  const findings = (r.stdout + r.stderr).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !allowed.test(l))
  const penumbra = findings.filter((f) => f.startsWith('penumbra_'))
  assert.deepEqual(penumbra, [], 'promtool complaints about penumbra metrics')
  assert.deepEqual(findings, [], 'promtool check metrics findings')
  assert.equal(r.code, 0, `promtool exit ${String(r.code)}: ${r.stderr}`)
})

test('the scrape carries the whole metric contract with the documented types and labels', () => {
  const types = new Map<string, string>()
  for (const m of scrape.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1]!, m[2]!)
  for (const [name, type] of Object.entries(CONTRACT)) assert.equal(types.get(name), type, `${name} ${type}`)
  for (const name of types.keys()) {
    if (name.startsWith('penumbra_')) assert.ok(name in CONTRACT, `${name} is exported but not in the contract (update the dashboard/rules/README)`)
  }
  assert.match(scrape, /^penumbra_comparisons_total\{shadow="v2",outcome="mismatch"\} [1-9]/m)
  assert.match(scrape, /^penumbra_comparisons_total\{shadow="broken",outcome="shadow_error"\} [1-9]/m)
  assert.match(scrape, /^penumbra_upstream_errors_total\{upstream="broken",reason="\w+"\} [1-9]/m)
  assert.match(scrape, /^penumbra_field_mismatches_total\{shadow="v2",path="\/predictions\/\*\/label"\} [1-9]/m)
  assert.match(scrape, /^penumbra_upstream_duration_seconds_bucket\{le="\+Inf",upstream="primary"\} [1-9]/m)
  assert.match(scrape, /^penumbra_build_info\{version="[^"]+",node="v\d+/m)
  assert.match(scrape, /^process_cpu_seconds_total /m)
  assert.match(scrape, /^process_resident_memory_bytes /m)
})

test('the recording rules and alerts only use metrics penumbra exports', () => {
  const known = knownNames()
  for (const g of ruleGroups(readFileSync(RULES_FILE, 'utf8'))) {
    for (const r of g.rules) {
      const names = promqlMetricNames(r.expr)
      assert.ok(names.length > 0, `${r.record ?? r.alert!}: no metric found in ${r.expr}`)
      for (const n of names) assert.ok(known.has(n), `${r.record ?? r.alert!}: ${n} is neither exported nor a recording rule`)
    }
  }
})

const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as {
  schemaVersion: number
  uid: string
  title: string
  __inputs: Array<{ name: string, type: string, pluginId: string }>
  panels: Array<{ id: number, type: string, title: string, gridPos: { h: number, w: number, x: number, y: number }, datasource?: { uid: string }, targets?: Array<{ expr: string, datasource?: { uid: string } }> }>
  templating: { list: Array<{ name: string, type: string, datasource?: { uid: string } }> }
}

test('the Grafana dashboard is importable JSON: schema 39+, ${DS_PROMETHEUS} input, $shadow variable, unique panels', () => {
  assert.ok(dashboard.schemaVersion >= 39, 'schemaVersion')
  assert.equal(typeof dashboard.uid, 'string')
  assert.ok(dashboard.__inputs.some((i) => i.name === 'DS_PROMETHEUS' && i.type === 'datasource' && i.pluginId === 'prometheus'), '__inputs DS_PROMETHEUS')
  const vars = dashboard.templating.list.map((v) => v.name)
  assert.ok(vars.includes('shadow'), 'variable shadow')
  const ids = new Set<number>()
  for (const p of dashboard.panels) {
    assert.ok(!ids.has(p.id), `duplicate panel id ${p.id}`)
    ids.add(p.id)
    assert.ok(p.gridPos.x + p.gridPos.w <= 24, `panel "${p.title}" fits the 24-column grid`)
    if (p.type === 'row') continue
    assert.equal(p.datasource?.uid, '${DS_PROMETHEUS}', `panel "${p.title}" datasource`)
    assert.ok((p.targets ?? []).length > 0, `panel "${p.title}" has queries`)
    for (const t of p.targets ?? []) assert.equal(t.datasource?.uid, '${DS_PROMETHEUS}', `panel "${p.title}" target datasource`)
  }
  for (const v of dashboard.templating.list) if (v.type === 'query') assert.equal(v.datasource?.uid, '${DS_PROMETHEUS}', `variable ${v.name}`)
  // The panels the issue asks for.
  const all = dashboardExpressions(dashboard).map((e) => e.expr).join('\n')
  for (const needle of [/penumbra_requests_total/, /upstream:penumbra_upstream_duration_seconds:p99_rate5m\{[^}]*upstream="primary"/, /upstream=~"primary\|\$shadow"/,
    /shadow:penumbra_request_disagreement:ratio_rate5m/, /shadow:penumbra_instance_disagreement:ratio_rate5m/, /topk\(\d+, sum by \(shadow, path\) \(rate\(penumbra_field_mismatches_total/,
    /penumbra_shadow_requests_total\{[^}]*\}[^\n]*|shadow:penumbra_shadow_errors:ratio_rate5m/, /penumbra_shadow_skipped_total/, /process_cpu_seconds_total/, /process_resident_memory_bytes/]) {
    assert.match(all, needle)
  }
})

test('every PromQL expression in the dashboard names only exported metrics or recording rules', () => {
  const known = knownNames()
  const exprs = dashboardExpressions(dashboard)
  assert.ok(exprs.length >= 20, `found ${exprs.length} expressions`)
  for (const { where, expr } of exprs) {
    const names = promqlMetricNames(expr)
    assert.ok(names.length > 0, `${where}: no metric name in ${expr}`)
    for (const n of names) assert.ok(known.has(n), `${where}: ${n} is neither exported by penumbra nor a recording rule (${expr})`)
  }
})

test('every PromQL expression in the dashboard parses (promtool, Grafana variables substituted)', { skip: PROMTOOL.skip, timeout: 30_000 }, async (t) => {
  const dir = tempDir(t, 'penumbra-dash-')
  {
    const rules = dashboardExpressions(dashboard).map((e, i) => ({ record: `dashboard:expr_${i}:check`, expr: substituteGrafanaVariables(e.expr.startsWith('label_values(') ? e.expr.replace(/^label_values\(([\s\S]*),\s*\w+\)$/, '$1') : e.expr) }))
    const file = join(dir, 'dashboard.rules.yml')
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }))
    const r = await run(PROMTOOL.path(), ['check', 'rules', file], { timeoutMs: 20_000 })
    assert.equal(r.code, 0, r.stdout + r.stderr)
  }
})

test('promqlMetricNames extracts metric names, not functions, labels, keywords or numbers', () => {
  assert.deepEqual(promqlMetricNames('sum by (shadow) (rate(penumbra_comparisons_total{outcome="mismatch", path=~"a|b"}[5m])) / (x:y:z > 0)'), ['penumbra_comparisons_total', 'x:y:z'])
  assert.deepEqual(promqlMetricNames('histogram_quantile(0.99, sum(rate(a_bucket{job=~"$job"}[$__rate_interval])) by (le)) > 1.5 * (b offset 1d) and on (job) c >= 1e6'), ['a_bucket', 'b', 'c'])
  assert.deepEqual(promqlMetricNames('label_values(penumbra_shadow_requests_total{job=~"$job"}, shadow)'), ['penumbra_shadow_requests_total'])
  assert.deepEqual(promqlMetricNames('topk(10, sum without (instance) (rate(m_total[1m])))'), ['m_total'])
})
