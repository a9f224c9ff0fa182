import {
  compareProportions, compareQuantiles, compareShift, decide, experimentMetricState, quantileOf, sampleRatioMismatch, welch,
  type Comparison, type ExperimentMetricState, type SrmResult
} from '../analysis/index.js'
import type { Moments } from './outcomes.js'
import { latencySample, type ArmCounts } from './arm-tally.js'

/** Below this many outcomes per arm a metric is `collecting` (issue #17). */
export const MIN_PER_ARM = 100

/**
 * The guardrails' smallest effects worth calling a difference (the `no_difference` band): one
 * percentage point of 5xx share; for the latency shift 5% of the control's median (at least
 * 0.1 ms); for the p99 ratio 5% (a ratio inside [0.95, 1.05]).
 */
export const GUARDRAIL_MIN_EFFECT = { errors: 0.01, latencyShareOfMedian: 0.05, latencyFloorMs: 0.1, p99Ratio: 0.05 } as const

/** One metric's analysis of one treatment variant against the control. */
export interface MetricAnalysis {
  metric: string
  /** binary / mean: outcome metrics; errors, latency, latency_p99: the guardrails the proxy measures. */
  kind: 'binary' | 'mean' | 'errors' | 'latency' | 'latency_p99'
  variant: string
  /** collecting, inconclusive, treatment_better, treatment_worse, no_difference or srm. */
  state: ExperimentMetricState['state']
  /** n, estimate, always-valid and fixed-horizon intervals and p-values, the test and the rule. */
  verdict: ExperimentMetricState['verdict'] | null
  unitsNeeded: ExperimentMetricState['unitsNeeded']
  /** The no_difference band's half-width on the verdict's scale. */
  minEffect: number
  /** Guardrails: what was compared, e.g. the 5xx shares or the p99s, per arm. */
  detail?: Record<string, unknown>
}

export interface ExperimentAnalysis {
  /** The χ² test of the units per arm against the weights; a mismatch withholds every verdict. */
  srm: SrmResult | null
  metrics: MetricAnalysis[]
  /**
   * Always measured, whatever the metrics: the 5xx share (lower is better; Newcombe interval,
   * z-test), the latency shift (Mann–Whitney with the Hodges–Lehmann shift in ms) and the p99
   * ratio (bootstrap), per treatment against the control, over the requests each arm answered.
   */
  guardrails: MetricAnalysis[]
}

/** What the analysis reads: the shape `GET /experiments` shows (one process or a cluster merged). */
export interface DescribedExperiment {
  name: string
  alpha: number
  minEffect: number
  metrics: Array<{ name: string, kind: 'binary' | 'mean' }>
  variants: Array<{ name: string, weight: number, units: number, outcomes: Record<string, Moments> } & Partial<ArmCounts>>
}

/**
 * The verdicts of an experiment, from its arms' running sums: for a binary metric the
 * difference of proportions (Newcombe interval, z-test), for a mean metric the relative lift
 * (Welch, delta method); always-valid intervals decide (read it at any time), at `alpha`, higher
 * is better. `minEffect` is absolute for binary metrics and relative for means. The SRM test
 * runs on the distinct units per arm against the weights.
 */
export function analyseExperiment (ex: DescribedExperiment): ExperimentAnalysis {
  let srm: SrmResult | null = null
  try {
    srm = sampleRatioMismatch(ex.variants.map((v) => v.units), ex.variants.map((v) => v.weight))
  } catch {
    srm = null // no unit yet
  }
  const out: MetricAnalysis[] = []
  const control = ex.variants[0]!
  const zero: Moments = { n: 0, sum: 0, sumSq: 0 }
  for (const m of ex.metrics) {
    const c = control.outcomes[m.name] ?? zero
    for (const v of ex.variants.slice(1)) {
      const t = v.outcomes[m.name] ?? zero
      // Fewer than two outcomes in an arm: no variance yet, nothing to compare.
      if (c.n < 2 || t.n < 2) {
        out.push({ metric: m.name, kind: m.kind, variant: v.name, state: srm?.mismatch === true ? 'srm' : 'collecting', verdict: null, unitsNeeded: null, minEffect: ex.minEffect })
        continue
      }
      const comparison = m.kind === 'binary'
        ? compareProportions({ successes: Math.round(c.sum), n: c.n }, { successes: Math.round(t.sum), n: t.n })
        : welch(c, t).relative
      const verdict = decide(comparison, { kind: 'better', direction: 'higher' }, { alpha: ex.alpha, minPerArm: MIN_PER_ARM })
      const state = experimentMetricState(verdict, ex.minEffect, srm)
      out.push({ metric: m.name, kind: m.kind, variant: v.name, state: state.state, verdict: state.verdict, unitsNeeded: state.unitsNeeded, minEffect: ex.minEffect })
    }
  }
  return { srm, metrics: out, guardrails: guardrails(ex, srm) }
}

