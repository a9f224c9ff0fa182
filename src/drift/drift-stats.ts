// The drift statistics (docs/drift.md): PSI and the Jensen-Shannon distance between a reference
// distribution and a current one, over bins fixed by the reference. Plain functions over count
// vectors, so the same code serves one process and tests with known answers.

/**
 * Default floor for an empty bin's share in PSI: `ln(0)` is undefined, so a share of 0 (a class
 * or score range the reference never saw, or one that vanished) counts as 1e-4, as Evidently
 * does. Each such bin then contributes at most about `p · ln(p / 1e-4)`: large, but finite.
 */
export const PSI_EPSILON = 1e-4

/**
 * Population Stability Index: `Σ (c_i − r_i) · ln(c_i / r_i)` over the bins, with `r` and `c`
 * the reference's and the current window's shares (counts / total), each floored at `epsilon`.
 * 0 for identical distributions; conventionally < 0.1 stable, 0.1–0.25 moderate, > 0.25 a shift.
 * NaN when either side has no observation (no data never passes).
 */
export function psi (reference: ArrayLike<number>, current: ArrayLike<number>, epsilon = PSI_EPSILON): number {
  const nr = total(reference)
  const nc = total(current)
  if (nr === 0 || nc === 0 || reference.length !== current.length) return Number.NaN
  let sum = 0
  for (let i = 0; i < reference.length; i++) {
    const r = Math.max((reference[i] as number) / nr, epsilon)
    const c = Math.max((current[i] as number) / nc, epsilon)
    sum += (c - r) * Math.log(c / r)
  }
  return sum
}

/**
 * Jensen-Shannon distance with base-2 logarithms, as `scipy.spatial.distance.jensenshannon(p, q,
 * base=2)`: both vectors are normalised, `m = (p + q) / 2`, and the distance is
 * `sqrt((KL(p‖m) + KL(q‖m)) / 2)`, with `0 · log 0 = 0` (no epsilon needed: m is never 0 where p
 * or q is not). In [0, 1]: 0 identical, 1 disjoint supports. NaN when either side is empty.
 */
export function jsDistance (reference: ArrayLike<number>, current: ArrayLike<number>): number {
  const nr = total(reference)
  const nc = total(current)
  if (nr === 0 || nc === 0 || reference.length !== current.length) return Number.NaN
  let sum = 0
  for (let i = 0; i < reference.length; i++) {
    const p = (reference[i] as number) / nr
    const q = (current[i] as number) / nc
    const m = (p + q) / 2
    if (p > 0) sum += p * Math.log2(p / m)
    if (q > 0) sum += q * Math.log2(q / m)
  }
  // Rounding can leave a tiny negative sum for identical vectors, or a hair above 1 for disjoint ones.
  return Math.min(1, Math.sqrt(Math.max(0, sum / 2)))
}

/**
 * Bin edges at the reference's quantiles: `bins − 1` inner edges at the k/bins quantiles of
 * `values` (type 7 interpolation, R's and NumPy's default), duplicates removed, so a score that
 * is often exactly 1.0 makes fewer bins rather than empty ones. Bin i is `(edge[i−1], edge[i]]`,
 * the first from −∞, the last to +∞: every later value falls in some bin.
 */
export function quantileEdges (values: readonly number[], bins: number): number[] {
  if (values.length === 0 || bins < 2) return []
  const sorted = Float64Array.from(values).sort()
  const edges: number[] = []
  for (let k = 1; k < bins; k++) {
    const h = (sorted.length - 1) * (k / bins)
    const lo = Math.floor(h)
    const hi = Math.min(lo + 1, sorted.length - 1)
    const q = (sorted[lo] as number) + (h - lo) * ((sorted[hi] as number) - (sorted[lo] as number))
    if (edges.length === 0 || q > (edges[edges.length - 1] as number)) edges.push(q)
  }
  return edges
}

/** The bin of `x` under {@link quantileEdges}: the first i with x <= edges[i], else edges.length. */
export function binOf (edges: readonly number[], x: number): number {
  let lo = 0
  let hi = edges.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (x <= (edges[mid] as number)) hi = mid
    else lo = mid + 1
  }
  return lo
}

/** The drift state of a statistic against the thresholds (PSI's 0.1 / 0.25 by default). */
export type DriftState = 'ok' | 'warn' | 'alert'

export function stateOf (value: number, warn: number, alert: number): DriftState {
  if (value >= alert) return 'alert'
  if (value >= warn) return 'warn'
  return 'ok'
}

function total (v: ArrayLike<number>): number {
  let n = 0
  for (let i = 0; i < v.length; i++) n += v[i] as number
  return n
}
