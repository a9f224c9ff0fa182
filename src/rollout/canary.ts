import type { Config, ShadowConfig } from '../config/schema.js'
import { shadowLlmSchema } from '../config/llm-schema.js'
import type { CanaryConfig } from '../config/canary-schema.js'
import type { Metrics } from '../metrics/metrics.js'
import type { Logger } from '../log/logger.js'
import type { BackendSet } from '../upstream/backend-set.js'
import type { Backend } from '../upstream/backend.js'
import type { RuntimeState, ShadowEntry } from '../runtime/runtime-state.js'
import { ShadowRuntime } from '../shadow/shadow-runtime.js'
import { parseSampleBy } from '../shadow/sampler.js'
import { PenumbraError } from '../errors.js'
import { CanaryRoute, newArms, type CanaryArms } from './canary-route.js'
import { CanaryController, type CanaryIO } from './canary-controller.js'
import { CANARY_PHASES, type AccuracyCounts, type CanaryPhase, type CanaryState, type CanaryTotals } from './canary-engine.js'

/** The mirror targets' names: outside the shadow-name pattern, so they never collide with a configured shadow. */
export const CANARY_TO_BASELINE = 'canary:baseline'
export const CANARY_TO_CANDIDATE = 'canary:candidate'

/**
 * Online accuracy per model from ground truth (the feedback capability, issue #19: a model is a
 * backend by the name it serves under). Without one the accuracy gate is inconclusive: "no
 * ground truth yet".
 */
export interface AccuracySource {
  labelled (model: string): number
  correct (model: string): number
}

/** What the canary needs of the process: read-only views plus the one switch it may make. */
export interface CanaryHost {
  runtime: RuntimeState
  backends: BackendSet
  metrics: Metrics
  log: Logger
  /** Comparisons counted per target name (the comparison stage's reports). */
  comparisons: (target: string) => { match: number, mismatch: number }
  /** The blue/green switch, with its rollback. */
  switchPrimary: (backend: string, who: string) => Promise<unknown>
  /** The active primary's name. */
  primary: () => string
  /** Online accuracy per model from the feedback capability (#19): the accuracy gate's data. */
  accuracy?: AccuracySource
}

/** `PUT /canary/weight`'s body (the external controller's decision). */
export interface CanaryWeightRequest {
  weight: number
  phase?: CanaryPhase
  step?: number
  reason?: string
  summary?: string
  gates?: unknown[]
}

/**
 * The canary of one process: its arm counters, its two mirror targets, the routing it puts in
 * the runtime snapshot, and the controller that decides (or, with `controller: external`, is
 * told). The in-process CanaryIO.
 */
export class Canary implements CanaryIO {
  cfg: CanaryConfig
  readonly controller: CanaryController
  /** Where the accuracy gate reads labels (the host's feedback; null: the gate stays inconclusive). */
  accuracy: AccuracySource | null
  readonly #host: CanaryHost
  #arms: CanaryArms = newArms()
  #toBaseline!: ShadowRuntime
  #toCandidate!: ShadowRuntime
  #config: Config

  /** `driven`: a --workers worker whose canary the cluster primary decides (no decisions, no canary series here). */
  constructor (config: Config, host: CanaryHost, opts: { driven?: boolean } = {}) {
    this.#host = host
    this.accuracy = host.accuracy ?? null
    this.#config = config
    this.cfg = config.canary!
    this.#buildMirrors(config)
    const driven = opts.driven === true
    this.controller = new CanaryController(this.cfg, this, { log: host.log, metrics: driven ? null : host.metrics, autonomous: driven ? false : undefined })
    this.driven = driven
  }

  readonly driven: boolean

