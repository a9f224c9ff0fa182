/**
 * The canary decision engine (issue #18): pure, no I/O and no timers. Given the canary's state
 * and what was measured since the current step began, it returns the decision, every gate's
 * verdict in words (statistic, interval, n, threshold) and the next state. The in-process
 * controller, the `--workers`-free external controller (`penumbra canary`) and the tests all
 * run this same function, so they decide alike.
 *
 * Every gate is decided from an always-valid interval (analysis/verdict.ts: it may be read at
 * every interval without inflating the error rate), never from a bare rate: fail when the bad
 * side is established, pass when the interval sits inside the bound, inconclusive otherwise and
 * always below `minRequests` per arm. No data never passes and never fails.
 */
import type { CanaryConfig } from '../config/canary-schema.js'
import { compareProportions } from '../analysis/two-proportions.js'
import { compareQuantiles, sampleFromHistogram } from '../analysis/quantile-ratio.js'
import { decide, type Verdict } from '../analysis/verdict.js'
import { wilson } from '../analysis/wilson.js'
import { sequentialMultiplier } from '../analysis/sequential.js'

/** Latency as histogram buckets: upper bounds in ms (ascending) and per-bucket counts (not cumulative). */
export interface LatencyCounts {
  bounds: readonly number[]
  counts: readonly number[]
}

/** One arm's client-facing numbers (cumulative totals, or a step's difference of two). */
export interface ArmTotals {
  requests: number
  /** 5xx answers and upstream errors (a client that went away is neither). */
  errors: number
  latency: LatencyCounts
}

/** Labelled predictions and correct ones, per arm (the feedback capability). */
export interface AccuracyCounts {
  candidate: { labelled: number, correct: number }
  baseline: { labelled: number, correct: number }
}

/** Everything the gates read, as cumulative totals; a step is judged on `diffTotals(now, atStepStart)`. */
export interface CanaryTotals {
  /** Client requests the candidate answered. */
  candidate: ArmTotals
  /** Client requests the baseline answered. */
  baseline: ArmTotals
  /** Copies of candidate-served requests sent to the baseline: the baseline arm when no client is left on it (a 100% step). */
  baselineMirror: ArmTotals
  /** Candidate-vs-baseline comparisons of the same requests (both mirror directions). */
  comparisons: { compared: number, mismatches: number }
  /** Null: no ground-truth source is wired (the accuracy gate is then inconclusive). */
  accuracy: AccuracyCounts | null
}

/** The states of `GET /canary` (`step` is shown as "step k of n"). */
export type CanaryPhase = 'idle' | 'shadow' | 'step' | 'paused' | 'rolled_back' | 'promoted' | 'completed'
export const CANARY_PHASES: readonly CanaryPhase[] = ['idle', 'shadow', 'step', 'paused', 'rolled_back', 'promoted', 'completed']

/** The canary's state. Immutable: transitions return a new one. */
export interface CanaryState {
  phase: CanaryPhase
  /** Index into `steps` (-1 before the ramp: idle, shadow). */
  step: number
  /** Share of the split traffic on the candidate, 0..1. */
  weight: number
  /** Inconclusive analyses in the current step (or shadow phase). */
  holds: number
  /** While paused: where `resume` goes back to. */
  resumeTo: { phase: 'shadow' | 'step', step: number } | null
  /** Why the canary is where it is (rolled back on which gate, paused after how many holds …). */
  reason: string | null
}

export type GateResult = 'pass' | 'fail' | 'inconclusive'
export const GATE_RESULTS: readonly GateResult[] = ['pass', 'fail', 'inconclusive']

/** One gate's verdict, with the evidence and one sentence saying it. */
export interface GateVerdict {
  gate: string
  result: GateResult
  /** E.g. "errorRate: fail — candidate 4.1% vs baseline 0.9% (difference 3.2%, 95% always-valid CI [2.1%, 4.4%], n = 812/790), above maxIncrease 1%". */
  text: string
  /** The statistic (a difference, a ratio, a rate); null when not computable. */
  estimate: number | null
  interval: { lower: number, upper: number } | null
  n: { candidate: number, baseline: number }
  /** The configured bound. */
  threshold: number
  test: string
  rule: string
}

export type CanaryAction = 'advance' | 'hold' | 'rollback' | 'promote' | 'complete' | 'pause'

/** One analysis: what was decided, on which gates, from where to where. */
export interface CanaryDecision {
  action: CanaryAction
  from: { phase: CanaryPhase, step: number, weight: number }
  to: CanaryState
  gates: GateVerdict[]
  /** One line: the action and why. */
  summary: string
}

