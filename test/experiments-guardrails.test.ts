// Issue #17, the guardrails every experiment carries whatever its metrics: 5xx share (Newcombe,
// z-test), latency shift (Mann–Whitney with the Hodges–Lehmann shift) and p99 ratio (bootstrap),
// per arm as the proxy measured them; `penumbra report` prints them, and `penumbra report
// --prometheus` computes the same verdicts from the counters a real Prometheus scraped from two
// penumbra processes.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { writeFileSync } from 'node:fs'
import { request } from 'undici'
import { compareShift, sampleFromValues } from '../src/analysis/index.js'
import { analyseExperiment, type DescribedExperiment } from '../src/experiments/analysis.js'
import { ArmTally, EXPERIMENT_LATENCY_BUCKETS, bucketOf } from '../src/experiments/arm-tally.js'
import { startPenumbra, startUpstream, urls, type Handler } from './helpers/servers.js'
import { runCli, spawnPenumbra, type PenumbraChild } from './helpers/proxy-util.js'
import { Daemon, PROMETHEUS, freePort, tempDir, waitForValue } from './helpers/observability-harness.js'

test('Hodges–Lehmann: the median pairwise difference and the Moses interval, by hand', () => {
  // Pairwise differences t − c of t = [2, 4, 6], c = [1, 2, 3]: -1 0 1 1 2 3 3 4 5; median 2.
  const c = sampleFromValues([1, 2, 3])
  const t = sampleFromValues([2, 4, 6])
  const s = compareShift(c, t)
  assert.equal(s.estimate, 2)
  assert.equal(s.test, 'mann-whitney-hodges-lehmann')
  // At multiplier 0 the interval is [D_(4), D_(6)] = [1, 3] (K = ⌊9/2⌋ = 4, N − K + 1 = 6).
  assert.deepEqual(s.intervalAt(0), { lower: 1, upper: 3 })
  // σ_U with one tie group {2, 2}: √(9/12 · (7 − 6/30)) = √5.1; m = 1: K = ⌊4.5 − 2.258⌋ = 2 → [D_(2), D_(8)] = [0, 4].
  assert.deepEqual(s.intervalAt(1), { lower: 0, upper: 4 })
  // Too few pairs for 95%: unbounded, so a verdict can only be inconclusive.
  assert.deepEqual(s.intervalAt(1.96), { lower: -Infinity, upper: Infinity })
  // Weighted values (a histogram) give the same as the raw values they stand for.
  const raw = compareShift(sampleFromValues([1, 1, 2, 5]), sampleFromValues([2, 3, 3, 3, 7]))
  const weighted = compareShift({ values: [1, 2, 5], counts: [2, 1, 1] }, { values: [2, 3, 7], counts: [1, 3, 1] })
  assert.equal(raw.estimate, weighted.estimate)
  assert.deepEqual(raw.intervalAt(0.5), weighted.intervalAt(0.5))
  // A pure shift of 10 on a large sample: the estimate is the shift and the interval covers it tightly.
  const base = Array.from({ length: 400 }, (_, i) => (i * 37) % 101)
  const shifted = compareShift(sampleFromValues(base), sampleFromValues(base.map((x) => x + 10)))
  assert.equal(shifted.estimate, 10)
  const ci = shifted.intervalAt(1.96)
  assert.ok(ci.lower <= 10 && ci.upper >= 10 && ci.upper - ci.lower < 10, JSON.stringify(ci))
  assert.ok(shifted.mannWhitney.pValue < 0.001, String(shifted.mannWhitney.pValue))
})

test('latency buckets: Prometheus le semantics (a bound belongs to its own bucket)', () => {
  assert.equal(bucketOf(0), 0)
  assert.equal(bucketOf(EXPERIMENT_LATENCY_BUCKETS[3]!), 3)
  assert.equal(bucketOf(EXPERIMENT_LATENCY_BUCKETS[3]! * 1.0001), 4)
  assert.equal(bucketOf(1e6), EXPERIMENT_LATENCY_BUCKETS.length, 'past the last bound: the overflow bucket')
})

function arm (requests: number, errorEvery: number, seconds: (i: number) => number): ReturnType<ArmTally['toJSON']> {
  const t = new ArmTally()
  for (let i = 0; i < requests; i++) t.record(errorEvery > 0 && i % errorEvery === 0 ? 500 : 200, seconds(i))
  return t.toJSON()
}

function described (control: ReturnType<ArmTally['toJSON']>, treatment: ReturnType<ArmTally['toJSON']>): DescribedExperiment {
  return {
    name: 'ab',
    alpha: 0.05,
    minEffect: 0.02,
    metrics: [],
    variants: [
      { name: 'control', weight: 0.5, units: control.requests, outcomes: {}, ...control },
      { name: 'treatment', weight: 0.5, units: treatment.requests, outcomes: {}, ...treatment }
    ]
  }
}

