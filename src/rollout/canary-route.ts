import type { IncomingMessage } from 'node:http'
import type { Backend } from '../upstream/backend.js'
import type { Route } from '../experiments/experiment.js'
import type { ShadowEntry } from '../runtime/runtime-state.js'
import type { CallResult } from '../compare/job-record.js'
import { LatencyHistogram } from '../stats/latency-histogram.js'
import { compilePathGlob, sampleKey, StickyHash, type SampleBy } from '../shadow/sampler.js'
import type { ArmTotals } from './canary-engine.js'

/**
 * One arm's counters in this process: requests, errors (5xx and upstream errors) and a latency
 * histogram, cumulative over a run (the controller judges a step on the difference since it
 * began). Plain numbers: counted once per request on the exchange's end.
 */
export class ArmCounter {
  requests = 0
  errors = 0
  readonly latency = new LatencyHistogram()

  /** A client exchange this arm answered (`status` as counted: 499 when the client went away). */
  record (status: number, upstreamMs: number, errorReason: string | null): void {
    // A client that went away, or a request penumbra could not forward, says nothing about the model.
    if (status === 499 || errorReason === 'aborted' || errorReason === 'bad_request') return
    this.requests++
    if (status >= 500 || errorReason !== null) this.errors++
    else if (upstreamMs >= 0) this.latency.observe(upstreamMs)
  }

  /** A mirrored call's result (the baseline's copies of candidate-served requests). */
  recordCall (r: CallResult): void {
    this.requests++
    if (r.outcome !== 'ok' || (r.response !== null && r.response.status >= 500)) this.errors++
    else this.latency.observe(r.durationMs)
  }

  totals (): ArmTotals {
    return { requests: this.requests, errors: this.errors, latency: { bounds: LatencyHistogram.upperBounds(), counts: this.latency.toJSON() } }
  }
}

/** The three arms of one run. */
export interface CanaryArms {
  candidate: ArmCounter
  baseline: ArmCounter
  baselineMirror: ArmCounter
}

export function newArms (): CanaryArms {
  return { candidate: new ArmCounter(), baseline: new ArmCounter(), baselineMirror: new ArmCounter() }
}

/**
 * The canary as the request path sees it, in the runtime snapshot (replaced, never changed):
 * which requests it splits, the candidate's weight, the two routes (each carrying its arm's
 * counter) and the mirrors that feed the disagreement gate. Built by the canary when its weight
 * or phase changes.
 */
export class CanaryRoute {
  readonly name: string
  /** Share of the split requests on the candidate, 0..1. */
  readonly weight: number
  readonly candidate: Route
  readonly baseline: Route
  /** Mirrors of this phase: each copies the requests its `servedBy` backend answered. */
  readonly mirrors: readonly ShadowEntry[]
  readonly #unit: SampleBy
  readonly #hash: StickyHash
  readonly #methods: Set<string>
  readonly #paths: RegExp[] | null

  constructor (init: { name: string, weight: number, unit: SampleBy, match: { methods: string[], paths: string[] }, candidate: Backend, baseline: Backend, arms: CanaryArms, mirrors: readonly ShadowEntry[] }) {
    this.name = init.name
    this.weight = init.weight
    this.#unit = init.unit
    // One salt per candidate, independent of the weight: a unit's draw never changes, so a unit on
    // the candidate at weight w (draw < w) stays there at every w' > w.
    this.#hash = new StickyHash(`canary:${init.name}`)
    this.#methods = new Set(init.match.methods)
    this.#paths = init.match.paths.includes('/**') ? null : init.match.paths.map(compilePathGlob)
    this.candidate = { backend: init.candidate, experiment: null, variant: null, header: null, exposure: null, canary: init.arms.candidate }
    this.baseline = { backend: init.baseline, experiment: null, variant: null, header: null, exposure: null, canary: init.arms.baseline }
    this.mirrors = init.mirrors
  }

  /** The route of a request the canary splits, or null when it is not the canary's. */
  pick (req: IncomingMessage, method: string, path: string): Route | null {
    if (!this.#methods.has(method)) return null
    const paths = this.#paths
    if (paths !== null) {
      let hit = false
      for (let i = 0; i < paths.length && !hit; i++) hit = paths[i]!.test(path)
      if (!hit) return null
    }
    if (this.weight <= 0) return this.baseline
    if (this.weight >= 1) return this.candidate
    let draw: number
    if (this.#unit.kind === 'random') draw = Math.random()
    else {
      const key = sampleKey(this.#unit, req)
      // Sticky mode: a request without the unit stays on the baseline (and is counted there).
      if (key === undefined || key === '') return this.baseline
      draw = this.#hash.of(key)
    }
    return draw < this.weight ? this.candidate : this.baseline
  }
}
