// Issue #5, end to end: a real Prometheus (127.0.0.1, free port, temp storage) loads the shipped
// rules, scrapes penumbra's admin port every second while traffic flows to a primary and a
// disagreeing shadow, and its request-level disagreement recording rule converges to the rate
// penumbra's own GET /report shows. Every dashboard query also runs against it.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  DASHBOARD_FILE, Daemon, PROMETHEUS, RULES_FILE, freePort, getJson, ruleGroups, sendTraffic, startStack, tempDir, waitForValue, waitSettled, type Report, type Stack
} from './helpers/observability-harness.js'
import { dashboardExpressions, substituteGrafanaVariables } from './helpers/observability-promql.js'

interface PromVector { status: string, data: { resultType: string, result: Array<{ metric: Record<string, string>, value: [number, string] }> }, error?: string }

describe('real Prometheus with the shipped rules', { skip: PROMETHEUS.skip, timeout: 120_000 }, () => {
  let stack: Stack
  let prom: Daemon | null = null
  let tmp: { dir: string } | null = null
  const cleanups: Array<() => void> = []
  let api = ''
  let report: Report

  const query = async (q: string): Promise<PromVector> => {
    const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(5000) })
    return await res.json() as PromVector
  }
  const scalarOf = async (q: string): Promise<number | undefined> => {
    const r = await query(q)
    const v = r.data?.result?.[0]?.value?.[1]
    return v === undefined ? undefined : Number(v)
  }

  before(async () => {
    const bin = PROMETHEUS.path()
    stack = await startStack({ shadows: [{ name: 'v2', server: 'demo', disagreeRate: 0.3 }] })
    tmp = { dir: tempDir({ after: (fn) => cleanups.push(fn) }, 'penumbra-prom-') }
    const port = await freePort()
    api = `http://127.0.0.1:${port}`
    const config = {
      global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
      rule_files: [RULES_FILE],
      scrape_configs: [{ job_name: 'penumbra', metrics_path: '/metrics', static_configs: [{ targets: [`127.0.0.1:${stack.app.adminPort}`] }] }]
    }
    const configFile = join(tmp.dir, 'prometheus.yml')
    writeFileSync(configFile, JSON.stringify(config, null, 2)) // JSON is YAML
    prom = new Daemon(bin, [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(tmp.dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn'
    ])
    try {
      await waitForValue(async () => {
        if (!prom!.running) throw new Error(`prometheus exited: ${prom!.output.slice(-2000)}`)
        const r = await fetch(`${api}/-/ready`, { signal: AbortSignal.timeout(1000) })
        return r.status === 200 ? true : undefined
      }, 30_000, 'prometheus to be ready', 250)
      // Scrapes before the traffic, so the rate windows start at zero like penumbra's own counters.
      await waitForValue(async () => {
        const v = await scalarOf('sum_over_time(up{job="penumbra"}[1m])')
        return v !== undefined && v >= 2 ? true : undefined
      }, 20_000, 'two successful scrapes', 250)
    } catch (err) {
      throw new Error(`${(err as Error).message}\nprometheus output:\n${prom.output.slice(-3000)}`)
    }
    assert.equal(await sendTraffic(stack.proxyUrl, 150, { batch: 2 }), 150)
    report = await waitSettled(stack.adminUrl, 150)
  }, { timeout: 70_000 })

  after(async () => {
    await prom?.stop()
    await stack?.stop()
    for (const fn of cleanups) fn()
  })

  test('the request-level disagreement recording rule converges to /report\'s rate', { timeout: 60_000 }, async () => {
    const expected = report.shadows.find((s) => s.shadow === 'v2')!.disagreement
    assert.ok(expected.requests.rate > 0.2 && expected.requests.rate < 0.8, `the shadow disagrees on a good share: ${expected.requests.rate}`)
    // rate() over the same scrapes cancels in the ratio: once a scrape after the last comparison
    // is in, the rule equals mismatches / compared exactly (tolerance for float only).
    const got = await waitForValue(async () => {
      const v = await scalarOf('shadow:penumbra_request_disagreement:ratio_rate5m{job="penumbra",shadow="v2"}')
      return v !== undefined && Math.abs(v - expected.requests.rate) < 1e-6 ? v : undefined
    }, 45_000, 'shadow:penumbra_request_disagreement:ratio_rate5m to match /report', 500).catch(async (err: Error) => {
      throw new Error(`${err.message}; last value ${String(await scalarOf('shadow:penumbra_request_disagreement:ratio_rate5m'))}, /report ${expected.requests.rate}\n${prom!.output.slice(-2000)}`)
    })
    assert.ok(Math.abs(got - expected.requests.rate) < 1e-6)
    const inst = await waitForValue(async () => {
      const v = await scalarOf('shadow:penumbra_instance_disagreement:ratio_rate5m{job="penumbra",shadow="v2"}')
      return v !== undefined && Math.abs(v - expected.instances.rate) < 1e-6 ? v : undefined
    }, 15_000, 'the instance-level rule', 500)
    assert.ok(Math.abs(inst - expected.instances.rate) < 1e-6)
  })

  test('every rule loads and evaluates without error; the disagreement alert goes pending on real data', { timeout: 30_000 }, async () => {
    const shipped = ruleGroups(readFileSync(RULES_FILE, 'utf8'))
    const rules = await getJson<{ data: { groups: Array<{ name: string, rules: Array<{ name: string, health: string, lastError?: string }> }> } }>(`${api}/api/v1/rules`)
    for (const g of shipped) {
      const loaded = rules.data.groups.find((x) => x.name === g.name)
      assert.ok(loaded !== undefined, `group ${g.name} loaded`)
      assert.equal(loaded.rules.length, g.rules.length)
      for (const r of loaded.rules) assert.ok(r.health === 'ok' || r.health === 'unknown', `${r.name}: ${r.health} ${r.lastError ?? ''}`)
    }
    const alert = await waitForValue(async () => {
      const a = await getJson<{ data: { alerts: Array<{ labels: Record<string, string>, state: string }> } }>(`${api}/api/v1/alerts`)
      return a.data.alerts.find((x) => x.labels.alertname === 'PenumbraShadowDisagreementHigh' && x.labels.shadow === 'v2')
    }, 15_000, 'PenumbraShadowDisagreementHigh pending', 500)
    assert.equal(alert.state, 'pending', 'pending: its `for: 10m` has not elapsed')
    // Healthy signals do not alert.
    const a = await getJson<{ data: { alerts: Array<{ labels: Record<string, string> }> } }>(`${api}/api/v1/alerts`)
    const names = new Set(a.data.alerts.map((x) => x.labels.alertname))
    for (const quiet of ['PenumbraDown', 'PenumbraAbsent', 'PenumbraShadowErrors', 'PenumbraShadowDrops', 'PenumbraPrimary5xxHigh']) assert.ok(!names.has(quiet), `${quiet} should be quiet`)
  })

  test('every dashboard query runs on Prometheus; the key panels have data', { timeout: 30_000 }, async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as unknown
    // penumbra_requests_total{method,code} series appear with the first request, so a burst that
    // fell between two scrapes leaves rate() at 0: keep a trickle going across a few scrapes, as
    // real traffic would, until the client rate is positive.
    const trickle = (async () => {
      for (let i = 0; i < 8; i++) {
        await sendTraffic(stack!.proxyUrl, 2, { batch: 1, offset: 1000 + i * 2 })
        await new Promise((resolve) => setTimeout(resolve, 400))
      }
    })()
    await waitForValue(async () => (await query('job:penumbra_requests:rate5m > 0')).data.result.length > 0 ? true : undefined, 15_000, 'a positive client request rate')
    await trickle
    const empty: string[] = []
    for (const { where, expr } of dashboardExpressions(dashboard)) {
      const q = substituteGrafanaVariables(expr.startsWith('label_values(') ? expr.replace(/^label_values\(([\s\S]*),\s*\w+\)$/, '$1') : expr, { job: 'penumbra', shadow: 'v2', __rate_interval: '1m' })
      const r = await query(q)
      assert.equal(r.status, 'success', `${where}: ${q}: ${r.error ?? ''}`)
      if (r.data.result.length === 0) empty.push(where)
    }
    // With traffic, mismatches and no errors, only error/drop/reload/noise panels may be empty,
    // and the drift and assertion panels (this stack configures neither: docs/drift.md).
    for (const w of empty) assert.match(w, /error|drop|reload|Noise|annotation|drift|assertion/i, `${w} returned no data`)
    for (const q of ['upstream:penumbra_upstream_duration_seconds:p99_rate5m{upstream="primary"}', 'upstream:penumbra_upstream_duration_seconds:p99_rate5m{upstream="v2"}',
      'topk(10, sum by (shadow, path) (rate(penumbra_field_mismatches_total[1m])))', 'job:penumbra_requests:rate5m']) {
      assert.ok((await query(q)).data.result.length > 0, `${q} has data`)
    }
  })
})
