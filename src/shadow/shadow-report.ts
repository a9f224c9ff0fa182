import { LatencyHistogram } from '../stats/latency-histogram.js'
import { wilson } from '../analysis/wilson.js'
import type { ShadowCounters, ShadowState } from './shadow-runtime.js'

/** What the report shows of a shadow's runtime state and request counters. */
export interface ShadowView {
  state: ShadowState
  counters: ShadowCounters
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
}

/** Comparison outcomes (`penumbra_comparisons_total{outcome}`). */
export type ComparisonOutcome = 'match' | 'mismatch' | 'shadow_error' | 'shadow_timeout' | 'unparseable'

const MAX_TOP_PATHS = 100

/**
 * What `GET /report` says about one shadow, accumulated as comparisons finish: outcome counts,
 * instance agreement, differing paths (bounded) and latency of primary vs shadow on the same
 * mirrored requests. Survives config reloads (kept by shadow name).
 */
export class ShadowReport {
  readonly outcomes: Record<ComparisonOutcome, number> = { match: 0, mismatch: 0, shadow_error: 0, shadow_timeout: 0, unparseable: 0 }
  readonly dropped: Record<string, number> = {}
  instancesCompared = 0
  instanceDisagreements = 0
  readonly paths = new Map<string, number>()
  readonly primaryLatency = new LatencyHistogram()
  readonly shadowLatency = new LatencyHistogram()

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
      shadowLatency: this.shadowLatency.toJSON()
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
      comparisons: { ...o, total: compared + o.shadow_error + o.shadow_timeout + o.unparseable },
      comparisonsDropped: this.dropped,
      disagreement: {
        requests: { disagreements: o.mismatch, compared, ...wilson(o.mismatch, compared) },
        instances: { disagreements: this.instanceDisagreements, compared: this.instancesCompared, ...wilson(this.instanceDisagreements, this.instancesCompared) }
      },
      topPaths: top,
      latencyMs: {
        samples: this.primaryLatency.count,
        primary: { p50: ms(this.primaryLatency, 0.5), p99: ms(this.primaryLatency, 0.99) },
        shadow: { p50: ms(this.shadowLatency, 0.5), p99: ms(this.shadowLatency, 0.99) }
      }
    }
  }
}
