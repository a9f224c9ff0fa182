import type { ExperimentAnalysis, MetricAnalysis } from '../experiments/analysis.js'

/** One look at a metric or guardrail: when, the estimate, the deciding interval, the state. */
export interface HistoryPoint {
  at: number
  estimate: number | null
  lower: number | null
  upper: number | null
  n: number
  state: MetricAnalysis['state']
}

/** Points kept per series; when full, every other point goes (the span stays, the resolution halves). */
export const MAX_POINTS = 360
/** At most one point per series per this many ms, by default (`admin.historyIntervalMs`). */
export const MIN_SPACING_MS = 10_000

/**
 * The estimates of every experiment over time, for the status page's cumulative-effect chart:
 * what the analysis said at each look, so the chart shows how the estimate and its always-valid
 * interval converged. Held in memory by the admin listener (a restart starts it again), sampled
 * by the admin's own timer and by each read.
 */
export class AnalysisHistory {
  readonly #series = new Map<string, HistoryPoint[]>()
  readonly #last = new Map<string, number>()
  readonly spacingMs: number

  constructor (spacingMs = MIN_SPACING_MS) {
    this.spacingMs = spacingMs
  }

  /** Notes an experiment's analysis at time `at` (ignored when its last point is too recent). */
  note (experiment: string, analysis: ExperimentAnalysis, at = Date.now()): void {
    const last = this.#last.get(experiment)
    if (last !== undefined && at - last < this.spacingMs) return
    this.#last.set(experiment, at)
    for (const m of [...analysis.metrics, ...analysis.guardrails]) {
      const key = seriesKey(experiment, m)
      let list = this.#series.get(key)
      if (list === undefined) this.#series.set(key, list = [])
      const v = m.verdict
      const finite = (x: number | undefined): number | null => (x !== undefined && Number.isFinite(x) ? x : null)
      list.push({ at, estimate: finite(v?.estimate), lower: finite(v?.interval.lower), upper: finite(v?.interval.upper), n: v === null ? 0 : v.n.control + v.n.treatment, state: m.state })
      if (list.length > MAX_POINTS) this.#series.set(key, list.filter((_, i) => i % 2 === 1))
    }
  }

  /** The series of one experiment: `metric/variant` → points, oldest first. */
  of (experiment: string): Record<string, HistoryPoint[]> {
    const out: Record<string, HistoryPoint[]> = {}
    const prefix = `${experiment}\u0000`
    for (const [k, v] of this.#series) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v
    return out
  }

  /** Forgets experiments no longer configured (after a reload). */
  keep (names: ReadonlySet<string>): void {
    for (const k of [...this.#series.keys()]) if (!names.has(k.slice(0, k.indexOf('\u0000')))) this.#series.delete(k)
    for (const k of [...this.#last.keys()]) if (!names.has(k)) this.#last.delete(k)
  }
}

function seriesKey (experiment: string, m: MetricAnalysis): string {
  return `${experiment}\u0000${m.metric}/${m.variant}`
}
