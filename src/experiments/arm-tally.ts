import { sampleFromHistogram, type QuantileSample } from '../analysis/quantile-ratio.js'

/**
 * What the proxy itself measures of every experiment arm, whatever the outcome events say:
 * requests answered, server errors, and latency. The latency buckets are the ones of
 * `penumbra_experiment_duration_seconds`, so the verdicts computed here and those `penumbra
 * report --prometheus` computes from the scraped histograms read the same data the same way.
 */

/**
 * Upper bounds in seconds: 0.5 ms growing by 25% to ~60 s (53 buckets). Fine enough that a p99
 * or a shift is resolved within one bucket (≤ 25%), few enough per arm for Prometheus.
 */
export const EXPERIMENT_LATENCY_BUCKETS: readonly number[] = Array.from({ length: 53 }, (_, k) => Number((0.0005 * 1.25 ** k).toPrecision(3)))

/**
 * The value a latency past the last bound stands for (the +Inf bucket): twice the last bound,
 * so it ranks above every finite bucket and still has a finite difference for the shift.
 */
export const OVERFLOW_SECONDS = 2 * EXPERIMENT_LATENCY_BUCKETS[EXPERIMENT_LATENCY_BUCKETS.length - 1]!

/** The counts of one arm, mergeable by addition (cluster workers, replicas). */
export interface ArmCounts {
  /** Requests answered (a client that went away first, 499, is not counted). */
  requests: number
  /** Of those, answered with a 5xx (the backend's, or penumbra's own 502/504). */
  errors: number
  /** Per bucket of EXPERIMENT_LATENCY_BUCKETS, then the overflow bucket (not cumulative). */
  latency: number[]
}

/** One arm's tally in one process. Allocation-free per request. */
export class ArmTally {
  requests = 0
  errors = 0
  readonly #latency = new Float64Array(EXPERIMENT_LATENCY_BUCKETS.length + 1)

  /** Records an answered request (callers skip 499s). */
  record (status: number, seconds: number): void {
    this.requests++
    if (status >= 500) this.errors++
    this.#latency[bucketOf(seconds)]!++
  }

  toJSON (): ArmCounts {
    return { requests: this.requests, errors: this.errors, latency: Array.from(this.#latency) }
  }
}

/** The bucket of a duration: the first bound ≥ it (Prometheus `le` semantics), else the overflow. */
export function bucketOf (seconds: number): number {
  const b = EXPERIMENT_LATENCY_BUCKETS
  let lo = 0
  let hi = b.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (b[mid]! >= seconds) hi = mid
    else lo = mid + 1
  }
  return lo
}

/** Each bucket's value in ms (the upper bound; the overflow bucket's stand-in last). */
const BUCKET_MS: readonly number[] = [...EXPERIMENT_LATENCY_BUCKETS, OVERFLOW_SECONDS].map((b) => 1000 * b)

/** An arm's latency as a sample of bucket values (ms) with counts, for the latency tests. */
export function latencySample (counts: readonly number[]): QuantileSample {
  return sampleFromHistogram(BUCKET_MS.slice(0, counts.length), counts)
}
