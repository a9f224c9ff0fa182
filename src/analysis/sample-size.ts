/**
 * Units needed to detect a minimum effect (`minEffect`) at level α with a given power: the
 * classical fixed-horizon sizes, and the size for the always-valid interval the verdicts use.
 */
import { normalQuantile } from './distributions.js'
import { sequentialMultiplier, sequentialParams, type SequentialOptions } from './sequential.js'

/** α and power of a sample-size question. */
export interface PowerOptions {
  /** Two-sided level. Default 0.05. */
  alpha?: number
  /** 1 − β. Default 0.8. */
  power?: number
}

function params (o: PowerOptions): { alpha: number, power: number } {
  const alpha = o.alpha ?? 0.05
  const power = o.power ?? 0.8
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`)
  if (!(power > 0 && power < 1)) throw new RangeError(`power must be in (0, 1), got ${power}`)
  return { alpha, power }
}

/**
 * Per-arm units to detect p₂ = p₁ + minEffect (absolute) from a baseline rate p₁, equal arms:
 *
 *     n = [z_{1−α/2}·√(2p̄(1−p̄)) + z_{1−β}·√(p₁(1−p₁) + p₂(1−p₂))]² / (p₂ − p₁)²,  p̄ = (p₁+p₂)/2
 *
 * (Fleiss, Levin & Paik, "Statistical Methods for Rates and Proportions", §4.2, without the
 * continuity correction). p₁ = 0.10, minEffect 0.02 → 3,841.
 */
export function proportionSampleSize (baseline: number, minEffect: number, options: PowerOptions = {}): number {
  const { alpha, power } = params(options)
  const p1 = baseline
  const p2 = baseline + minEffect
  if (!(p1 >= 0 && p1 <= 1) || !(p2 >= 0 && p2 <= 1) || minEffect === 0 || !Number.isFinite(minEffect)) {
    throw new RangeError(`need 0 <= baseline, baseline + minEffect <= 1 and minEffect != 0, got ${baseline} and ${minEffect}`)
  }
  const za = normalQuantile(1 - alpha / 2)
  const zb = normalQuantile(power)
  const pbar = (p1 + p2) / 2
  const num = za * Math.sqrt(2 * pbar * (1 - pbar)) + zb * Math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
  return Math.ceil((num * num) / (minEffect * minEffect))
}

/**
 * Per-arm units to detect a relative change `minEffect` of a mean with standard deviation `sd`
 * (equal arms, equal variances, normal approximation): n = 2(z_{1−α/2} + z_{1−β})²σ²/(minEffect·μ)².
 */
export function meanSampleSize (mean: number, sd: number, minEffect: number, options: PowerOptions = {}): number {
  const { alpha, power } = params(options)
  const delta = Math.abs(minEffect * mean)
  if (!(delta > 0) || !Number.isFinite(delta) || !(sd >= 0) || !Number.isFinite(sd)) {
    throw new RangeError(`need a finite non-zero minEffect·mean and sd >= 0, got ${minEffect}·${mean}, sd ${sd}`)
  }
  const z = normalQuantile(1 - alpha / 2) + normalQuantile(power)
  return Math.ceil((2 * z * z * sd * sd) / (delta * delta))
}

/** How far an experiment is from being able to detect `minEffect`. */
export interface UnitsNeeded {
  /** Units still needed in total (both arms, in the current ratio); 0 when already enough. */
  total: number
  /** The total (both arms) at which the always-valid interval has the requested power. */
  target: number
}

/**
 * Units still needed until the always-valid interval detects an effect of `minEffect` (on the
 * comparison's scale, e.g. the absolute difference or relative lift) with the requested power,
 * projected from the current standard error `se` at `n` total units: growing the sample k-fold
 * in the same arm ratio divides se by √k, and we want the smallest kn with
 * minEffect/(se/√k) ≥ sequentialMultiplier(kn) + z_power. Infinite when se is unknown.
 */
export function unitsStillNeeded (se: number, n: number, minEffect: number, options: PowerOptions & SequentialOptions = {}): UnitsNeeded {
  const { power } = params(options)
  const seq = sequentialParams(options)
  const delta = Math.abs(minEffect)
  if (!(delta > 0) || !Number.isFinite(delta)) throw new RangeError(`minEffect must be finite and != 0, got ${minEffect}`)
  if (!(n > 0) || !Number.isFinite(se) || se < 0) return { total: Infinity, target: Infinity }
  if (se === 0) return { total: 0, target: n }
  const zb = normalQuantile(power)
  // Per-unit standard deviation of the estimate: se·√n, so at N units se_N = s/√N.
  const s = se * Math.sqrt(n)
  const enough = (N: number): boolean => delta / (s / Math.sqrt(N)) >= sequentialMultiplier(N, seq) + zb
  if (enough(n)) return { total: 0, target: n }
  let lo = n
  let hi = n * 2
  while (!enough(hi)) {
    lo = hi
    hi *= 2
    if (hi > 1e15) return { total: Infinity, target: Infinity }
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2)
    if (enough(mid)) hi = mid
    else lo = mid
  }
  return { total: Math.ceil(hi - n), target: Math.ceil(hi) }
}
