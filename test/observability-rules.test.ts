// Issue #5: the shipped Prometheus rules, their unit tests, the example configs and their docs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments, parse as parseYaml } from 'yaml'
import { validateConfig } from '../src/config/load.js'
import { PROMTOOL, ROOT, RULES_FILE, RULES_TEST_FILE, ruleGroups, run } from './helpers/observability-harness.js'

const rulesText = readFileSync(RULES_FILE, 'utf8')
const groups = ruleGroups(rulesText)
const alerts = groups.flatMap((g) => g.rules.filter((r) => r.alert !== undefined))
const records = groups.flatMap((g) => g.rules.filter((r) => r.record !== undefined))

test('promtool check rules: the rules file is valid and lint-clean', { skip: PROMTOOL.skip, timeout: 30_000 }, async () => {
  const r = await run(PROMTOOL.path(), ['check', 'rules', RULES_FILE], { timeoutMs: 20_000 })
  assert.equal(r.code, 0, r.stdout + r.stderr)
  assert.match(r.stdout, new RegExp(`SUCCESS: ${alerts.length + records.length} rules found`))
  assert.doesNotMatch(r.stdout + r.stderr, /WARNING|FAILED/)
})

test('promtool test rules: every alert fires on a synthetic series and stays quiet on a healthy one', { skip: PROMTOOL.skip, timeout: 90_000 }, async () => {
  const r = await run(PROMTOOL.path(), ['test', 'rules', RULES_TEST_FILE], { timeoutMs: 80_000 })
  assert.equal(r.code, 0, r.stdout + r.stderr)
  assert.match(r.stdout, /SUCCESS/)
})

test('the rule unit tests cover every alert (firing and quiet) and every recording rule', () => {
  const doc = parseYaml(readFileSync(RULES_TEST_FILE, 'utf8')) as {
    rule_files: string[]
    tests: Array<{ name: string, alert_rule_test?: Array<{ alertname: string, exp_alerts: unknown[] }>, promql_expr_test?: Array<{ expr: string }> }>
  }
  assert.deepEqual(doc.rule_files, ['penumbra.rules.yml'])
  for (const a of alerts) {
    const cases = doc.tests.flatMap((t) => (t.alert_rule_test ?? []).filter((c) => c.alertname === a.alert).map((c) => ({ test: t.name, firing: c.exp_alerts.length > 0 })))
    assert.ok(cases.some((c) => c.firing), `no test shows ${a.alert!} firing`)
    assert.ok(cases.some((c) => !c.firing), `no test shows ${a.alert!} quiet`)
  }
  const exprs = doc.tests.flatMap((t) => (t.promql_expr_test ?? []).map((e) => e.expr))
  for (const r of records) {
    // Intermediate rules are covered through the ratios built on them.
    const covered = exprs.some((e) => e.includes(r.record!)) || records.some((o) => o.expr.includes(r.record!) && exprs.some((e) => e.includes(o.record!)))
    assert.ok(covered, `recording rule ${r.record!} has no promql_expr_test`)
  }
})

test('every alert has a severity, a summary and a description, and a `for`', () => {
  for (const a of alerts) {
    assert.ok(['warning', 'critical'].includes(a.labels?.severity ?? ''), `${a.alert!}: severity`)
    assert.ok((a.annotations?.summary ?? '').length > 10, `${a.alert!}: summary`)
    assert.ok((a.annotations?.description ?? '').length > 20, `${a.alert!}: description`)
    assert.match(a.for ?? '', /^\d+[smh]$/, `${a.alert!}: for`)
  }
  // The list: disagreement, shadow errors, shadow drops, primary p99 regression, primary 5xx, penumbra down.
  for (const name of ['PenumbraShadowDisagreementHigh', 'PenumbraShadowErrors', 'PenumbraShadowDrops', 'PenumbraPrimaryLatencyRegression', 'PenumbraPrimary5xxHigh', 'PenumbraDown']) {
    assert.ok(alerts.some((a) => a.alert === name), `missing alert ${name}`)
  }
  for (const name of ['shadow:penumbra_request_disagreement:ratio_rate5m', 'shadow:penumbra_instance_disagreement:ratio_rate5m', 'shadow:penumbra_shadow_errors:ratio_rate5m',
    'shadow:penumbra_shadow_drops:ratio_rate5m', 'upstream:penumbra_upstream_duration_seconds:p50_rate5m', 'upstream:penumbra_upstream_duration_seconds:p99_rate5m']) {
    assert.ok(records.some((r) => r.record === name), `missing recording rule ${name}`)
  }
})

