import { connect } from 'node:net'

/** The answer of `GET /readyz`. */
export interface Readiness {
  ready: boolean
  reason?: string
}

/**
 * Is the primary reachable? A TCP connect to it, cached for a second so that frequent probes
 * (Kubernetes, load balancers) cost the primary almost nothing.
 */
export class PrimaryProbe {
  readonly #url: () => string
  #last: { at: number, value: Readiness } | null = null

  constructor (url: () => string) {
    this.#url = url
  }

  async check (): Promise<Readiness> {
    const now = Date.now()
    if (this.#last !== null && now - this.#last.at < 1000) return this.#last.value
    const u = new URL(this.#url())
    const port = Number(u.port !== '' ? u.port : u.protocol === 'https:' ? 443 : 80)
    const value = await new Promise<Readiness>((resolve) => {
      const s = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port, timeout: 1000 })
      s.once('connect', () => { s.destroy(); resolve({ ready: true }) })
      s.once('timeout', () => { s.destroy(); resolve({ ready: false, reason: `primary ${u.host}: connect timed out` }) })
      s.once('error', (err: NodeJS.ErrnoException) => resolve({ ready: false, reason: `primary ${u.host}: ${err.code ?? err.message}` }))
    })
    this.#last = { at: now, value }
    return value
  }
}
