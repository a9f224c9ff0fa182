/** z for a two-sided 95 % interval: the 0.975 quantile of the standard normal. */
export const Z_95 = 1.959963984540054

/** A proportion with its confidence interval. */
export interface ProportionInterval {
  /** successes / n (0 when n = 0). */
  rate: number
  lower: number
  upper: number
}

/**
 * Wilson score interval for a binomial proportion (Wilson 1927):
 *
 *     centre = (p̂ + z²/2n) / (1 + z²/n)
 *     half   = z / (1 + z²/n) · √(p̂(1−p̂)/n + z²/4n²)
 *
 * Unlike the normal (Wald) interval it stays inside [0, 1] and is not degenerate at 0 or n
 * successes, which is exactly where a shadow with few or no disagreements sits. With n = 0 nothing
 * is known: rate 0, interval [0, 1].
 *
 * @throws {RangeError} unless 0 <= successes <= n, both finite, and z > 0.
 */
export function wilson (successes: number, n: number, z = Z_95): ProportionInterval {
  if (!Number.isFinite(successes) || !Number.isFinite(n) || successes < 0 || n < 0 || successes > n) {
    throw new RangeError(`wilson: need 0 <= successes <= n, got ${successes}/${n}`)
  }
  if (!(z > 0) || !Number.isFinite(z)) throw new RangeError(`wilson: z must be > 0, got ${z}`)
  if (n === 0) return { rate: 0, lower: 0, upper: 1 }
  const p = successes / n
  const z2 = z * z
  const denom = 1 + z2 / n
  const centre = (p + z2 / (2 * n)) / denom
  const half = (z / denom) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))
  // At 0 and n successes the bound is exact in theory but float rounding can leave 1e-17 outside.
  return {
    rate: p,
    lower: successes === 0 ? 0 : Math.max(0, centre - half),
    upper: successes === n ? 1 : Math.min(1, centre + half)
  }
}
