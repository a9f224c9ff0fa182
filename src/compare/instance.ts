import { DiffSink, numbersEqual, type JsonDiffer } from './json-diff.js'
import type { RuleCursor, Settings } from './rules.js'
import { similarAtLeast } from './text-similarity.js'
import type { InstanceSummary } from './types.js'

/** Running per-instance counts for one comparison. */
export class InstanceTally {
  compared = 0
  disagreements = 0
  readonly scoreDeltas: number[] = []
  readonly topKOverlap: number[] = []

  summary (): InstanceSummary {
    const s: InstanceSummary = { compared: this.compared, disagreements: this.disagreements, scoreDeltas: this.scoreDeltas }
    if (this.topKOverlap.length > 0) s.topKOverlap = this.topKOverlap
    return s
  }
}

/**
 * Object keys that carry the prediction in an instance object such as
 * `{label, scores, latency_ms}`. Matched as written or lower-cased.
 */
export const PREDICTION_KEYS: ReadonlySet<string> = new Set([
  'prediction', 'predictions', 'pred', 'y', 'y_pred', 'output', 'outputs', 'result', 'value', 'values', 'answer',
  'text', 'generated_text', 'summary_text', 'translation_text', 'content',
  'score', 'scores', 'probability', 'probabilities', 'prob', 'probs', 'proba', 'logits', 'confidence', 'confidences'
])

/**
 * Keys that carry the decision (a class). Their values are compared exactly, numbers included
 * (class 3 vs class 4 is a flip, not an error of 1), and when an object has one, its score
 * fields only contribute deltas and overlaps: the served label decides agreement.
 */
export const LABEL_KEYS: ReadonlySet<string> = new Set([
  'label', 'labels', 'class', 'classes', 'class_name', 'class_id', 'class_ids', 'category', 'categories',
  'predicted_label', 'predicted_class', 'predicted_class_id', 'intent', 'sentiment', 'tag', 'tags'
])

/** Keys whose numeric vectors are class scores (argmax, top-k), whatever their range. */
export const SCORE_KEY = /(^|_)(scores?|probabilit(y|ies)|probas?|probs?|logits?|confidences?|likelihoods?)$/i

/** Strings with whitespace are treated as generated text (similarity), others as labels (exact). */
const WHITESPACE = /\s/

/**
 * Compares prediction instances with ML semantics. The heuristics, applied to the primary and
 * shadow value of one instance (recursively for the prediction fields of an object):
 *
 * - **numbers** (regression): agree when within the numeric tolerance in force at the path; the
 *   absolute error is the instance's score delta.
 * - **strings**: labels (no whitespace) must be equal; text (contains whitespace in either)
 *   agrees when {@link similarAtLeast} `compare.textSimilarity`.
 * - **numeric vectors** of equal length: the delta is the max absolute element difference.
 *   A vector is *scores* when its key matches a score name (`scores`, `probabilities`, `logits`,
 *   `*_probs` …) or, keyless or under another key, when all values of both sides lie in [0, 1];
 *   scores agree when the argmax is the same, or when both sides are tied within tolerance at the
 *   two argmax positions (float noise between near-equal classes is not a flip); top-k overlap
 *   `|topk(p) ∩ topk(s)| / k` with `k = min(compare.topK, length)` is recorded. Other numeric
 *   vectors are multi-output regression: every element must be within tolerance. A length-1
 *   vector is a number. Different lengths disagree.
 * - **string vectors** (ranked labels): agree when the first labels are equal; top-k overlap of
 *   the first k labels is recorded.
 * - **objects**: only label fields ({@link LABEL_KEYS}: `label`, `class`, `class_id` …) and
 *   prediction fields ({@link PREDICTION_KEYS} and score names) are compared, so `latency_ms`,
 *   `model_version`, ids … do not decide agreement. Label values must be equal (numbers exactly:
 *   class ids are not measurements). When an object has a label field, the label decides and the
 *   score fields only contribute deltas and overlaps (`{label, probability}` agrees when the
 *   label does, whatever the probability did). A label or prediction field present on one side
 *   only disagrees. An object with none of those fields, and any other shape (nested arrays,
 *   mixed types), agrees only when the structural diff under the rules finds no non-noisy
 *   difference.
 * - Paths ignored by the rules are skipped everywhere; a type mismatch disagrees.
 *
 * The delta of an instance is the max over all its numeric comparisons; the overlap, the min.
 */