describe('guardrail verdicts from the arms\' tallies', () => {
  const jitter = (i: number): number => 0.01 + ((i * 7919) % 100) / 10_000 // 10..20 ms, spread over buckets

  test('a treatment with 10% 5xx and twice the latency is worse on every guardrail', () => {
    const a = analyseExperiment(described(arm(3000, 100, jitter), arm(3000, 10, (i) => 2 * jitter(i))))
    const by = Object.fromEntries(a.guardrails.map((g) => [g.metric, g]))
    assert.deepEqual(Object.keys(by).sort(), ['errors', 'latency', 'latency_p99'])
    assert.equal(by.errors!.state, 'treatment_worse')
    assert.ok(Math.abs(by.errors!.verdict!.estimate - 0.09) < 0.005, `difference of 5xx shares ≈ 9 pp: ${by.errors!.verdict!.estimate}`)
    assert.equal(by.errors!.verdict!.test, 'newcombe-diff')
    assert.equal(by.latency!.state, 'treatment_worse')
    assert.ok(by.latency!.verdict!.estimate > 8 && by.latency!.verdict!.estimate < 20, `shift in ms: ${by.latency!.verdict!.estimate}`)
    assert.equal(by.latency!.verdict!.test, 'mann-whitney-hodges-lehmann')
    assert.ok((by.latency!.detail!.mannWhitney as { pValue: number }).pValue < 1e-6)
    assert.equal(by.latency_p99!.state, 'treatment_worse')
    assert.ok(by.latency_p99!.verdict!.estimate > 1.6 && by.latency_p99!.verdict!.estimate < 2.5, `p99 ratio ≈ 2: ${by.latency_p99!.verdict!.estimate}`)
  })

  test('identical arms: no difference on latency and errors; below 100 requests per arm: collecting', () => {
    const same = analyseExperiment(described(arm(4000, 200, jitter), arm(4000, 200, jitter)))
    for (const g of same.guardrails) assert.ok(g.state === 'no_difference' || g.state === 'inconclusive', `${g.metric}: ${g.state}`)
    assert.equal(same.guardrails.find((g) => g.metric === 'latency')!.state, 'no_difference')
    const few = analyseExperiment(described(arm(50, 0, jitter), arm(50, 0, jitter)))
    for (const g of few.guardrails) assert.equal(g.state, 'collecting', `${g.metric}: no data never passes`)
    const none = analyseExperiment(described(arm(0, 0, jitter), arm(0, 0, jitter)))
    for (const g of none.guardrails) assert.equal(g.state, 'collecting')
  })
})

/** A backend that fails every `errorEvery`-th request and answers after `delayMs`. */
function backend (errorEvery: number, delayMs: number): Handler {
  let i = 0
  return (_req, res) => {
    const fail = errorEvery > 0 && i++ % errorEvery === 0
    setTimeout(() => {
      const body = JSON.stringify({ predictions: [1] })
      res.writeHead(fail ? 500 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    }, delayMs)
  }
}

async function sendUnits (proxy: string, units: number, offset = 0, width = 16): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < units) {
      const u = `user-${offset + next++}`
      const r = await request(`${proxy}/v1/models/m:predict`, { method: 'POST', body: '{"instances":[[1]]}', headers: { 'content-type': 'application/json', 'x-user-id': u } })
      await r.body.dump()
    }
  }))
}

const EXPERIMENT = {
  name: 'ab',
  unit: 'header:x-user-id',
  variants: [{ name: 'control', backend: 'blue' }, { name: 'treatment', backend: 'cand' }],
  metrics: [{ name: 'conversion', kind: 'binary' }]
}

