import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  chiSquareSurvival, compareProportions, compareQuantiles, decide, holmBonferroni, meanSampleSize, normalQuantile,
  proportionSampleSize, quantileOf, RunningMoments, sampleFromHistogram, sampleFromValues, sampleRatioMismatch,
  tCdf, tQuantile, twoProportionZTest, welch, mannWhitney
} from '../src/analysis/index.js'

// Expected values computed with SciPy 1.17.1 / NumPy 2.4 by test/fixtures/analysis-reference.py
// (its output, test/fixtures/analysis-reference.json, pasted here).
const REF = { welch: { t: 3.2879564071913556, p: 0.003967820518371834, df: 18.532577527390973, lo: 0.8720283379900127, hi: 3.94130499534332 }, welch_rel: { est: 0.19710619710619706, lo: 0.05627487450466909, hi: 0.337937519707725 }, proportions: [{ xc: 48, nc: 80, xt: 56, nt: 70, lo: 0.05243147240236484, hi: 0.3338726540369059, z: 2.6501719512585336, p: 0.00804508136819656 }, { xc: 9, nc: 812, xt: 33, nt: 790, lo: 0.015262057149827694, hi: 0.04782037053439214, z: 3.843352620441361, p: 0.00012136489381501442 }, { xc: 0, nc: 200, xt: 0, nt: 200, lo: -0.018845326377266575, hi: 0.018845326377266575, z: 0.0, p: 1.0 }, { xc: 1000, nc: 10000, xt: 1100, nt: 10000, lo: 0.0015020650656495348, hi: 0.01850151586836522, z: 2.3066347738170103, p: 0.021075189273797826 }], srm: [{ obs: [5050, 4950], w: [1, 1], chi2: 1.0, p: 0.31731050786291115 }, { obs: [5200, 4800], w: [1, 1], chi2: 16.0, p: 6.334248366623988e-05 }, { obs: [1000, 2100, 2900], w: [1, 2, 3], chi2: 8.333333333333334, p: 0.015503853599009307 }], dists: { z975: 1.959963984540054, t_cdf: 0.035618535729039044, t_q: 2.1570459741131427, chi2_sf: 0.0035175167749121284 }, n_prop: 3841, n_mean: 252, holm: { p: [0.01, 0.04, 0.03, 0.005, 0.2], adj: [0.04, 0.09, 0.09, 0.025, 0.2] }, quantiles: { 0.05: 1.0, 0.5: 4.0, 0.9: 9.0, 0.99: 9.0 }, mwu: { u: 230.5, p: 0.007324195599675216 } } as const

const near = (actual: number, expected: number, eps = 1e-6, what = ''): void => {
  assert.ok(Math.abs(actual - expected) <= eps, `${what}: ${actual} != ${expected}`)
}

const A = [12.1, 14.3, 9.8, 11.0, 13.7, 10.4, 12.9, 15.2, 11.8, 10.9]
const B = [13.5, 16.1, 12.2, 14.8, 15.9, 13.1, 17.3, 14.0, 12.7, 16.4, 15.5, 13.9]
const moments = (xs: number[]): RunningMoments => {
  const m = new RunningMoments()
  for (const x of xs) m.add(x)
  return m
}

test('distribution wrappers match scipy', () => {
  near(normalQuantile(0.975), REF.dists.z975, 1e-9, 'z')
  near(tCdf(-2.1, 7.5), REF.dists.t_cdf, 1e-9, 't cdf')
  near(tQuantile(0.975, 13.2), REF.dists.t_q, 1e-9, 't q')
  near(chiSquareSurvival(11.3, 2), REF.dists.chi2_sf, 1e-9, 'chi2 sf')
  // df = ∞ is the normal (stdlib itself answers 0.5 and NaN there).
  near(tCdf(-2, Infinity), 0.022750131948179195, 1e-12, 't cdf inf')
  near(tQuantile(0.975, Infinity), REF.dists.z975, 1e-12, 't q inf')
})

test('Welch t-test from running sums matches scipy ttest_ind(equal_var=False)', () => {
  const w = welch(moments(A), moments(B))
  near(w.test.t, REF.welch.t, 1e-6, 't')
  near(w.test.df, REF.welch.df, 1e-6, 'df')
  near(w.test.pValue, REF.welch.p, 1e-6, 'p')
  const ci = w.absolute.intervalAt(w.absolute.fixedMultiplier(0.05))
  near(ci.lower, REF.welch.lo, 1e-6, 'lo')
  near(ci.upper, REF.welch.hi, 1e-6, 'hi')
  // The fixed-horizon p-value of "no difference" from the verdict equals the Welch p-value.
  const v = decide(w.absolute, { kind: 'better', direction: 'higher' }, { sequential: false })
  near(v.fixedPValue, REF.welch.p, 1e-6, 'verdict p')
  assert.equal(v.verdict, 'pass')
  near(v.interval.lower, REF.welch.lo, 1e-6, 'verdict lo')
  // Relative lift, delta method.
  near(w.relative.estimate, REF.welch_rel.est, 1e-9, 'rel')
  const rci = w.relative.intervalAt(w.relative.fixedMultiplier(0.05))
  near(rci.lower, REF.welch_rel.lo, 1e-6, 'rel lo')
  near(rci.upper, REF.welch_rel.hi, 1e-6, 'rel hi')
  // Merged replicas give the same answer as one process.
  const half1 = moments(A.slice(0, 4))
  half1.merge(moments(A.slice(4)))
  near(welch(half1, moments(B)).test.t, REF.welch.t, 1e-9, 'merged')
  // Two constant arms that differ: certain, p = 0, not NaN.
  const constant = (x: number): { n: number, sum: number, sumSq: number } => ({ n: 10, sum: 10 * x, sumSq: 10 * x * x })
  const w0 = welch(constant(1), constant(2))
  assert.equal(w0.test.pValue, 0)
  assert.equal(decide(w0.absolute, { kind: 'better', direction: 'higher' }).verdict, 'pass')
  assert.equal(welch(constant(1), constant(1)).test.pValue, 1)
})

