import { test } from 'node:test'
import assert from 'node:assert/strict'
import normalRandom from '@stdlib/random-base-normal'
import {
  compareProportions, compareQuantiles, decide, holmVerdicts, RunningMoments, sampleFromHistogram, sampleFromValues,
  unitsStillNeeded, welch, experimentMetricState, sampleRatioMismatch
} from '../src/analysis/index.js'

test('no data never passes and never fails', () => {
  const empty = compareProportions({ successes: 0, n: 0 }, { successes: 0, n: 0 })
  const v = decide(empty, { kind: 'at_most', limit: 0.01 })
  assert.equal(v.verdict, 'no_data')
  assert.deepEqual(v.n, { control: 0, treatment: 0 })
  // Below the minimum per arm, however clear the data, it is no_data.
  const clear = compareProportions({ successes: 0, n: 150 }, { successes: 100, n: 150 })
  assert.equal(decide(clear, { kind: 'at_most', limit: 0.01 }, { minPerArm: 200 }).verdict, 'no_data')
  assert.equal(decide(clear, { kind: 'at_most', limit: 0.01 }, { minPerArm: 100 }).verdict, 'fail')
  // Zero errors in both arms of 200 is not a pass against a 1% bound: the interval is ±1.9% or wider.
  const zeros = decide(compareProportions({ successes: 0, n: 200 }, { successes: 0, n: 200 }), { kind: 'at_most', limit: 0.01 })
  assert.equal(zeros.verdict, 'inconclusive')
  assert.ok(zeros.interval.upper > 0.01)
  // A single unit per arm has no variance: inconclusive, not a crash.
  const one = new RunningMoments()
  one.add(3)
  assert.equal(decide(welch(one, one).absolute, { kind: 'better', direction: 'higher' }).verdict, 'inconclusive')
})

test('error-rate gate: fail when the lower bound exceeds maxIncrease, pass when the upper bound is below it', () => {
  const issueExample = compareProportions({ successes: 9, n: 812 }, { successes: 33, n: 790 })
  // The fixed-horizon interval [1.5%, 4.8%] is above 1%; the always-valid one, wider, not yet.
  assert.equal(decide(issueExample, { kind: 'at_most', limit: 0.01 }, { minPerArm: 200, sequential: false }).verdict, 'fail')
  assert.equal(decide(issueExample, { kind: 'at_most', limit: 0.01 }, { minPerArm: 200 }).verdict, 'inconclusive')
  const bad = decide(compareProportions({ successes: 18, n: 1624 }, { successes: 66, n: 1580 }), { kind: 'at_most', limit: 0.01 }, { minPerArm: 200 })
  assert.equal(bad.verdict, 'fail')
  assert.ok(bad.interval.lower > 0.01)
  assert.ok(bad.pValue <= 0.05, 'the p-value at the bound agrees with the interval')
  assert.equal(bad.test, 'newcombe-diff')
  assert.match(bad.rule, /always-valid/)
  assert.match(bad.reason, /n = 1580\/1624/)
  const good = decide(compareProportions({ successes: 50, n: 20000 }, { successes: 52, n: 20000 }), { kind: 'at_most', limit: 0.01 })
  assert.equal(good.verdict, 'pass')
  assert.ok(good.interval.upper < 0.01 && good.pValue <= 0.05)
  // The always-valid interval is wider than the fixed-horizon one shown beside it.
  assert.ok(good.interval.upper - good.interval.lower > good.fixedInterval.upper - good.fixedInterval.lower)
  // Accuracy gate: the drop must stay within maxDrop = 0.02.
  const drop = decide(compareProportions({ successes: 900, n: 1000 }, { successes: 800, n: 1000 }), { kind: 'at_least', limit: -0.02 })
  assert.equal(drop.verdict, 'fail')
})

test('interval and p-value agree at every bound (pass/fail exactly when p <= alpha)', () => {
  const cmp = compareProportions({ successes: 120, n: 1000 }, { successes: 150, n: 1000 })
  for (let limit = -0.05; limit <= 0.1; limit += 0.0025) {
    const v = decide(cmp, { kind: 'at_most', limit })
    const decisive = v.verdict === 'pass' || v.verdict === 'fail'
    assert.equal(decisive, v.pValue <= 0.05 + 1e-9, `limit ${limit}: ${v.verdict} p=${v.pValue}`)
  }
})

