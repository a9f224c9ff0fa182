/**
 * The Hodges–Lehmann shift of treatment against control (the median of all pairwise differences
 * t − c) with the distribution-free interval that inverts the Mann–Whitney test (Moses, in
 * Hollander & Wolfe, "Nonparametric Statistical Methods", §4.3): at multiplier m, with
 * N = n_t·n_c pairwise differences D_(1) ≤ … ≤ D_(N) and K = ⌊N/2 − m·σ_U⌋, the interval is
 * [D_(K), D_(N−K+1)]; σ_U is the tie-corrected standard deviation of U (mann-whitney.ts). This is
 * the large-sample form R's `wilcox.test(conf.int = TRUE, exact = FALSE)` approximates.
 *
 * Samples are values with counts (raw latencies, or histogram buckets), so the pairs are formed
 * between distinct values, weighted by the product of their counts: at most k_t·k_c pairs for
 * k distinct values, whatever n is (340 × 340 for the proxy's latency histogram).
 */
import { invertIntervalFamily, type Comparison, type Interval } from './comparison.js'
import { normalQuantile, twoSidedNormalP } from './distributions.js'
import { mannWhitney, type MannWhitneyResult } from './mann-whitney.js'
import type { QuantileSample } from './quantile-ratio.js'

/** A Hodges–Lehmann comparison: estimate = the median pairwise difference, treatment − control. */
export interface ShiftComparison extends Comparison {
  readonly test: 'mann-whitney-hodges-lehmann'
  /** The Mann–Whitney test of no shift, with its p-value (the fixed-horizon one of this comparison). */
  readonly mannWhitney: MannWhitneyResult
}

/** The pairwise differences between distinct values, ascending, with cumulative weights. */
interface Pairs { diffs: Float64Array, cum: Float64Array, total: number }

function pairs (control: QuantileSample, treatment: QuantileSample): Pairs {
  const k = control.values.length * treatment.values.length
  const diffs = new Float64Array(k)
  const weights = new Float64Array(k)
  let i = 0
  for (let a = 0; a < treatment.values.length; a++) {
    for (let b = 0; b < control.values.length; b++) {
      diffs[i] = treatment.values[a]! - control.values[b]!
      weights[i] = treatment.counts[a]! * control.counts[b]!
      i++
    }
  }
  const order = Array.from({ length: k }, (_, j) => j).sort((x, y) => diffs[x]! - diffs[y]!)
  const sorted = new Float64Array(k)
  const cum = new Float64Array(k)
  let acc = 0
  for (let j = 0; j < k; j++) {
    sorted[j] = diffs[order[j]!]!
    acc += weights[order[j]!]!
    cum[j] = acc
  }
  return { diffs: sorted, cum, total: acc }
}

/** D_(r), the r-th smallest pairwise difference (1-based rank, clamped to [1, N]). */
function ranked (p: Pairs, r: number): number {
  const rank = Math.min(p.total, Math.max(1, r))
  let lo = 0
  let hi = p.cum.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (p.cum[mid]! >= rank) hi = mid
    else lo = mid + 1
  }
  return p.diffs[lo]!
}

/**
 * Compares two samples by their location shift. The estimate is NaN when an arm is empty; the
 * interval is unbounded (so a verdict is inconclusive) when K < 1, i.e. too few pairs for the
 * multiplier asked.
 */
export function compareShift (control: QuantileSample, treatment: QuantileSample): ShiftComparison {
  const mw = mannWhitney(control, treatment)
  const nC = mw.n.control
  const nT = mw.n.treatment
  const n = { control: nC, treatment: nT }
  const empty = nC === 0 || nT === 0
  const p = empty ? null : pairs(control, treatment)
  const total = nC * nT
  // σ_U with the tie correction, as the Mann–Whitney test uses it.
  const sigma = empty ? NaN : sigmaU(control, treatment, nC, nT)
  const estimate = p === null ? NaN : (ranked(p, Math.floor((total + 1) / 2)) + ranked(p, Math.ceil((total + 1) / 2))) / 2
  const intervalAt = (m: number): Interval => {
    if (p === null || !(sigma >= 0)) return { lower: NaN, upper: NaN }
    const k = Math.floor(total / 2 - m * sigma)
    if (k < 1) return { lower: -Infinity, upper: Infinity }
    return { lower: ranked(p, k), upper: ranked(p, total - k + 1) }
  }
  const fixed = intervalAt(normalQuantile(0.975))
  const se = Number.isFinite(fixed.lower) && Number.isFinite(fixed.upper) ? (fixed.upper - fixed.lower) / (2 * normalQuantile(0.975)) : NaN
  return {
    test: 'mann-whitney-hodges-lehmann',
    n,
    estimate,
    standardError: se,
    noEffect: 0,
    mannWhitney: mw,
    intervalAt,
    multiplierAt: (value) => invertIntervalFamily(estimate, value, intervalAt),
    fixedMultiplier: (a) => normalQuantile(1 - a / 2),
    fixedPValue: (m) => twoSidedNormalP(m)
  }
}

function sigmaU (control: QuantileSample, treatment: QuantileSample, nC: number, nT: number): number {
  // Tie groups: the counts of each distinct value over both arms.
  const groups = new Map<number, number>()
  for (const s of [control, treatment]) for (let i = 0; i < s.values.length; i++) groups.set(s.values[i]!, (groups.get(s.values[i]!) ?? 0) + s.counts[i]!)
  let ties = 0
  for (const t of groups.values()) ties += t ** 3 - t
  const total = nC + nT
  return Math.sqrt(((nT * nC) / 12) * ((total + 1) - ties / (total * (total - 1))))
}
