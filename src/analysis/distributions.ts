/**
 * The distribution functions the analysis uses, all from stdlib's maintained, tested
 * implementations (never hand-written). Thin typed wrappers so the rest of src/analysis/ imports
 * from one place, and so two-sided p-values are computed from the lower tail (2·F(−|x|)), which
 * keeps full precision for tiny p where 2·(1 − F(|x|)) would round to 0.
 */
import normalCdfImpl from '@stdlib/stats-base-dists-normal-cdf'
import normalQuantileImpl from '@stdlib/stats-base-dists-normal-quantile'
import tCdfImpl from '@stdlib/stats-base-dists-t-cdf'
import tQuantileImpl from '@stdlib/stats-base-dists-t-quantile'
import chisquareCdfImpl from '@stdlib/stats-base-dists-chisquare-cdf'

/** Φ(x): the standard normal CDF. */
export function normalCdf (x: number): number {
  return normalCdfImpl(x, 0, 1)
}

/** Φ⁻¹(p): the standard normal quantile (p in (0, 1)). */
export function normalQuantile (p: number): number {
  return normalQuantileImpl(p, 0, 1)
}

/** Student's t CDF with `df` degrees of freedom (df = ∞: the normal, which stdlib does not take). */
export function tCdf (x: number, df: number): number {
  return df === Infinity ? normalCdf(x) : tCdfImpl(x, df)
}

/** Student's t quantile with `df` degrees of freedom (df = ∞: the normal). */
export function tQuantile (p: number, df: number): number {
  return df === Infinity ? normalQuantile(p) : tQuantileImpl(p, df)
}

/** Upper tail P(X ≥ x) of the χ² distribution with `df` degrees of freedom. */
export function chiSquareSurvival (x: number, df: number): number {
  return 1 - chisquareCdfImpl(x, df)
}

/** Two-sided p-value of a standard-normal statistic: 2·Φ(−|z|). */
export function twoSidedNormalP (z: number): number {
  return Math.min(1, 2 * normalCdf(-Math.abs(z)))
}

/** Two-sided p-value of a t statistic with `df` degrees of freedom: 2·F(−|t|). */
export function twoSidedTP (t: number, df: number): number {
  return Math.min(1, 2 * tCdf(-Math.abs(t), df))
}
