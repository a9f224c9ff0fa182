import stableStringify from 'fast-json-stable-stringify'
import { formatPointer, normalisePath } from './json-pointer.js'
import { EMPTY_CURSOR, type RuleCursor, type RuleSet, type Settings } from './rules.js'
import { similarAtLeast } from './text-similarity.js'
import type { Difference, DifferenceKind } from './types.js'

/** Default cap on recorded differences per comparison; counting goes on past it. */
export const MAX_RECORDED_DIFFERENCES = 100

/**
 * Above this many element pairs an unordered array is compared by canonical sort instead of
 * pairwise matching, which keeps the worst case O(n log n) instead of O(n·m).
 */
export const MAX_UNORDERED_PAIRS = 65_536

/**
 * `|a − b| ≤ absTol + relTol·max(|a|, |b|)`. JSON has one number type, so `1` and `1.0` (and an
 * integer and a float of equal value) are the same number and equal.
 *
 * With a non-zero tolerance, the check also absorbs the binary rounding of the subtraction (4 ulps
 * of the larger magnitude), so a difference written exactly at the tolerance in decimal, such as
 * `1` vs `1.000001` with `absTol: 1e-6`, counts as equal. With zero tolerance equality is exact.
 */
export function numbersEqual (a: number, b: number, absTol: number, relTol: number): boolean {
  if (a === b) return true
  const d = Math.abs(a - b)
  const m = Math.max(Math.abs(a), Math.abs(b))
  const tol = absTol + relTol * m
  return d <= tol || (tol > 0 && d <= tol + 4 * Number.EPSILON * m)
}

/**
 * Collects differences: keeps the first `max`, counts all, and moves those at noisy paths
 * (judged on the normalised path) to `noisy`, where they neither count nor make a mismatch.
 */
export class DiffSink {
  readonly differences: Difference[] = []
  readonly noisy: Difference[] = []
  /** Non-noisy differences found, including those past the cap. */
  count = 0
  noisyCount = 0
  readonly #max: number
  readonly #isNoisy: ((normalisedPath: string) => boolean) | undefined
  readonly #firstOnly: boolean

  /**
   * @param opts.max differences to keep (default {@link MAX_RECORDED_DIFFERENCES}).
   * @param opts.isNoisy predicate on the normalised path.
   * @param opts.firstOnly stop the walk at the first non-noisy difference.
   */
  constructor (opts: { max?: number, isNoisy?: (normalisedPath: string) => boolean, firstOnly?: boolean } = {}) {
    this.#max = opts.max ?? MAX_RECORDED_DIFFERENCES
    this.#isNoisy = opts.isNoisy
    this.#firstOnly = opts.firstOnly === true
  }

