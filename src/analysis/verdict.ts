/**
 * Turns a comparison into a decision: pass, fail, inconclusive or no data. The decision is always
 * made from an interval (by default the always-valid one, so it may be taken at every look) and
 * carries everything needed to explain it: n per arm, the estimate, the interval, the test, the
 * rule in words and the p-value. No data never passes and never fails.
 */
import type { ArmCounts, Comparison, Interval } from './comparison.js'
import { sequentialMultiplier, sequentialParams, sequentialPValue, type SequentialOptions } from './sequential.js'

/** The four outcomes of a verdict. */
export type VerdictKind = 'pass' | 'fail' | 'inconclusive' | 'no_data'

/**
 * What decides, on the comparison's scale (difference, relative lift or ratio):
 * - `at_most`: the effect must stay ≤ `limit` (canary error-rate increase, latency ratio):
 *   fail when the interval's lower bound is above it, pass when its upper bound is below it.
 * - `at_least`: the effect must stay ≥ `limit` (accuracy drop as `-maxDrop`): fail when the upper
 *   bound is below it, pass when the lower bound is above it.
 * - `better`: superiority against no effect (experiments): pass when the interval excludes no
 *   effect on the better side (`higher` or `lower` is better), fail when on the worse side.
 */
export type Rule =
  | { kind: 'at_most', limit: number }
  | { kind: 'at_least', limit: number }
  | { kind: 'better', direction: 'higher' | 'lower' }

/** Options of a verdict. */
export interface VerdictOptions extends SequentialOptions {
  /** Below this many units in either arm the verdict is `no_data`. Default 1. */
  minPerArm?: number
  /** Decide on the always-valid interval (default) or the fixed-horizon one (`false`). */
  sequential?: boolean
}

/** A decision with its evidence. */
export interface Verdict {
  verdict: VerdictKind
  n: ArmCounts
  /** The comparison's estimate (NaN when not computable). */
  estimate: number
  /** The interval that decided (always-valid unless `sequential: false`). */
  interval: Interval
  /** The fixed-horizon interval at the same α, shown beside it. */
  fixedInterval: Interval
  /** The comparison's test, e.g. `welch-t`. */
  test: string
  /** The rule in words. */
  rule: string
  /**
   * The p-value (always-valid unless `sequential: false`) of "the effect equals the rule's bound"
   * (the limit, or no effect for `better`): pass or fail exactly when pValue ≤ alpha.
   */
  pValue: number
  /** The fixed-horizon p-value of the same hypothesis. */
  fixedPValue: number
  alpha: number
  sequential: boolean
  /** Standard error of the estimate (of its log for ratios), NaN when unknown. */
  standardError: number
  /** One sentence saying why. */
  reason: string
}

function ruleBound (rule: Rule, comparison: Comparison): number {
  return rule.kind === 'better' ? comparison.noEffect : rule.limit
}

function describeRule (rule: Rule, comparison: Comparison, alpha: number, sequential: boolean, minPerArm: number): string {
  const iv = `${fmt((1 - alpha) * 100)}% ${sequential ? 'always-valid' : 'fixed-horizon'} interval of ${comparison.test}`
  const nd = `; below ${minPerArm} per arm: no_data`
  switch (rule.kind) {
    case 'at_most': return `fail if the ${iv} lies above ${rule.limit}, pass if it lies below, else inconclusive${nd}`
    case 'at_least': return `fail if the ${iv} lies below ${rule.limit}, pass if it lies above, else inconclusive${nd}`
    case 'better': return `pass if the ${iv} excludes ${comparison.noEffect} on the ${rule.direction} side, fail if on the other, else inconclusive${nd}`
  }
}

function fmt (x: number): string {
  return Number(x.toPrecision(6)).toString()
}

/**
 * Decides a comparison against a rule.
 *
 * @throws {RangeError} on invalid α, tuningN or minPerArm.
 */
export function decide (comparison: Comparison, rule: Rule, options: VerdictOptions = {}): Verdict {
  const { alpha, tuningN } = sequentialParams(options)
  const sequential = options.sequential ?? true
  const minPerArm = options.minPerArm ?? 1
  if (!(minPerArm >= 1) || !Number.isFinite(minPerArm)) throw new RangeError(`minPerArm must be >= 1, got ${minPerArm}`)
  if (!Number.isFinite(ruleBound(rule, comparison))) throw new RangeError('the rule\'s limit must be finite')
  const seq = { alpha, tuningN }
  const { n } = comparison
  const total = n.control + n.treatment
  const bound = ruleBound(rule, comparison)
  const text = describeRule(rule, comparison, alpha, sequential, minPerArm)
  const base = {
    n: { ...n },
    estimate: comparison.estimate,
    test: comparison.test,
    rule: text,
    alpha,
    sequential,
    standardError: comparison.standardError
  }
  if (n.control < minPerArm || n.treatment < minPerArm) {
    const nan = { lower: NaN, upper: NaN }
    return { ...base, verdict: 'no_data', interval: nan, fixedInterval: nan, pValue: NaN, fixedPValue: NaN, reason: `n = ${n.treatment}/${n.control} (treatment/control), below the minimum of ${minPerArm} per arm` }
  }
  const fixedInterval = comparison.intervalAt(comparison.fixedMultiplier(alpha))
  const seqInterval = comparison.intervalAt(sequentialMultiplier(total, seq))
  const m = comparison.multiplierAt(bound)
  const fixedPValue = comparison.fixedPValue(m)
  const seqPValue = sequentialPValue(m, total, seq)
  const interval = sequential ? seqInterval : fixedInterval
  const pValue = sequential ? seqPValue : fixedPValue
  const finite = Number.isFinite(interval.lower) && Number.isFinite(interval.upper) && !Number.isNaN(comparison.estimate)
  const verdict: Verdict = { ...base, verdict: 'inconclusive', interval, fixedInterval, pValue, fixedPValue, reason: '' }
  if (!finite) {
    verdict.reason = 'the interval cannot be computed from these data (e.g. fewer than two units, or a zero baseline)'
    return verdict
  }
  const above = interval.lower > bound
  const below = interval.upper < bound
  const iv = `[${fmt(interval.lower)}, ${fmt(interval.upper)}]`
  switch (rule.kind) {
    case 'at_most':
      verdict.verdict = above ? 'fail' : below ? 'pass' : 'inconclusive'
      break
    case 'at_least':
      verdict.verdict = below ? 'fail' : above ? 'pass' : 'inconclusive'
      break
    case 'better': {
      const better = rule.direction === 'higher' ? above : below
      const worse = rule.direction === 'higher' ? below : above
      verdict.verdict = better ? 'pass' : worse ? 'fail' : 'inconclusive'
    }
  }
  const where = above ? `lies above ${fmt(bound)}` : below ? `lies below ${fmt(bound)}` : `contains ${fmt(bound)}`
  verdict.reason = `estimate ${fmt(comparison.estimate)}, interval ${iv} ${where} (n = ${n.treatment}/${n.control})`
  return verdict
}
