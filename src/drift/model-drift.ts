import type { DriftConfig } from '../config/drift-schema.js'
import { binOf, jsDistance, psi, quantileEdges, stateOf, type DriftState } from './drift-stats.js'

/** The window moves in this many steps: it covers between 11/12 and all of `windowMs`. */
export const SLICES = 12
/** Distinct labels one slice counts by name; more (a free-text "label") go to `other`. */
const MAX_LABELS_PER_SLICE = 1000
/** The bin of labels outside the reference's classes. */
export const OTHER = 'other'
const OVERFLOW = '\u0000other'

/** One step of the window: label counts by name, and the top scores (raw or binned). */
interface Slice {
  index: number
  labels: Map<string, number>
  labelN: number
  /** Before the reference exists: a uniform reservoir of the scores seen, and how many were seen. */
  samples: number[] | null
  seen: number
  /** Once the reference exists: counts per reference bin. */
  bins: Float64Array | null
}

/** A frozen reference: its classes and score edges (the bins), and its counts in them. */
interface Reference {
  how: 'first' | 'pinned'
  at: number
  classes: string[]
  classIndex: Map<string, number>
  /** Per class, then `other`. */
  labelCounts: Float64Array
  edges: number[]
  scoreCounts: Float64Array
  labelN: number
  scoreN: number
}

/** One distribution's verdict: PSI and JS with the sample sizes behind them. */
export interface KindStats {
  /** Bins compared (classes + other, or score bins). */
  bins: number
  reference: { n: number }
  window: { n: number }
  psi: number | null
  js: number | null
  state: DriftState | 'insufficient'
}

/** A model's drift as `GET /drift` shows it. */
export interface ModelDriftView {
  model: string
  /** The worse of its kinds; `insufficient` until a reference and a window have `minSamples`; `no_reference` before one exists. */
  state: DriftState | 'insufficient' | 'no_reference'
  /** Largest over the kinds (what `penumbra_prediction_drift` exports); null when none is computed. */
  psi: number | null
  js: number | null
  /** Predictions in the window, and when its oldest step began (ISO 8601). */
  window: { n: number, from: string }
  reference: { n: number, how: 'first' | 'pinned', at: string, classes: string[], edges: number[] } | null
  label: KindStats | null
  score: KindStats | null
}

/**
 * Output drift of one model: the distribution of its predicted labels and of its top scores in
 * a sliding window, against a frozen reference whose classes and quantile edges fix the bins
 * (re-fitting bins on each window would make PSI ~0 by construction).
 *
 * Before a reference exists, slices keep label counts and a reservoir of raw scores; freezing
 * (`first`: once `windowMs` has passed since the model's first prediction and it has
 * `minSamples`; `pinned`: {@link pin}) turns the slices held into the reference and starts an
 * empty window. Memory per model is bounded: 12 slices of at most 1000 label names and
 * `referenceSamples / 12` scores (or one count per bin).
 */
export class ModelDrift {
  readonly model: string
  readonly #cfg: DriftConfig
  readonly #sliceMs: number
  readonly #perSlice: number
  readonly #firstAt: number
  #slices: Slice[] = []
  #reference: Reference | null = null
  /** Index of the first slice that counts: the window restarts empty when a reference is set. */
  #since = -Infinity

  constructor (model: string, cfg: DriftConfig, now: number) {
    this.model = model
    this.#cfg = cfg
    this.#sliceMs = Math.max(1, cfg.windowMs / SLICES)
    this.#perSlice = Math.max(1, Math.ceil(cfg.referenceSamples / SLICES))
    this.#firstAt = now
  }

  get hasReference (): boolean {
    return this.#reference !== null
  }