export class InstanceComparer {
  readonly #differ: JsonDiffer
  readonly #topK: number
  readonly #textThreshold: number
  #isNoisy: ((path: string) => boolean) | undefined
  /** Path buffer of the current field, for rules and the structural fallback. */
  readonly #path: Array<string | number> = []
  #agree = true
  #delta = -1
  #overlap = -1
  #topP: Int32Array
  #topS: Int32Array

  constructor (differ: JsonDiffer, opts: { topK: number, textSimilarity: number }) {
    this.#differ = differ
    this.#topK = opts.topK
    this.#textThreshold = opts.textSimilarity
    this.#topP = new Int32Array(opts.topK)
    this.#topS = new Int32Array(opts.topK)
  }

  /** Sets the noise predicate used by the structural fallback for the next comparisons. */
  setNoise (isNoisy: ((path: string) => boolean) | undefined): void {
    this.#isNoisy = isNoisy
  }

  /** Compares one instance whose primary value sits at `path`. */
  instance (p: unknown, s: unknown, path: ReadonlyArray<string | number>, tally: InstanceTally): void {
    this.begin()
    this.field(p, s, path, undefined)
    this.end(tally)
  }

  /** Counts an instance present on one side only: a disagreement. */
  absent (tally: InstanceTally): void {
    tally.compared++
    tally.disagreements++
  }

  /** Starts an instance made of several fields (columnar rows, OIP v2 output slices). */
  begin (): void {
    this.#agree = true
    this.#delta = -1
    this.#overlap = -1
  }

  /** Compares one field of the current instance; `key` names it for the score heuristic. */
  field (p: unknown, s: unknown, path: ReadonlyArray<string | number>, key: string | undefined): void {
    const rules = this.#differ.rules
    const cursor = rules.cursorAt(path)
    const depth = path.length
    for (let i = 0; i < depth; i++) this.#path[i] = path[i] as string | number
    this.#value(p, s, cursor, rules.settingsAt(path, depth - 1), key ?? lastKey(path), depth)
  }