export const IDLE: CanaryState = { phase: 'idle', step: -1, weight: 0, holds: 0, resumeTo: null, reason: null }

/** "step 2 of 5", "shadow", "rolled_back" … (`GET /canary` state). */
export function describePhase (cfg: CanaryConfig, s: CanaryState): string {
  return s.phase === 'step' ? `step ${s.step + 1} of ${cfg.steps.length}` : s.phase
}

/** The weight of step i (0..1). */
export function stepWeight (cfg: CanaryConfig, i: number): number {
  return cfg.steps[i]! / 100
}

/** The first state of a run: the shadow phase when configured, else step 1. */
export function startState (cfg: CanaryConfig): CanaryState {
  if (cfg.shadowFirst !== null) return { phase: 'shadow', step: -1, weight: 0, holds: 0, resumeTo: null, reason: null }
  return { phase: 'step', step: 0, weight: stepWeight(cfg, 0), holds: 0, resumeTo: null, reason: null }
}

/** Running (analysed every interval): shadow or a step. */
export function isRunning (s: CanaryState): boolean {
  return s.phase === 'shadow' || s.phase === 'step'
}

/** Rollback: the candidate's weight is 0 at once. */
export function rolledBack (reason: string): CanaryState {
  return { phase: 'rolled_back', step: -1, weight: 0, holds: 0, resumeTo: null, reason }
}

/** Pause: the weight stays where it is; nothing is analysed until resume. */
export function paused (s: CanaryState, reason: string): CanaryState {
  if (!isRunning(s)) return s
  return { ...s, phase: 'paused', resumeTo: { phase: s.phase as 'shadow' | 'step', step: s.step }, reason }
}

/** Resume: back to the paused step with its hold count reset (the analysis restarts there). */
export function resumed (s: CanaryState): CanaryState {
  if (s.phase !== 'paused' || s.resumeTo === null) return s
  return { ...s, phase: s.resumeTo.phase, step: s.resumeTo.step, holds: 0, resumeTo: null, reason: null }
}

/** Subtracts the totals at a step's start from the totals now (a counter reset reads as 0). */
export function diffTotals (now: CanaryTotals, mark: CanaryTotals | null): CanaryTotals {
  if (mark === null) return now
  const d = (a: number, b: number): number => Math.max(0, a - b)
  const arm = (a: ArmTotals, b: ArmTotals): ArmTotals => ({
    requests: d(a.requests, b.requests),
    errors: d(a.errors, b.errors),
    latency: { bounds: a.latency.bounds, counts: a.latency.counts.map((c, i) => d(c, b.latency.counts[i] ?? 0)) }
  })
  return {
    candidate: arm(now.candidate, mark.candidate),
    baseline: arm(now.baseline, mark.baseline),
    baselineMirror: arm(now.baselineMirror, mark.baselineMirror),
    comparisons: { compared: d(now.comparisons.compared, mark.comparisons.compared), mismatches: d(now.comparisons.mismatches, mark.comparisons.mismatches) },
    accuracy: now.accuracy === null
      ? null
      : {
          candidate: { labelled: d(now.accuracy.candidate.labelled, mark.accuracy?.candidate.labelled ?? 0), correct: d(now.accuracy.candidate.correct, mark.accuracy?.candidate.correct ?? 0) },
          baseline: { labelled: d(now.accuracy.baseline.labelled, mark.accuracy?.baseline.labelled ?? 0), correct: d(now.accuracy.baseline.correct, mark.accuracy?.baseline.correct ?? 0) }
        }
  }
}

/** Empty totals over the given latency bounds. */
export function emptyTotals (bounds: readonly number[]): CanaryTotals {
  const arm = (): ArmTotals => ({ requests: 0, errors: 0, latency: { bounds, counts: bounds.map(() => 0) } })
  return { candidate: arm(), baseline: arm(), baselineMirror: arm(), comparisons: { compared: 0, mismatches: 0 }, accuracy: null }
}

// -- formatting ------------------------------------------------------------------------------

function pct (x: number): string {
  if (!Number.isFinite(x)) return String(x)
  const v = x * 100
  return `${Number(v.toFixed(Math.abs(v) < 10 ? 2 : 1))}%`
}

function num (x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(3))) : String(x)
}

function ms (x: number | null): string {
  return x === null ? '-' : `${Number(x.toPrecision(3))} ms`
}