test('two proportions: Newcombe interval and pooled z match scipy-based references', () => {
  for (const r of REF.proportions) {
    const c = compareProportions({ successes: r.xc, n: r.nc }, { successes: r.xt, n: r.nt })
    const ci = c.intervalAt(c.fixedMultiplier(0.05))
    near(ci.lower, r.lo, 1e-6, `lo ${r.xt}/${r.nt}`)
    near(ci.upper, r.hi, 1e-6, `hi ${r.xt}/${r.nt}`)
    near(c.zTest.z, r.z, 1e-6, 'z')
    near(c.zTest.pValue, r.p, 1e-6, 'p')
    near(c.estimate, r.xt / r.nt - r.xc / r.nc, 1e-12, 'est')
  }
  // Newcombe (1998) Table II, example (a): 56/70 − 48/80 → 0.0524 to 0.3339.
  const n = compareProportions({ successes: 48, n: 80 }, { successes: 56, n: 70 }).intervalAt(normalQuantile(0.975))
  near(n.lower, 0.0524, 5e-5)
  near(n.upper, 0.3339, 5e-5)
  assert.deepEqual(twoProportionZTest({ successes: 0, n: 0 }, { successes: 1, n: 3 }), { z: 0, pValue: 1 })
  assert.throws(() => compareProportions({ successes: 3, n: 2 }, { successes: 0, n: 1 }), RangeError)
})

test('SRM chi-square matches scipy chisquare', () => {
  for (const r of REF.srm) {
    const s = sampleRatioMismatch(r.obs as unknown as number[], r.w as unknown as number[])
    near(s.chiSquare, r.chi2, 1e-9, 'chi2')
    near(s.pValue, r.p, 1e-6, 'p')
    assert.equal(s.mismatch, r.p < 0.001)
    assert.equal(s.tested, true)
  }
  assert.equal(sampleRatioMismatch([3, 1], [1, 1]).tested, false, 'expected counts below 5 are not tested')
  assert.equal(sampleRatioMismatch([0, 0], [1, 1]).mismatch, false)
  assert.throws(() => sampleRatioMismatch([1, 2], [1, 0]), RangeError)
  assert.throws(() => sampleRatioMismatch([1], [1]), RangeError)
})

test('sample sizes match the reference formulas', () => {
  assert.equal(proportionSampleSize(0.10, 0.02), REF.n_prop)
  assert.equal(REF.n_prop, 3841)
  assert.equal(meanSampleSize(50, 10, 0.05), REF.n_mean)
  assert.throws(() => proportionSampleSize(0.99, 0.02), RangeError)
})

test('Holm step-down matches the reference', () => {
  const h = holmBonferroni(REF.holm.p as unknown as number[], 0.05)
  REF.holm.adj.forEach((a, i) => near(h.adjusted[i]!, a, 1e-12, `adj ${i}`))
  assert.deepEqual(h.rejected, REF.holm.adj.map((a) => a <= 0.05))
})

test('quantiles are numpy inverted_cdf; histograms and raw samples agree', () => {
  const x = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4]
  const s = sampleFromValues(x)
  for (const [q, v] of Object.entries(REF.quantiles)) assert.equal(quantileOf(s, Number(q)), v, `q=${q}`)
  const h = sampleFromHistogram([1, 2, 3, 4, 5, 6, 7, 8, 9], [2, 2, 4, 2, 3, 1, 1, 2, 3])
  for (const q of [0.05, 0.5, 0.9, 0.99]) assert.equal(quantileOf(h, q), quantileOf(s, q))
  assert.equal(quantileOf(sampleFromValues([]), 0.5), null)
  assert.throws(() => sampleFromHistogram([2, 1], [1, 1]), RangeError)
  // The ratio bootstrap is deterministic for a seed.
  const a = compareQuantiles(s, sampleFromValues(x.map((v) => v * 2)), 0.5, { seed: 7 })
  const b = compareQuantiles(s, sampleFromValues(x.map((v) => v * 2)), 0.5, { seed: 7 })
  assert.equal(a.estimate, 2)
  assert.deepEqual(a.percentileInterval, b.percentileInterval)
  assert.equal(a.standardError, b.standardError)
})

test('Mann-Whitney U (tie + continuity corrected) matches scipy mannwhitneyu(asymptotic)', () => {
  const x = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4]
  const y = [4, 6, 5, 7, 9, 10, 6, 8, 5, 11, 7, 6, 12, 9, 8]
  const r = mannWhitney(sampleFromValues(x), sampleFromValues(y))
  near(r.u, REF.mwu.u, 1e-9, 'U')
  near(r.pValue, REF.mwu.p, 1e-6, 'p')
  near(r.cles, REF.mwu.u / (x.length * y.length), 1e-12, 'cles')
  assert.equal(mannWhitney(sampleFromValues([1, 2, 3]), sampleFromValues([1, 2, 3])).pValue, 1)
  assert.equal(mannWhitney(sampleFromValues([]), sampleFromValues([1])).pValue, 1)
  assert.equal(mannWhitney(sampleFromValues([5, 5]), sampleFromValues([5])).pValue, 1, 'all ties')
})
