import { wilson, type ProportionInterval } from '../analysis/wilson.js'
import { mcnemar } from '../analysis/mcnemar.js'
import { normalQuantile, tQuantile } from '../analysis/distributions.js'
import type { ModelRole } from './prediction-store.js'

/** Running sums of one model's labelled predictions: mergeable across processes by addition. */
export interface ModelTally {
  role: ModelRole
  /** Classification (and LLM answers judged by exact match): labelled and correct instances. */
  labelled: number
  correct: number
  /** Per class: true positives, false positives, false negatives. */
  classes: Record<string, { tp: number, fp: number, fn: number }>
  /** Regression: instances, Σ|e|, Σe², Σe⁴ (for the intervals of MAE and RMSE). */
  regression: { n: number, absSum: number, sqSum: number, quadSum: number }
}

/** Both models judged on the same labelled instance: the 2×2 table of a paired comparison. */
export interface PairTally {
  primary: string
  shadow: string
  n: number
  /** Primary right, shadow wrong. */
  b: number
  /** Shadow right, primary wrong. */
  c: number
  bothRight: number
}

/** One process's quality state, as the admin API and `--workers` merging see it. */
export interface QualityData {
  models: Record<string, ModelTally>
  pairs: Record<string, PairTally>
  coverage: {
    /** Instances logged for the model that answered clients. */
    logged: number
    /** Labelled instances (of the answering model) per source. */
    bySource: Record<string, number>
  }
  /**
   * Accuracy over time: per model, per minute of prediction time (bucket start, ms since the
   * epoch), [labelled, correct]. The most recent {@link HISTORY_BUCKETS} minutes are kept.
   */
  history: Record<string, Record<string, [number, number]>>
}

/** Buckets of the accuracy history (one a minute: four hours). */
export const HISTORY_BUCKETS = 240
export const HISTORY_BUCKET_MS = 60_000

/** Adds one judged instance to a model's history, dropping the oldest buckets past the cap. */
export function addHistory (data: QualityData, model: string, at: number, right: boolean, sign: 1 | -1): void {
  const h = data.history[model] ??= {}
  const key = String(Math.floor(at / HISTORY_BUCKET_MS) * HISTORY_BUCKET_MS)
  const b = h[key] ??= [0, 0]
  b[0] += sign
  if (right) b[1] += sign
  const keys = Object.keys(h)
  if (keys.length > HISTORY_BUCKETS) {
    keys.sort((x, y) => Number(x) - Number(y))
    for (const k of keys.slice(0, keys.length - HISTORY_BUCKETS)) delete h[k]
  }
}

export function emptyQuality (): QualityData {
  return { models: {}, pairs: {}, coverage: { logged: 0, bySource: {} }, history: {} }
}

export function emptyModel (role: ModelRole): ModelTally {
  return { role, labelled: 0, correct: 0, classes: {}, regression: { n: 0, absSum: 0, sqSum: 0, quadSum: 0 } }
}

/** Adds `b` into `a` (both process shares of `GET /quality`). */
export function mergeQuality (parts: readonly QualityData[]): QualityData {
  const out = emptyQuality()
  for (const p of parts) {
    out.coverage.logged += p.coverage.logged
    for (const [s, n] of Object.entries(p.coverage.bySource)) out.coverage.bySource[s] = (out.coverage.bySource[s] ?? 0) + n
    for (const [name, m] of Object.entries(p.models)) {
      const t = out.models[name] ??= emptyModel(m.role)
      t.labelled += m.labelled
      t.correct += m.correct
      for (const [c, k] of Object.entries(m.classes)) {
        const x = t.classes[c] ??= { tp: 0, fp: 0, fn: 0 }
        x.tp += k.tp; x.fp += k.fp; x.fn += k.fn
      }
      const r = t.regression
      r.n += m.regression.n; r.absSum += m.regression.absSum; r.sqSum += m.regression.sqSum; r.quadSum += m.regression.quadSum
    }
    for (const [model, h] of Object.entries(p.history ?? {})) {
      const t = out.history[model] ??= {}
      for (const [k, [n, c]] of Object.entries(h)) {
        const b = t[k] ??= [0, 0]
        b[0] += n; b[1] += c
      }
    }
    for (const [key, q] of Object.entries(p.pairs)) {
      const t = out.pairs[key] ??= { primary: q.primary, shadow: q.shadow, n: 0, b: 0, c: 0, bothRight: 0 }
      t.n += q.n; t.b += q.b; t.c += q.c; t.bothRight += q.bothRight
    }
  }
  return out
}

/** A mean with its confidence interval. */
export interface MeanInterval { value: number, lower: number, upper: number }

