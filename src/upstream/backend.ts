import type { Dispatcher } from 'undici'
import type { BackendConfig } from '../config/schema.js'
import { createUpstreamPool } from './pool.js'
import type { ChaosRegistry } from '../chaos/chaos-registry.js'
import { faultInterceptor } from '../chaos/fault-interceptor.js'

/**
 * One named model server: its validated options and the one undici dispatcher that every caller
 * uses, the client path and the shadows that name this backend alike (one connection pool per
 * origin, not two). The dispatcher is where cross-cutting behaviour (chaos faults, retries)
 * composes later, as undici interceptors. Immutable once built; a reload that changes a
 * backend's options builds a new Backend and retires the old one (see BackendSet).
 */
export class Backend {
  readonly name: string
  readonly cfg: BackendConfig
  readonly url: string
  readonly dispatcher: Dispatcher
  /** How client-facing errors name it: "primary" for the legacy single primary, else "primary backend \"blue\"". */
  readonly label: string
  /** Client requests dispatched here and not finished (`GET /backends`). */
  inflight = 0

  constructor (name: string, cfg: BackendConfig, chaos: ChaosRegistry | null = null) {
    this.name = name
    this.cfg = cfg
    this.url = cfg.url
    this.label = name === 'primary' ? 'primary' : `primary backend "${name}"`
    const pool = createUpstreamPool({ url: cfg.url, connections: cfg.connections, connectTimeoutMs: cfg.connectTimeoutMs, keepAliveTimeoutMs: cfg.keepAliveTimeoutMs })
    // Chaos faults only when chaos.enabled: otherwise the pool itself, at no cost per request.
    this.dispatcher = chaos === null ? pool : pool.compose(faultInterceptor(chaos, name))
  }

  /** True when `cfg` would build the same dispatcher (a reload can keep this one). */
  sameAs (cfg: BackendConfig): boolean {
    const a = this.cfg
    return a.url === cfg.url && a.connections === cfg.connections && a.connectTimeoutMs === cfg.connectTimeoutMs &&
      a.keepAliveTimeoutMs === cfg.keepAliveTimeoutMs && a.timeoutMs === cfg.timeoutMs && a.preserveHost === cfg.preserveHost
  }

  /** Waits for the requests on this dispatcher to finish, then closes its connections. */
  close (): Promise<void> {
    return this.dispatcher.close().catch(() => {})
  }

  /** Closes at once, failing whatever is still in flight (the end of a shutdown). */
  destroy (): Promise<void> {
    return this.dispatcher.destroy().catch(() => {})
  }
}
