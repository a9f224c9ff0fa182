// Issue #17, assignment: deterministic, range-stable, layered. The test vectors were computed by an
// independent Python implementation of the documented formula (FNV-1a 32 + fmix32 over UTF-8).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { layerSlot, variantDraw, variantIndex } from '../src/experiments/assignment.js'
import { Experiment, enrolment, layoutExperiments } from '../src/experiments/experiment.js'
import { BackendSet } from '../src/upstream/backend-set.js'
import { Metrics } from '../src/metrics/metrics.js'
import { validateConfig, type ConfigError } from '../src/index.js'

test('the documented formula, with test vectors (non-ASCII and empty units included)', () => {
  assert.equal(layerSlot('ranking', 'user-1'), 0.2282033283263445)
  assert.equal(variantDraw('ranker-ab', 'user-1'), 0.811789310304448)
  assert.equal(layerSlot('ranking', 'Zoë-ü'), 0.45751006668433547)
  assert.equal(variantDraw('ranker-ab', '日本語'), 0.4786587287671864)
  assert.equal(layerSlot('ranking', ''), 0.8787037231959403)
  assert.equal(variantIndex(0.49, [0.5, 1]), 0)
  assert.equal(variantIndex(0.5, [0.5, 1]), 1)
  assert.equal(variantIndex(0.99, [0.2, 0.6, 1]), 2)
})

const B = { blue: { url: 'http://127.0.0.1:9001' }, cand: { url: 'http://127.0.0.1:9002' }, green: { url: 'http://127.0.0.1:9003' } }
function compile (experiments: unknown[]): Experiment[] {
  const cfg = validateConfig({ backends: B, primary: 'blue', experiments })
  const backends = new BackendSet(cfg)
  const f = new Metrics({ version: 't', defaultMetrics: false }).experimentMetrics()
  return cfg.experiments.map((e) => new Experiment(e, backends, f))
}
const ab = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'ab', unit: 'header:x-user-id', variants: [{ name: 'control', backend: 'blue' }, { name: 'treatment', backend: 'cand' }], ...over
})
const UNITS = Array.from({ length: 100_000 }, (_, i) => `u${i}`)

test('range-stable: raising traffic 0.1 → 0.2 keeps every enrolled unit in its variant; weights move the fewest units', () => {
  const [ex] = compile([ab({ traffic: 0.1 })])
  const at = (traffic: number): Map<string, string> => {
    const [entry] = layoutExperiments([{ experiment: ex!, enabled: true, traffic }])
    const out = new Map<string, string>()
    for (const u of UNITS) if (enrolment(entry!, u) === 'enrolled') out.set(u, ex!.variantOf(u).name)
    return out
  }
  const small = at(0.1)
  const large = at(0.2)
  assert.ok(Math.abs(small.size / UNITS.length - 0.1) < 0.005, `enrolled ${small.size}`)
  assert.ok(Math.abs(large.size / UNITS.length - 0.2) < 0.005, `enrolled ${large.size}`)
  for (const [u, v] of small) assert.equal(large.get(u), v, `unit ${u} kept its variant`)
  // Weights 1:1 → 3:2 (boundary 0.5 → 0.6): only the units between the boundaries move, ~10%.
  const [even] = compile([ab()])
  const [skew] = compile([ab({ variants: [{ name: 'control', backend: 'blue', weight: 3 }, { name: 'treatment', backend: 'cand', weight: 2 }] })])
  let moved = 0
  for (const u of UNITS) if (even!.variantOf(u).name !== skew!.variantOf(u).name) moved++
  assert.ok(Math.abs(moved / UNITS.length - 0.1) < 0.005, `moved ${moved}`)
  // The split follows the weights.
  const control = UNITS.filter((u) => skew!.variantOf(u).name === 'control').length
  assert.ok(Math.abs(control / UNITS.length - 0.6) < 0.005, `control ${control}`)
})