  /** Compares generated text at `path` by normalised similarity, whatever its shape. */
  text (p: string, s: string, path: ReadonlyArray<string | number>): void {
    if (this.#differ.rules.ignored(this.#differ.rules.cursorAt(path))) return
    if (p !== s && !similarAtLeast(p, s, this.#textThreshold)) this.#agree = false
  }

  /** Disagrees when the structural diff of the values at `path` finds a non-noisy difference. */
  structural (p: unknown, s: unknown, path: ReadonlyArray<string | number>): void {
    for (let i = 0; i < path.length; i++) this.#path[i] = path[i] as string | number
    this.#structural(p, s, path.length)
  }

  /** Marks the current instance as disagreeing (e.g. a required part is missing on one side). */
  disagree (): void {
    this.#agree = false
  }

  /** Ends the current instance and adds it to the tally. */
  end (tally: InstanceTally): void {
    tally.compared++
    if (!this.#agree) tally.disagreements++
    if (this.#delta >= 0) tally.scoreDeltas.push(this.#delta)
    if (this.#overlap >= 0) tally.topKOverlap.push(this.#overlap)
  }

  #value (p: unknown, s: unknown, cursor: RuleCursor, parent: Settings, key: string | undefined, depth: number): void {
    const rules = this.#differ.rules
    let st = parent
    if (cursor.length !== 0) {
      if (rules.ignored(cursor)) return
      st = rules.apply(cursor, parent)
    }
    const tp = typeof p
    if (tp === 'number' && typeof s === 'number') {
      this.#number(p as number, s, st)
      return
    }
    if (tp === 'string' && typeof s === 'string') {
      if (p === s) return
      const text = WHITESPACE.test(p as string) || WHITESPACE.test(s)
      if (!text || !similarAtLeast(p as string, s, this.#textThreshold)) this.#agree = false
      return
    }
    if (Array.isArray(p) && Array.isArray(s)) {
      if (this.#vector(p, s, st, key)) return
    } else if (isPlainObject(p) && isPlainObject(s)) {
      if (this.#object(p, s, cursor, st, depth)) return
    } else {
      if (p !== s) this.#agree = false
      return
    }
    this.#structural(p, s, depth)
  }

  #number (p: number, s: number, st: Settings): void {
    const d = Math.abs(p - s)
    if (d > this.#delta) this.#delta = d
    if (!numbersEqual(p, s, st.absTol, st.relTol)) this.#agree = false
  }

  /** Handles numeric and string vectors; returns false for other arrays (structural fallback). */
  #vector (p: unknown[], s: unknown[], st: Settings, key: string | undefined): boolean {
    const n = p.length
    if (n === 0 && s.length === 0) return true
    const first = n > 0 ? p[0] : s[0]
    if (typeof first === 'string') return this.#labels(p, s)
    if (typeof first !== 'number') return false
    let unit = true
    let maxD = 0
    if (n !== s.length) {
      if (!allNumbers(p) || !allNumbers(s)) return false
      this.#agree = false
      return true
    }
    for (let i = 0; i < n; i++) {
      const a = p[i]
      const b = s[i]
      if (typeof a !== 'number' || typeof b !== 'number') return false
      const d = Math.abs(a - b)
      if (d > maxD) maxD = d
      if (a < 0 || a > 1 || b < 0 || b > 1) unit = false
    }
    if (n === 1) {
      this.#number(p[0] as number, s[0] as number, st)
      return true
    }
    if (maxD > this.#delta) this.#delta = maxD
    const scores = (key !== undefined && SCORE_KEY.test(key)) || unit
    if (scores) {
      this.#scores(p as number[], s as number[], st)
    } else {
      for (let i = 0; i < n; i++) {
        if (!numbersEqual(p[i] as number, s[i] as number, st.absTol, st.relTol)) { this.#agree = false; break }
      }
    }
    return true
  }

  #scores (p: number[], s: number[], st: Settings): void {
    const ap = argmax(p)
    const as = argmax(s)
    if (ap !== as) {
      const tiedP = numbersEqual(p[ap] as number, p[as] as number, st.absTol, st.relTol)
      const tiedS = numbersEqual(s[ap] as number, s[as] as number, st.absTol, st.relTol)
      if (!(tiedP && tiedS)) this.#agree = false
    }
    const k = Math.min(this.#topK, p.length)
    topIndices(p, k, this.#topP)
    topIndices(s, k, this.#topS)
    let common = 0
    for (let i = 0; i < k; i++) {
      const want = this.#topP[i]
      for (let j = 0; j < k; j++) if (this.#topS[j] === want) { common++; break }
    }
    this.#noteOverlap(common / k)
  }

  /** Ranked label lists: top-1 decides, overlap of the first k is recorded. */
  #labels (p: unknown[], s: unknown[]): boolean {
    if (!allStrings(p) || !allStrings(s)) return false
    if (p.length === 0 || s.length === 0 || p[0] !== s[0]) this.#agree = false
    const kp = Math.min(this.#topK, p.length)
    const ks = Math.min(this.#topK, s.length)
    const k = Math.max(kp, ks)
    if (k === 0) return true
    let common = 0
    for (let i = 0; i < kp; i++) {
      for (let j = 0; j < ks; j++) if (p[i] === s[j]) { common++; break }
    }
    this.#noteOverlap(common / k)
    return true
  }

  #noteOverlap (o: number): void {
    if (this.#overlap < 0 || o < this.#overlap) this.#overlap = o
  }

  /** Compares the prediction fields; returns false when there are none (structural fallback). */
  #object (p: Record<string, unknown>, s: Record<string, unknown>, cursor: RuleCursor, st: Settings, depth: number): boolean {
    const rules = this.#differ.rules
    const labelled = hasLabelKey(p) || hasLabelKey(s)
    let found = false
    for (const k in p) {
      const role = roleOf(k)
      if (role === ROLE_NONE) continue
      found = true
      const c = rules.descend(cursor, k)
      this.#path[depth] = k
      if (!Object.hasOwn(s, k)) {
        if (!rules.ignored(c)) this.#agree = false
      } else if (role === ROLE_LABEL) {
        this.#label(p[k], s[k], c, depth + 1)
      } else if (labelled) {
        // Evidence only: deltas and overlaps are recorded, the label decides agreement.
        const agree = this.#agree
        this.#value(p[k], s[k], c, st, k, depth + 1)
        this.#agree = agree
      } else {
        this.#value(p[k], s[k], c, st, k, depth + 1)
      }
    }
    for (const k in s) {
      if (Object.hasOwn(p, k) || roleOf(k) === ROLE_NONE) continue
      found = true
      if (!rules.ignored(rules.descend(cursor, k))) this.#agree = false
    }
    return found
  }

  /** A label field: exact equality of scalars; lists and objects structurally. */
  #label (p: unknown, s: unknown, cursor: RuleCursor, depth: number): void {
    if (cursor.length !== 0 && this.#differ.rules.ignored(cursor)) return
    if (p === s) return
    if (typeof p === 'object' && p !== null && typeof s === 'object' && s !== null) {
      if (Array.isArray(p) && Array.isArray(s) && this.#labels(p, s)) return
      this.#structural(p, s, depth)
      return
    }
    this.#agree = false
  }

  /** Any non-noisy structural difference under the rules disagrees. */
  #structural (p: unknown, s: unknown, depth: number): void {
    const sink = new DiffSink({ max: 0, isNoisy: this.#isNoisy, firstOnly: true })
    this.#differ.diff(p, s, sink, this.#path.slice(0, depth))
    if (sink.count > 0) this.#agree = false
  }
}

/** Key roles in an instance object (see {@link roleOf}). */
export const ROLE_NONE = 0
export const ROLE_LABEL = 1
export const ROLE_PREDICTION = 2
export type Role = typeof ROLE_NONE | typeof ROLE_LABEL | typeof ROLE_PREDICTION

/** Key → role memo: the same few keys recur in every instance. Bounded, since keys come from bodies. */
const roles = new Map<string, Role>()
const MAX_ROLE_MEMO = 4096

/** The role of an instance-object key: label, prediction (scores included) or none. Memoised. */
export function roleOf (k: string): Role {
  const known = roles.get(k)
  if (known !== undefined) return known
  const lower = k.toLowerCase()
  const role: Role = LABEL_KEYS.has(lower) ? ROLE_LABEL : PREDICTION_KEYS.has(lower) || SCORE_KEY.test(k) ? ROLE_PREDICTION : ROLE_NONE
  if (roles.size < MAX_ROLE_MEMO) roles.set(k, role)
  return role
}

function hasLabelKey (o: Record<string, unknown>): boolean {
  for (const k in o) if (roleOf(k) === ROLE_LABEL) return true
  return false
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function lastKey (path: ReadonlyArray<string | number>): string | undefined {
  const last = path[path.length - 1]
  return typeof last === 'string' ? last : undefined
}

function allNumbers (a: unknown[]): boolean {
  for (const v of a) if (typeof v !== 'number') return false
  return true
}

function allStrings (a: unknown[]): boolean {
  for (const v of a) if (typeof v !== 'string') return false
  return true
}

/** Index of the largest value; the first one on ties. */
export function argmax (v: ArrayLike<number>): number {
  let best = 0
  for (let i = 1; i < v.length; i++) if ((v[i] as number) > (v[best] as number)) best = i
  return best
}

/** Writes the indices of the k largest values into out[0..k) (insertion; k is small). */
export function topIndices (v: ArrayLike<number>, k: number, out: Int32Array): void {
  let filled = 0
  for (let i = 0; i < v.length; i++) {
    const x = v[i] as number
    if (filled === k && x <= (v[out[k - 1] as number] as number)) continue
    let j = filled < k ? filled++ : k - 1
    while (j > 0 && (v[out[j - 1] as number] as number) < x) { out[j] = out[j - 1] as number; j-- }
    out[j] = i
  }
}
