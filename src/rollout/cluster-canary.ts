import type { CanaryConfig } from '../config/canary-schema.js'
import type { CanaryIO } from './canary-controller.js'
import { emptyTotals, type ArmTotals, type CanaryState, type CanaryTotals } from './canary-engine.js'
import { LatencyHistogram } from '../stats/latency-histogram.js'
import { PenumbraError } from '../errors.js'

/** One worker's answer to an admin op (cluster IPC). */
interface Answer { ok: boolean, value?: unknown, error?: { message: string } }

/**
 * `--workers N` with `canary.controller: internal`: the controller runs in the cluster primary;
 * this IO sums the workers' cumulative counters (`canaryTotals`) and tells every worker how to
 * route (`canaryApply`). A worker that does not answer leaves its counters out of that read
 * (counted again at the next one: the totals are cumulative).
 */
export class ClusterCanaryIO implements CanaryIO {
  readonly #ask: (op: 'canaryTotals' | 'canaryApply', args?: unknown) => Promise<Answer[]>
  readonly #switch: (backend: string, who: string) => Promise<unknown>
  cfg: CanaryConfig

  constructor (cfg: CanaryConfig, ask: (op: 'canaryTotals' | 'canaryApply', args?: unknown) => Promise<Answer[]>, switchPrimary: (backend: string, who: string) => Promise<unknown>) {
    this.cfg = cfg
    this.#ask = ask
    this.#switch = switchPrimary
  }

  async totals (): Promise<CanaryTotals> {
    const answers = (await this.#ask('canaryTotals')).filter((a) => a.ok).map((a) => a.value as CanaryTotals)
    if (answers.length === 0) throw new Error('no worker answered with its canary counters')
    const sum = emptyTotals(LatencyHistogram.upperBounds())
    const add = (to: ArmTotals, from: ArmTotals): void => {
      to.requests += from.requests
      to.errors += from.errors
      const c = to.latency.counts as number[]
      from.latency.counts.forEach((v, i) => { c[i] = (c[i] ?? 0) + v })
    }
    for (const t of answers) {
      add(sum.candidate, t.candidate)
      add(sum.baseline, t.baseline)
      add(sum.baselineMirror, t.baselineMirror)
      sum.comparisons.compared += t.comparisons.compared
      sum.comparisons.mismatches += t.comparisons.mismatches
      // Each worker counts the labels joined to the predictions it made: the sums are the fleet's.
      if (t.accuracy !== null) {
        const a = sum.accuracy ??= { candidate: { labelled: 0, correct: 0 }, baseline: { labelled: 0, correct: 0 } }
        a.candidate.labelled += t.accuracy.candidate.labelled
        a.candidate.correct += t.accuracy.candidate.correct
        a.baseline.labelled += t.accuracy.baseline.labelled
        a.baseline.correct += t.accuracy.baseline.correct
      }
    }
    return sum
  }

  async apply (state: CanaryState): Promise<void> {
    const answers = await this.#ask('canaryApply', state)
    const failed = answers.filter((a) => !a.ok)
    if (answers.length === 0 || failed.length > 0) throw new PenumbraError('PENUMBRA_WORKER_UNAVAILABLE', `the canary state reached ${answers.length - failed.length} of ${answers.length} workers${failed.length > 0 ? ` (${failed[0]!.error?.message ?? 'failed'})` : ''}`)
  }

  async promote (): Promise<void> {
    await this.#switch(this.cfg.candidate, 'canary')
  }
}