function ci (alpha: number): string {
  return `${Number(((1 - alpha) * 100).toPrecision(4))}% always-valid CI`
}

// -- gates -----------------------------------------------------------------------------------

interface GateContext {
  cfg: CanaryConfig
  /** Per-arm minimum before a gate may decide. */
  min: number
  alpha: number
  tuningN: number
}

function fromVerdict (v: Verdict): GateResult {
  return v.verdict === 'pass' ? 'pass' : v.verdict === 'fail' ? 'fail' : 'inconclusive'
}

function side (result: GateResult, bound: string): string {
  if (result === 'fail') return `above ${bound}`
  if (result === 'pass') return `within ${bound}`
  return `the interval contains ${bound}: not established either way`
}

function belowMin (gate: string, nc: number, nb: number, min: number, what: string): string {
  return `${gate}: inconclusive — n = ${nc}/${nb} (candidate/baseline), below ${what} ${min} per arm (no data never passes)`
}

function errorRateGate (ctx: GateContext, cand: ArmTotals, base: ArmTotals, maxIncrease: number): GateVerdict {
  const c = compareProportions({ successes: Math.min(base.errors, base.requests), n: base.requests }, { successes: Math.min(cand.errors, cand.requests), n: cand.requests })
  const v = decide(c, { kind: 'at_most', limit: maxIncrease }, { alpha: ctx.alpha, tuningN: ctx.tuningN, minPerArm: ctx.min })
  const result = fromVerdict(v)
  const n = { candidate: cand.requests, baseline: base.requests }
  const bound = `maxIncrease ${pct(maxIncrease)}`
  const text = v.verdict === 'no_data'
    ? belowMin('errorRate', n.candidate, n.baseline, ctx.min, 'minRequests')
    : `errorRate: ${result} — candidate ${pct(c.treatmentRate)} vs baseline ${pct(c.controlRate)} (difference ${pct(c.estimate)}, ${ci(ctx.alpha)} [${pct(v.interval.lower)}, ${pct(v.interval.upper)}], n = ${n.candidate}/${n.baseline}), ${side(result, bound)}`
  return { gate: 'errorRate', result, text, estimate: c.estimate, interval: v.verdict === 'no_data' ? null : v.interval, n, threshold: maxIncrease, test: c.test, rule: v.rule }
}

function latencyGate (ctx: GateContext, cand: ArmTotals, base: ArmTotals, q: number, limit: number): GateVerdict {
  const gate = q === 0.99 ? 'latency.p99' : 'latency.p50'
  const key = q === 0.99 ? 'p99Ratio' : 'p50Ratio'
  const sc = sampleFromHistogram(cand.latency.bounds, cand.latency.counts)
  const sb = sampleFromHistogram(base.latency.bounds, base.latency.counts)
  const c = compareQuantiles(sb, sc, q, { alpha: ctx.alpha })
  const v = decide(c, { kind: 'at_most', limit }, { alpha: ctx.alpha, tuningN: ctx.tuningN, minPerArm: ctx.min })
  const result = fromVerdict(v)
  const n = { candidate: c.n.treatment, baseline: c.n.control }
  const p = q === 0.99 ? 'p99' : 'p50'
  let text: string
  if (v.verdict === 'no_data') text = belowMin(gate, n.candidate, n.baseline, ctx.min, 'minRequests')
  else if (!Number.isFinite(v.interval.lower) || !Number.isFinite(v.interval.upper)) text = `${gate}: inconclusive — candidate ${p} ${ms(c.treatmentQuantile)} vs baseline ${p} ${ms(c.controlQuantile)}: the ratio's interval cannot be computed from these data (n = ${n.candidate}/${n.baseline})`
  else text = `${gate}: ${result} — candidate ${p} ${ms(c.treatmentQuantile)} vs baseline ${p} ${ms(c.controlQuantile)} (ratio ${num(c.estimate)}, ${ci(ctx.alpha)} [${num(v.interval.lower)}, ${num(v.interval.upper)}], n = ${n.candidate}/${n.baseline}), ${side(result, `${key} ${limit}`)}`
  return { gate, result, text, estimate: Number.isFinite(c.estimate) ? c.estimate : null, interval: v.verdict === 'no_data' ? null : v.interval, n, threshold: limit, test: c.test, rule: v.rule }
}