test('layers: experiments of one layer never share a unit; two layers are independent', () => {
  const [a, b, c] = compile([
    ab({ name: 'a', layer: 'ranking', traffic: 0.3 }),
    ab({ name: 'b', layer: 'ranking', traffic: 0.5 }),
    ab({ name: 'c', layer: 'pricing', traffic: 0.5 })
  ])
  const entries = layoutExperiments([a!, b!, c!].map((experiment) => ({ experiment, enabled: true, traffic: experiment.cfg.traffic })))
  const [ea, eb, ec] = entries
  assert.deepEqual(entries.map((e) => [e.start, e.layerUsed]), [[0, 0.8], [0.3, 0.8], [0, 0.5]])
  let inA = 0; let inB = 0; let inC = 0; let inAC = 0; let both = 0
  const reasons = { traffic: 0, other_experiment: 0 }
  for (const u of UNITS) {
    const x = enrolment(ea!, u) === 'enrolled'
    const y = enrolment(eb!, u) === 'enrolled'
    const z = enrolment(ec!, u) === 'enrolled'
    if (x && y) both++
    if (x) inA++
    if (y) inB++
    if (z) inC++
    if (x && z) inAC++
    if (!x) reasons[enrolment(ea!, u) as 'traffic' | 'other_experiment']++
  }
  assert.equal(both, 0, 'one layer: disjoint')
  assert.ok(Math.abs(inA / UNITS.length - 0.3) < 0.005 && Math.abs(inB / UNITS.length - 0.5) < 0.005)
  // Not in a: in b's range (other_experiment, ~50%) or in the unowned 20% (traffic).
  assert.ok(Math.abs(reasons.other_experiment / UNITS.length - 0.5) < 0.005 && Math.abs(reasons.traffic / UNITS.length - 0.2) < 0.005, JSON.stringify(reasons))
  // Independence across layers: P(a and c) ≈ P(a) · P(c), within 4 binomial standard errors.
  const n = UNITS.length
  const expected = (inA / n) * (inC / n)
  const se = Math.sqrt(expected * (1 - expected) / n)
  assert.ok(Math.abs(inAC / n - expected) < 4 * se, `joint ${inAC / n} vs ${expected}`)
})

test('config: bad experiments exit 2 naming the key; overlapping experiments in different layers warn', async () => {
  const { configWarnings } = await import('../src/config/schema.js')
  const problems = (experiments: unknown[]): string[] => {
    try { validateConfig({ backends: B, primary: 'blue', experiments }) } catch (err) { return (err as ConfigError).problems }
    return []
  }
  assert.deepEqual(problems([ab({ variants: [{ name: 'control', backend: 'nope' }, { name: 't', backend: 'cand' }] })]),
    ['experiments[0].variants[0].backend: names no backend ("nope"; defined: blue, cand, green)'])
  assert.deepEqual(problems([ab({ variants: [{ name: 'control', backend: 'blue' }] })]), ['experiments[0].variants: needs at least two variants (the first is the control)'])
  assert.deepEqual(problems([ab({ variants: [{ name: 'c', backend: 'blue', weight: 0 }, { name: 't', backend: 'cand' }] })]), ['experiments[0].variants[0].weight: must be > 0'])
  assert.deepEqual(problems([ab({ traffic: 0 })]), ['experiments[0].traffic: must be within (0, 1]'])
  assert.deepEqual(problems([ab({ traffic: 1.5 })]), ['experiments[0].traffic: must be within (0, 1]'])
  assert.deepEqual(problems([ab({ name: 'a', layer: 'l', traffic: 0.6 }), ab({ name: 'b', layer: 'l', traffic: 0.6 })]),
    ['experiments[1].traffic: layer "l": the traffic of its experiments sums to 1.2, past 1 (each owns a disjoint share of the layer\'s units)'])
  assert.deepEqual(problems([ab(), ab()]), ['experiments[1].name: duplicate experiment name "ab"'])
  assert.deepEqual(problems([ab({ unit: 'random' })]), ['experiments[0].unit: must be header:<name>, cookie:<name> or query:<name>'])
  const w = configWarnings(validateConfig({ backends: B, primary: 'blue', experiments: [ab({ name: 'a', match: { paths: ['/v1/models/*'] } }), ab({ name: 'b', match: { paths: ['/v1/models/m:predict'] } })] }))
  assert.deepEqual(w, ['experiments[1] (b): its paths overlap those of experiments[0] (a) in another layer; a request both match is routed by the first listed that enrols it'])
  assert.deepEqual(configWarnings(validateConfig({ backends: B, primary: 'blue', experiments: [ab({ name: 'a', match: { paths: ['/a'] } }), ab({ name: 'b', match: { paths: ['/b'] } })] })), [])
})
