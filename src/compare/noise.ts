import { normalisePath } from './json-pointer.js'
import type { Difference } from './types.js'

/** What the tracker needs from `compare.noise` (the config object itself fits). */
export interface NoiseSettings {
  /** Noise samples before the statistical rule applies. */
  minSamples: number
  /** Absolute margin by which a shadow's difference rate may exceed the noise rate and still be noise. */
  margin: number
}

/** A path is nondeterministic early once it differed in at least this many noise samples … */
export const EARLY_MIN_DIFFS = 3
/** … and in at least this share of them. */
export const EARLY_MIN_RATE = 0.5
/** Distinct paths tracked (noise paths, and per shadow); the rest are pooled under `other`. */
export const MAX_TRACKED_PATHS = 1000
/** The pooled entry past {@link MAX_TRACKED_PATHS}; never a real normalised path (those start with `/`). */
export const OTHER = 'other'

/** One row of `GET /noise`. */
export interface NoisePathSnapshot {
  path: string
  /** noiseDiffs / samples. */
  noiseRate: number
  /** Noise samples (primary vs primary requests) in which the path differed. */
  noiseDiffs: number
  /** Per shadow: share of its compared requests in which the path differed (before noise filtering). */
  shadowRates: Record<string, number>
  /** `isNoisy(path)`: noisy for every shadow (see {@link NoiseTracker}). */
  noisy: boolean
  /** Shadows for which the path is noisy (`isNoisy(path, shadow)`). */
  noisyFor: string[]
}

/** The body of `GET /noise`. */
export interface NoiseSnapshot {
  /** Noise samples recorded (primary-vs-primary requests). */
  samples: number
  minSamples: number
  margin: number
  /** True once samples >= minSamples (the statistical rule is in force). */
  warm: boolean
  /** Compared requests recorded per shadow. */
  shadowSamples: Record<string, number>
  /** Tracked noise paths, highest noise rate first; the pooled `other` last. */
  paths: NoisePathSnapshot[]
}

/**
 * Noise cancellation from a primary-vs-primary baseline (Diffy's idea, without a third deployment).
 *
 * Inputs, one call per request, paths normalised (array indices as `*`) and each path counted at
 * most once per request:
 * - `recordNoise(diffs)`: a sampled request was sent to the primary twice and the two answers
 *   compared. `N` = such samples, `n(p)` = samples in which path p differed.
 * - `recordShadow(shadow, diffs)`: the primary-vs-shadow differences of a request, **before**
 *   noise filtering (pass `differences` and `noisy` of the result). `M(s)` = such requests,
 *   `m(s,p)` = those in which p differed.
 *
 * With `noiseRate(p) = n(p)/N` and `shadowRate(s,p) = m(s,p)/M(s)`:
 *
 *     nondeterministic(p) ⇔ n(p) ≥ 1 ∧ [ (n(p) ≥ 3 ∧ noiseRate(p) ≥ 0.5)  ∨  N ≥ minSamples ]
 *     isNoisy(p, s)       ⇔ nondeterministic(p) ∧ ( M(s) = 0 ∨ shadowRate(s,p) ≤ noiseRate(p) + margin )
 *     isNoisy(p)          ⇔ nondeterministic(p) ∧ isNoisy(p, s) for every shadow s recorded so far
 *
 * Comparisons are inclusive (`≥`, `≤`) as written. Reading:
 * - A path that never differed between two calls of the same primary is never noise: a label
 *   that differs only against the shadow always counts.
 * - Early rule: a path that differed in at least half of at least 3 noise samples changes on
 *   (nearly) every call (timestamps, UUIDs, sampled generations). It is cancelled at once, without
 *   waiting for `minSamples`, which at a 5 % noise share would take thousands of requests.
 * - Statistical rule, once `N ≥ minSamples`: any path the primary itself was seen to vary on is
 *   noise for a shadow unless that shadow differs on it by more than `margin` (absolute) above the
 *   primary's own rate. This is Diffy's `raw > noise` test with its thresholds replaced by one
 *   absolute margin, stated inclusively.
 * - The margin also applies in the early phase: a path that varies half the time on the primary
 *   but always against the shadow (rate 1 > 0.5 + margin) is not cancelled.
 *
 * Counts are cumulative since construction or `reset()`. At most {@link MAX_TRACKED_PATHS} paths
 * are tracked for the noise side and per shadow; later new paths are pooled under `other` and are
 * never noisy.
 */
export class NoiseTracker {
  readonly #minSamples: number
  readonly #margin: number
  readonly #maxPaths: number
  #samples = 0
  #noiseDiffs = new Map<string, number>()
  #shadowSamples = new Map<string, number>()
  #shadowDiffs = new Map<string, Map<string, number>>()