function disagreementGate (ctx: GateContext, cmp: { compared: number, mismatches: number }, max: number, min: number, minName: string): GateVerdict {
  const n = cmp.compared
  const k = Math.min(cmp.mismatches, n)
  const rule = `fail if the ${ci(ctx.alpha)} (Wilson score at the sequential multiplier) of the disagreement rate lies above ${max}, pass if it lies below, else inconclusive; below ${min} comparisons: inconclusive`
  const counts = { candidate: n, baseline: n }
  if (n < min) {
    return { gate: 'disagreement', result: 'inconclusive', text: `disagreement: inconclusive — ${n} compared predictions, below ${minName} ${min} (no data never passes)`, estimate: n === 0 ? null : k / n, interval: null, n: counts, threshold: max, test: 'wilson', rule }
  }
  const w = wilson(k, n, sequentialMultiplier(n, { alpha: ctx.alpha, tuningN: ctx.tuningN }))
  const result: GateResult = w.lower > max ? 'fail' : w.upper < max ? 'pass' : 'inconclusive'
  const text = `disagreement: ${result} — ${pct(w.rate)} of ${n} compared predictions differ (${k} of ${n}, ${ci(ctx.alpha)} [${pct(w.lower)}, ${pct(w.upper)}]), ${side(result, `max ${pct(max)}`)}`
  return { gate: 'disagreement', result, text, estimate: w.rate, interval: { lower: w.lower, upper: w.upper }, n: counts, threshold: max, test: 'wilson', rule }
}

function accuracyGate (ctx: GateContext, acc: AccuracyCounts | null, maxDrop: number): GateVerdict {
  const rule = `fail if the ${ci(ctx.alpha)} of candidate − baseline accuracy lies below -${maxDrop}, pass if it lies above, else inconclusive`
  if (acc === null) {
    return { gate: 'accuracy', result: 'inconclusive', text: 'accuracy: inconclusive — no ground truth yet (no feedback source is wired: a configured accuracy gate never passes on no data)', estimate: null, interval: null, n: { candidate: 0, baseline: 0 }, threshold: maxDrop, test: 'newcombe-diff', rule }
  }
  const c = compareProportions({ successes: Math.min(acc.baseline.correct, acc.baseline.labelled), n: acc.baseline.labelled }, { successes: Math.min(acc.candidate.correct, acc.candidate.labelled), n: acc.candidate.labelled })
  const v = decide(c, { kind: 'at_least', limit: -maxDrop }, { alpha: ctx.alpha, tuningN: ctx.tuningN, minPerArm: ctx.min })
  const result = fromVerdict(v)
  const n = { candidate: acc.candidate.labelled, baseline: acc.baseline.labelled }
  const bound = `maxDrop ${pct(maxDrop)}`
  const where = result === 'fail' ? `a drop beyond ${bound}` : result === 'pass' ? `within ${bound}` : `the interval contains -${pct(maxDrop)}: not established either way`
  const text = v.verdict === 'no_data'
    ? belowMin('accuracy', n.candidate, n.baseline, ctx.min, 'minRequests labelled')
    : `accuracy: ${result} — candidate ${pct(c.treatmentRate)} vs baseline ${pct(c.controlRate)} (difference ${pct(c.estimate)}, ${ci(ctx.alpha)} [${pct(v.interval.lower)}, ${pct(v.interval.upper)}], n = ${n.candidate}/${n.baseline} labelled), ${where}`
  return { gate: 'accuracy', result, text, estimate: c.estimate, interval: v.verdict === 'no_data' ? null : v.interval, n, threshold: maxDrop, test: c.test, rule: v.rule }
}

