/**
 * Latency gate: the ratio of a quantile (p50, p99) of the treatment (canary) to the control
 * (baseline), with a seeded, hence deterministic, bootstrap. Works from raw samples or from
 * histogram buckets (the proxy's LatencyHistogram, Prometheus `_bucket` counters summed over
 * replicas), both held as ascending values with counts.
 *
 * The bootstrap of one quantile is drawn exactly in O(log k) per resample instead of O(n): a
 * resample is X_(⌈nU_i⌉) for n uniforms U_i, and u ↦ X_(⌈nu⌉) is non-decreasing, so the resample's
 * r-th smallest value is X_(⌈n·U_(r)⌉) with U_(r) ~ Beta(r, n − r + 1), the r-th uniform order
 * statistic. One Beta draw per resample and arm gives the same distribution as resampling n values.
 */
import { createRequire } from 'node:module'
import type betaRandomT from '@stdlib/random-base-beta'

// Loaded on first use, like the distributions (see distributions.ts).
const require = createRequire(import.meta.url)
let betaRandom: typeof betaRandomT | null = null
import { waldInterval, type Comparison, type Interval } from './comparison.js'
import { normalQuantile, twoSidedNormalP } from './distributions.js'

/** A sample as ascending distinct values with their counts (a histogram: bucket upper bounds). */
export interface QuantileSample {
  values: number[]
  counts: number[]
}

/** Builds a sample from raw observations (non-finite and negative values are dropped). */
export function sampleFromValues (xs: readonly number[]): QuantileSample {
  const sorted = xs.filter((x) => Number.isFinite(x) && x >= 0).sort((a, b) => a - b)
  const values: number[] = []
  const counts: number[] = []
  for (const x of sorted) {
    if (values.length > 0 && values[values.length - 1] === x) counts[counts.length - 1]!++
    else { values.push(x); counts.push(1) }
  }
  return { values, counts }
}

/**
 * Builds a sample from histogram buckets: `upperBounds` ascending, `counts` per bucket (not
 * cumulative; for Prometheus `le` buckets take differences first). A quantile is reported as its
 * bucket's upper bound, as LatencyHistogram.quantile does, so it is within one bucket width.
 *
 * @throws {RangeError} on unequal lengths, bounds not ascending or negative, bad counts.
 */
export function sampleFromHistogram (upperBounds: readonly number[], counts: readonly number[]): QuantileSample {
  if (upperBounds.length !== counts.length) throw new RangeError('histogram: bounds and counts differ in length')
  const out: QuantileSample = { values: [], counts: [] }
  for (let i = 0; i < counts.length; i++) {
    const b = upperBounds[i]!
    const c = counts[i]!
    if (!(b >= 0) || (i > 0 && !(b > upperBounds[i - 1]!))) throw new RangeError(`histogram: bounds must ascend from >= 0, got ${b} at ${i}`)
    if (!Number.isInteger(c) || c < 0) throw new RangeError(`histogram: counts must be integers >= 0, got ${c} at ${i}`)
    if (c > 0) { out.values.push(b); out.counts.push(c) }
  }
  return out
}

function cumulative (s: QuantileSample): number[] {
  let acc = 0
  return s.counts.map((c) => (acc += c))
}

/** The value of rank k (1-based) by binary search on the cumulative counts. */
function atRank (s: QuantileSample, cum: number[], k: number): number {
  let lo = 0
  let hi = cum.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (cum[mid]! >= k) hi = mid
    else lo = mid + 1
  }
  return s.values[lo]!
}

function rankOf (q: number, n: number): number {
  return Math.min(n, Math.max(1, Math.ceil(q * n)))
}

/**
 * The q-quantile as the value of rank ⌈q·n⌉ (numpy `quantile(method='inverted_cdf')`), null when empty.
 */
export function quantileOf (s: QuantileSample, q: number): number | null {
  const cum = cumulative(s)
  const n = cum.length === 0 ? 0 : cum[cum.length - 1]!
  if (n === 0) return null
  return atRank(s, cum, rankOf(q, n))
}

/** Options of the quantile-ratio bootstrap. */
export interface QuantileRatioOptions {
  /** Bootstrap resamples. Default 2,000. */
  resamples?: number
  /** PRNG seed (MT19937): the same inputs and seed give the same interval. Default 1. */
  seed?: number
  /** Level of the reported percentile interval. Default 0.05. */
  alpha?: number
}