/** `GET /quality` of one model. */
export interface ModelQuality {
  model: string
  role: ModelRole
  labelled: number
  accuracy: (ProportionInterval & { correct: number }) | null
  classes: Array<{ class: string, support: number, precision: ProportionInterval & { n: number }, recall: ProportionInterval & { n: number } }>
  regression: { n: number, mae: MeanInterval, rmse: MeanInterval } | null
}

/** `GET /quality` of one primary-vs-shadow pair. */
export interface PairedQuality {
  primary: string
  shadow: string
  n: number
  primaryAccuracy: number | null
  shadowAccuracy: number | null
  discordant: { primaryOnly: number, shadowOnly: number }
  /** Shadow minus primary accuracy on the same labelled instances, with its interval. */
  difference: MeanInterval | null
  test: string
  p: number | null
  alpha: number
  verdict: 'shadow_better' | 'primary_better' | 'no_difference_detected' | 'no_data'
  rule: string
  summary: string
}

export interface CoverageReport {
  logged: number
  labelled: number
  rate: number | null
  bySource: Record<string, { labelled: number, rate: number | null, share: number | null }>
  minCoverage: number
  warnings: string[]
}

/** The parts of the `GET /quality` body this room owns; other rooms add theirs beside them. */
export interface QualityReport {
  models: ModelQuality[]
  paired: PairedQuality[]
  coverage: CoverageReport
  /** Accuracy per minute of prediction time, per model (oldest first). */
  history: Array<{ model: string, points: Array<{ t: string, labelled: number, correct: number, accuracy: number | null }> }>
}

/** A source holding at least this share of the labels (with two sources or more seen or not) is "dominant". */
const DOMINANT_SHARE = 0.9
/** Labels needed before the dominance warning speaks (a handful of labels says nothing). */
const DOMINANT_MIN = 20

/**
 * Analyses the merged tallies: accuracy and per-class precision/recall with Wilson intervals,
 * MAE and RMSE with t / delta-method intervals, each primary-vs-shadow pair with McNemar's test,
 * and coverage with its warnings. Every number carries its n; no data is `null`, never a pass.
 */
export function analyseQuality (data: QualityData, opts: { confidence: number, minCoverage: number }): QualityReport {
  const alpha = 1 - opts.confidence
  const z = normalQuantile(1 - alpha / 2)
  const models = Object.entries(data.models).sort(([a], [b]) => (a < b ? -1 : 1)).map(([model, t]) => modelQuality(model, t, z, alpha))
  const paired = Object.values(data.pairs).map((p) => pairedQuality(p, opts.confidence))
  const history = Object.entries(data.history).sort(([a], [b]) => (a < b ? -1 : 1)).map(([model, h]) => ({
    model,
    points: Object.entries(h).sort(([a], [b]) => Number(a) - Number(b)).map(([t, [n, c]]) => ({ t: new Date(Number(t)).toISOString(), labelled: n, correct: c, accuracy: n > 0 ? c / n : null }))
  }))
  return { models, paired, coverage: coverageReport(data, opts.minCoverage), history }
}

function modelQuality (model: string, t: ModelTally, z: number, alpha: number): ModelQuality {
  const classes = Object.entries(t.classes).sort(([a], [b]) => (a < b ? -1 : 1)).map(([c, k]) => ({
    class: c,
    support: k.tp + k.fn,
    precision: { ...wilson(clamp(k.tp, k.tp + k.fp), Math.max(0, k.tp + k.fp), z), n: k.tp + k.fp },
    recall: { ...wilson(clamp(k.tp, k.tp + k.fn), Math.max(0, k.tp + k.fn), z), n: k.tp + k.fn }
  }))
  const r = t.regression
  return {
    model,
    role: t.role,
    labelled: t.labelled + r.n,
    accuracy: t.labelled > 0 ? { ...wilson(clamp(t.correct, t.labelled), t.labelled, z), correct: t.correct } : null,
    classes,
    regression: r.n > 0 ? regressionQuality(r, alpha) : null
  }
}

function clamp (x: number, n: number): number {
  return Math.max(0, Math.min(x, n))
}

/**
 * MAE: the mean of |e| with a Student t interval (sd of |e| from Σ|e| and Σe²). RMSE: the square
 * root of the MSE's t interval (sd of e² from Σe² and Σe⁴), bounds clamped at 0: a monotone
 * transform of an interval keeps its coverage.
 */
