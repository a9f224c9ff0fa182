/** The label value for paths past the per-shadow cap. */
export const OTHER_PATH = 'other'

/** Paths longer than this are labelled `other` too: a label value should stay readable and small. */
export const MAX_PATH_LABEL_LENGTH = 200

/**
 * Bounds the `path` label of `penumbra_field_mismatches_total{shadow,path}`: the first `max`
 * distinct normalised paths seen for a shadow keep their own label value, every later one is
 * `other`. First come, first kept: a path keeps its label for the life of the process, so
 * series never change meaning.
 */
export class PathLimiter {
  readonly #max: number
  readonly #seen = new Map<string, Set<string>>()

  /** @throws {RangeError} when `maxPerShadow` is not a whole number >= 0. */
  constructor (maxPerShadow = 100) {
    if (!Number.isInteger(maxPerShadow) || maxPerShadow < 0) throw new RangeError('maxPerShadow must be a whole number >= 0')
    this.#max = maxPerShadow
  }

  /** The label value for `normalisedPath` under `shadow`. */
  label (shadow: string, normalisedPath: string): string {
    let set = this.#seen.get(shadow)
    if (set === undefined) {
      set = new Set()
      this.#seen.set(shadow, set)
    }
    if (set.has(normalisedPath)) return normalisedPath
    if (set.size >= this.#max || normalisedPath.length > MAX_PATH_LABEL_LENGTH || normalisedPath === OTHER_PATH) return OTHER_PATH
    set.add(normalisedPath)
    return normalisedPath
  }

  /** Distinct paths labelled for `shadow` so far. */
  size (shadow: string): number {
    return this.#seen.get(shadow)?.size ?? 0
  }
}
