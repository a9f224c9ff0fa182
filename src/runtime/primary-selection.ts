import { PenumbraError } from '../errors.js'

/** `GET /primary`: the active primary, the one before it, since when, how many switches. */
export interface PrimaryStatus {
  backend: string
  previous: string | null
  /** ISO time of the last switch (or of the start). */
  since: string
  switches: number
  /** The config file's `primary`, for telling a runtime switch from the file's choice. */
  configured: string
}

/** One switch, as `PUT /primary` and `POST /primary/rollback` answer it. */
export interface PrimarySwitch {
  from: string
  to: string
  switched: boolean
  status: PrimaryStatus
}

/**
 * Which backend answers clients (blue/green). Plain names, no connections: the same object keeps
 * the authoritative choice in a single process and in the `--workers` primary, which hands the
 * resulting status to every worker (`RuntimeState.applyPrimary`).
 */
export class PrimarySelection {
  #status: PrimaryStatus

  constructor (configured: string, restored?: PrimaryStatus | null) {
    this.#status = restored ?? { backend: configured, previous: null, since: new Date().toISOString(), switches: 0, configured }
  }

  get status (): PrimaryStatus {
    return { ...this.#status }
  }

  /**
   * Makes `to` the primary. Switching to the active one is a no-op (`switched: false`), so that a
   * repeated PUT is idempotent. `known` is checked here so that every caller refuses alike.
   */
  switchTo (to: string, known: (name: string) => boolean): PrimarySwitch {
    if (!known(to)) throw new PenumbraError('PENUMBRA_NOT_FOUND', `no backend named "${to}"`)
    const from = this.#status.backend
    if (from === to) return { from, to, switched: false, status: this.status }
    this.#status = { ...this.#status, backend: to, previous: from, since: new Date().toISOString(), switches: this.#status.switches + 1 }
    return { from, to, switched: true, status: this.status }
  }

  /** Back to the previous primary (which then becomes the previous one: a second rollback undoes the first). */
  rollback (known: (name: string) => boolean): PrimarySwitch {
    const prev = this.#status.previous
    if (prev === null) throw new PenumbraError('PENUMBRA_CONFLICT', 'there is no previous primary to roll back to (no switch since the start)')
    if (!known(prev)) throw new PenumbraError('PENUMBRA_CONFLICT', `the previous primary "${prev}" is no longer a backend (removed by a reload)`)
    return this.switchTo(prev, known)
  }

  /**
   * A reloaded config: a runtime switch survives while its backend still exists; otherwise the
   * file's `primary` takes over. Returns a note for the log when the running primary differs
   * from the file's, or when it had to fall back.
   */
  reload (configured: string, known: (name: string) => boolean): string | null {
    const s = this.#status
    const previous = s.previous !== null && known(s.previous) ? s.previous : null
    if (!known(s.backend)) {
      this.#status = { backend: configured, previous, since: new Date().toISOString(), switches: s.switches + 1, configured }
      return `the running primary "${s.backend}" is not in the reloaded config: fell back to the file's primary "${configured}"`
    }
    this.#status = { ...s, previous, configured }
    return s.backend !== configured ? `the running primary "${s.backend}" (switched at runtime) differs from the file's primary "${configured}": kept "${s.backend}"` : null
  }
}
