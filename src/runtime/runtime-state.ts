import type { Backend } from '../upstream/backend.js'
import type { BackendSet } from '../upstream/backend-set.js'
import type { PrimaryStatus } from './primary-selection.js'
import type { ShadowRuntime } from '../shadow/shadow-runtime.js'
import { layoutExperiments, type Experiment, type ExperimentEntry, type Route } from '../experiments/experiment.js'
import { PenumbraError } from '../errors.js'
import type { CanaryRoute } from '../rollout/canary-route.js'

/** A shadow as the request path sees it: the target and the state PATCH /shadows changes. */
export interface ShadowEntry {
  readonly target: ShadowRuntime
  readonly sampleRate: number
  readonly enabled: boolean
  /** Canary mirrors only: copy just the requests this backend answered. */
  readonly servedBy?: Backend
}

/**
 * What one request reads of the mutable state, once, at its start. A snapshot is never changed:
 * a switch builds a new one and replaces the reference, so a request that started before the
 * switch finishes on the backend it picked (streams included) and one that starts after sees
 * the new backend; the same holds for the shadows' sample rates and enabled flags.
 */
export interface RuntimeSnapshot {
  readonly primary: Backend
  /** The route of a request no experiment takes: the active primary. */
  readonly primaryRoute: Route
  /** The experiments of the current config load, in config order, laid out in their layers. */
  readonly experiments: readonly ExperimentEntry[]
  /** The shadows of the current config load, in config order, with their runtime state. */
  readonly shadows: readonly ShadowEntry[]
  /** The running canary's split and mirrors (issue #18); null: none. */
  readonly canary: CanaryRoute | null
}

/**
 * The one mutable state of the request path, replaced atomically. The admin API and reloads
 * mutate only this; request handling only reads `snapshot`.
 */
export class RuntimeState {
  snapshot: RuntimeSnapshot
  readonly #backends: BackendSet

  constructor (backends: BackendSet, primary: string) {
    this.#backends = backends
    const b = this.#resolve(primary)
    this.snapshot = { primary: b, primaryRoute: primaryRoute(b), shadows: [], experiments: [], canary: null }
  }

  /** The experiments of a (re)loaded config, each with the file's traffic and enabled flag. */
  setExperiments (list: readonly Experiment[]): void {
    this.snapshot = { ...this.snapshot, experiments: layoutExperiments(list.map((e) => ({ experiment: e, enabled: e.cfg.enabled, traffic: e.cfg.traffic }))) }
  }

  /**
   * `PATCH /experiments/:name`: a new snapshot with the experiment's traffic and/or enabled flag
   * (the layer's slot ranges laid out again). Undefined when there is no such experiment; a
   * traffic that takes its layer past 1 is refused.
   */
  patchExperiment (name: string, patch: { traffic?: number, enabled?: boolean }): ExperimentEntry | undefined {
    const list = this.snapshot.experiments
    const i = list.findIndex((e) => e.experiment.name === name)
    if (i === -1) return undefined
    const next = list.map((e, j) => ({ experiment: e.experiment, enabled: j === i ? (patch.enabled ?? e.enabled) : e.enabled, traffic: j === i ? (patch.traffic ?? e.traffic) : e.traffic }))
    const layer = list[i]!.experiment.layer
    const sum = next.filter((e) => e.experiment.layer === layer).reduce((a, e) => a + e.traffic, 0)
    if (sum > 1 + 1e-9) throw new PenumbraError('PENUMBRA_INVALID_REQUEST', `traffic: layer "${layer}" would sum to ${Math.round(sum * 1000) / 1000}, past 1`)
    const laid = layoutExperiments(next)
    this.snapshot = { ...this.snapshot, experiments: laid }
    return laid[i]
  }

  /** The shadows of a (re)loaded config, each with the file's sample rate and enabled flag. */
  setShadows (targets: readonly ShadowRuntime[]): void {
    this.snapshot = { ...this.snapshot, shadows: targets.map((t) => ({ target: t, sampleRate: t.cfg.sampleRate, enabled: t.cfg.enabled })) }
  }

  /** `PATCH /shadows/:name`: the new entry, or undefined when there is no such shadow. */
  patchShadow (name: string, patch: { sampleRate?: number, enabled?: boolean }): ShadowEntry | undefined {
    const list = this.snapshot.shadows
    const i = list.findIndex((e) => e.target.name === name)
    if (i === -1) return undefined
    const old = list[i]!
    const entry: ShadowEntry = { target: old.target, sampleRate: patch.sampleRate ?? old.sampleRate, enabled: patch.enabled ?? old.enabled }
    const next = list.slice()
    next[i] = entry
    this.snapshot = { ...this.snapshot, shadows: next }
    return entry
  }

  /** The canary's new weight or phase (null: it routes nothing). Requests already routed keep theirs. */
  setCanary (canary: CanaryRoute | null): void {
    this.snapshot = { ...this.snapshot, canary }
  }

  /** Points new requests at the status's backend (a switch, a rollback, a reload, a worker told by its primary). */
  applyPrimary (status: Pick<PrimaryStatus, 'backend'>): void {
    const b = this.#resolve(status.backend)
    this.snapshot = { ...this.snapshot, primary: b, primaryRoute: primaryRoute(b) }
  }

  #resolve (name: string): Backend {
    const b = this.#backends.get(name)
    if (b === undefined) throw new Error(`runtime: no backend named "${name}"`)
    return b
  }
}

function primaryRoute (backend: Backend): Route {
  return { backend, experiment: null, variant: null, header: null, exposure: null }
}
