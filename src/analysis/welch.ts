/**
 * Welch's unequal-variance t-test for the means of two arms, from running sums, with the
 * interval for the absolute difference and for the relative lift (delta method).
 */
import { waldDistance, waldInterval, type Comparison } from './comparison.js'
import { tQuantile, twoSidedTP } from './distributions.js'
import { checkMoments, momentsMean, momentsVariance, type Moments } from './running-moments.js'

/** Welch's test of μ_t = μ_c. */
export interface WelchTest {
  /** (x̄_t − x̄_c)/√(s_t²/n_t + s_c²/n_c). */
  t: number
  /** Welch–Satterthwaite degrees of freedom. */
  df: number
  /** Two-sided p-value from Student's t with df. */
  pValue: number
}

/** Means compared both ways: `absolute` (x̄_t − x̄_c) and `relative` ((x̄_t − x̄_c)/x̄_c). */
export interface WelchComparison {
  controlMean: number
  treatmentMean: number
  controlVariance: number
  treatmentVariance: number
  test: WelchTest
  absolute: Comparison
  relative: Comparison
}

/**
 * Welch–Satterthwaite df: (v_c + v_t)² / (v_c²/(n_c−1) + v_t²/(n_t−1)), v = s²/n
 * (Welch 1947; GrowthBook `TTest.dof`). NaN when both variances are 0.
 */
export function welchDf (varC: number, nC: number, varT: number, nT: number): number {
  const vc = varC / nC
  const vt = varT / nT
  return (vc + vt) ** 2 / ((vc * vc) / (nC - 1) + (vt * vt) / (nT - 1))
}

/**
 * Welch comparison of two arms' moments. The absolute interval is x̄_t − x̄_c ± m·√(s_t²/n_t +
 * s_c²/n_c) (the fixed multiplier is the t quantile with Welch df, as scipy `ttest_ind(equal_var=
 * False).confidence_interval()`). The relative lift Δr = (x̄_t − x̄_c)/x̄_c has the delta-method
 * variance s_c²x̄_t²/(x̄_c⁴n_c) + s_t²/(x̄_c²n_t) (GrowthBook `variance_of_ratios`), and uses the
 * same t quantile; it is NaN when x̄_c = 0. With fewer than two units in an arm everything is NaN.
 *
 * @throws {RangeError} on malformed moments.
 */
export function welch (control: Moments, treatment: Moments): WelchComparison {
  checkMoments('control', control)
  checkMoments('treatment', treatment)
  const mc = momentsMean(control)
  const mt = momentsMean(treatment)
  const vc = momentsVariance(control)
  const vt = momentsVariance(treatment)
  const nC = control.n
  const nT = treatment.n
  const se = Math.sqrt(vc / nC + vt / nT)
  const df = welchDf(vc, nC, vt, nT)
  const diff = mt - mc
  // Both arms constant: no sampling noise at all; the t distribution degenerates to a normal.
  const dfOrNormal = Number.isNaN(df) && se === 0 ? Infinity : df
  const t = se === 0 ? (diff === 0 ? 0 : Math.sign(diff) * Infinity) : diff / se
  const fixedMultiplier = (alpha: number): number => tQuantile(1 - alpha / 2, dfOrNormal)
  const fixedPValue = (m: number): number => twoSidedTP(m, dfOrNormal)
  const n = { control: nC, treatment: nT }
  // The absolute difference and the relative lift (delta method) share the t reference.
  const wald = (test: string, estimate: number, standardError: number): Comparison => ({
    test,
    n,
    estimate,
    standardError,
    noEffect: 0,
    intervalAt: (m) => waldInterval(estimate, standardError, m),
    multiplierAt: (value) => waldDistance(estimate, standardError, value),
    fixedMultiplier,
    fixedPValue
  })
  const absolute = wald('welch-t', diff, se)
  const rel = diff / mc
  const seRel = Math.sqrt((vc * mt * mt) / (mc ** 4 * nC) + vt / (mc * mc * nT))
  const relative = wald('welch-t-relative', rel, seRel)
  return {
    controlMean: mc,
    treatmentMean: mt,
    controlVariance: vc,
    treatmentVariance: vt,
    test: { t, df, pValue: Number.isNaN(t) ? NaN : twoSidedTP(t, dfOrNormal) },
    absolute,
    relative
  }
}