/** A comparison of quantiles: estimate = treatment quantile / control quantile. */
export interface QuantileRatioComparison extends Comparison {
  readonly test: 'quantile-ratio'
  readonly q: number
  readonly controlQuantile: number | null
  readonly treatmentQuantile: number | null
  /** The bootstrap percentile interval of the ratio at `alpha` (fixed-horizon). */
  readonly percentileInterval: Interval
}

/**
 * Compares the q-quantiles of two samples. The interval family is r̂·exp(±m·se) with se the
 * bootstrap standard deviation of ln(ratio) (a sample quantile is asymptotically normal, so the
 * always-valid multiplier applies); the plain bootstrap percentile interval is reported beside it.
 * The estimate is NaN when an arm is empty or the control quantile is 0.
 *
 * @throws {RangeError} unless 0 < q < 1, resamples >= 100, and the seed is a positive integer.
 */
export function compareQuantiles (control: QuantileSample, treatment: QuantileSample, q: number, options: QuantileRatioOptions = {}): QuantileRatioComparison {
  const resamples = options.resamples ?? 2000
  const seed = options.seed ?? 1
  const alpha = options.alpha ?? 0.05
  if (!(q > 0 && q < 1)) throw new RangeError(`q must be in (0, 1), got ${q}`)
  if (!Number.isInteger(resamples) || resamples < 100) throw new RangeError(`resamples must be an integer >= 100, got ${resamples}`)
  if (!Number.isInteger(seed) || seed < 1 || seed > 0xffffffff) throw new RangeError(`seed must be an integer in [1, 2^32), got ${seed}`)
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`)
  const cumC = cumulative(control)
  const cumT = cumulative(treatment)
  const nC = cumC.length === 0 ? 0 : cumC[cumC.length - 1]!
  const nT = cumT.length === 0 ? 0 : cumT[cumT.length - 1]!
  const qc = nC === 0 ? null : atRank(control, cumC, rankOf(q, nC))
  const qt = nT === 0 ? null : atRank(treatment, cumT, rankOf(q, nT))
  const estimate = qc === null || qt === null || qc === 0 ? NaN : qt / qc
  let se = NaN
  let percentileInterval: Interval = { lower: NaN, upper: NaN }
  if (!Number.isNaN(estimate)) {
    betaRandom ??= require('@stdlib/random-base-beta') as typeof betaRandomT
    const draw = betaRandom.factory({ seed })
    const logs = new Float64Array(resamples)
    const rc = rankOf(q, nC)
    const rt = rankOf(q, nT)
    let finite = 0
    for (let b = 0; b < resamples; b++) {
      const kc = Math.max(1, Math.ceil(nC * draw(rc, nC - rc + 1)))
      const kt = Math.max(1, Math.ceil(nT * draw(rt, nT - rt + 1)))
      const v = Math.log(atRank(treatment, cumT, kt) / atRank(control, cumC, kc))
      logs[b] = v
      if (Number.isFinite(v)) finite++
    }
    if (finite === resamples) {
      let mean = 0
      for (const v of logs) mean += v
      mean /= resamples
      let ss = 0
      for (const v of logs) ss += (v - mean) ** 2
      se = Math.sqrt(ss / (resamples - 1))
      logs.sort()
      const pick = (p: number): number => Math.exp(logs[Math.min(resamples - 1, Math.max(0, Math.ceil(p * resamples) - 1))]!)
      percentileInterval = { lower: pick(alpha / 2), upper: pick(1 - alpha / 2) }
    }
  }
  const logEst = Math.log(estimate)
  return {
    test: 'quantile-ratio',
    n: { control: nC, treatment: nT },
    q,
    controlQuantile: qc,
    treatmentQuantile: qt,
    estimate,
    standardError: se,
    noEffect: 1,
    percentileInterval,
    intervalAt: (m) => {
      const i = waldInterval(logEst, se, m)
      return { lower: Math.exp(i.lower), upper: Math.exp(i.upper) }
    },
    multiplierAt: (value) => {
      if (!(value > 0)) return Infinity
      const d = Math.abs(logEst - Math.log(value))
      if (d === 0) return 0
      return se === 0 ? Infinity : d / se
    },
    fixedMultiplier: (a) => normalQuantile(1 - a / 2),
    fixedPValue: (m) => twoSidedNormalP(m)
  }
}