/** The gates of the current phase, each decided on `inputs` (a step's numbers). */
export function evaluateGates (cfg: CanaryConfig, state: CanaryState, inputs: CanaryTotals): GateVerdict[] {
  // N* (where the always-valid interval is tightest) at the planned size of a step: both arms at minRequests.
  const ctx: GateContext = { cfg, min: cfg.minRequests, alpha: cfg.alpha, tuningN: 2 * cfg.minRequests }
  const g = cfg.gates
  if (state.phase === 'shadow') {
    const min = cfg.shadowFirst?.minComparisons ?? cfg.minRequests
    const shadowCtx = { ...ctx, tuningN: min }
    if (g.disagreement !== undefined) return [disagreementGate(shadowCtx, inputs.comparisons, g.disagreement.max, min, 'shadowFirst.minComparisons')]
    // No disagreement gate: the shadow phase only makes sure the candidate answers comparably often.
    const n = inputs.comparisons.compared
    const result: GateResult = n >= min ? 'pass' : 'inconclusive'
    return [{ gate: 'comparisons', result, text: `comparisons: ${result} — ${n} compared predictions, ${n >= min ? 'at least' : 'below'} shadowFirst.minComparisons ${min}`, estimate: n, interval: null, n: { candidate: n, baseline: n }, threshold: min, test: 'count', rule: `pass once ${min} mirrored requests were compared` }]
  }
  const full = state.weight >= 1
  // At 100% no client is left on the baseline: its arm is the copies of the candidate's requests.
  const base = full ? inputs.baselineMirror : inputs.baseline
  const out: GateVerdict[] = []
  if (g.errorRate !== undefined) out.push(errorRateGate(ctx, inputs.candidate, base, g.errorRate.maxIncrease))
  if (g.latency?.p99Ratio !== undefined) out.push(latencyGate(ctx, inputs.candidate, base, 0.99, g.latency.p99Ratio))
  if (g.latency?.p50Ratio !== undefined) out.push(latencyGate(ctx, inputs.candidate, base, 0.5, g.latency.p50Ratio))
  if (g.disagreement !== undefined) out.push(disagreementGate(ctx, inputs.comparisons, g.disagreement.max, cfg.minRequests, 'minRequests'))
  if (g.accuracy !== undefined) out.push(accuracyGate(ctx, inputs.accuracy, g.accuracy.maxDrop))
  return out
}

/**
 * One analysis of a running canary. Any gate fails → rollback (weight 0 at once); all pass →
 * the next step (from the shadow phase: step 1), or at the last step promote (`onSuccess:
 * promote`) or stay there (`hold` → completed); otherwise hold, and after `maxHolds`
 * inconclusive analyses fail (rollback) or pause, as `onMaxHolds` says. A state that is not
 * running is returned unchanged with action `hold`.
 */
export function analyse (cfg: CanaryConfig, state: CanaryState, inputs: CanaryTotals): CanaryDecision {
  const from = { phase: state.phase, step: state.step, weight: state.weight }
  const where = describePhase(cfg, state)
  if (!isRunning(state)) return { action: 'hold', from, to: state, gates: [], summary: `${where}: not running, nothing analysed` }
  const gates = evaluateGates(cfg, state, inputs)
  const failed = gates.filter((v) => v.result === 'fail')
  if (failed.length > 0) {
    const reason = `${where}: ${failed.map((v) => v.gate).join(', ')} failed — ${failed[0]!.text}`
    return { action: 'rollback', from, to: rolledBack(reason), gates, summary: `rollback: ${reason}` }
  }
  if (gates.every((v) => v.result === 'pass')) {
    const next = state.phase === 'shadow' ? 0 : state.step + 1
    if (next < cfg.steps.length) {
      const to: CanaryState = { phase: 'step', step: next, weight: stepWeight(cfg, next), holds: 0, resumeTo: null, reason: null }
      return { action: 'advance', from, to, gates, summary: `advance: ${where} passed every gate; now step ${next + 1} of ${cfg.steps.length} (${cfg.steps[next]}%)` }
    }
    if (cfg.onSuccess === 'promote') {
      const to: CanaryState = { phase: 'promoted', step: state.step, weight: state.weight, holds: 0, resumeTo: null, reason: `${where} passed every gate: promoted` }
      return { action: 'promote', from, to, gates, summary: `promote: ${where} (${cfg.steps[state.step]}%) passed every gate; the candidate becomes the primary` }
    }
    const to: CanaryState = { ...state, phase: 'completed', holds: 0, reason: `${where} passed every gate; onSuccess: hold keeps it at ${cfg.steps[state.step]}%` }
    return { action: 'complete', from, to, gates, summary: `complete: ${where} passed every gate; held at ${cfg.steps[state.step]}% (onSuccess: hold)` }
  }
  const holds = state.holds + 1
  const pending = gates.filter((v) => v.result === 'inconclusive').map((v) => v.gate).join(', ')
  if (holds >= cfg.maxHolds) {
    const reason = `${where}: inconclusive ${holds} times (maxHolds ${cfg.maxHolds}) on ${pending}`
    if (cfg.onMaxHolds === 'pause') {
      const to = paused({ ...state, holds }, reason)
      return { action: 'pause', from, to, gates, summary: `pause: ${reason}` }
    }
    return { action: 'rollback', from, to: rolledBack(reason), gates, summary: `rollback: ${reason}` }
  }
  return { action: 'hold', from, to: { ...state, holds }, gates, summary: `hold: ${where} inconclusive on ${pending} (${holds} of maxHolds ${cfg.maxHolds})` }
}
