/**
 * Sample-ratio mismatch: a χ² goodness-of-fit test of the observed units per variant against the
 * configured weights. A mismatch means assignment or logging is broken (a variant losing
 * exposures, a slower variant timing out), so every other verdict is withheld (#17).
 */
import { chiSquareSurvival } from './distributions.js'

/** The result of the SRM check. */
export interface SrmResult {
  /** Σ (o_i − e_i)²/e_i. */
  chiSquare: number
  /** k − 1. */
  df: number
  pValue: number
  /** e_i = w_i/Σw · N. */
  expected: number[]
  /** False when some expected count is below `minExpected`: too little data to test. */
  tested: boolean
  /** tested && pValue < threshold. */
  mismatch: boolean
  threshold: number
}

/** Options of the SRM check. */
export interface SrmOptions {
  /** p below this marks a mismatch. Default 0.001 (GrowthBook's DEFAULT_SRM_THRESHOLD). */
  threshold?: number
  /** The test runs only when every expected count is at least this (χ² approximation). Default 5. */
  minExpected?: number
}

/**
 * χ² test of `observed` against `weights` (same order, k ≥ 2, weights > 0), as scipy
 * `chisquare(observed, f_exp=expected)`.
 *
 * @throws {RangeError} on mismatched lengths, fewer than two arms, negative or non-integer counts,
 * or weights that are not positive and finite.
 */
export function sampleRatioMismatch (observed: readonly number[], weights: readonly number[], options: SrmOptions = {}): SrmResult {
  const threshold = options.threshold ?? 0.001
  const minExpected = options.minExpected ?? 5
  if (observed.length !== weights.length || observed.length < 2) {
    throw new RangeError(`srm: need the same number (>= 2) of counts and weights, got ${observed.length} and ${weights.length}`)
  }
  for (const o of observed) if (!Number.isInteger(o) || o < 0) throw new RangeError(`srm: counts must be integers >= 0, got ${o}`)
  for (const w of weights) if (!(w > 0) || !Number.isFinite(w)) throw new RangeError(`srm: weights must be > 0, got ${w}`)
  if (!(threshold > 0 && threshold < 1)) throw new RangeError(`srm: threshold must be in (0, 1), got ${threshold}`)
  const total = observed.reduce((a, b) => a + b, 0)
  const wsum = weights.reduce((a, b) => a + b, 0)
  const expected = weights.map((w) => (w / wsum) * total)
  const df = observed.length - 1
  const tested = expected.every((e) => e >= minExpected)
  if (total === 0) return { chiSquare: 0, df, pValue: 1, expected, tested: false, mismatch: false, threshold }
  let chiSquare = 0
  for (let i = 0; i < observed.length; i++) chiSquare += (observed[i]! - expected[i]!) ** 2 / expected[i]!
  const pValue = chiSquareSurvival(chiSquare, df)
  return { chiSquare, df, pValue, expected, tested, mismatch: tested && pValue < threshold, threshold }
}
