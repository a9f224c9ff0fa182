/**
 * Sufficient statistics of a numeric metric, (n, Σx, Σx²): what the proxy exports as Prometheus
 * counters so that several replicas' sums can be added and analysed together (#17).
 */

/** Count, sum and sum of squares of one arm's observations. */
export interface Moments {
  n: number
  sum: number
  sumSq: number
}

/** Accumulates moments; `merge` adds another replica's. */
export class RunningMoments implements Moments {
  n = 0
  sum = 0
  sumSq = 0

  /** Adds one observation; non-finite values are ignored (bad input never poisons the sums). */
  add (x: number): boolean {
    if (!Number.isFinite(x)) return false
    this.n++
    this.sum += x
    this.sumSq += x * x
    return true
  }

  merge (other: Moments): void {
    this.n += other.n
    this.sum += other.sum
    this.sumSq += other.sumSq
  }

  toJSON (): Moments {
    return { n: this.n, sum: this.sum, sumSq: this.sumSq }
  }
}

/** x̄ (NaN when n = 0). */
export function momentsMean (m: Moments): number {
  return m.n > 0 ? m.sum / m.n : NaN
}

/**
 * Sample variance s² = (Σx² − (Σx)²/n)/(n − 1) (NaN when n < 2). From raw sums it loses
 * precision when the mean is large against the spread (|x̄|/s ≳ 1e6); rounding below 0 is clamped.
 */
export function momentsVariance (m: Moments): number {
  if (m.n < 2) return NaN
  return Math.max(0, (m.sumSq - (m.sum * m.sum) / m.n) / (m.n - 1))
}

/** @throws {RangeError} unless n is a non-negative integer and the sums are finite. */
export function checkMoments (name: string, m: Moments): void {
  if (!Number.isInteger(m.n) || m.n < 0 || !Number.isFinite(m.sum) || !Number.isFinite(m.sumSq) || m.sumSq < 0) {
    throw new RangeError(`${name}: need integer n >= 0 and finite sums, got n=${m.n} sum=${m.sum} sumSq=${m.sumSq}`)
  }
}