  /** Counts one prediction: its label and its top score (either may be absent). */
  observe (label: string | undefined, score: number | undefined, now: number): void {
    if (label === undefined && score === undefined) return
    if (this.#reference === null && this.#cfg.reference === 'first') this.#maybeFreeze(now)
    const s = this.#slice(now)
    if (label !== undefined) {
      s.labelN++
      const key = s.labels.has(label) || s.labels.size < MAX_LABELS_PER_SLICE ? label : OVERFLOW
      s.labels.set(key, (s.labels.get(key) ?? 0) + 1)
    }
    if (score !== undefined && Number.isFinite(score)) {
      s.seen++
      if (s.bins !== null) {
        const edges = (this.#reference as Reference).edges
        s.bins[binOf(edges, score)]! += 1
      } else {
        const r = s.samples as number[]
        if (r.length < this.#perSlice) r.push(score)
        else {
          const j = Math.floor(Math.random() * s.seen)
          if (j < this.#perSlice) r[j] = score
        }
      }
    }
  }

  /**
   * Makes the current window the reference (`POST /drift/reference`) and starts an empty
   * window. False when the window holds no prediction (nothing to pin).
   */
  pin (now: number): boolean {
    this.#expire(now)
    const live = this.#live(now)
    if (!live.some((s) => s.labelN > 0 || s.seen > 0)) return false
    this.#freeze(live, 'pinned', now)
    return true
  }

  /** The statistics now (also what the gauge exports). */
  view (now: number): ModelDriftView {
    if (this.#reference === null && this.#cfg.reference === 'first') this.#maybeFreeze(now)
    this.#expire(now)
    const live = this.#live(now)
    const windowN = live.reduce((n, s) => n + Math.max(s.labelN, s.seen), 0)
    const from = new Date(Math.min(now, live.length === 0 ? now : live[0]!.index * this.#sliceMs)).toISOString()
    const ref = this.#reference
    if (ref === null) {
      return { model: this.model, state: 'no_reference', psi: null, js: null, window: { n: windowN, from }, reference: null, label: null, score: null }
    }
    const label = ref.labelN > 0 ? this.#kind(ref.labelCounts, ref.labelN, this.#labelCounts(live, ref)) : null
    const score = ref.scoreN > 0 ? this.#kind(ref.scoreCounts, ref.scoreN, this.#scoreCounts(live, ref)) : null
    const kinds = [label, score].filter((k): k is KindStats => k !== null)
    const computed = kinds.filter((k) => k.psi !== null)
    const max = (f: (k: KindStats) => number | null): number | null => computed.length === 0 ? null : Math.max(...computed.map((k) => f(k) as number))
    return {
      model: this.model,
      state: computed.length === 0 ? 'insufficient' : worst(computed.map((k) => k.state as DriftState)),
      psi: max((k) => k.psi),
      js: max((k) => k.js),
      window: { n: windowN, from },
      reference: { n: Math.max(ref.labelN, ref.scoreN), how: ref.how, at: new Date(ref.at).toISOString(), classes: ref.classes, edges: ref.edges },
      label,
      score
    }
  }

  #kind (ref: Float64Array, refN: number, cur: { counts: Float64Array, n: number }): KindStats {
    const min = this.#cfg.minSamples
    const t = this.#cfg.thresholds
    const base = { bins: ref.length, reference: { n: refN }, window: { n: cur.n } }
    if (refN < min || cur.n < min) return { ...base, psi: null, js: null, state: 'insufficient' }
    const p = psi(ref, cur.counts, this.#cfg.epsilon)
    const j = jsDistance(ref, cur.counts)
    const state = worst([stateOf(p, t.psi.warn, t.psi.alert), stateOf(j, t.js.warn, t.js.alert)])
    return { ...base, psi: p, js: j, state }
  }

  #labelCounts (live: Slice[], ref: Reference): { counts: Float64Array, n: number } {
    const counts = new Float64Array(ref.classes.length + 1)
    let n = 0
    for (const s of live) {
      n += s.labelN
      for (const [label, c] of s.labels) counts[ref.classIndex.get(label) ?? ref.classes.length]! += c
    }
    return { counts, n }
  }

  #scoreCounts (live: Slice[], ref: Reference): { counts: Float64Array, n: number } {
    const counts = new Float64Array(ref.edges.length + 1)
    let n = 0
    for (const s of live) {
      if (s.bins === null) continue
      n += s.seen
      for (let i = 0; i < counts.length; i++) counts[i]! += s.bins[i]!
    }
    return { counts, n }
  }

  #maybeFreeze (now: number): void {
    if (now - this.#firstAt < this.#cfg.windowMs) return
    // `first` keeps every slice until it freezes (the reference is the first window, not the last).
    const held = this.#slices
    const n = held.reduce((a, s) => a + Math.max(s.labelN, s.seen), 0)
    if (n < this.#cfg.minSamples) return
    this.#freeze(held, 'first', now)
  }

  #freeze (slices: Slice[], how: 'first' | 'pinned', now: number): void {
    // Classes: the most frequent labels of the reference, up to maxClasses; the rest is `other`.
    const byLabel = new Map<string, number>()
    let labelN = 0
    for (const s of slices) {
      labelN += s.labelN
      for (const [l, c] of s.labels) if (l !== OVERFLOW) byLabel.set(l, (byLabel.get(l) ?? 0) + c)
    }
    const classes = [...byLabel.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, this.#cfg.maxClasses).map(([l]) => l).sort()
    const classIndex = new Map(classes.map((c, i) => [c, i]))
    const labelCounts = new Float64Array(classes.length + 1)
    for (const s of slices) for (const [l, c] of s.labels) labelCounts[classIndex.get(l) ?? classes.length]! += c

    // Score bins: quantile edges of the reference's samples; counts weighted by seen / kept per slice.
    const samples: number[] = []
    let scoreN = 0
    for (const s of slices) {
      scoreN += s.seen
      if (s.samples !== null) for (const x of s.samples) samples.push(x)
    }
    const edges = quantileEdges(samples, this.#cfg.bins)
    const scoreCounts = new Float64Array(edges.length + 1)
    for (const s of slices) {
      if (s.samples === null || s.samples.length === 0) continue
      const w = s.seen / s.samples.length
      for (const x of s.samples) scoreCounts[binOf(edges, x)]! += w
    }
    this.#reference = { how, at: now, classes, classIndex, labelCounts, edges, scoreCounts, labelN, scoreN }
    // The window starts empty: comparing the reference with itself would say nothing.
    this.#slices = []
    this.#since = Math.floor(now / this.#sliceMs) + 1
  }

  #slice (now: number): Slice {
    // Observations in the step of a freeze count from the next step (the frozen slices are gone).
    const index = Math.max(Math.floor(now / this.#sliceMs), this.#since)
    const last = this.#slices[this.#slices.length - 1]
    if (last !== undefined && last.index === index) return last
    this.#expire(now)
    const ref = this.#reference
    const s: Slice = { index, labels: new Map(), labelN: 0, samples: ref === null ? [] : null, seen: 0, bins: ref === null ? null : new Float64Array(ref.edges.length + 1) }
    this.#slices.push(s)
    return s
  }

  /** Drops the slices that left the window (not before a `first` reference: they are it). */
  #expire (now: number): void {
    if (this.#reference === null && this.#cfg.reference === 'first') return
    const oldest = Math.floor(now / this.#sliceMs) - SLICES + 1
    let k = 0
    while (k < this.#slices.length && this.#slices[k]!.index < oldest) k++
    if (k > 0) this.#slices = this.#slices.slice(k)
  }

  #live (now: number): Slice[] {
    const oldest = Math.floor(now / this.#sliceMs) - SLICES + 1
    return this.#slices.filter((s) => s.index >= oldest || (this.#reference === null && this.#cfg.reference === 'first'))
  }
}

const RANK: Record<DriftState, number> = { ok: 0, warn: 1, alert: 2 }

function worst (states: DriftState[]): DriftState {
  let w: DriftState = 'ok'
  for (const s of states) if (RANK[s] > RANK[w]) w = s
  return w
}