test('in a running proxy: GET /experiments carries the guardrails, and penumbra report prints them', { timeout: 60_000 }, async (t) => {
  const blue = await startUpstream(backend(0, 0))
  const cand = await startUpstream(backend(5, 15))
  const app = await startPenumbra({ backends: { blue: { url: blue.url }, cand: { url: cand.url } }, primary: 'blue', experiments: [EXPERIMENT] })
  t.after(async () => { await app.stop(); await blue.close(); await cand.close() })
  const { proxy, admin } = urls(app)
  await sendUnits(proxy, 600)
  const ex = await (await request(`${admin}/experiments/ab`)).body.json() as { variants: Array<{ name: string, requests: number, errors: number, latency: number[] }>, analysis: ReturnType<typeof analyseExperiment> }
  const [control, treatment] = ex.variants
  assert.equal(control!.requests + treatment!.requests, 600)
  assert.equal(control!.errors, 0)
  assert.ok(treatment!.errors > 0.15 * treatment!.requests, 'a fifth of the treatment answers were 500s')
  assert.equal(treatment!.latency.reduce((a, b) => a + b, 0), treatment!.requests)
  const by = Object.fromEntries(ex.analysis.guardrails.map((g) => [g.metric, g]))
  assert.equal(by.errors!.state, 'treatment_worse', JSON.stringify(by.errors!.verdict))
  assert.equal(by.latency!.state, 'treatment_worse', JSON.stringify(by.latency!.verdict))
  // The conversion metric has no events: collecting, never a verdict.
  assert.equal(ex.analysis.metrics[0]!.state, 'collecting')

  const out = await runCli(['report', '--admin', admin])
  assert.equal(out.code, 0, out.stderr)
  assert.match(out.stdout, /experiment ab, enabled, traffic 100\.00%/)
  assert.match(out.stdout, /errors\s+treatment vs control: \+\d+\.\d+ pp .*→ treatment_worse/)
  assert.match(out.stdout, /latency\s+treatment vs control: \+[\d.]+ ms .*→ treatment_worse/)
  assert.match(out.stdout, /conversion\s+treatment vs control: collecting/)
  const json = await runCli(['report', '--admin', admin, '--json'])
  assert.equal(JSON.parse(json.stdout).experiments[0].name, 'ab')
  const bad = await runCli(['report', '--prometheus', 'http://127.0.0.1:1'])
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /--prometheus and --experiment go together/)
})