test('latency gate: p99 ratio from histograms, seeded bootstrap', () => {
  const draw = normalRandom.factory(0, 0.3, { seed: 99 })
  const base: number[] = []
  const slow: number[] = []
  for (let i = 0; i < 4000; i++) {
    base.push(20 * Math.exp(draw()))
    slow.push(40 * Math.exp(draw()))
  }
  const fail = decide(compareQuantiles(sampleFromValues(base), sampleFromValues(slow), 0.99), { kind: 'at_most', limit: 1.2 }, { minPerArm: 200 })
  assert.equal(fail.verdict, 'fail')
  assert.ok(fail.estimate > 1.6 && fail.estimate < 2.5, `ratio ${fail.estimate}`)
  const same = base.map((x) => x * 1.0)
  const pass = decide(compareQuantiles(sampleFromValues(base), sampleFromValues(same.slice().reverse()), 0.5), { kind: 'at_most', limit: 1.1 })
  assert.equal(pass.verdict, 'pass')
  // Histogram input (5% log buckets as in LatencyHistogram) gives the same decision.
  const bounds = Array.from({ length: 200 }, (_, i) => 0.05 * Math.exp(i * Math.log(1.05)))
  const bucket = (xs: number[]): number[] => {
    const c = new Array<number>(bounds.length).fill(0)
    for (const x of xs) c[Math.min(bounds.length - 1, Math.ceil(Math.log(x / 0.05) / Math.log(1.05)))]!++
    return c
  }
  const h = compareQuantiles(sampleFromHistogram(bounds, bucket(base)), sampleFromHistogram(bounds, bucket(slow)), 0.99, { seed: 3 })
  assert.equal(decide(h, { kind: 'at_most', limit: 1.2 }).verdict, 'fail')
  assert.ok(h.percentileInterval.lower <= h.estimate && h.estimate <= h.percentileInterval.upper)
  // An empty arm or a zero baseline: no_data / inconclusive, never a throw.
  assert.equal(decide(compareQuantiles(sampleFromValues([]), sampleFromValues(slow), 0.99), { kind: 'at_most', limit: 1.2 }).verdict, 'no_data')
  assert.equal(decide(compareQuantiles(sampleFromValues([0, 0]), sampleFromValues([1, 2]), 0.5), { kind: 'at_most', limit: 1.2 }).verdict, 'inconclusive')
  assert.throws(() => compareQuantiles(sampleFromValues(base), sampleFromValues(slow), 1), RangeError)
})

test('Holm across metrics downgrades a verdict that is not significant after correction', () => {
  const strong = decide(compareProportions({ successes: 100, n: 2000 }, { successes: 200, n: 2000 }), { kind: 'better', direction: 'higher' }, { sequential: false })
  const weak = decide(compareProportions({ successes: 100, n: 2000 }, { successes: 131, n: 2000 }), { kind: 'better', direction: 'higher' }, { sequential: false })
  assert.equal(weak.verdict, 'pass')
  assert.ok(weak.pValue > 0.025 && weak.pValue < 0.05, `weak p ${weak.pValue}`)
  const none = decide(compareProportions({ successes: 100, n: 2000 }, { successes: 100, n: 2000 }), { kind: 'better', direction: 'higher' }, { sequential: false })
  // Sorted: strong·3 ≤ α, then weak·2 > α: weak is no longer a discovery.
  const [s, w, z] = holmVerdicts([strong, weak, none], 0.05)
  assert.equal(s!.verdict, 'pass')
  assert.equal(w!.verdict, 'inconclusive')
  assert.equal(z!.verdict, 'inconclusive')
  assert.ok(Math.abs(w!.pValue - 2 * weak.pValue) < 1e-12)
  assert.match(w!.reason, /Holm/)
})

test('units still needed for minEffect with the always-valid interval', () => {
  const cmp = compareProportions({ successes: 10, n: 100 }, { successes: 11, n: 100 })
  const need = unitsStillNeeded(cmp.standardError, 200, 0.02)
  assert.ok(need.total > 0 && Number.isFinite(need.total))
  assert.equal(need.target, 200 + need.total)
  // Projected: at the target the standard error has shrunk by √(target/200) and nothing more is needed.
  assert.equal(unitsStillNeeded(cmp.standardError * Math.sqrt(200 / need.target), need.target, 0.02).total, 0)
  assert.ok(unitsStillNeeded(cmp.standardError * Math.sqrt(200 / (need.target - 2)), need.target - 2, 0.02).total > 0)
  assert.equal(unitsStillNeeded(NaN, 0, 0.02).total, Infinity)
  assert.throws(() => unitsStillNeeded(0.1, 10, 0), RangeError)
})

test('bad input throws RangeError (validation at construction), never a wrong number', () => {
  assert.throws(() => decide(compareProportions({ successes: 1, n: 2 }, { successes: 1, n: 2 }), { kind: 'at_most', limit: NaN }), RangeError)
  assert.throws(() => decide(compareProportions({ successes: 1, n: 2 }, { successes: 1, n: 2 }), { kind: 'at_most', limit: 0 }, { alpha: 2 }), RangeError)
  assert.throws(() => welch({ n: 1.5, sum: 0, sumSq: 0 }, { n: 2, sum: 0, sumSq: 0 }), RangeError)
  const m = new RunningMoments()
  assert.equal(m.add(NaN), false)
  assert.equal(m.n, 0)
})

test('experiment states: srm withholds, collecting below the minimum, better/worse/no_difference/inconclusive', () => {
  const better = { kind: 'better', direction: 'higher' } as const
  const opts = { minPerArm: 100 }
  const srmOk = sampleRatioMismatch([2000, 2000], [1, 1])
  const state = (xc: number, nc: number, xt: number, nt: number, srm = srmOk): string =>
    experimentMetricState(decide(compareProportions({ successes: xc, n: nc }, { successes: xt, n: nt }), better, opts), 0.02, srm).state
  assert.equal(state(5, 50, 9, 50), 'collecting')
  assert.equal(state(200, 2000, 400, 2000), 'treatment_better')
  assert.equal(state(400, 2000, 200, 2000), 'treatment_worse')
  assert.equal(state(2000, 40000, 2010, 40000), 'no_difference')
  const inc = experimentMetricState(decide(compareProportions({ successes: 20, n: 200 }, { successes: 22, n: 200 }), better, opts), 0.02, srmOk)
  assert.equal(inc.state, 'inconclusive')
  assert.ok(inc.unitsNeeded !== null && inc.unitsNeeded.total > 0)
  assert.equal(state(200, 2000, 400, 2000, sampleRatioMismatch([2000, 1700], [1, 1])), 'srm')
})