function regressionQuality (r: ModelTally['regression'], alpha: number): { n: number, mae: MeanInterval, rmse: MeanInterval } {
  const n = r.n
  const mae = r.absSum / n
  const mse = r.sqSum / n
  if (n < 2) return { n, mae: { value: mae, lower: NaN, upper: NaN }, rmse: { value: Math.sqrt(mse), lower: NaN, upper: NaN } }
  const t = tQuantile(1 - alpha / 2, n - 1)
  const sdAbs = Math.sqrt(Math.max(0, (r.sqSum - n * mae * mae) / (n - 1)))
  const sdSq = Math.sqrt(Math.max(0, (r.quadSum - n * mse * mse) / (n - 1)))
  const hAbs = t * sdAbs / Math.sqrt(n)
  const hSq = t * sdSq / Math.sqrt(n)
  return {
    n,
    mae: { value: mae, lower: Math.max(0, mae - hAbs), upper: mae + hAbs },
    rmse: { value: Math.sqrt(mse), lower: Math.sqrt(Math.max(0, mse - hSq)), upper: Math.sqrt(mse + hSq) }
  }
}

/** The paired comparison of one shadow against the primary on the instances both predicted. */
export function pairedQuality (p: PairTally, confidence: number): PairedQuality {
  const alpha = 1 - confidence
  const rule = `McNemar two-sided p < ${round(alpha, 4)} on the labelled instances both models predicted`
  const base = { primary: p.primary, shadow: p.shadow, n: p.n, discordant: { primaryOnly: p.b, shadowOnly: p.c }, alpha, rule }
  if (p.n <= 0) {
    return { ...base, n: 0, primaryAccuracy: null, shadowAccuracy: null, difference: null, test: 'mcnemar', p: null, verdict: 'no_data', summary: `no labelled instance of both ${p.primary} and ${p.shadow} yet: no verdict` }
  }
  // A label replaced on another replica than the one that first counted it leaves this replica's
  // share inconsistent (the fleet's sum is right): clamp rather than fail the whole report.
  const b = Math.min(Math.max(0, p.b), p.n)
  const m = mcnemar(b, Math.min(Math.max(0, p.c), p.n - b), p.n, confidence)
  const verdict = m.p < alpha ? (m.c > m.b ? 'shadow_better' : 'primary_better') : 'no_difference_detected'
  const diff = m.difference
  const pct = (x: number): string => `${(Math.abs(x) * 100).toFixed(1)}%`
  const signed = (x: number): string => `${x < 0 ? '-' : ''}${(Math.abs(x) * 100).toFixed(1)}%`
  const ci = `${Math.round(confidence * 100)}% CI [${signed(m.lower)}, ${signed(m.upper)}]`
  const test = m.test === 'mcnemar-exact' ? 'McNemar exact' : 'McNemar'
  const head = diff === 0
    ? `the shadow ${p.shadow} and ${p.primary} were right equally often`
    : `the shadow ${p.shadow} was right on ${pct(diff)} ${diff > 0 ? 'more' : 'fewer'}`
  const summary = `${head} of the ${p.n.toLocaleString('en-US')} labelled requests (${ci}, ${test} p = ${formatP(m.p)})` +
    (verdict === 'no_difference_detected' ? ': no difference detected' : '')
  return {
    ...base,
    primaryAccuracy: (p.bothRight + p.b) / p.n,
    shadowAccuracy: (p.bothRight + p.c) / p.n,
    difference: { value: diff, lower: m.lower, upper: m.upper },
    test: m.test,
    p: m.p,
    verdict,
    summary
  }
}

function coverageReport (data: QualityData, minCoverage: number): CoverageReport {
  const logged = data.coverage.logged
  const labelled = Object.values(data.coverage.bySource).reduce((a, b) => a + b, 0)
  const rate = logged > 0 ? Math.min(1, labelled / logged) : null
  const bySource: CoverageReport['bySource'] = {}
  for (const [s, n] of Object.entries(data.coverage.bySource)) {
    bySource[s] = { labelled: n, rate: logged > 0 ? Math.min(1, n / logged) : null, share: labelled > 0 ? n / labelled : null }
  }
  const warnings: string[] = []
  if (logged > 0 && (rate ?? 0) < minCoverage) {
    warnings.push(`coverage ${((rate ?? 0) * 100).toFixed(2)}% is below feedback.minCoverage (${(minCoverage * 100).toFixed(2)}%): ${labelled} of ${logged} logged predictions have a label; the quality figures describe a small, possibly unrepresentative sample`)
  }
  if (labelled >= DOMINANT_MIN) {
    for (const [s, v] of Object.entries(bySource)) {
      if ((v.share ?? 0) >= DOMINANT_SHARE) warnings.push(`source "${s}" gave ${((v.share ?? 0) * 100).toFixed(1)}% of the labels: the labelled requests are the ones that source chose to label, which may not represent the traffic (e.g. users report mostly wrong answers)`)
    }
  }
  return { logged, labelled, rate, bySource, minCoverage, warnings }
}

function round (x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

function formatP (p: number): string {
  if (p < 0.001) return p.toExponential(1)
  return p.toFixed(3)
}
