/**
 * Always-valid ("peeking-safe") inference: a normal-mixture confidence sequence.
 *
 * A fixed-horizon 95 % interval is valid for one look at a sample size fixed in advance. Read
 * after every analysis interval and acted on as soon as it excludes the null, its false-positive
 * rate grows with the number of looks (≈ 19 % after 10 looks at α = 0.05, see
 * test/analysis-sequential.test.ts). A confidence sequence is a sequence of intervals that
 * contains the true effect at *every* sample size simultaneously with probability ≥ 1 − α, so it
 * may be read at any time and acted on at any look.
 *
 * We use the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas
 * ("Time-uniform central limit theory and asymptotic confidence sequences", 2021/2024), the
 * construction GrowthBook's sequential engine uses, with N the total sample size of both arms:
 *
 *     half-width = σ̂Δ · √( 2(Nρ² + 1)/(Nρ²) · ln(√(Nρ² + 1)/α) )
 *     ρ² = (−2 ln α + ln(−2 ln α + 1)) / N*
 *
 * i.e. it replaces the fixed z_{1−α/2} by a multiplier that grows slowly (≈ √(ln N)) with N.
 * N* (the "tuning" sample size) is where the sequence is tightest; it defaults to 5,000 like
 * GrowthBook's and is best set to the sample size the experiment is planned to reach.
 *
 * The matching always-valid p-value for a null value θ0 is 1/Λ with the mixture likelihood ratio
 * of the mSPRT (Johari, Pekelis & Walsh 2017) whose mixing distribution is N(θ0, ρ²σ²), σ² the
 * per-observation variance (so Nρ² is the mixing variance over the estimate's variance):
 *
 *     Λ = exp( Nρ² z² / (2(Nρ² + 1)) ) / √(Nρ² + 1),   z = (Δ̂ − θ0)/σ̂Δ
 *
 * and p ≤ α exactly when the sequence at level α excludes θ0 (the two are the same test).
 */

/** Parameters of the confidence sequence. */
export interface SequentialOptions {
  /** Two-sided error rate over all looks together. Default 0.05. */
  alpha?: number
  /** N*: the total sample size (both arms) where the sequence is tightest. Default 5,000. */
  tuningN?: number
}

/** The default N*, as in GrowthBook. */
export const DEFAULT_TUNING_N = 5000

/** Validated α and N* (throws RangeError). */
export function sequentialParams (options: SequentialOptions = {}): { alpha: number, tuningN: number } {
  const alpha = options.alpha ?? 0.05
  const tuningN = options.tuningN ?? DEFAULT_TUNING_N
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`)
  if (!(tuningN > 0) || !Number.isFinite(tuningN)) throw new RangeError(`tuningN must be > 0, got ${tuningN}`)
  return { alpha, tuningN }
}

/** ρ² for a level α and tuning size N* (the mixing variance, per observation). */
export function sequentialRhoSquared (alpha: number, tuningN: number): number {
  const l = -2 * Math.log(alpha)
  return (l + Math.log(l + 1)) / tuningN
}

/**
 * The multiplier of σ̂Δ for the always-valid interval at total sample size `n` (both arms): the
 * sequential replacement of z_{1−α/2}. Infinite for n ≤ 0.
 */
export function sequentialMultiplier (n: number, options: SequentialOptions = {}): number {
  const { alpha, tuningN } = sequentialParams(options)
  if (!(n > 0)) return Infinity
  const nr = n * sequentialRhoSquared(alpha, tuningN)
  return Math.sqrt((2 * (nr + 1) / nr) * Math.log(Math.sqrt(nr + 1) / alpha))
}

/**
 * The always-valid p-value at total sample size `n` for a standardised distance `m` between the
 * estimate and the null (m = |Δ̂ − θ0|/σ̂Δ, or for a score-type interval the multiplier at which
 * the interval's bound reaches θ0): min(1, 1/Λ). The ρ² is the one tuned for `options.alpha`, so
 * `p ≤ alpha` ⟺ `m ≥ sequentialMultiplier(n, options)`.
 */
export function sequentialPValue (m: number, n: number, options: SequentialOptions = {}): number {
  const { alpha, tuningN } = sequentialParams(options)
  if (!(n > 0) || Number.isNaN(m)) return 1
  const nr = n * sequentialRhoSquared(alpha, tuningN)
  // 1/Λ in log space: Λ overflows to Infinity long before its inverse underflows to 0.
  const logInvLambda = 0.5 * Math.log(nr + 1) - (nr * m * m) / (2 * (nr + 1))
  return Math.min(1, Math.exp(logInvLambda))
}