test('config/prometheus/README.md documents every rule, alert and threshold', () => {
  const readme = readFileSync(join(ROOT, 'config', 'prometheus', 'README.md'), 'utf8')
  for (const r of [...records, ...alerts]) {
    const name = r.record ?? r.alert!
    assert.ok(readme.includes('`' + name + '`'), `README does not document ${name}`)
  }
  // Every numeric threshold of an alert expression (a comparison against a literal) is in the README.
  for (const a of alerts) {
    for (const m of a.expr.matchAll(/(?:>=?|<=?|==)\s*([0-9.]+)(?![0-9.]*\s*\*)/g)) {
      const v = Number(m[1])
      if (v === 0) continue
      const shown = [m[1]!, `${+(v * 100).toFixed(4)}%`, `${v * 1000} ms`, `${v * 1000}ms`]
      assert.ok(shown.some((s) => readme.includes(s)), `README does not show threshold ${m[1]!} of ${a.alert!}`)
    }
    assert.ok(readme.includes(a.for!), `README does not show the for ${a.for!} of ${a.alert!}`)
  }
})

test('promtool check config: the example scrape config (with the rules) is valid', { skip: PROMTOOL.skip, timeout: 30_000 }, async () => {
  const r = await run(PROMTOOL.path(), ['check', 'config', join(ROOT, 'config', 'prometheus', 'prometheus.example.yml')], { timeoutMs: 20_000 })
  assert.equal(r.code, 0, r.stdout + r.stderr)
  assert.match(r.stdout, /SUCCESS/)
})

test('the Kubernetes examples parse, and their penumbra config passes penumbra\'s own validation', { timeout: 30_000 }, async () => {
  const dir = join(ROOT, 'config', 'kubernetes')
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  const objects: Array<{ kind: string, metadata: { name: string, annotations?: Record<string, string> }, spec?: any, data?: Record<string, string> }> = []
  for (const f of files) {
    for (const d of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      assert.equal(d.errors.length, 0, `${f}: ${d.errors.map((e) => e.message).join('; ')}`)
      const o = d.toJS() as (typeof objects)[number] & { apiVersion: string } | null
      if (o === null) continue
      assert.ok(typeof o.apiVersion === 'string' && typeof o.kind === 'string' && typeof o.metadata?.name === 'string', `${f}: apiVersion, kind, metadata.name`)
      objects.push(o)
    }
  }
  const kinds = objects.map((o) => o.kind)
  for (const k of ['Deployment', 'Service', 'ConfigMap', 'ServiceMonitor']) assert.ok(kinds.includes(k), `no ${k} in config/kubernetes`)

  const configMaps = objects.filter((o) => o.kind === 'ConfigMap')
  let adminPorts = 0
  for (const cm of configMaps) {
    for (const [key, text] of Object.entries(cm.data ?? {})) {
      if (key !== 'penumbra.yaml') continue
      const cfg = validateConfig(parseYaml(text))
      // In a pod, the admin port must be reachable by Prometheus (not loopback only).
      assert.notEqual(cfg.admin.host, '127.0.0.1', `${cm.metadata.name}/${key}: admin must listen on the pod IP for scraping`)
      const deployments = objects.filter((o) => o.kind === 'Deployment' && JSON.stringify(o.spec).includes(cm.metadata.name))
      assert.ok(deployments.length > 0, `no Deployment mounts ConfigMap ${cm.metadata.name}`)
      for (const dep of deployments) {
        const ann = dep.spec.template.metadata.annotations as Record<string, string>
        assert.equal(ann['prometheus.io/scrape'], 'true', `${dep.metadata.name}: prometheus.io/scrape`)
        assert.equal(ann['prometheus.io/port'], String(cfg.admin.port), `${dep.metadata.name}: prometheus.io/port is the admin port`)
        assert.equal(ann['prometheus.io/path'], '/metrics')
        const ports = (dep.spec.template.spec.containers as Array<{ name: string, ports?: Array<{ containerPort: number, name?: string }> }>)
          .flatMap((c) => c.ports ?? []).map((p) => p.containerPort)
        assert.ok(ports.includes(cfg.admin.port) && ports.includes(cfg.listen.port), `${dep.metadata.name}: container ports include listen and admin`)
        adminPorts++
      }
    }
  }
  assert.ok(adminPorts >= 2, 'both the sidecar and the gateway examples carry a validated penumbra config')
})