  /** Adds one difference; returns true when the walk should stop. */
  add (d: Difference): boolean {
    if (this.#isNoisy !== undefined && this.#isNoisy(normalisePath(d.path))) {
      this.noisyCount++
      if (this.noisy.length < this.#max) this.noisy.push(d)
      return false
    }
    this.count++
    if (this.differences.length < this.#max) this.differences.push(d)
    return this.#firstOnly
  }
}

type Json = unknown
type JsonObject = Record<string, Json>

const hasOwn = Object.hasOwn

/**
 * A structural JSON diff driven by a compiled {@link RuleSet}: ignore rules skip subtrees,
 * tolerances and array modes apply where their patterns match (and are inherited below),
 * text rules compare strings by normalised similarity.
 *
 * Differences are reported at JSON Pointer paths with kinds:
 * - `value`: same JSON type, different value (numbers beyond tolerance, strings, booleans);
 * - `type`: different JSON types (`null` is its own type; `"1"` vs `1` is a type difference);
 * - `missing`: present in the primary, absent in the shadow (object key or array element);
 * - `extra`: present in the shadow only.
 *
 * Arrays: `ordered` pairs by index. `unordered` is multiset matching: each primary element takes
 * the first unmatched shadow element equal to it under the rules (tolerances apply); the leftovers
 * are then paired in order and diffed (so a changed element shows its changed fields), and any
 * surplus is missing/extra. Past {@link MAX_UNORDERED_PAIRS} pairs both sides are sorted by canonical
 * JSON (fast-json-stable-stringify) and compared in order instead; indices in paths then refer to
 * sorted positions. `{keyBy}` pairs object elements by the value of that key.
 *
 * One instance is reused across comparisons (it keeps a path buffer); it is not re-entrant.
 */
export class JsonDiffer {
  readonly #rules: RuleSet
  readonly #textThreshold: number
  /** Path buffer: segments `[0, depth)` are the current path. */
  readonly #path: Array<string | number> = []
  /** Null in probe mode: the first difference stops the walk and nothing is recorded. */
  #sink: DiffSink | null = null

  constructor (rules: RuleSet, opts: { textSimilarity: number }) {
    this.#rules = rules
    this.#textThreshold = opts.textSimilarity
  }

  get rules (): RuleSet { return this.#rules }

  /** Diffs two parsed JSON values into `sink`. `base` is where the values sit in the document. */
  diff (primary: Json, shadow: Json, sink: DiffSink, base: ReadonlyArray<string | number> = []): void {
    const saved = this.#sink
    this.#sink = sink
    try {
      this.#walkAt(primary, shadow, base)
    } finally {
      this.#sink = saved
    }
  }

  /** True when the values have no difference under the rules (noise is not considered). */
  equal (primary: Json, shadow: Json, base: ReadonlyArray<string | number> = []): boolean {
    const saved = this.#sink
    this.#sink = null
    try {
      return !this.#walkAt(primary, shadow, base)
    } finally {
      this.#sink = saved
    }
  }

  #walkAt (a: Json, b: Json, base: ReadonlyArray<string | number>): boolean {
    const rules = this.#rules
    if (base.length === 0) return this.#value(a, b, rules.root(), rules.defaults, 0)
    for (let i = 0; i < base.length; i++) this.#path[i] = base[i] as string | number
    return this.#value(a, b, rules.cursorAt(base), rules.settingsAt(base, base.length - 1), base.length)
  }

  /** Returns true when the walk must stop (probe mode: a difference was found). */
  #value (a: Json, b: Json, cursor: RuleCursor, parent: Settings, depth: number): boolean {
    let s = parent
    if (cursor.length !== 0) {
      if (this.#rules.ignored(cursor)) return false
      s = this.#rules.apply(cursor, parent)
    }
    if (a === b) return false
    const ta = typeof a
    const tb = typeof b
    if (ta === 'number' && tb === 'number') {
      return numbersEqual(a as number, b as number, s.absTol, s.relTol) ? false : this.#report('value', a, b, depth)
    }
    if (ta === 'string' && tb === 'string') {
      if (s.text && similarAtLeast(a as string, b as string, this.#textThreshold)) return false
      return this.#report('value', a, b, depth)
    }
    if (ta !== 'object' || tb !== 'object' || a === null || b === null) {
      return this.#report(ta === tb && a !== null && b !== null ? 'value' : 'type', a, b, depth)
    }
    const aArr = Array.isArray(a)
    if (aArr !== Array.isArray(b)) return this.#report('type', a, b, depth)
    if (!aArr) return this.#object(a as JsonObject, b as JsonObject, cursor, s, depth)
    const mode = s.arrays
    if (mode === 'ordered') return this.#ordered(a as Json[], b as Json[], cursor, s, depth)
    if (mode === 'unordered') return this.#unordered(a as Json[], b as Json[], cursor, s, depth)
    return this.#keyed(a as Json[], b as Json[], mode.keyBy, cursor, s, depth)
  }

  #object (a: JsonObject, b: JsonObject, cursor: RuleCursor, s: Settings, depth: number): boolean {
    const rules = this.#rules
    const path = this.#path
    for (const k in a) {
      path[depth] = k
      const c = cursor.length === 0 ? EMPTY_CURSOR : rules.descend(cursor, k)
      if (hasOwn(b, k)) {
        if (this.#value(a[k], b[k], c, s, depth + 1)) return true
      } else if (!rules.ignored(c) && this.#report('missing', a[k], undefined, depth + 1)) {
        return true
      }
    }
    for (const k in b) {
      if (hasOwn(a, k)) continue
      path[depth] = k
      const c = cursor.length === 0 ? EMPTY_CURSOR : rules.descend(cursor, k)
      if (!rules.ignored(c) && this.#report('extra', undefined, b[k], depth + 1)) return true
    }
    return false
  }

  #ordered (a: Json[], b: Json[], cursor: RuleCursor, s: Settings, depth: number): boolean {
    const rules = this.#rules
    const path = this.#path
    const n = Math.min(a.length, b.length)
    for (let i = 0; i < n; i++) {
      path[depth] = i
      const c = cursor.length === 0 ? EMPTY_CURSOR : rules.descend(cursor, i)
      if (this.#value(a[i], b[i], c, s, depth + 1)) return true
    }
    return this.#surplus(a, b, n, n, cursor, depth)
  }

  /** Reports a[from..] as missing and b[fromB..] as extra. */
  #surplus (a: Json[], b: Json[], from: number, fromB: number, cursor: RuleCursor, depth: number): boolean {
    for (let i = from; i < a.length; i++) {
      if (this.#element('missing', a, i, cursor, depth)) return true
    }
    for (let j = fromB; j < b.length; j++) {
      if (this.#element('extra', b, j, cursor, depth)) return true
    }
    return false
  }

  #element (kind: 'missing' | 'extra', arr: Json[], i: number, cursor: RuleCursor, depth: number): boolean {
    const c = cursor.length === 0 ? EMPTY_CURSOR : this.#rules.descend(cursor, i)
    if (this.#rules.ignored(c)) return false
    this.#path[depth] = i
    return kind === 'missing'
      ? this.#report('missing', arr[i], undefined, depth + 1)
      : this.#report('extra', undefined, arr[i], depth + 1)
  }

  #unordered (a: Json[], b: Json[], cursor: RuleCursor, s: Settings, depth: number): boolean {
    if (a.length * b.length > MAX_UNORDERED_PAIRS) {
      // #ordered pairs this level by index; the elements keep the inherited settings.
      return this.#ordered(canonicalSort(a), canonicalSort(b), cursor, s, depth)
    }
    const rules = this.#rules
    const matchedB = new Uint8Array(b.length)
    const leftA: number[] = []
    const saved = this.#sink
    this.#sink = null
    try {
      for (let i = 0; i < a.length; i++) {
        const c = cursor.length === 0 ? EMPTY_CURSOR : rules.descend(cursor, i)
        let found = false
        for (let j = 0; j < b.length; j++) {
          if (matchedB[j] === 1) continue
          if (!this.#value(a[i], b[j], c, s, depth + 1)) {
            matchedB[j] = 1
            found = true
            break
          }
        }
        if (!found) leftA.push(i)
      }
    } finally {
      this.#sink = saved
    }
    if (leftA.length === 0 && a.length === b.length) return false
    // Pair leftovers in order so that a changed element reports its changed fields.
    let j = 0
    const path = this.#path
    for (const i of leftA) {
      while (j < b.length && matchedB[j] === 1) j++
      if (j === b.length) {
        if (this.#element('missing', a, i, cursor, depth)) return true
        continue
      }
      matchedB[j] = 1
      path[depth] = i
      const c = cursor.length === 0 ? EMPTY_CURSOR : rules.descend(cursor, i)
      if (this.#value(a[i], b[j], c, s, depth + 1)) return true
    }
    for (let k = 0; k < b.length; k++) {
      if (matchedB[k] === 0 && this.#element('extra', b, k, cursor, depth)) return true
    }
    return false
  }

  #keyed (a: Json[], b: Json[], key: string, cursor: RuleCursor, s: Settings, depth: number): boolean {
    const index = keyIndex(b, key)
    if (index === null || keyIndex(a, key) === null) return this.#ordered(a, b, cursor, s, depth)
    const rules = this.#rules
    const matchedB = new Uint8Array(b.length)
    for (let i = 0; i < a.length; i++) {
      const j = index.get(String((a[i] as JsonObject)[key]))
      if (j === undefined || matchedB[j] === 1) {
        if (this.#element('missing', a, i, cursor, depth)) return true
        continue
      }
      matchedB[j] = 1
      this.#path[depth] = i
      const c = cursor.length === 0 ? EMPTY_CURSOR : rules.descend(cursor, i)
      if (this.#value(a[i], b[j], c, s, depth + 1)) return true
    }
    for (let k = 0; k < b.length; k++) {
      if (matchedB[k] === 0 && this.#element('extra', b, k, cursor, depth)) return true
    }
    return false
  }

  #report (kind: DifferenceKind, primary: Json, shadow: Json, depth: number): boolean {
    const sink = this.#sink
    if (sink === null) return true
    const d: Difference = { path: formatPointer(this.#path, depth), kind }
    if (kind !== 'extra') d.primary = primary
    if (kind !== 'missing') d.shadow = shadow
    return sink.add(d)
  }
}

/** Key value → first index, or null when some element is not an object with a scalar key. */
function keyIndex (arr: Json[], key: string): Map<string, number> | null {
  const m = new Map<string, number>()
  for (let i = 0; i < arr.length; i++) {
    const el = arr[i]
    if (typeof el !== 'object' || el === null || Array.isArray(el)) return null
    const v = (el as JsonObject)[key]
    if (typeof v !== 'string' && typeof v !== 'number') return null
    const k = String(v)
    if (!m.has(k)) m.set(k, i)
  }
  return m
}

function canonicalSort (arr: Json[]): Json[] {
  return arr
    .map((v) => ({ v, k: typeof v === 'string' ? v : stableStringify(v) }))
    .sort((x, y) => {
      // Numbers first, by value (so tolerance-equal numbers line up), then the rest by canonical text.
      const xn = typeof x.v === 'number'
      const yn = typeof y.v === 'number'
      if (xn && yn) return (x.v as number) - (y.v as number)
      if (xn !== yn) return xn ? -1 : 1
      return x.k < y.k ? -1 : x.k > y.k ? 1 : 0
    })
    .map((e) => e.v)
}
