import { test } from 'node:test'
import assert from 'node:assert/strict'
import { binOf, jsDistance, psi, quantileEdges, stateOf } from '../src/drift/drift-stats.js'
import { ModelDrift } from '../src/drift/model-drift.js'
import { extractPredictions, instancesOf, requestInstancesOf, topScoreOf } from '../src/drift/extract-prediction.js'
import { driftSection } from '../src/config/drift-schema.js'
import { DriftMonitor } from '../src/drift/drift-monitor.js'
import { validateConfig } from '../src/config/load.js'
import type { Config } from '../src/config/schema.js'
import { Registry } from 'prom-client'

// Issue #19, drift: PSI and Jensen-Shannon known answers, the reference's fixed bins, and the
// window/reference life cycle of one model (a fake clock: no sleeps).

const close = (actual: number, expected: number, tol = 1e-12): void => {
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} is not ${expected} ± ${tol}`)
}

test('PSI: Σ (c − r)·ln(c / r) over the shares, with empty bins floored at 1e-4', () => {
  // r = [.5, .3, .2], c = [.3, .3, .4]:
  // (.3 − .5)·ln(.3/.5) + 0 + (.4 − .2)·ln(.4/.2) = .2·0.5108256237659907 + .2·0.6931471805599453 = 0.2407945608651872
  close(psi([50, 30, 20], [30, 30, 40]), 0.2407945608651872)
  // r = [.25 ×4], c = [.1, .2, .3, .4]:
  // −.15·ln(.4) − .05·ln(.8) + .05·ln(1.2) + .15·ln(1.6) = 0.13744 + 0.01116 + 0.00912 + 0.07050 = 0.22821740957339182
  close(psi([25, 25, 25, 25], [10, 20, 30, 40]), 0.22821740957339182)
  // An empty reference bin (class 3 new in the window): its share counts as 1e-4.
  // 0 + (.5 − .6)·ln(.5/.6) + (.1 − 1e-4)·ln(.1/1e-4) = 0.0182321557 + 0.6900848 = 0.7083169080497109
  close(psi([40, 60, 0], [40, 50, 10]), 0.7083169080497109)
  // Disjoint: 2·(1 − 1e-4)·ln(1 / 1e-4) = 2·0.9999·9.210340371976184 = 18.41883867587797
  close(psi([1, 0], [0, 1]), 18.41883867587797)
  close(psi([10, 20, 30], [1, 2, 3]), 0, 1e-15) // identical shares
  assert.ok(Number.isNaN(psi([0, 0], [1, 1])), 'no reference: NaN, never 0')
  assert.ok(Number.isNaN(psi([1, 1], [0, 0])), 'no window: NaN, never 0')
})

test('Jensen-Shannon distance, base 2: the values scipy.spatial.distance.jensenshannon gives', () => {
  // SciPy's documentation examples (scipy 1.11, `jensenshannon`):
  //   jensenshannon([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], 2.0) == 1.0
  //   jensenshannon([1.0, 0.0], [0.5, 0.5]) == 0.46450140402245893 (natural log)
  //   jensenshannon(a, b, axis=1)[0] == 0.1402339 for a = [1, 2, 3, 4], b = [13, 14, 15, 16] (natural log)
  // A base-e distance is the base-2 one times sqrt(ln 2) (the divergence scales by ln 2, the distance by its root).
  close(jsDistance([1, 0, 0], [0, 1, 0]), 1)
  close(jsDistance([1, 0], [0.5, 0.5]) * Math.sqrt(Math.LN2), 0.46450140402245893)
  close(jsDistance([1, 2, 3, 4], [13, 14, 15, 16]) * Math.sqrt(Math.LN2), 0.1402339, 1e-7)
  // Hand-checked: p = [.5, .3, .2], q = [.3, .3, .4], m = [.4, .3, .3];
  // KL(p‖m) = .5·log2(1.25) + .2·log2(2/3) = 0.0439716, KL(q‖m) = .3·log2(.75) + .4·log2(4/3) = 0.0415037;
  // sqrt((0.0439716 + 0.0415037) / 2) = 0.2067308603321408
  close(jsDistance([50, 30, 20], [30, 30, 40]), 0.2067308603321408)
  close(jsDistance([7, 3], [70, 30]), 0, 1e-7) // normalised: counts of any scale
  assert.ok(Number.isNaN(jsDistance([0, 0], [1, 1])))
})

test('quantile edges are NumPy type-7 quantiles of the reference, duplicates dropped; bins are (e[i-1], e[i]]', () => {
  const v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
  // np.quantile(v, [.25, .5, .75]) = [3.25, 5.5, 7.75]
  assert.deepEqual(quantileEdges(v, 4), [3.25, 5.5, 7.75])
  assert.equal(binOf([3.25, 5.5, 7.75], 3.25), 0)
  assert.equal(binOf([3.25, 5.5, 7.75], 3.2500001), 1)
  assert.equal(binOf([3.25, 5.5, 7.75], -100), 0)
  assert.equal(binOf([3.25, 5.5, 7.75], 100), 3)
  // A score that is mostly exactly 1.0: fewer bins, never empty duplicates.
  assert.deepEqual(quantileEdges([0.2, 1, 1, 1, 1, 1, 1, 1, 1, 1], 5), [1])
  assert.deepEqual(quantileEdges([], 10), [])
})

test('states: PSI below 0.1 ok, from 0.1 warn, from 0.25 alert', () => {
  assert.equal(stateOf(0.099, 0.1, 0.25), 'ok')
  assert.equal(stateOf(0.1, 0.1, 0.25), 'warn')
  assert.equal(stateOf(0.25, 0.1, 0.25), 'alert')
})

const cfg = (over: Record<string, unknown> = {}): ReturnType<typeof driftSection.parse> => driftSection.parse({ windowMs: 12_000, minSamples: 50, ...over })

test('reference first: the first window after the first prediction; later windows against its bins; a shift alerts', () => {
  const d = new ModelDrift('m', cfg(), 0)
  let t = 0
  // First window (12 s): 60% a, 40% b, top scores uniform over [0.5, 1).
  for (let i = 0; i < 600; i++) d.observe(i % 5 < 3 ? 'a' : 'b', 0.5 + (i % 100) / 200, (t = i * 10))
  assert.equal(d.view(t).state, 'no_reference')
  t = 12_000
  const first = d.view(t)
  assert.equal(first.reference?.how, 'first')
  assert.deepEqual(first.reference?.classes, ['a', 'b'])
  assert.equal(first.reference?.edges.length, 9, 'ten score bins by reference deciles')
  assert.equal(first.state, 'insufficient', 'the window starts empty')
  assert.equal(first.psi, null)
  // Same distribution: PSI near 0, ok.
  for (let i = 0; i < 500; i++) d.observe(i % 5 < 3 ? 'a' : 'b', 0.5 + (i % 100) / 200, t + 1000 + i)
  const same = d.view(t + 2000)
  assert.equal(same.state, 'ok')
  assert.ok(same.psi! < 0.01, String(same.psi))
  assert.equal(same.label?.window.n, 500)
  assert.equal(same.label?.reference.n, 600)
})

test('a label shift and a score shift, against the frozen bins (not re-fitted on the window)', () => {
  const d = new ModelDrift('m', cfg({ reference: 'pinned' }), 0)
  for (let i = 0; i < 1000; i++) d.observe(i % 2 === 0 ? 'a' : 'b', 0.5 + (i % 100) / 200, i)
  assert.equal(d.view(1000).state, 'no_reference')
  assert.ok(d.pin(1000))
  // Window: 90% a, 10% b and a new class c; scores all in the top decile.
  for (let i = 0; i < 1000; i++) d.observe(i % 10 === 0 ? 'c' : i % 10 < 9 ? 'a' : 'b', 0.99, 2000 + i)
  const v = d.view(3000)
  assert.equal(v.state, 'alert')
  assert.ok(v.label!.psi! > 0.25, String(v.label!.psi))
  assert.ok(v.score!.psi! > 0.25, String(v.score!.psi))
  assert.equal(v.psi, Math.max(v.label!.psi!, v.score!.psi!))
  assert.equal(v.label!.bins, 3, 'a, b, other (c is not a reference class)')
  // The reference's bins: a window of scores in one reference decile puts all its mass in one bin
  // (a re-fitted histogram would spread it over ten and report ~0).
  assert.ok(v.js! > 0.5 && v.js! <= 1)
})

test('the window slides: predictions older than windowMs stop counting; pin with an empty window is refused', () => {
  const d = new ModelDrift('m', cfg({ reference: 'pinned' }), 0)
  assert.equal(d.pin(0), false)
  for (let i = 0; i < 100; i++) d.observe('a', undefined, i)
  assert.ok(d.pin(100))
  for (let i = 0; i < 100; i++) d.observe('b', undefined, 1000 + i)
  assert.equal(d.view(1100).window.n, 100)
  assert.equal(d.view(1100 + 13_000).window.n, 0, 'a window later, the old slices are gone')
  assert.equal(d.view(1100 + 13_000).state, 'insufficient')
})

test('extraction: labels, scores and values per instance, per format', () => {
  assert.deepEqual(extractPredictions('kserve-v1', { predictions: [{ label: 'cat', scores: [0.1, 0.9] }, 'dog', 3.5, [0.2, 0.8]] }), [
    { label: 'cat', scores: [0.1, 0.9] }, { label: 'dog' }, { value: 3.5 }, { scores: [0.2, 0.8], label: '1' }
  ])
  // A column table, row by row; a lone `probability` number is a score field, not a regression value.
  assert.deepEqual(extractPredictions('mlflow', { predictions: { label: ['a', 'b'], probability: [0.7, 0.6] } }), [{ label: 'a' }, { label: 'b' }])
  const oip = { outputs: [{ name: 'probabilities', shape: [2, 2], datatype: 'FP32', data: [0.1, 0.9, 0.8, 0.2] }] }
  assert.deepEqual(instancesOf('oip-v2', oip), [{ probabilities: [0.1, 0.9] }, { probabilities: [0.8, 0.2] }])
  assert.deepEqual(extractPredictions('oip-v2', oip).map((p) => p.label), ['1', '0'])
  assert.equal(topScoreOf({ scores: [0.1, 0.7, 0.2] }), 0.7)
  assert.equal(topScoreOf({ value: 2 }), 2)
  assert.deepEqual(extractPredictions('openai-chat', { choices: [{ message: { content: 'hi there' } }] }), [{}])
  assert.deepEqual(requestInstancesOf({ instances: [[1], [2]] }), [[1], [2]])
  assert.deepEqual(requestInstancesOf({ dataframe_split: { columns: ['x'], data: [[1], [2]] } }), [[1], [2]])
  assert.equal(requestInstancesOf({ text: 'x' }), null)
})

test('DriftMonitor: odd answers are skipped, never thrown; a reload keeps drift when its section is unchanged', () => {
  let now = 0
  const config = (drift: Record<string, unknown>, assertions: unknown[] = []): Config => validateConfig({ primary: { url: 'http://127.0.0.1:9' }, drift, assertions })
  const mon = new DriftMonitor(config({ reference: 'pinned', minSamples: 1 }, [{ name: 'r', path: '/score', rule: { range: { min: 0 } } }]), new Registry(), { now: () => now })
  const req = { requestId: 'r1', method: 'POST', url: '/x', requestHeaders: {}, requestBody: null }
  for (const body of [null, 3, 'text with spaces', [], {}, { predictions: [null, {}, [], [null], { label: { nested: true } }, Number.NaN] }, { predictions: 'nope' }, { outputs: [{ name: 'o', data: 'x', shape: 'bad' }] }]) {
    for (const format of ['kserve-v1', 'mlflow', 'oip-v2', 'openai-chat', 'json']) mon.observe('primary', 200, format, body, req)
  }
  mon.observe('primary', 500, 'kserve-v1', { predictions: ['a'] }, req) // an error answer: not observed
  mon.observe('primary', 200, 'kserve-v1', { predictions: ['a', 'b'] }, req)
  now = 10
  assert.deepEqual(mon.pin().pinned, ['primary'])
  mon.observe('primary', 200, 'kserve-v1', { predictions: ['a', 'a'] }, req)
  const before = mon.driftSnapshot().models[0]!
  assert.ok(before.psi! > 0)
  assert.ok(mon.assertionViews()[0]!.violations > 0, 'missing scores violate range')

  mon.reload(config({ reference: 'pinned', minSamples: 1 }, [{ name: 'r', path: '/score', rule: { range: { min: 0 } } }]))
  assert.deepEqual(mon.driftSnapshot().models[0], before, 'same section: the window and reference are kept')
  assert.ok(mon.assertionViews()[0]!.checked > 0, 'counts kept for the same name')
  mon.reload(config({ reference: 'pinned', minSamples: 2 }))
  assert.deepEqual(mon.driftSnapshot().models, [], 'a changed section starts over')
  assert.deepEqual(mon.assertionViews(), [])
})
