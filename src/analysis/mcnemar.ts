import { normalQuantile, twoSidedNormalP } from './distributions.js'

/**
 * Discordant pairs up to which McNemar's test is the exact binomial one. Up to 25 the binomial
 * coefficients are exact in a double (C(25, 12) = 5,200,300), so the exact p-value is computed
 * with integers and no distribution function is needed; beyond, the continuity-corrected χ² is
 * within a few per cent of it (the usual rule: b + c ≥ 25, Fagerland et al. 2013).
 */
export const MCNEMAR_EXACT_MAX = 25

/** The result of a paired comparison of two classifiers on the same labelled instances. */
export interface McNemarResult {
  /** Labelled instances both models predicted. */
  n: number
  /** Discordant pairs: the first model right and the second wrong (b), and the reverse (c). */
  b: number
  c: number
  test: 'mcnemar-exact' | 'mcnemar-chi2'
  /** The χ² statistic (continuity-corrected) for the χ² test; null for the exact test. */
  statistic: number | null
  /** Two-sided p-value (1 when there is no discordant pair). */
  p: number
  /** Second minus first accuracy, (c − b) / n (NaN when n = 0). */
  difference: number
  /** Confidence interval of the difference (Agresti–Min adjusted Wald). */
  lower: number
  upper: number
}

/**
 * McNemar's test on the discordant pairs of a paired 2×2 table (statsmodels
 * `mcnemar(table, exact=…, correction=True)`): with b + c ≤ {@link MCNEMAR_EXACT_MAX} the exact
 * two-sided binomial p = min(1, 2·P(X ≤ min(b, c))), X ~ Binom(b + c, ½); otherwise
 * χ² = (|b − c| − 1)² / (b + c) on 1 degree of freedom, whose survival is 2·Φ(−√χ²) (precise
 * for tiny p). The interval of the accuracy difference (c − b)/n is Agresti and Min's (2005)
 * adjusted Wald interval: half a pair added to each of the four cells, which keeps it usable at
 * b = c = 0 and close to nominal coverage at small n.
 *
 * @throws {RangeError} unless 0 ≤ b, c and b + c ≤ n, all integers.
 */
export function mcnemar (b: number, c: number, n: number, confidence = 0.95): McNemarResult {
  if (![b, c, n].every(Number.isInteger) || b < 0 || c < 0 || b + c > n) {
    throw new RangeError(`mcnemar: need integers 0 <= b, c with b + c <= n, got b=${b} c=${c} n=${n}`)
  }
  const d = b + c
  let p: number
  let statistic: number | null = null
  let test: McNemarResult['test']
  if (d <= MCNEMAR_EXACT_MAX) {
    test = 'mcnemar-exact'
    p = d === 0 ? 1 : Math.min(1, 2 * binomialLowerTailHalf(Math.min(b, c), d))
  } else {
    test = 'mcnemar-chi2'
    statistic = (Math.abs(b - c) - 1) ** 2 / d
    p = twoSidedNormalP(Math.sqrt(statistic))
  }
  if (n === 0) return { n, b, c, test, statistic, p, difference: NaN, lower: -1, upper: 1 }
  const z = normalQuantile(1 - (1 - confidence) / 2)
  const n2 = n + 2
  const b2 = b + 0.5
  const c2 = c + 0.5
  const diff = (c2 - b2) / n2
  const se = Math.sqrt(Math.max(0, (b2 + c2) - (c2 - b2) ** 2 / n2)) / n2
  return { n, b, c, test, statistic, p, difference: (c - b) / n, lower: Math.max(-1, diff - z * se), upper: Math.min(1, diff + z * se) }
}

/** P(X ≤ k) for X ~ Binom(n, ½), n ≤ {@link MCNEMAR_EXACT_MAX}: exact integer coefficients. */
function binomialLowerTailHalf (k: number, n: number): number {
  let coef = 1 // C(n, 0)
  let sum = 1
  for (let i = 1; i <= k; i++) {
    coef = coef * (n - i + 1) / i // stays an integer: C(n, i) = C(n, i−1)·(n−i+1)/i
    sum += coef
  }
  return sum / 2 ** n
}
