/**
 * The distribution functions the analysis uses, all from stdlib's maintained, tested
 * implementations (never hand-written). Thin typed wrappers so the rest of src/analysis/ imports
 * from one place, and so two-sided p-values are computed from the lower tail (2·F(−|x|)), which
 * keeps full precision for tiny p where 2·(1 − F(|x|)) would round to 0.
 */
import { createRequire } from 'node:module'
import type normalCdfT from '@stdlib/stats-base-dists-normal-cdf'
import type normalQuantileT from '@stdlib/stats-base-dists-normal-quantile'
import type tCdfT from '@stdlib/stats-base-dists-t-cdf'
import type tQuantileT from '@stdlib/stats-base-dists-t-quantile'
import type chisquareCdfT from '@stdlib/stats-base-dists-chisquare-cdf'

// Loaded on first use: the stdlib packages weigh ~20 MB of RSS and ~200 ms at start-up, which
// a process that never analyses an experiment or a canary should not pay (measured: the penumbra
// child of the 100 MB streaming test went from 107 to 117 MB at rest when they loaded eagerly).
const require = createRequire(import.meta.url)
let lib: { normalCdf: typeof normalCdfT, normalQuantile: typeof normalQuantileT, tCdf: typeof tCdfT, tQuantile: typeof tQuantileT, chisquareCdf: typeof chisquareCdfT } | null = null
function stdlib (): NonNullable<typeof lib> {
  lib ??= {
    normalCdf: require('@stdlib/stats-base-dists-normal-cdf') as typeof normalCdfT,
    normalQuantile: require('@stdlib/stats-base-dists-normal-quantile') as typeof normalQuantileT,
    tCdf: require('@stdlib/stats-base-dists-t-cdf') as typeof tCdfT,
    tQuantile: require('@stdlib/stats-base-dists-t-quantile') as typeof tQuantileT,
    chisquareCdf: require('@stdlib/stats-base-dists-chisquare-cdf') as typeof chisquareCdfT
  }
  return lib
}

/** Φ(x): the standard normal CDF. */
export function normalCdf (x: number): number {
  return stdlib().normalCdf(x, 0, 1)
}

/** Φ⁻¹(p): the standard normal quantile (p in (0, 1)). */
export function normalQuantile (p: number): number {
  return stdlib().normalQuantile(p, 0, 1)
}

/** Student's t CDF with `df` degrees of freedom (df = ∞: the normal, which stdlib does not take). */
export function tCdf (x: number, df: number): number {
  return df === Infinity ? normalCdf(x) : stdlib().tCdf(x, df)
}

/** Student's t quantile with `df` degrees of freedom (df = ∞: the normal). */
export function tQuantile (p: number, df: number): number {
  return df === Infinity ? normalQuantile(p) : stdlib().tQuantile(p, df)
}

/** Upper tail P(X ≥ x) of the χ² distribution with `df` degrees of freedom. */
export function chiSquareSurvival (x: number, df: number): number {
  return 1 - stdlib().chisquareCdf(x, df)
}

/** Two-sided p-value of a standard-normal statistic: 2·Φ(−|z|). */
export function twoSidedNormalP (z: number): number {
  return Math.min(1, 2 * normalCdf(-Math.abs(z)))
}

/** Two-sided p-value of a t statistic with `df` degrees of freedom: 2·F(−|t|). */
export function twoSidedTP (t: number, df: number): number {
  return Math.min(1, 2 * tCdf(-Math.abs(t), df))
}
