import { LatencyHistogram } from '../stats/latency-histogram.js'
import { wilson } from '../analysis/wilson.js'
import { COMPARISON_OUTCOMES } from '../metrics/metrics.js'
import type { ShadowCounters, ShadowLlmView, ShadowState } from '../shadow/shadow-runtime.js'
import { LlmReport, type LlmReportData } from './llm/llm-report.js'

/** What the report shows of a shadow's runtime state and request counters. */
export interface ShadowView {
  state: ShadowState
  counters: ShadowCounters
  /** LLM settings and budget (issue #16). */
  llm?: ShadowLlmView
}

/** A report's accumulated numbers, as sent between cluster workers and the primary. */
export interface ShadowReportData {
  outcomes: Record<ComparisonOutcome, number>
  dropped: Record<string, number>
  instancesCompared: number
  instanceDisagreements: number
  paths: Array<[string, number]>
  primaryLatency: number[]
  shadowLatency: number[]
  llm: LlmReportData
}

/** Comparison outcomes (`penumbra_comparisons_total{outcome}`). */
export type ComparisonOutcome = typeof COMPARISON_OUTCOMES[number]

const MAX_TOP_PATHS = 100

/**
 * What `GET /report` says about one shadow, accumulated as comparisons finish: outcome counts,
 * instance agreement, differing paths (bounded) and latency of primary vs shadow on the same
 * mirrored requests. Survives config reloads (kept by shadow name).
 */
export class ShadowReport {
  readonly outcomes = Object.fromEntries(COMPARISON_OUTCOMES.map((o) => [o, 0])) as Record<ComparisonOutcome, number>
  readonly dropped: Record<string, number> = {}
  instancesCompared = 0
  instanceDisagreements = 0
  readonly paths = new Map<string, number>()
  readonly primaryLatency = new LatencyHistogram()
  readonly shadowLatency = new LatencyHistogram()
  /** LLM agreement kinds, time to first token and tokens (issue #16). */
  readonly llm = new LlmReport()

  countPath (path: string): void {
    const n = this.paths.get(path)
    if (n !== undefined) this.paths.set(path, n + 1)
    else if (this.paths.size < MAX_TOP_PATHS) this.paths.set(path, 1)
    else this.paths.set('other', (this.paths.get('other') ?? 0) + 1)
  }

  data (): ShadowReportData {
    return {
      outcomes: { ...this.outcomes },
      dropped: { ...this.dropped },
      instancesCompared: this.instancesCompared,
      instanceDisagreements: this.instanceDisagreements,
      paths: [...this.paths.entries()],
      primaryLatency: this.primaryLatency.toJSON(),
      shadowLatency: this.shadowLatency.toJSON(),
      llm: this.llm.data()
    }
  }

  /** Adds another report's numbers (the cluster primary merges its workers' reports). */
  absorb (d: ShadowReportData): void {
    for (const k of Object.keys(this.outcomes) as ComparisonOutcome[]) this.outcomes[k] += d.outcomes[k] ?? 0
    for (const [k, v] of Object.entries(d.dropped)) this.dropped[k] = (this.dropped[k] ?? 0) + v
    this.instancesCompared += d.instancesCompared
    this.instanceDisagreements += d.instanceDisagreements
    for (const [path, n] of d.paths) this.paths.set(path, (this.paths.get(path) ?? 0) + n)
    this.primaryLatency.merge(d.primaryLatency)
    this.shadowLatency.merge(d.shadowLatency)
    if (d.llm !== undefined) this.llm.absorb(d.llm)
  }

  /** The JSON of `GET /report` for this shadow. */
  toJSON (rt: ShadowView | undefined, name: string): Record<string, unknown> {
    const o = this.outcomes
    const compared = o.match + o.mismatch
    const top = [...this.paths.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([path, count]) => ({ path, count }))
    const ms = (h: LatencyHistogram, q: number): number | null => {
      const v = h.quantile(q)
      return v === null ? null : Math.round(v * 1000) / 1000
    }
    return {
      shadow: name,
      state: rt === undefined ? null : { enabled: rt.state.enabled, sampleRate: rt.state.sampleRate },
      mirrored: rt?.counters.mirrored ?? 0,
      requests: rt === undefined ? null : { ok: rt.counters.ok, error: rt.counters.error, timeout: rt.counters.timeout },
      skipped: rt?.counters.skipped ?? null,
      comparisons: { ...o, total: compared + o.shadow_error + o.shadow_timeout + o.unparseable + o.unsupported },
      comparisonsDropped: this.dropped,
      noComparisons: compared > 0 ? null : noComparisonsReason(rt, o, this.dropped),
      disagreement: {
        requests: { disagreements: o.mismatch, compared, ...wilson(o.mismatch, compared) },
        instances: { disagreements: this.instanceDisagreements, compared: this.instancesCompared, ...wilson(this.instanceDisagreements, this.instancesCompared) }
      },
      topPaths: top,
      latencyMs: {
        samples: this.primaryLatency.count,
        primary: { p50: ms(this.primaryLatency, 0.5), p99: ms(this.primaryLatency, 0.99) },
        shadow: { p50: ms(this.shadowLatency, 0.5), p99: ms(this.shadowLatency, 0.99) }
      },
      // Only for shadows that saw LLM answers; `settings` (stream mode, budget) with it.
      llm: this.llm.empty ? null : { ...this.llm.toJSON(rt?.llm), settings: rt?.llm ?? null }
    }
  }
}

const list = (o: Record<string, number>): string => Object.entries(o).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ')

/**
 * Why a shadow has no compared request yet, in words: a 0% rate over nothing looks like
 * agreement, so the report says what happened instead (nothing mirrored and why, every call
 * failed, answers that could not be compared, comparisons dropped).
 */
export function noComparisonsReason (rt: ShadowView | undefined, o: Record<ComparisonOutcome, number>, dropped: Record<string, number>): string {
  const why: string[] = []
  if (rt !== undefined) {
    const c = rt.counters
    if (!rt.state.enabled) why.push('the shadow is disabled')
    else if (rt.state.sampleRate === 0) why.push('its sample rate is 0')
    if (c.mirrored === 0) {
      const skipped = list(c.skipped)
      why.push(skipped === '' ? 'no request was mirrored yet' : `no request was mirrored (skipped: ${skipped})`)
    } else if (c.error + c.timeout > 0) {
      why.push(`${c.error + c.timeout} of ${c.mirrored} mirrored requests failed (error ${c.error}, timeout ${c.timeout})`)
    }
  }
  const uncomparable = list({ unparseable: o.unparseable, unsupported: o.unsupported })
  if (uncomparable !== '') why.push(`answers could not be compared (${uncomparable})`)
  const d = list(dropped)
  if (d !== '') why.push(`comparisons dropped (${d})`)
  return `no comparisons yet${why.length > 0 ? ': ' + why.join('; ') : ''}`
}
