/**
 * Two independent proportions (conversion, 5xx share, error rate): difference treatment − control
 * with Newcombe's hybrid score interval and the pooled two-proportion z-test.
 */
import { invertIntervalFamily, type Comparison, type Interval } from './comparison.js'
import { normalQuantile, twoSidedNormalP } from './distributions.js'
import { wilson } from './wilson.js'

/** Successes out of n in one arm. */
export interface ProportionArm {
  successes: number
  n: number
}

/** The pooled two-proportion z-test of p_t = p_c. */
export interface ProportionZTest {
  /** (p̂_t − p̂_c) / √(P(1−P)(1/n_c + 1/n_t)), P the pooled rate; 0 when P is 0 or 1. */
  z: number
  /** Two-sided p-value (normal approximation). */
  pValue: number
}

/** A comparison of two proportions (difference = treatment − control). */
export interface ProportionComparison extends Comparison {
  readonly test: 'newcombe-diff'
  readonly controlRate: number
  readonly treatmentRate: number
  readonly zTest: ProportionZTest
}

function checkArm (name: string, arm: ProportionArm): void {
  const { successes, n } = arm
  if (!Number.isInteger(successes) || !Number.isInteger(n) || successes < 0 || n < 0 || successes > n) {
    throw new RangeError(`${name}: need integers 0 <= successes <= n, got ${successes}/${n}`)
  }
}

/**
 * Newcombe's hybrid score interval for p_t − p_c (Newcombe 1998, method 10; statsmodels'
 * `confint_proportions_2indep(compare='diff', method='newcomb')`), at multiplier z:
 *
 *     L = d − √((p_t − l_t)² + (u_c − p_c)²),   U = d + √((u_t − p_t)² + (p_c − l_c)²)
 *
 * with (l, u) each arm's Wilson interval. Unlike the Wald interval it does not collapse to a
 * point when both arms have 0 events, which is where a healthy canary's error rates sit.
 */
export function newcombeInterval (control: ProportionArm, treatment: ProportionArm, z: number): Interval {
  checkArm('control', control)
  checkArm('treatment', treatment)
  const pc = control.n === 0 ? 0 : control.successes / control.n
  const pt = treatment.n === 0 ? 0 : treatment.successes / treatment.n
  const d = pt - pc
  if (z === 0) return { lower: d, upper: d }
  const c = wilson(control.successes, control.n, z)
  const t = wilson(treatment.successes, treatment.n, z)
  return {
    lower: d - Math.hypot(pt - t.lower, c.upper - pc),
    upper: d + Math.hypot(t.upper - pt, pc - c.lower)
  }
}

/** The pooled two-proportion z-test (evidently `z_stattest`, statsmodels `test_proportions_2indep(method='score')` without its correction). */
export function twoProportionZTest (control: ProportionArm, treatment: ProportionArm): ProportionZTest {
  checkArm('control', control)
  checkArm('treatment', treatment)
  if (control.n === 0 || treatment.n === 0) return { z: 0, pValue: 1 }
  const pc = control.successes / control.n
  const pt = treatment.successes / treatment.n
  const pooled = (control.successes + treatment.successes) / (control.n + treatment.n)
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n))
  // Both arms all-0 or all-1: no evidence of any difference.
  if (se === 0) return { z: 0, pValue: 1 }
  const z = (pt - pc) / se
  return { z, pValue: twoSidedNormalP(z) }
}

/**
 * Compares two proportions: estimate p̂_t − p̂_c, the Newcombe interval family, the z-test.
 *
 * @throws {RangeError} unless each arm has integers 0 <= successes <= n.
 */
export function compareProportions (control: ProportionArm, treatment: ProportionArm): ProportionComparison {
  checkArm('control', control)
  checkArm('treatment', treatment)
  const pc = control.n === 0 ? 0 : control.successes / control.n
  const pt = treatment.n === 0 ? 0 : treatment.successes / treatment.n
  const estimate = pt - pc
  const se = control.n === 0 || treatment.n === 0
    ? NaN
    : Math.sqrt((pc * (1 - pc)) / control.n + (pt * (1 - pt)) / treatment.n)
  const intervalAt = (m: number): Interval => newcombeInterval(control, treatment, m)
  return {
    test: 'newcombe-diff',
    n: { control: control.n, treatment: treatment.n },
    estimate,
    standardError: se,
    noEffect: 0,
    controlRate: pc,
    treatmentRate: pt,
    zTest: twoProportionZTest(control, treatment),
    intervalAt,
    // No closed form for a score interval: invert it (a bound it never reaches gives MAX_MULTIPLIER).
    multiplierAt: (value) => invertIntervalFamily(estimate, value, intervalAt),
    fixedMultiplier: (alpha) => normalQuantile(1 - alpha / 2),
    fixedPValue: (m) => twoSidedNormalP(m)
  }
}
