// Issue #17, outcomes: POST /events by unit or by request id, JSON or NDJSON; bad events reported
// by index and counted, the good ones of the same batch kept; running sums per arm in GET
// /experiments and as Prometheus counters.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'undici'
import { startPenumbra, startUpstream, urls } from './helpers/servers.js'
import { metricValue } from './helpers/shadow-util.js'
import { layerSlot } from '../src/experiments/assignment.js'

test('POST /events: by unit, by request id, NDJSON; rejected by index with reasons; sums per arm', { timeout: 30_000 }, async (t) => {
  const blue = await startUpstream()
  const cand = await startUpstream()
  const token = 'events-token-123'
  const app = await startPenumbra({
    backends: { blue: { url: blue.url }, cand: { url: cand.url } },
    primary: 'blue',
    admin: { host: '127.0.0.1', port: 0, token },
    experiments: [{
      name: 'ab',
      unit: 'header:x-user-id',
      traffic: 0.5,
      variants: [{ name: 'control', backend: 'blue' }, { name: 'treatment', backend: 'cand' }],
      metrics: [{ name: 'conversion', kind: 'binary' }, { name: 'revenue', kind: 'mean' }]
    }]
  })
  t.after(async () => { await app.stop(); await blue.close(); await cand.close() })
  const { proxy, admin } = urls(app)
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  // Units on both sides of the 0.5 traffic boundary (the experiment is alone in its layer).
  const units = Array.from({ length: 200 }, (_, i) => `u${i}`)
  const enrolled = units.filter((u) => layerSlot('ab', u) < 0.5)
  const outside = units.find((u) => layerSlot('ab', u) >= 0.5)!
  const arms = new Map<string, string>()
  const requestIds: string[] = []
  for (const u of enrolled.slice(0, 20)) {
    const r = await request(`${proxy}/v1/models/m:predict`, { method: 'POST', body: '{}', headers: { 'x-user-id': u } })
    await r.body.text()
    arms.set(u, String(r.headers['x-penumbra-experiment']).split('=')[1]!)
    requestIds.push(String(r.headers['x-request-id']))
  }
  const post = async (body: string, headers: Record<string, string> = auth): Promise<{ status: number, json: any }> => {
    const r = await request(`${admin}/events`, { method: 'POST', body, headers })
    return { status: r.statusCode, json: await r.body.json() }
  }
  assert.equal((await post('{"unit":"u1","name":"conversion","value":1}', {})).status, 401, 'the token is needed')
  const u0 = enrolled[0]!
  const batch = [
    { unit: u0, name: 'conversion', value: 1 }, // 0 accepted
    { requestId: requestIds[1], name: 'revenue', value: 12.5 }, // 1 accepted, to enrolled[1]'s arm
    { unit: u0, name: 'nope', value: 1 }, // 2 unknown metric
    { unit: u0, experiment: 'other', name: 'conversion', value: 1 }, // 3 unknown experiment
    { unit: outside, name: 'conversion', value: 0 }, // 4 not enrolled
    { requestId: 'never-seen', name: 'conversion', value: 1 }, // 5 unknown request
    { unit: u0, name: 'conversion', value: 2 }, // 6 invalid value (binary)
    { unit: u0, name: 'revenue', value: -3 }, // 7 invalid value (mean < 0)
    { unit: u0, requestId: requestIds[0], name: 'conversion', value: 1 }, // 8 invalid (both)
    { unit: u0, name: 'conversion', value: 1, extra: true }, // 9 invalid (unknown key)
    'not an object' // 10 invalid
  ]
  const res = await post(JSON.stringify(batch))
  assert.equal(res.status, 200)
  assert.equal(res.json.accepted, 2)
  assert.deepEqual(res.json.rejected.map((r: { index: number, reason: string }) => [r.index, r.reason]), [
    [2, 'unknown_metric'], [3, 'unknown_experiment'], [4, 'not_enrolled'], [5, 'unknown_request'],
    [6, 'invalid_value'], [7, 'invalid_value'], [8, 'invalid'], [9, 'invalid'], [10, 'invalid']
  ])
  assert.match(res.json.rejected[4].message, /binary: 0 or 1/)
  // NDJSON, with a broken line in the middle: the others count.
  const nd = [JSON.stringify({ unit: enrolled[2], name: 'conversion', value: 0 }), '{broken', JSON.stringify({ unit: enrolled[3], name: 'revenue', value: 4 })].join('\n')
  const r2 = await post(nd, { ...auth, 'content-type': 'application/x-ndjson' })
  assert.equal(r2.json.accepted, 2)
  assert.deepEqual(r2.json.rejected.map((r: { index: number, reason: string }) => [r.index, r.reason]), [[1, 'invalid']])
  assert.equal((await post('not json')).status, 400)
  const tooMany = await post(JSON.stringify(Array.from({ length: 10_001 }, () => ({ unit: u0, name: 'conversion', value: 1 }))))
  assert.equal(tooMany.status, 413)
  assert.equal(tooMany.json.error, 'PENUMBRA_BODY_TOO_LARGE')

  // The sums, per arm.
  const list = await (await request(`${admin}/experiments/ab`, { headers: auth })).body.json() as { variants: Array<{ name: string, outcomes: Record<string, { n: number, sum: number, sumSq: number }> }> }
  const arm = (v: string): Record<string, { n: number, sum: number, sumSq: number }> => list.variants.find((x) => x.name === v)!.outcomes
  const expect: Record<string, { conversion: [number, number], revenue: [number, number, number] }> = { control: { conversion: [0, 0], revenue: [0, 0, 0] }, treatment: { conversion: [0, 0], revenue: [0, 0, 0] } }
  const add = (v: string, metric: 'conversion' | 'revenue', value: number): void => {
    const e = expect[v]!
    if (metric === 'conversion') { e.conversion[0]++; e.conversion[1] += value } else { e.revenue[0]++; e.revenue[1] += value; e.revenue[2] += value * value }
  }
  add(arms.get(u0)!, 'conversion', 1)
  add(arms.get(enrolled[1]!)!, 'revenue', 12.5)
  add(arms.get(enrolled[2]!) ?? (await armOf(enrolled[2]!)), 'conversion', 0)
  add(arms.get(enrolled[3]!) ?? (await armOf(enrolled[3]!)), 'revenue', 4)
  for (const v of ['control', 'treatment']) {
    assert.deepEqual([arm(v).conversion!.n, arm(v).conversion!.sum], expect[v]!.conversion, `${v} conversion`)
    assert.deepEqual([arm(v).revenue!.n, arm(v).revenue!.sum, arm(v).revenue!.sumSq], expect[v]!.revenue, `${v} revenue`)
  }
  const text = await (await request(`${admin}/metrics`)).body.text()
  for (const v of ['control', 'treatment']) {
    assert.equal(metricValue(text, 'penumbra_experiment_outcome_count_total', { experiment: 'ab', variant: v, metric: 'revenue' }), expect[v]!.revenue[0])
    assert.equal(metricValue(text, 'penumbra_experiment_outcome_sum_total', { experiment: 'ab', variant: v, metric: 'revenue' }), expect[v]!.revenue[1])
    assert.equal(metricValue(text, 'penumbra_experiment_outcome_sum_squares_total', { experiment: 'ab', variant: v, metric: 'revenue' }), expect[v]!.revenue[2])
  }
  assert.equal(metricValue(text, 'penumbra_events_total', { result: 'accepted' }), 4)
  assert.equal(metricValue(text, 'penumbra_events_total', { result: 'invalid' }), 4)
  assert.equal(metricValue(text, 'penumbra_events_total', { result: 'invalid_value' }), 2)
  assert.equal(metricValue(text, 'penumbra_events_total', { result: 'not_enrolled' }), 1)

  async function armOf (unit: string): Promise<string> {
    const r = await request(`${proxy}/v1/models/m:predict`, { method: 'POST', body: '{}', headers: { 'x-user-id': unit } })
    await r.body.text()
    return String(r.headers['x-penumbra-experiment']).split('=')[1]!
  }
})

