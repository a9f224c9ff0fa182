import {
  compareProportions, decide, experimentMetricState, sampleRatioMismatch, welch,
  type ExperimentMetricState, type SrmResult
} from '../analysis/index.js'
import type { Moments } from './outcomes.js'

/** Below this many outcomes per arm a metric is `collecting` (issue #17). */
export const MIN_PER_ARM = 100

/** One metric's analysis of one treatment variant against the control. */
export interface MetricAnalysis {
  metric: string
  kind: 'binary' | 'mean'
  variant: string
  /** collecting, inconclusive, treatment_better, treatment_worse, no_difference or srm. */
  state: ExperimentMetricState['state']
  /** n, estimate, always-valid and fixed-horizon intervals and p-values, the test and the rule. */
  verdict: ExperimentMetricState['verdict'] | null
  unitsNeeded: ExperimentMetricState['unitsNeeded']
}

export interface ExperimentAnalysis {
  /** The χ² test of the units per arm against the weights; a mismatch withholds every verdict. */
  srm: SrmResult | null
  metrics: MetricAnalysis[]
}

/** What the analysis reads: the shape `GET /experiments` shows (one process or a cluster merged). */
export interface DescribedExperiment {
  name: string
  alpha: number
  minEffect: number
  metrics: Array<{ name: string, kind: 'binary' | 'mean' }>
  variants: Array<{ name: string, weight: number, units: number, outcomes: Record<string, Moments> }>
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
        out.push({ metric: m.name, kind: m.kind, variant: v.name, state: srm?.mismatch === true ? 'srm' : 'collecting', verdict: null, unitsNeeded: null })
        continue
      }
      const comparison = m.kind === 'binary'
        ? compareProportions({ successes: Math.round(c.sum), n: c.n }, { successes: Math.round(t.sum), n: t.n })
        : welch(c, t).relative
      const verdict = decide(comparison, { kind: 'better', direction: 'higher' }, { alpha: ex.alpha, minPerArm: MIN_PER_ARM })
      const state = experimentMetricState(verdict, ex.minEffect, srm)
      out.push({ metric: m.name, kind: m.kind, variant: v.name, state: state.state, verdict: state.verdict, unitsNeeded: state.unitsNeeded })
    }
  }
  return { srm, metrics: out }
}

/** The experiment with its analysis attached (`GET /experiments`). */
export function withAnalysis (d: unknown): unknown {
  const ex = d as DescribedExperiment
  return { ...ex, analysis: analyseExperiment(ex) }
}