describe('penumbra report --prometheus: the verdicts of two replicas from a real Prometheus', { skip: PROMETHEUS.skip, timeout: 150_000 }, () => {
  test('the summed counters give the same counts and verdicts as the two processes\' own views added up', { timeout: 140_000 }, async (t) => {
    const dir = tempDir(t, 'penumbra-prom-exp-')
    const blue = await startUpstream(backend(0, 0))
    const cand = await startUpstream(backend(8, 10))
    const children: PenumbraChild[] = []
    let prom: Daemon | null = null
    t.after(async () => {
      await prom?.stop()
      for (const c of children) await c.kill()
      await blue.close()
      await cand.close()
    })
    const yaml = (port: number, adminPort: number): string => [
      `listen: { host: 127.0.0.1, port: ${port} }`,
      `admin: { host: 127.0.0.1, port: ${adminPort} }`,
      `backends: { blue: { url: "${blue.url}" }, cand: { url: "${cand.url}" } }`,
      'primary: blue',
      'log: { level: warn, access: false }',
      'experiments:',
      '  - { name: ab, unit: "header:x-user-id", variants: [{ name: control, backend: blue }, { name: treatment, backend: cand }], metrics: [{ name: conversion, kind: binary }] }'
    ].join('\n') + '\n'
    const replicas: Array<{ proxy: string, admin: string, adminPort: number }> = []
    let configFile = ''
    for (let i = 0; i < 2; i++) {
      const port = await freePort()
      const adminPort = await freePort()
      configFile = join(dir, `penumbra-${i}.yaml`)
      writeFileSync(configFile, yaml(port, adminPort))
      children.push(await spawnPenumbra(configFile, { port, adminPort }))
      replicas.push({ proxy: `http://127.0.0.1:${port}`, admin: `http://127.0.0.1:${adminPort}`, adminPort })
    }
    const promPort = await freePort()
    const api = `http://127.0.0.1:${promPort}`
    const promConfig = join(dir, 'prometheus.yml')
    writeFileSync(promConfig, JSON.stringify({
      global: { scrape_interval: '1s', scrape_timeout: '900ms' },
      scrape_configs: [{ job_name: 'penumbra', static_configs: [{ targets: replicas.map((r) => `127.0.0.1:${r.adminPort}`) }] }]
    }))
    prom = new Daemon(PROMETHEUS.path(), [`--config.file=${promConfig}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'])

    // Traffic to both replicas, different units; conversions posted by unit to each replica.
    await sendUnits(replicas[0]!.proxy, 300, 0)
    await sendUnits(replicas[1]!.proxy, 300, 300)
    for (const [i, r] of replicas.entries()) {
      const events = Array.from({ length: 300 }, (_, k) => ({ unit: `user-${i * 300 + k}`, name: 'conversion', value: k % 4 === 0 ? 1 : 0 }))
      const res = await request(`${r.admin}/events`, { method: 'POST', body: JSON.stringify(events), headers: { 'content-type': 'application/json' } })
      assert.equal((await res.body.json() as { accepted: number }).accepted, 300)
    }
    const views = await Promise.all(replicas.map(async (r) => await (await request(`${r.admin}/experiments/ab`)).body.json() as DescribedExperiment & { variants: Array<{ requests: number, errors: number, latency: number[], units: number }> }))
    const summed: DescribedExperiment = structuredClone(views[0]!)
    summed.variants.forEach((v, j) => {
      const o = views[1]!.variants[j]!
      v.units += o.units
      v.requests! += o.requests
      v.errors! += o.errors
      v.latency = v.latency!.map((c, k) => c + o.latency[k]!)
      const m = v.outcomes.conversion!
      const om = o.outcomes.conversion!
      v.outcomes.conversion = { n: m.n + om.n, sum: m.sum + om.sum, sumSq: m.sumSq + om.sumSq }
    })
    const expected = analyseExperiment(summed)

    // Once Prometheus has scraped both replicas after the last request and event.
    await waitForValue(async () => {
      if (!prom!.running) throw new Error(`prometheus exited: ${prom!.output.slice(-2000)}`)
      try {
        const r = await fetch(`${api}/api/v1/query?query=${encodeURIComponent('sum(penumbra_experiment_outcome_count_total{experiment="ab"}) + sum(penumbra_experiment_requests_total{experiment="ab"})')}`, { signal: AbortSignal.timeout(2000) })
        const v = (await r.json() as { data?: { result?: Array<{ value: [number, string] }> } }).data?.result?.[0]?.value[1]
        return Number(v) === 1200 ? true : undefined
      } catch { return undefined }
    }, 60_000, 'Prometheus to have scraped both replicas\' final counts', 250)

    const out = await runCli(['report', '--prometheus', api, '--experiment', 'ab', '--config', configFile, '--json'], { timeoutMs: 30_000 })
    assert.equal(out.code, 0, out.stderr)
    const got = JSON.parse(out.stdout) as DescribedExperiment & { analysis: ReturnType<typeof analyseExperiment>, source: string }
    assert.equal(got.source, api)
    assert.deepEqual(got.variants.map((v) => [v.units, v.requests, v.errors, v.latency]), summed.variants.map((v) => [v.units, v.requests, v.errors, v.latency]))
    assert.deepEqual(got.variants.map((v) => v.outcomes), summed.variants.map((v) => v.outcomes))
    const states = (a: ReturnType<typeof analyseExperiment>): unknown => [...a.metrics, ...a.guardrails].map((m) => [m.metric, m.state, m.verdict?.estimate, m.verdict?.interval])
    assert.deepEqual(states(got.analysis), states(expected))
    assert.equal(got.analysis.guardrails.find((g) => g.metric === 'errors')!.state, 'treatment_worse')

    // The definition from the admin API instead of a file gives the same; the text form names the source.
    const text = await runCli(['report', '--prometheus', api, '--experiment', 'ab', '--admin', replicas[0]!.admin], { timeoutMs: 30_000 })
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, new RegExp(`experiment ab \\(from ${api.replace(/[.]/g, '\\.')}\\)`))
    assert.match(text.stdout, /errors\s+treatment vs control: .*→ treatment_worse/)
    const missing = await runCli(['report', '--prometheus', api, '--experiment', 'nope', '--config', configFile])
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /no experiment named "nope"/)
  })
})

test('the exposure log: oldest out first, by count and by age; a repeated id takes the newer arm', async () => {
  const { ExposureLog } = await import('../src/experiments/exposure-log.js')
  const a = { experiment: 'ab', variant: 'control' }
  const b = { experiment: 'ab', variant: 'treatment' }
  const log = new ExposureLog(1000, 3)
  log.record('r1', a, 0)
  log.record('r2', a, 10)
  log.record('r3', b, 20)
  assert.equal(log.get('r1', 30), a)
  log.record('r4', b, 30) // full: r1 goes, though it was just read (arrival order, not recency)
  assert.equal(log.get('r1', 30), undefined)
  assert.equal(log.get('r4', 30), b)
  assert.equal(log.size, 3)
  log.record('r2', b, 40) // a repeated id: the newer exposure wins; the old slot goes quietly
  assert.equal(log.get('r2', 40), b)
  assert.equal(log.get('r3', 1020), b, 'at its age limit: still there')
  assert.equal(log.get('r3', 1021), undefined, 'past eventWindowMs: unknown')
  log.record('r5', a, 1035) // expires r2's old slot, r3 and r4 (age > 1000) on the way
  assert.equal(log.get('r2', 1035), b, 'r2\'s newer slot is kept')
  assert.equal(log.size, 2)
})