test('GET /experiments carries verdicts: collecting without data, treatment_better with a clear effect, srm withholds', { timeout: 60_000 }, async (t) => {
  const { analyseExperiment } = await import('../src/experiments/analysis.js')
  const blue = await startUpstream()
  const cand = await startUpstream()
  const app = await startPenumbra({
    backends: { blue: { url: blue.url }, cand: { url: cand.url } },
    primary: 'blue',
    experiments: [{
      name: 'ab',
      unit: 'header:x-user-id',
      variants: [{ name: 'control', backend: 'blue' }, { name: 'treatment', backend: 'cand' }],
      metrics: [{ name: 'conversion', kind: 'binary' }, { name: 'revenue', kind: 'mean' }]
    }]
  })
  t.after(async () => { await app.stop(); await blue.close(); await cand.close() })
  const { proxy, admin } = urls(app)
  const get = async (): Promise<any> => await (await request(`${admin}/experiments/ab`)).body.json()
  const before = await get()
  assert.deepEqual(before.analysis.metrics.map((m: { metric: string, state: string }) => [m.metric, m.state]), [['conversion', 'collecting'], ['revenue', 'collecting']])
  // 600 units: control converts 5%, treatment 50% (a deterministic pattern per unit).
  const events: unknown[] = []
  for (let i = 0; i < 600; i++) {
    const unit = `user-${i}`
    const r = await request(`${proxy}/v1/models/m:predict`, { method: 'POST', body: '{}', headers: { 'x-user-id': unit } })
    await r.body.text()
    const arm = String(r.headers['x-penumbra-experiment']).split('=')[1]
    events.push({ unit, name: 'conversion', value: arm === 'treatment' ? (i % 2) : (i % 20 === 0 ? 1 : 0) })
  }
  const posted = await (await request(`${admin}/events`, { method: 'POST', body: JSON.stringify(events), headers: { 'content-type': 'application/json' } })).body.json() as { accepted: number }
  assert.equal(posted.accepted, 600)
  const after = await get()
  const conv = after.analysis.metrics.find((m: { metric: string }) => m.metric === 'conversion')
  assert.equal(conv.state, 'treatment_better', JSON.stringify(conv.verdict))
  assert.equal(conv.verdict.test, 'newcombe-diff')
  assert.equal(conv.verdict.n.control + conv.verdict.n.treatment, 600)
  assert.ok(conv.verdict.interval.lower > 0 && conv.verdict.sequential === true, 'decided on the always-valid interval')
  assert.ok(Number.isFinite(conv.verdict.fixedPValue), 'the fixed-horizon p-value is shown beside it')
  assert.equal(after.analysis.srm.mismatch, false)
  assert.equal(after.variants[0].units + after.variants[1].units, 600)
  assert.equal(after.analysis.metrics.find((m: { metric: string }) => m.metric === 'revenue').state, 'collecting', 'no revenue events: no verdict')
  // A sample-ratio mismatch withholds every verdict (data as GET /experiments shows it).
  const arm = (units: number, n: number, sum: number): { name: string, weight: number, units: number, outcomes: Record<string, { n: number, sum: number, sumSq: number }> } =>
    ({ name: `v${units}`, weight: 0.5, units, outcomes: { conversion: { n, sum, sumSq: sum } } })
  const skewed = analyseExperiment({ name: 'x', alpha: 0.05, minEffect: 0.02, metrics: [{ name: 'conversion', kind: 'binary' }], variants: [arm(1000, 1000, 50), arm(800, 800, 400)] })
  assert.equal(skewed.srm!.mismatch, true)
  assert.equal(skewed.metrics[0]!.state, 'srm')
})
