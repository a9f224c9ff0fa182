import type { Backend } from '../upstream/backend.js'
import type { BackendSet } from '../upstream/backend-set.js'
import type { PrimaryStatus } from './primary-selection.js'

/**
 * What one request reads of the mutable state, once, at its start. A snapshot is never changed:
 * a switch builds a new one and replaces the reference, so a request that started before the
 * switch finishes on the backend it picked (streams included) and one that starts after sees
 * the new backend. Shadow sample rates and enabled flags still live on their ShadowRuntime
 * (PATCH /shadows); they move here when the experiment and canary weights join them.
 */
export interface RuntimeSnapshot {
  readonly primary: Backend
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
    this.snapshot = { primary: this.#resolve(primary) }
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
