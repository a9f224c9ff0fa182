import { connect } from 'node:net'
import type { Config } from '../config/schema.js'

/** The answer of a reachability probe (`GET /readyz`, `GET /backends`, `requireReady`). */
export interface Readiness {
  ready: boolean
  reason?: string
}

/** How long a probe result is reused: frequent probes (kubelet, load balancers) cost the backend almost nothing. */
const CACHE_MS = 1000

/**
 * Is an origin reachable? A TCP connect (1 s timeout), cached for a second per origin. A connect
 * says the server accepts connections, not that the model is loaded: that is the model server's
 * own readiness endpoint, which penumbra does not know.
 */
export class OriginProbe {
  readonly #cache = new Map<string, { at: number, value: Promise<Readiness> }>()

  /** Probes `url`; `label` names it in the reason ("backend blue 127.0.0.1:9001: ECONNREFUSED"). */
  check (url: string, label: string, fresh = false): Promise<Readiness> {
    const now = Date.now()
    const hit = this.#cache.get(url)
    if (!fresh && hit !== undefined && now - hit.at < CACHE_MS) return hit.value
    const value = probe(url, label)
    this.#cache.set(url, { at: now, value })
    if (this.#cache.size > 256) this.#cache.delete(this.#cache.keys().next().value!)
    return value
  }
}

function probe (url: string, label: string): Promise<Readiness> {
  const u = new URL(url)
  const port = Number(u.port !== '' ? u.port : u.protocol === 'https:' ? 443 : 80)
  return new Promise<Readiness>((resolve) => {
    const s = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port, timeout: 1000 })
    s.once('connect', () => { s.destroy(); resolve({ ready: true }) })
    s.once('timeout', () => { s.destroy(); resolve({ ready: false, reason: `${label} ${u.host}: connect timed out` }) })
    s.once('error', (err: NodeJS.ErrnoException) => resolve({ ready: false, reason: `${label} ${u.host}: ${err.code ?? err.message}` }))
  })
}

/** Where a start-up probe result goes (a pino logger in practice). */
export interface ProbeLog { warn (o: object, msg: string): void }

/**
 * Probes every backend and every shadow with its own URL once, at start, and warns about each
 * unreachable one. Never fatal (a model server may come up after penumbra), but never silent
 * either: a shadow that cannot be reached would otherwise show up only as an empty report.
 */
export async function probeUpstreams (config: Config, log: ProbeLog, probe = new OriginProbe()): Promise<number> {
  const targets: Array<{ kind: 'backend' | 'shadow', name: string, url: string }> = []
  for (const [name, b] of Object.entries(config.backends)) targets.push({ kind: 'backend', name, url: b.url })
  for (const s of config.shadows) if (s.url !== undefined) targets.push({ kind: 'shadow', name: s.name, url: s.url })
  const results = await Promise.all(targets.map(async (t) => ({ t, r: await probe.check(t.url, `${t.kind} "${t.name}"`, true) })))
  let down = 0
  for (const { t, r } of results) {
    if (r.ready) continue
    down++
    // The reason names it: `shadow "v2" 10.0.0.7:8080: ECONNREFUSED`.
    log.warn({ [t.kind]: t.name, url: t.url, reason: r.reason }, `unreachable at start: ${r.reason ?? `${t.kind} "${t.name}"`}; penumbra keeps running`)
  }
  return down
}