  /** The baseline backend: the configured one, or the active primary. */
  #baseline (): Backend {
    return this.#backend(this.cfg.baseline ?? this.#host.primary())
  }

  #backend (name: string): Backend {
    const b = this.#host.backends.get(name)
    if (b === undefined) throw new PenumbraError('PENUMBRA_CONFLICT', `canary: no backend named "${name}"`)
    return b
  }

  #buildMirrors (config: Config): void {
    const c = config.canary!
    const mk = (name: string, backend: string): ShadowRuntime => {
      const b = this.#backend(backend)
      const rt = new ShadowRuntime(mirrorConfig(name, backend, c), config.compare, this.#host.metrics, { pool: b.dispatcher, ownsPool: false, url: b.url })
      return rt
    }
    this.#toCandidate = mk(CANARY_TO_CANDIDATE, c.candidate)
    this.#toBaseline = mk(CANARY_TO_BASELINE, c.baseline ?? config.primary)
    // The baseline's answers to candidate-served requests are its arm at a 100% step.
    this.#toBaseline.observer = (r) => this.#arms.baselineMirror.recordCall(r)
  }

  /** A reloaded config: the mirrors are rebuilt (backends may be new); a changed canary restarts. */
  async reload (config: Config): Promise<void> {
    this.#config = config
    this.cfg = config.canary!
    this.#buildMirrors(config)
    await this.controller.reconfigure(this.cfg)
  }

  // -- CanaryIO --------------------------------------------------------------------------------

  async totals (): Promise<CanaryTotals> {
    const a = this.#arms
    const b = this.#host.comparisons(CANARY_TO_BASELINE)
    const c = this.#host.comparisons(CANARY_TO_CANDIDATE)
    return {
      candidate: a.candidate.totals(),
      baseline: a.baseline.totals(),
      baselineMirror: a.baselineMirror.totals(),
      comparisons: { compared: b.match + b.mismatch + c.match + c.mismatch, mismatches: b.mismatch + c.mismatch },
      accuracy: this.#accuracy()
    }
  }

  #accuracy (): AccuracyCounts | null {
    const src = this.accuracy
    if (src === null) return null
    const base = this.cfg.baseline ?? this.#host.primary()
    return {
      candidate: { labelled: src.labelled(this.cfg.candidate), correct: src.correct(this.cfg.candidate) },
      baseline: { labelled: src.labelled(base), correct: src.correct(base) }
    }
  }

  async apply (state: CanaryState): Promise<void> {
    const c = this.cfg
    const routes = state.phase === 'shadow' || state.phase === 'step' || state.phase === 'paused' || state.phase === 'completed'
    if (!routes) { this.#host.runtime.setCanary(null); return }
    const candidate = this.#backend(c.candidate)
    const baseline = this.#baseline()
    const inShadow = state.phase === 'shadow' || (state.phase === 'paused' && state.resumeTo?.phase === 'shadow')
    const mirrors: ShadowEntry[] = []
    if (inShadow) {
      mirrors.push({ target: this.#toCandidate, sampleRate: c.shadowFirst?.sampleRate ?? 1, enabled: true, servedBy: baseline })
    } else {
      mirrors.push({ target: this.#toBaseline, sampleRate: 1, enabled: true, servedBy: candidate })
      if (c.mirrorSampleRate > 0) mirrors.push({ target: this.#toCandidate, sampleRate: c.mirrorSampleRate, enabled: true, servedBy: baseline })
    }
    this.#host.runtime.setCanary(new CanaryRoute({
      name: c.candidate,
      weight: inShadow ? 0 : state.weight,
      unit: parseSampleBy(c.unit),
      match: c.match,
      candidate,
      baseline,
      arms: this.#arms,
      mirrors
    }))
  }

  async promote (): Promise<void> {
    // Nothing more is split once the candidate is the primary; the switch keeps its rollback.
    this.#host.runtime.setCanary(null)
    await this.#host.switchPrimary(this.cfg.candidate, 'canary')
  }

  // -- admin -----------------------------------------------------------------------------------

  status (): Record<string, unknown> {
    return { ...this.controller.status(), baseline: this.cfg.baseline ?? this.#host.primary() }
  }

  command (cmd: CanaryCommand, who: string): Promise<unknown> {
    const c = this.controller
    if (this.cfg.controller === 'external' && cmd !== 'abort' && cmd !== 'pause') {
      throw new PenumbraError('PENUMBRA_CONFLICT', 'canary.controller is external: `penumbra canary` drives this canary (only abort and pause are taken here, to stop it at once)')
    }
    switch (cmd) {
      case 'start': return c.start(who)
      case 'pause': return this.cfg.controller === 'external' ? c.set({ ...c.state, phase: 'paused', resumeTo: null, reason: `paused by ${who}` }, `paused by ${who}`, [], who) : c.pause(who)
      case 'resume': return c.resume(who)
      case 'abort': return this.cfg.controller === 'external' ? c.set({ phase: 'rolled_back', step: -1, weight: 0, holds: 0, resumeTo: null, reason: `aborted by ${who}` }, `aborted by ${who}`, [], who) : c.abort(who)
      case 'promote': return c.promote(who)
      case 'retry': return c.retry(who)
    }
  }

  /** `PUT /canary/weight` (controller: external). */
  setWeight (req: CanaryWeightRequest, who: string): Promise<unknown> {
    const c = this.controller
    const phase = req.phase ?? (req.weight > 0 ? 'step' : 'rolled_back')
    const step = req.step === undefined ? (phase === 'step' ? 0 : -1) : req.step - 1
    const state: CanaryState = { phase, step, weight: req.weight, holds: 0, resumeTo: null, reason: req.reason ?? null }
    return c.set(state, req.summary ?? `weight ${req.weight} set by ${who}`, (req.gates ?? []) as never[], who)
  }
}

export type CanaryCommand = 'start' | 'pause' | 'resume' | 'abort' | 'promote' | 'retry'
export const CANARY_COMMANDS: readonly CanaryCommand[] = ['start', 'pause', 'resume', 'abort', 'promote', 'retry']
export { CANARY_PHASES }

/** A mirror target of the canary, as a shadow with the canary's match rules and a named backend. */
function mirrorConfig (name: string, backend: string, c: CanaryConfig): ShadowConfig {
  return {
    name,
    backend,
    url: undefined,
    enabled: true,
    sampleRate: 1,
    sampleBy: 'random',
    match: { methods: c.match.methods, paths: c.match.paths },
    timeoutMs: c.mirrorTimeoutMs,
    connectTimeoutMs: 2000,
    maxConcurrency: 64,
    connections: undefined,
    maxBodyBytes: 1024 * 1024,
    maxResponseBytes: 4 * 1024 * 1024,
    headers: { set: {}, remove: [] },
    rewrite: undefined,
    compare: undefined,
    // The LLM rules as for any shadow: stateful calls are not copied (llm.mirrorStateful).
    llm: shadowLlmSchema.parse({})
  }
}
