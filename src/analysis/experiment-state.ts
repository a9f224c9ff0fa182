/**
 * The state of one experiment metric (#17), from a `better` verdict decided with
 * `minPerArm` = the experiment's minimum units per arm, the experiment's SRM check, and minEffect:
 * srm withholds everything; below the minimum it is collecting; otherwise the verdict's interval
 * says treatment_better / treatment_worse, no_difference (inside ±minEffect), or inconclusive
 * with the units still needed to resolve minEffect at the requested power.
 */
import { unitsStillNeeded, type UnitsNeeded } from './sample-size.js'
import type { SrmResult } from './srm.js'
import type { Verdict } from './verdict.js'

/** The states of an experiment metric. */
export type ExperimentState = 'collecting' | 'inconclusive' | 'treatment_better' | 'treatment_worse' | 'no_difference' | 'srm'

/** A metric's state with what decided it. */
export interface ExperimentMetricState {
  state: ExperimentState
  verdict: Verdict
  /** For `inconclusive` (and `collecting` once a standard error exists): the units still needed. */
  unitsNeeded: UnitsNeeded | null
}

/**
 * @param verdict from `decide(comparison, { kind: 'better', direction }, { minPerArm, alpha, tuningN })`
 * @param minEffect on the verdict's scale (absolute for binary metrics, relative for means)
 * @param noEffect the scale's no-effect value: 0 for differences, 1 for ratios (`no_difference`
 *   is an interval inside noEffect ± minEffect)
 */
export function experimentMetricState (verdict: Verdict, minEffect: number, srm: SrmResult | null, power = 0.8, noEffect = 0): ExperimentMetricState {
  if (!(minEffect > 0) || !Number.isFinite(minEffect)) throw new RangeError(`minEffect must be > 0, got ${minEffect}`)
  const total = verdict.n.control + verdict.n.treatment
  const needed = (): UnitsNeeded => unitsStillNeeded(verdict.standardError, total, minEffect, { alpha: verdict.alpha, power })
  if (srm?.mismatch === true) return { state: 'srm', verdict, unitsNeeded: null }
  if (verdict.verdict === 'no_data') {
    return { state: 'collecting', verdict, unitsNeeded: Number.isFinite(verdict.standardError) ? needed() : null }
  }
  if (verdict.verdict === 'pass') return { state: 'treatment_better', verdict, unitsNeeded: null }
  if (verdict.verdict === 'fail') return { state: 'treatment_worse', verdict, unitsNeeded: null }
  const { lower, upper } = verdict.interval
  if (lower > noEffect - minEffect && upper < noEffect + minEffect) return { state: 'no_difference', verdict, unitsNeeded: null }
  return { state: 'inconclusive', verdict, unitsNeeded: needed() }
}
