/**
 * Mann–Whitney U (Wilcoxon rank-sum) test for latency or any skewed metric, from samples held as
 * values with counts (raw samples or histogram buckets: a bucket is one tie group), with the tie
 * correction and continuity correction of scipy `mannwhitneyu(method='asymptotic')`.
 */
import { normalCdf } from './distributions.js'
import type { QuantileSample } from './quantile-ratio.js'

/** The result of a Mann–Whitney U test of treatment against control. */
export interface MannWhitneyResult {
  /** U of the treatment: R_t − n_t(n_t + 1)/2 (scipy's statistic for `mannwhitneyu(treatment, control)`). */
  u: number
  /** z with tie and continuity corrections: (|U − n_tn_c/2| − 0.5)/σ. */
  z: number
  /** Two-sided p-value (normal approximation); 1 when an arm is empty or every value ties. */
  pValue: number
  /**
   * Common-language effect size U/(n_t n_c): the probability that a treatment value exceeds a
   * control value (ties counted half); 0.5 is no shift.
   */
  cles: number
  n: { control: number, treatment: number }
}

/**
 * σ = √(n_t n_c/12 · ((n + 1) − Σ(t³ − t)/(n(n − 1)))) over tie groups t (scipy `_get_mwu_z`).
 */
export function mannWhitney (control: QuantileSample, treatment: QuantileSample): MannWhitneyResult {
  const nC = control.counts.reduce((a, b) => a + b, 0)
  const nT = treatment.counts.reduce((a, b) => a + b, 0)
  const n = { control: nC, treatment: nT }
  if (nC === 0 || nT === 0) return { u: NaN, z: 0, pValue: 1, cles: NaN, n }
  // Merge the two ascending value lists; each distinct value is a tie group with a mid-rank.
  let i = 0
  let j = 0
  let below = 0
  let rankSumT = 0
  let ties = 0
  while (i < control.values.length || j < treatment.values.length) {
    const vc = i < control.values.length ? control.values[i]! : Infinity
    const vt = j < treatment.values.length ? treatment.values[j]! : Infinity
    const v = Math.min(vc, vt)
    const c = vc === v ? control.counts[i++]! : 0
    const t = vt === v ? treatment.counts[j++]! : 0
    const group = c + t
    const midRank = below + (group + 1) / 2
    rankSumT += t * midRank
    ties += group ** 3 - group
    below += group
  }
  const total = nC + nT
  const u = rankSumT - (nT * (nT + 1)) / 2
  const mu = (nT * nC) / 2
  const sigma = Math.sqrt(((nT * nC) / 12) * ((total + 1) - ties / (total * (total - 1))))
  const cles = u / (nT * nC)
  if (!(sigma > 0)) return { u, z: 0, pValue: 1, cles, n }
  const z = (Math.abs(u - mu) - 0.5) / sigma
  return { u, z, pValue: Math.min(1, 2 * normalCdf(-z)), cles, n }
}