  /** @throws {RangeError} for minSamples < 1, a margin outside [0, 1] or maxPaths < 1. */
  constructor (settings: NoiseSettings, opts: { maxPaths?: number } = {}) {
    if (!Number.isInteger(settings.minSamples) || settings.minSamples < 1) throw new RangeError('noise.minSamples must be a whole number >= 1')
    if (!(settings.margin >= 0 && settings.margin <= 1)) throw new RangeError('noise.margin must be within 0..1')
    this.#minSamples = settings.minSamples
    this.#margin = settings.margin
    this.#maxPaths = opts.maxPaths ?? MAX_TRACKED_PATHS
    if (!Number.isInteger(this.#maxPaths) || this.#maxPaths < 1) throw new RangeError('maxPaths must be a whole number >= 1')
  }

  /** Noise samples recorded. */
  get samples (): number { return this.#samples }

  /** Records one primary-vs-primary comparison (its differences, or their paths). */
  recordNoise (differences: ReadonlyArray<Difference | string>): void {
    this.#samples++
    for (const p of distinctPaths(differences)) bump(this.#noiseDiffs, p, this.#maxPaths)
  }

  /** Records one primary-vs-shadow comparison: pass all its differences, noisy ones included. */
  recordShadow (shadow: string, differences: ReadonlyArray<Difference | string>): void {
    this.#shadowSamples.set(shadow, (this.#shadowSamples.get(shadow) ?? 0) + 1)
    let m = this.#shadowDiffs.get(shadow)
    if (m === undefined) {
      m = new Map()
      this.#shadowDiffs.set(shadow, m)
    }
    for (const p of distinctPaths(differences)) bump(m, p, this.#maxPaths)
  }

  /** See the class doc for the exact rule. `path` must be normalised. */
  isNoisy (path: string, shadow?: string): boolean {
    if (this.#samples === 0 || path === OTHER) return false
    const n = this.#noiseDiffs.get(path)
    if (n === undefined) return false
    const rate = n / this.#samples
    const early = n >= EARLY_MIN_DIFFS && rate >= EARLY_MIN_RATE
    if (!early && this.#samples < this.#minSamples) return false
    if (shadow !== undefined) return this.#withinMargin(path, shadow, rate)
    for (const s of this.#shadowSamples.keys()) if (!this.#withinMargin(path, s, rate)) return false
    return true
  }

  /** The paths noisy for `shadow` now (what `isNoisy(path, shadow)` accepts; never `other`). */
  noisyPaths (shadow: string): string[] {
    const out: string[] = []
    for (const path of this.#noiseDiffs.keys()) if (this.isNoisy(path, shadow)) out.push(path)
    return out
  }

  /** A JSON-ready view for `GET /noise`. */
  snapshot (): NoiseSnapshot {
    const shadows = [...this.#shadowSamples.keys()].sort()
    const paths: NoisePathSnapshot[] = []
    for (const [path, n] of this.#noiseDiffs) {
      const shadowRates: Record<string, number> = {}
      for (const s of shadows) shadowRates[s] = this.#shadowRate(path, s)
      paths.push({
        path,
        noiseRate: n / this.#samples,
        noiseDiffs: n,
        shadowRates,
        noisy: this.isNoisy(path),
        noisyFor: shadows.filter((s) => this.isNoisy(path, s))
      })
    }
    // Highest noise rate first, the pooled `other` last.
    paths.sort((a, b) => Number(a.path === OTHER) - Number(b.path === OTHER) || b.noiseRate - a.noiseRate || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    return {
      samples: this.#samples,
      minSamples: this.#minSamples,
      margin: this.#margin,
      warm: this.#samples >= this.#minSamples,
      shadowSamples: Object.fromEntries(shadows.map((s) => [s, this.#shadowSamples.get(s) as number])),
      paths
    }
  }

  /** Forgets everything (e.g. after a new primary version is rolled out). */
  reset (): void {
    this.#samples = 0
    this.#noiseDiffs = new Map()
    this.#shadowSamples = new Map()
    this.#shadowDiffs = new Map()
  }

  #shadowRate (path: string, shadow: string): number {
    const total = this.#shadowSamples.get(shadow) ?? 0
    if (total === 0) return 0
    return (this.#shadowDiffs.get(shadow)?.get(path) ?? 0) / total
  }

  #withinMargin (path: string, shadow: string, noiseRate: number): boolean {
    if ((this.#shadowSamples.get(shadow) ?? 0) === 0) return true
    // A hair of slack so that "exactly at the margin" is inclusive despite float rounding.
    return this.#shadowRate(path, shadow) <= noiseRate + this.#margin + 1e-12
  }
}

/** Normalised paths of a request's differences, each once. */
function distinctPaths (differences: ReadonlyArray<Difference | string>): Set<string> {
  const out = new Set<string>()
  for (const d of differences) out.add(normalisePath(typeof d === 'string' ? d : d.path))
  return out
}

function bump (m: Map<string, number>, path: string, max: number): void {
  const cur = m.get(path)
  if (cur !== undefined) { m.set(path, cur + 1); return }
  // The pooled entry does not take a slot of its own, so up to `max` real paths are kept.
  const key = m.size - (m.has(OTHER) ? 1 : 0) >= max ? OTHER : path
  m.set(key, (m.get(key) ?? 0) + 1)
}
