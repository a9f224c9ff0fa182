/**
 * Normalised text similarity for generated text (LLM answers, summaries).
 *
 * Both strings are normalised first: lower-cased, whitespace runs collapsed to one space, trimmed.
 * The similarity is the normalised Levenshtein ratio `1 − distance / max(length)` over UTF-16 code
 * units. Deciding "at least t similar" only needs distances up to `k = ⌊(1−t)·maxLen⌋`, so the
 * check runs Ukkonen's banded algorithm in O(k·n). When even the band would exceed
 * `MAX_BAND_CELLS` (very long, very different texts), it falls back to token-set Jaccard,
 * which is order-blind but linear.
 */

/** Above this many DP cells the banded check falls back to token Jaccard. */
export const MAX_BAND_CELLS = 4_000_000

/** Lower-cases, collapses whitespace runs to one space, trims. */
export function normaliseText (s: string): string {
  return s.toLowerCase().replace(/\s+/g, ' ').trim()
}

/** Normalised Levenshtein ratio in [0, 1] of the normalised texts (1 = identical after normalising). */
export function textSimilarity (a: string, b: string): number {
  const x = normaliseText(a)
  const y = normaliseText(b)
  const maxLen = Math.max(x.length, y.length)
  if (maxLen === 0) return 1
  return 1 - levenshteinWithin(x, y, maxLen) / maxLen
}

/** True when the normalised texts are at least `threshold` similar (see module doc). */
export function similarAtLeast (a: string, b: string, threshold: number): boolean {
  if (a === b) return true
  const x = normaliseText(a)
  const y = normaliseText(b)
  if (x === y) return true
  const maxLen = Math.max(x.length, y.length)
  // A tiny epsilon so that a ratio exactly at the threshold passes despite float rounding.
  const k = Math.floor((1 - threshold) * maxLen + 1e-9)
  if (Math.abs(x.length - y.length) > k) return false
  if ((2 * k + 1) * maxLen > MAX_BAND_CELLS) return tokenJaccard(x, y) >= threshold
  return levenshteinWithin(x, y, k) <= k
}

/** Jaccard index of the whitespace-separated token sets. */
export function tokenJaccard (a: string, b: string): number {
  const sa = new Set(a.split(' ').filter((t) => t !== ''))
  const sb = new Set(b.split(' ').filter((t) => t !== ''))
  if (sa.size === 0 && sb.size === 0) return 1
  let inter = 0
  for (const t of sa) if (sb.has(t)) inter++
  return inter / (sa.size + sb.size - inter)
}

let rowA = new Int32Array(256)
let rowB = new Int32Array(256)

/**
 * Levenshtein distance if it is at most `k`, else some value greater than `k`.
 * Only cells within `k` of the diagonal are computed (Ukkonen's band).
 */
export function levenshteinWithin (a: string, b: string, k: number): number {
  // A common prefix and suffix do not change the distance: two answers that differ in a few
  // words (the usual case for LLM answers) leave only the differing middle to the band.
  let start = 0
  const shortest = Math.min(a.length, b.length)
  while (start < shortest && a.charCodeAt(start) === b.charCodeAt(start)) start++
  let endA = a.length
  let endB = b.length
  while (endA > start && endB > start && a.charCodeAt(endA - 1) === b.charCodeAt(endB - 1)) { endA--; endB-- }
  if (start > 0 || endA < a.length || endB < b.length) { a = a.slice(start, endA); b = b.slice(start, endB) }
  // Columns over the shorter string keep the rows short.
  if (a.length > b.length) { const t = a; a = b; b = t }
  const n = a.length
  const m = b.length
  if (m - n > k) return k + 1
  if (n === 0) return m
  if (rowA.length < n + 2) { rowA = new Int32Array(n + 2); rowB = new Int32Array(n + 2) }
  const BIG = k + 1
  let prev = rowA
  let cur = rowB
  for (let j = 0; j <= n + 1; j++) prev[j] = j <= k ? j : BIG
  for (let i = 1; i <= m; i++) {
    const lo = Math.max(1, i - k)
    const hi = Math.min(n, i + k)
    cur[lo - 1] = lo === 1 ? (i <= k ? i : BIG) : BIG
    const bc = b.charCodeAt(i - 1)
    let rowMin = cur[lo - 1] as number
    for (let j = lo; j <= hi; j++) {
      const sub = (prev[j - 1] as number) + (a.charCodeAt(j - 1) === bc ? 0 : 1)
      const del = (prev[j] as number) + 1
      const ins = (cur[j - 1] as number) + 1
      let v = sub < del ? sub : del
      if (ins < v) v = ins
      if (v > BIG) v = BIG
      cur[j] = v
      if (v < rowMin) rowMin = v
    }
    // The cell right of the band must read as "too far" for the next row.
    if (hi + 1 <= n) cur[hi + 1] = BIG
    if (rowMin > k) return BIG
    const t = prev; prev = cur; cur = t
  }
  return prev[n] as number
}