function guardrails (ex: DescribedExperiment, srm: SrmResult | null): MetricAnalysis[] {
  const out: MetricAnalysis[] = []
  const control = ex.variants[0]!
  if (control.requests === undefined) return out
  const cLatency = latencySample(control.latency ?? [])
  const cMedian = quantileOf(cLatency, 0.5)
  const shiftMin = Math.max(GUARDRAIL_MIN_EFFECT.latencyFloorMs, GUARDRAIL_MIN_EFFECT.latencyShareOfMedian * (cMedian ?? 0))
  for (const v of ex.variants.slice(1)) {
    const tLatency = latencySample(v.latency ?? [])
    const errors = compareProportions({ successes: control.errors ?? 0, n: control.requests }, { successes: v.errors ?? 0, n: v.requests ?? 0 })
    out.push(guardrail(ex, srm, v.name, 'errors', 'errors', errors, GUARDRAIL_MIN_EFFECT.errors, 0,
      { control: { errors: control.errors ?? 0, requests: control.requests }, treatment: { errors: v.errors ?? 0, requests: v.requests ?? 0 } }))
    const shift = compareShift(cLatency, tLatency)
    out.push(guardrail(ex, srm, v.name, 'latency', 'latency', shift, shiftMin, 0, {
      unit: 'ms',
      medianMs: { control: cMedian, treatment: quantileOf(tLatency, 0.5) },
      mannWhitney: { u: shift.mannWhitney.u, z: shift.mannWhitney.z, pValue: shift.mannWhitney.pValue, cles: shift.mannWhitney.cles }
    }))
    // A ratio needs a positive control quantile: with none yet, there is nothing to compare.
    const p99 = compareQuantiles(cLatency, tLatency, 0.99)
    out.push(guardrail(ex, srm, v.name, 'latency_p99', 'latency_p99', p99, GUARDRAIL_MIN_EFFECT.p99Ratio, 1,
      { unit: 'ratio', p99Ms: { control: p99.controlQuantile, treatment: p99.treatmentQuantile }, percentileInterval: p99.percentileInterval }))
  }
  return out
}

function guardrail (ex: DescribedExperiment, srm: SrmResult | null, variant: string, metric: string, kind: MetricAnalysis['kind'], comparison: Comparison, minEffect: number, noEffect: number, detail: Record<string, unknown>): MetricAnalysis {
  if (comparison.n.control < 2 || comparison.n.treatment < 2 || Number.isNaN(comparison.estimate)) {
    return { metric, kind, variant, state: srm?.mismatch === true ? 'srm' : 'collecting', verdict: null, unitsNeeded: null, minEffect, detail }
  }
  const verdict = decide(comparison, { kind: 'better', direction: 'lower' }, { alpha: ex.alpha, minPerArm: MIN_PER_ARM })
  const state = experimentMetricState(verdict, minEffect, srm, 0.8, noEffect)
  return { metric, kind, variant, state: state.state, verdict: state.verdict, unitsNeeded: state.unitsNeeded, minEffect, detail }
}

/** The experiment with its analysis attached (`GET /experiments`). */
export function withAnalysis (d: unknown): unknown {
  const ex = d as DescribedExperiment
  return { ...ex, analysis: analyseExperiment(ex) }
}
