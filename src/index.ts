import { createRequire } from 'node:module'
import type { Config } from './config/schema.js'
import { redactConfig } from './config/load.js'
import { Metrics } from './metrics/metrics.js'
import { createLogger, type Logger } from './log/logger.js'
import { ProxyServer, listenOn } from './server/proxy-server.js'
import { AdminServer, type AdminBackend } from './admin/admin-server.js'
import { ShadowSet } from './shadow/shadow-set.js'
import { CompareStage } from './shadow/compare-stage.js'
import { PenumbraError } from './errors.js'
import { statusPageHtml } from './admin/status-page.js'
import { PrimaryProbe, type Readiness } from './server/readiness.js'

export type { Config } from './config/schema.js'
export { loadConfigFile, validateConfig, ConfigError } from './config/load.js'
export { PenumbraError, ErrorCodes } from './errors.js'
export { stickyUniform } from './shadow/sampler.js'

/** penumbra's version, from package.json (one level up from dist/, two from the test build). */
export const VERSION: string = readVersion()

function readVersion (): string {
  const require = createRequire(import.meta.url)
  for (const p of ['../package.json', '../../package.json']) {
    try {
      return (require(p) as { version: string }).version
    } catch {}
  }
  return '0.0.0'
}

/** Options of an embedded penumbra. */
export interface PenumbraOptions {
  logger?: Logger
  metrics?: Metrics
  /** Serve the admin listener in this process (false in cluster workers: the primary serves it). */
  admin?: boolean
}

/**
 * One penumbra process: the proxy listener, its shadows and comparison stage, and the admin
 * listener. The composition root; everything else is wired from here.
 */
export class Penumbra {
  config: Config
  readonly log: Logger
  readonly metrics: Metrics
  readonly shadows: ShadowSet
  readonly compare: CompareStage
  readonly proxy: ProxyServer
  readonly admin: AdminServer | null
  readonly #probe: PrimaryProbe
  #stopped: Promise<void> | null = null

  constructor (config: Config, opts: PenumbraOptions = {}) {
    this.config = config
    this.log = opts.logger ?? createLogger({ level: config.log.level, redact: config.log.redact })
    this.metrics = opts.metrics ?? new Metrics({ version: VERSION })
    this.compare = new CompareStage(config, this.metrics, this.log)
    this.shadows = new ShadowSet(config, this.metrics, this.compare)
    this.proxy = new ProxyServer(config, this.metrics, this.log, this.shadows)
    this.#probe = new PrimaryProbe(() => this.proxy.primaryUrl)
    this.admin = opts.admin === false || !config.admin.enabled ? null : new AdminServer(this.backend(), this.log, config.admin.token)
  }

  /** Listens on the proxy and admin ports; rejects (naming the port) when one is taken. */
  async start (): Promise<void> {
    await this.proxy.listen(this.config.listen.host, this.config.listen.port)
    if (this.admin !== null) {
      try {
        await listenOn(this.admin.server, this.config.admin.host, this.config.admin.port, 'admin')
      } catch (err) {
        this.proxy.server.close()
        throw err
      }
    }
  }

  /** The proxy's bound port (useful with port 0). */
  get port (): number {
    return (this.proxy.server.address() as { port: number }).port
  }

  get adminPort (): number {
    return this.admin === null ? 0 : (this.admin.server.address() as { port: number }).port
  }

  /**
   * Applies a new validated config atomically (SIGHUP): shadows, comparison settings, primary
   * upstream, log level, admin token. Listener addresses need a restart and are kept.
   */
  reload (next: Config): string[] {
    const notes: string[] = []
    if (next.listen.host !== this.config.listen.host || next.listen.port !== this.config.listen.port) notes.push('listen: address changes need a restart; kept the old one')
    if (next.admin.host !== this.config.admin.host || next.admin.port !== this.config.admin.port) notes.push('admin: address changes need a restart; kept the old one')
    if (next.workers !== this.config.workers) notes.push('workers: changes need a restart')
    this.compare.reload(next)
    this.shadows.load(next)
    this.proxy.reload(next)
    this.admin?.setToken(next.admin.token)
    this.log.level = next.log.level
    this.config = { ...next, listen: this.config.listen, admin: { ...next.admin, host: this.config.admin.host, port: this.config.admin.port } }
    return notes
  }

  /** Graceful stop: drain clients, then shadows, each within `shutdown.timeoutMs`. Idempotent. */
  stop (): Promise<void> {
    this.#stopped ??= this.#stop()
    return this.#stopped
  }

  async #stop (): Promise<void> {
    const deadline = Date.now() + this.config.shutdown.timeoutMs
    this.admin?.stopping()
    await this.proxy.close(deadline)
    const abandoned = await this.shadows.close(deadline)
    if (abandoned > 0) this.log.warn({ abandoned }, 'shutdown deadline reached: shadow requests still in flight were abandoned')
    await this.compare.close(deadline)
    await this.admin?.close()
    this.log.flush()
  }

  /** Is the primary reachable? (`GET /readyz`) */
  ready (): Promise<Readiness> {
    return this.#probe.check()
  }

  /** The in-process admin backend (read APIs and the runtime-state mutations). */
  backend (): AdminBackend {
    return {
      metrics: async () => ({ contentType: this.metrics.registry.contentType, body: await this.metrics.registry.metrics() }),
      ready: () => this.ready(),
      config: () => redactConfig(this.config),
      shadows: async () => this.describeShadows(),
      patchShadow: async (name, patch) => this.patchShadow(name, patch),
      mismatches: async (q) => this.compare.store.list(q),
      mismatch: async (id) => this.compare.store.get(id),
      report: async () => this.reportJson(),
      noise: async () => this.compare.noise.snapshot(),
      statusPage: statusPageHtml
    }
  }

  describeShadows (): unknown[] {
    return this.shadows.runtimes.map((rt) => rt.describe())
  }

  patchShadow (name: string, patch: { sampleRate?: number, enabled?: boolean }): unknown {
    const rt = this.shadows.get(name)
    if (rt === undefined) throw new PenumbraError('PENUMBRA_NOT_FOUND', `no shadow named "${name}"`)
    if (patch.sampleRate !== undefined) rt.sampleRate = patch.sampleRate
    if (patch.enabled !== undefined) rt.enabled = patch.enabled
    this.log.info({ shadow: name, patch }, 'shadow state changed')
    return rt.describe()
  }

  reportJson (): unknown {
    return {
      generatedAt: new Date().toISOString(),
      version: VERSION,
      shadows: this.shadows.runtimes.map((rt) => this.compare.report(rt.name).toJSON(rt.view(), rt.name)),
      comparisonsPending: this.compare.pending,
      mismatchesStored: this.compare.store.size
    }
  }
}
