/**
 * Holm–Bonferroni step-down correction across metrics (Holm 1979): controls the family-wise error
 * rate at α for any dependence between the tests, and is uniformly more powerful than Bonferroni.
 */
import type { Verdict } from './verdict.js'

/** Holm-adjusted p-values and which hypotheses are rejected at α. */
export interface HolmResult {
  /** p̃_(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j)), in the input order. */
  adjusted: number[]
  rejected: boolean[]
}

/**
 * Holm's correction of `pValues` (NaN counts as 1: a test without data still counts in m, which
 * is conservative), as statsmodels `multipletests(method='holm')`.
 */
export function holmBonferroni (pValues: readonly number[], alpha = 0.05): HolmResult {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`)
  const m = pValues.length
  const ps = pValues.map((p) => (Number.isNaN(p) ? 1 : p))
  for (const p of ps) if (!(p >= 0 && p <= 1)) throw new RangeError(`p-values must be in [0, 1], got ${p}`)
  const order = ps.map((_, i) => i).sort((a, b) => ps[a]! - ps[b]!)
  const adjusted = new Array<number>(m)
  let running = 0
  order.forEach((idx, rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * ps[idx]!))
    adjusted[idx] = running
  })
  return { adjusted, rejected: adjusted.map((p) => p <= alpha) }
}

/**
 * Applies Holm across several metrics' verdicts (all decided at the same α): each verdict's
 * pValue becomes the adjusted one, and a pass or fail whose adjusted p-value exceeds α becomes
 * inconclusive. Use it where *any* metric being declared different is a discovery (experiments);
 * a gate that needs *every* metric to pass (a canary step) is an intersection–union test and
 * needs no correction for its pass decision.
 */
export function holmVerdicts (verdicts: readonly Verdict[], alpha = 0.05): Verdict[] {
  const { adjusted } = holmBonferroni(verdicts.map((v) => v.pValue), alpha)
  return verdicts.map((v, i) => {
    const out: Verdict = { ...v, pValue: v.verdict === 'no_data' ? v.pValue : adjusted[i]!, rule: `${v.rule}; Holm-adjusted over ${verdicts.length} metrics` }
    if ((v.verdict === 'pass' || v.verdict === 'fail') && adjusted[i]! > alpha) {
      out.verdict = 'inconclusive'
      out.reason = `${v.reason}; not significant after Holm's correction (adjusted p = ${adjusted[i]!.toPrecision(3)})`
    }
    return out
  })
}
