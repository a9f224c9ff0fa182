/**
 * The shape every two-arm comparison (proportions, means, latency quantiles) exposes, so one
 * verdict function (verdict.ts) can turn any of them into pass / fail / inconclusive / no data
 * with either a fixed-horizon or an always-valid interval.
 *
 * A comparison is a family of intervals indexed by a multiplier m: m = z_{1−α/2} (or the t
 * quantile) gives the fixed-horizon interval, m = the sequential multiplier gives the confidence
 * sequence (sequential.ts). Intervals widen monotonically with m and shrink to the estimate at 0.
 */

/** A closed interval. */
export interface Interval {
  lower: number
  upper: number
}

/** Units (requests, users) per arm. The control is the baseline / first variant. */
export interface ArmCounts {
  control: number
  treatment: number
}

/** A two-arm comparison of treatment against control. */
export interface Comparison {
  /** Which test / interval construction, e.g. `newcombe-diff`, `welch-t`, `quantile-ratio`. */
  readonly test: string
  readonly n: ArmCounts
  /** The effect: treatment − control, the relative lift, or treatment / control (a ratio). */
  readonly estimate: number
  /**
   * The standard error of the estimate (for a ratio: of its logarithm), used to project the
   * units still needed; NaN when it cannot be estimated (e.g. fewer than two units in an arm).
   */
  readonly standardError: number
  /** What "no effect" is on this scale: 0 for differences, 1 for ratios. */
  readonly noEffect: number
  /** The interval at multiplier m ≥ 0. */
  intervalAt (m: number): Interval
  /** The multiplier at which the interval's nearer bound reaches `value` (0 when it is the estimate). */
  multiplierAt (value: number): number
  /** The fixed-horizon multiplier for a two-sided level α (z or t quantile). */
  fixedMultiplier (alpha: number): number
  /** The fixed-horizon two-sided p-value of a standardised distance m (the inverse of fixedMultiplier). */
  fixedPValue (m: number): number
}

/** The largest multiplier searched: beyond it the p-value is 0 to double precision anyway. */
export const MAX_MULTIPLIER = 40

/**
 * Inverts a monotone interval family numerically: the smallest m in [0, MAX_MULTIPLIER] at which
 * the bound on `value`'s side reaches it (bisection, 60 halvings: far below any reported digit).
 * For score-type intervals (Newcombe) that have no closed-form inverse.
 */
export function invertIntervalFamily (estimate: number, value: number, intervalAt: (m: number) => Interval): number {
  if (Number.isNaN(value) || Number.isNaN(estimate)) return NaN
  if (value === estimate) return 0
  const above = value > estimate
  const reaches = (m: number): boolean => {
    const i = intervalAt(m)
    return above ? i.upper >= value : i.lower <= value
  }
  if (!reaches(MAX_MULTIPLIER)) return MAX_MULTIPLIER
  let lo = 0
  let hi = MAX_MULTIPLIER
  for (let k = 0; k < 60; k++) {
    const mid = (lo + hi) / 2
    if (reaches(mid)) hi = mid
    else lo = mid
  }
  return hi
}

/** est ± m·se, with a zero standard error meaning a point interval (never NaN from ∞·0). */
export function waldInterval (estimate: number, se: number, m: number): Interval {
  const half = se === 0 ? 0 : m * se
  return { lower: estimate - half, upper: estimate + half }
}

/** |est − value| / se, ∞ when se = 0 and value ≠ est. */
export function waldDistance (estimate: number, se: number, value: number): number {
  const d = Math.abs(estimate - value)
  if (d === 0) return 0
  return se === 0 ? Infinity : d / se
}
