import type { Counter, Gauge } from 'prom-client'
import type { ChaosConfig, ChaosExperimentSpec } from '../config/chaos-schema.js'
import { targetProblem } from '../config/chaos-schema.js'
import { PenumbraError } from '../errors.js'
import type { Logger } from '../log/logger.js'
import { BlastRadius } from './blast-radius.js'
import { ChaosExperiment } from './chaos-experiment.js'

/** The metric series the registry keeps (`penumbra_faults_injected_total`, `penumbra_chaos_active`). */
export interface ChaosMetrics {
  faultsInjected: Counter<'experiment' | 'target' | 'kind'>
  chaosActive: Gauge<'experiment'>
}

/** Names the targets can refer to (backends, shadows), read at each start. */
export interface ChaosTargets {
  backends: () => readonly string[]
  shadows: () => readonly string[]
}

/**
 * The running chaos experiments of one process, and the blast-radius window. The fault
 * interceptor reads `active` (replaced, never mutated, on every change) once per request; the
 * admin API, the config's schedule, expiry and shutdown change it. Every start and stop is logged
 * with who asked.
 */
export class ChaosRegistry {
  /** The running experiments; empty means the interceptor does nothing but count client requests. */
  active: readonly ChaosExperiment[] = []
  readonly radius: BlastRadius
  #maxDurationMs: number
  readonly #metrics: ChaosMetrics
  readonly #log: Logger
  readonly #targets: ChaosTargets
  #scheduled: NodeJS.Timeout[] = []
  #closed = false
  /** When the config's experiments without `startAt` started (a reload does not restart their window). */
  #epoch: number | null = null
  /** Config experiments stopped through the API: a reload does not bring them back. */
  readonly #stoppedByHand = new Set<string>()

  constructor (cfg: ChaosConfig, metrics: ChaosMetrics, log: Logger, targets: ChaosTargets) {
    this.radius = new BlastRadius(cfg.maxClientShare)
    this.#maxDurationMs = cfg.maxDurationMs
    this.#metrics = metrics
    this.#log = log
    this.#targets = targets
  }

  /** The config's limits (reload), and its scheduled experiments (start and reload). */
  configure (cfg: ChaosConfig, now = Date.now()): void {
    this.radius.maxShare = cfg.maxClientShare
    this.#maxDurationMs = cfg.maxDurationMs
    for (const t of this.#scheduled) clearTimeout(t)
    this.#scheduled = []
    this.#epoch ??= now
    for (const e of cfg.experiments) {
      const { startAt, ...spec } = e
      if (this.#stoppedByHand.has(spec.name)) continue
      const at = startAt === undefined ? this.#epoch : Date.parse(startAt)
      if (at + spec.durationMs <= now) {
        if (startAt !== undefined && !this.#stoppedByHand.has(spec.name)) this.#log.warn({ experiment: spec.name, startAt }, 'chaos: scheduled experiment already over; not started')
        continue
      }
      const begin = (): void => {
        if (this.#closed || this.active.some((x) => x.name === spec.name)) return
        // Started late (a restart during its window): it still ends when it was meant to.
        const remaining = at + spec.durationMs - Date.now()
        if (remaining > 0) this.#add(new ChaosExperiment({ ...spec, durationMs: Math.round(remaining) }, 'config'), 'config')
      }
      if (at <= now) begin()
      else this.#scheduled.push(setTimeout(begin, at - now).unref())
    }
  }

  /** `POST /chaos/experiments`: validated by the caller against the schema; checked here against this process. */
  start (spec: ChaosExperimentSpec, who: string): Record<string, unknown> {
    if (this.#closed) throw new PenumbraError('PENUMBRA_CONFLICT', 'penumbra is shutting down: no chaos experiment can start')
    const problem = targetProblem(spec.target, this.#targets.backends(), this.#targets.shadows())
    if (problem !== null) throw new PenumbraError('PENUMBRA_INVALID_REQUEST', `target: ${problem}`)
    if (spec.durationMs > this.#maxDurationMs) throw new PenumbraError('PENUMBRA_INVALID_REQUEST', `durationMs: must be <= chaos.maxDurationMs (${this.#maxDurationMs})`)
    if (this.active.some((e) => e.name === spec.name)) throw new PenumbraError('PENUMBRA_CONFLICT', `a chaos experiment named "${spec.name}" is running: DELETE /chaos/experiments/${spec.name} first`)
    return this.#add(new ChaosExperiment(spec, who), who).describe()
  }

  #add (e: ChaosExperiment, who: string): ChaosExperiment {
    e.timer = setTimeout(() => this.#remove(e, 'expired'), e.spec.durationMs).unref()
    this.active = [...this.active, e]
    this.#metrics.chaosActive.set({ experiment: e.name }, 1)
    for (const kind of Object.keys(e.injected)) this.#metrics.faultsInjected.inc({ experiment: e.name, target: e.target, kind }, 0)
    this.#log.warn({ experiment: e.name, target: e.target, faults: e.spec.faults.map((f) => f.kind), probability: e.spec.scope.probability, durationMs: e.spec.durationMs, who }, 'chaos experiment started')
    return e
  }

  #remove (e: ChaosExperiment, who: string): void {
    if (!this.active.includes(e)) return
    if (e.timer !== null) clearTimeout(e.timer)
    this.active = this.active.filter((x) => x !== e)
    this.#metrics.chaosActive.set({ experiment: e.name }, 0)
    this.#log.warn({ experiment: e.name, target: e.target, injected: e.injected, who }, 'chaos experiment stopped')
  }

  /** `DELETE /chaos/experiments/:name`. */
  stop (name: string, who: string): Record<string, unknown> {
    const e = this.active.find((x) => x.name === name)
    if (e === undefined) throw new PenumbraError('PENUMBRA_NOT_FOUND', `no chaos experiment named "${name}" is running`)
    if (e.startedBy === 'config') this.#stoppedByHand.add(name)
    this.#remove(e, who)
    return e.describe()
  }

  /** `DELETE /chaos`, and shutdown: every experiment ends now. */
  stopAll (who: string): Array<Record<string, unknown>> {
    const list = this.active
    for (const e of list) {
      if (e.startedBy === 'config') this.#stoppedByHand.add(e.name)
      this.#remove(e, who)
    }
    return list.map((e) => e.describe())
  }

  /** At shutdown: everything stops, nothing scheduled starts. */
  close (): void {
    this.#closed = true
    for (const t of this.#scheduled) clearTimeout(t)
    this.#scheduled = []
    this.stopAll('shutdown')
  }

  /** `GET /chaos/experiments`. */
  list (): Record<string, unknown> {
    return {
      experiments: this.active.map((e) => e.describe()),
      maxClientShare: this.radius.maxShare,
      lastMinute: this.radius.window
    }
  }

  /** A fault of `kind` was injected by `e`. */
  injected (e: ChaosExperiment, kind: string): void {
    e.count(kind)
    this.#metrics.faultsInjected.inc({ experiment: e.name, target: e.target, kind })
  }
}
