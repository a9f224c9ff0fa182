import type { Backend } from '../upstream/backend.js'
import type { BackendSet } from '../upstream/backend-set.js'
import type { PrimaryStatus } from './primary-selection.js'
import type { ShadowRuntime } from '../shadow/shadow-runtime.js'

/** A shadow as the request path sees it: the target and the state PATCH /shadows changes. */
export interface ShadowEntry {
  readonly target: ShadowRuntime
  readonly sampleRate: number
  readonly enabled: boolean
}

/**
 * What one request reads of the mutable state, once, at its start. A snapshot is never changed:
 * a switch builds a new one and replaces the reference, so a request that started before the
 * switch finishes on the backend it picked (streams included) and one that starts after sees
 * the new backend; the same holds for the shadows' sample rates and enabled flags.
 */
export interface RuntimeSnapshot {
  readonly primary: Backend
  /** The shadows of the current config load, in config order, with their runtime state. */
  readonly shadows: readonly ShadowEntry[]
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
    this.snapshot = { primary: this.#resolve(primary), shadows: [] }
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

  /** Points new requests at the status's backend (a switch, a rollback, a reload, a worker told by its primary). */
  applyPrimary (status: Pick<PrimaryStatus, 'backend'>): void {
    this.snapshot = { ...this.snapshot, primary: this.#resolve(status.backend) }
  }

  #resolve (name: string): Backend {
    const b = this.#backends.get(name)
    if (b === undefined) throw new Error(`runtime: no backend named "${name}"`)
    return b
  }
}
