import { createRequire } from 'node:module'
import type { Config } from './config/schema.js'
import { redactConfig, resolveAdminToken } from './config/load.js'
import { Metrics } from './metrics/metrics.js'
import { createLogger, type Logger } from './log/logger.js'
import { ProxyServer, listenOn } from './server/proxy-server.js'
import { AdminServer, type AdminBackend } from './admin/admin-server.js'
import { ShadowSet } from './shadow/shadow-set.js'
import { CompareStage } from './compare/compare-stage.js'
import { PenumbraError } from './errors.js'
import { statusPageHtml } from './admin/status-page.js'
import { OriginProbe, type Readiness } from './upstream/probe.js'
import { BackendSet } from './upstream/backend-set.js'
import { RuntimeState } from './runtime/runtime-state.js'
import { PrimarySelection, type PrimaryStatus, type PrimarySwitch } from './runtime/primary-selection.js'

import { mergeReports, OPERATIONS, type ExperimentPatch, type ProcessOps, type ProcessReport, type ShadowPatch } from './admin/operations.js'
import { Experiment, describeExperiment } from './experiments/experiment.js'
import { ExposureLog } from './experiments/exposure-log.js'
import { Outcomes } from './experiments/outcomes.js'
import { withAnalysis } from './experiments/analysis.js'
import { Feedback } from './feedback/feedback.js'
import { qualityBody } from './feedback/quality-body.js'
import type { QualityData } from './feedback/quality.js'
import { ChaosRegistry } from './chaos/chaos-registry.js'
import { faultInterceptor } from './chaos/fault-interceptor.js'
import type { ChaosExperimentSpec } from './config/chaos-schema.js'
import { DriftMonitor } from './drift/drift-monitor.js'
import { Canary, type CanaryCommand, type CanaryHost, type CanaryWeightRequest } from './rollout/canary.js'
import type { CanaryState, CanaryTotals } from './rollout/canary-engine.js'

// The composition root: builds one penumbra process from a config and wires its rooms together.
// The public API is index.ts; nothing under src/ imports this file except cli.ts.

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
  /** A worker's starting primary (the --workers primary process hands its runtime switch on). */
  primary?: PrimaryStatus | null
  /**
   * A --workers worker whose canary the cluster primary decides (canary.controller: internal):
   * it routes as told (`canaryApply`) and reports its counters (`canaryTotals`); `canaryState`
   * is the state to start from.
   */
  canaryInPrimary?: boolean
  canaryState?: CanaryState | null
}

/** `PUT /primary`'s body. */
export interface PrimarySwitchRequest {
  backend: string
  /** Probe the backend first; 409 PENUMBRA_BACKEND_NOT_READY (nothing switched) when it does not accept connections. */
  requireReady?: boolean
}

/**
 * One penumbra process: the proxy listener, its shadows and comparison stage, and the admin
 * listener. The composition root; everything else is wired from here.
 */
export class Penumbra implements ProcessOps {
  config: Config
  readonly log: Logger
  readonly metrics: Metrics
  readonly shadows: ShadowSet
  readonly compare: CompareStage
  readonly proxy: ProxyServer
  readonly admin: AdminServer | null
  readonly backends: BackendSet
  readonly runtime: RuntimeState
  readonly selection: PrimarySelection
  readonly exposures: ExposureLog
  readonly outcomes: Outcomes
  /** Prediction log, labels and online quality (issue #19). */
  readonly feedback: Feedback
  /** Chaos experiments (null unless `chaos.enabled`: then no interceptor is composed at all). */
  readonly chaos: ChaosRegistry | null
  /** Output drift and model assertions (src/drift/), fed by the comparison stage. */
  readonly drift: DriftMonitor
  /** The canary release (issue #18), when the config has one. */
  canary: Canary | null
  readonly #probe = new OriginProbe()
  readonly #canaryDriven: boolean
  #stopped: Promise<void> | null = null

  constructor (config: Config, opts: PenumbraOptions = {}) {
    // The token from PENUMBRA_ADMIN_TOKEN or admin.tokenFile (already done when loaded from a file).
    config = resolveAdminToken(config, process.env)
    this.config = config
    this.log = opts.logger ?? createLogger({ level: config.log.level, redact: config.log.redact })
    this.#canaryDriven = opts.canaryInPrimary === true && config.canary !== null && config.canary.controller === 'internal'
    this.metrics = opts.metrics ?? new Metrics({ version: VERSION, canaryInPrimary: this.#canaryDriven })
    this.compare = new CompareStage(config, this.metrics, this.log)
    this.chaos = config.chaos.enabled
      ? new ChaosRegistry(config.chaos, this.metrics, this.log, { backends: () => this.backends.names, shadows: () => this.config.shadows.map((s) => s.name) })
      : null
    this.drift = new DriftMonitor(config, this.metrics.registry)
    this.compare.observer = this.drift
    this.backends = new BackendSet(config, this.chaos)
    const restored = opts.primary != null && this.backends.has(opts.primary.backend) ? opts.primary : null
    this.selection = new PrimarySelection(config.primary, restored)
    this.runtime = new RuntimeState(this.backends, this.selection.status.backend)
    this.metrics.setPrimaryBackend(this.selection.status.backend, this.backends.names)
    this.feedback = new Feedback(config, this.metrics.feedback, this.log)
    // Finished mirrored requests go to the comparison stage and to the prediction log.
    const jobs = { consume: (job: Parameters<CompareStage['consume']>[0]) => { this.compare.consume(job); this.feedback.consume(job) } }
    this.shadows = new ShadowSet(config, this.metrics, jobs, this.backends, this.runtime, this.log, this.chaos === null ? null : faultInterceptor(this.chaos, null))
    this.#loadExperiments(config)
    this.canary = config.canary === null ? null : new Canary(config, this.#canaryHost(), { driven: this.#canaryDriven })
    if (this.canary !== null && opts.canaryState != null) void this.canary.controller.follow(opts.canaryState)
    this.exposures = new ExposureLog(config.experimentSettings.eventWindowMs)
    this.outcomes = new Outcomes(this.metrics.outcomes, this.exposures)
    this.proxy = new ProxyServer(config, this.metrics, this.log, this.shadows, this.runtime, this.exposures, this.feedback)
    this.admin = opts.admin === false || !config.admin.enabled ? null : new AdminServer(this.backend(), this.log, config.admin)
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
    // The config's chaos experiments (scheduled game days) start once penumbra serves.
    this.chaos?.configure(this.config.chaos)
    const c = this.canary
    if (c !== null && c.cfg.autoStart && c.cfg.controller === 'internal' && !c.driven) await c.controller.start('autoStart')
  }

  /** What the canary may read and do in this process. */
  #canaryHost (): CanaryHost {
    return {
      runtime: this.runtime,
      backends: this.backends,
      metrics: this.metrics,
      log: this.log,
      comparisons: (target) => {
        const o = this.compare.report(target).outcomes
        return { match: o.match, mismatch: o.mismatch }
      },
      switchPrimary: (backend, who) => this.switchPrimary({ backend }, who),
      primary: () => this.selection.status.backend,
      // Labels posted to POST /feedback, joined to the predictions each backend served.
      accuracy: {
        labelled: (model) => this.feedback.accuracy(model).labelled,
        correct: (model) => this.feedback.accuracy(model).correct
      }
    }
  }

  #canaryOrThrow (): Canary {
    if (this.canary === null) throw new PenumbraError('PENUMBRA_NOT_FOUND', 'no canary configured (add a `canary:` section)')
    return this.canary
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
    next = resolveAdminToken(next, process.env)
    const notes: string[] = []
    if (next.listen.host !== this.config.listen.host || next.listen.port !== this.config.listen.port) notes.push('listen: address changes need a restart; kept the old one')
    if (next.admin.host !== this.config.admin.host || next.admin.port !== this.config.admin.port) notes.push('admin: address changes need a restart; kept the old one')
    if (next.workers !== this.config.workers) notes.push('workers: changes need a restart')
    if (next.chaos.enabled !== this.config.chaos.enabled) notes.push('chaos.enabled: changes need a restart; kept the old value')
    else this.chaos?.configure(next.chaos)
    this.compare.reload(next)
    notes.push(...this.feedback.reload(next))
    this.drift.reload(next)
    this.backends.load(next)
    const before = this.selection.status.backend
    const note = this.selection.reload(next.primary, (n) => this.backends.has(n))
    if (note !== null) notes.push(note)
    const after = this.selection.status.backend
    if (after !== before) this.metrics.primarySwitches.inc({ from: before, to: after })
    this.runtime.applyPrimary(this.selection.status)
    this.metrics.setPrimaryBackend(after, this.backends.names)
    this.shadows.load(next)
    this.#loadExperiments(next)
    this.#reloadCanary(next)
    this.proxy.reload(next)
    this.admin?.setAuth(next.admin)
    this.log.level = next.log.level
    this.config = { ...next, listen: this.config.listen, admin: { ...next.admin, host: this.config.admin.host, port: this.config.admin.port } }
    return notes
  }

  /** The canary of a reloaded config: removed, added, or reconfigured (a changed one restarts from the first step). */
  #reloadCanary (next: Config): void {
    if (next.canary === null) {
      this.canary?.controller.close()
      this.canary = null
      this.runtime.setCanary(null)
      return
    }
    if (this.canary === null) { this.canary = new Canary(next, this.#canaryHost(), { driven: this.#canaryDriven }); return }
    this.canary.reload(next).catch((err: unknown) => this.log.error({ err }, 'canary reload failed'))
  }

  /** Graceful stop: drain clients, then shadows, each within `shutdown.timeoutMs`. Idempotent. */
  stop (): Promise<void> {
    this.#stopped ??= this.#stop()
    return this.#stopped
  }

  async #stop (): Promise<void> {
    const deadline = Date.now() + this.config.shutdown.timeoutMs
    // Every fault ends at shutdown, before the drain (requests already faulted finish as they are).
    this.chaos?.close()
    this.admin?.stopping()
    this.canary?.controller.close()
    await this.proxy.close(deadline)
    const abandoned = await this.shadows.close(deadline)
    if (abandoned > 0) this.log.warn({ abandoned }, 'shutdown deadline reached: shadow requests still in flight were abandoned')
    await this.backends.close(deadline)
    await this.compare.close(deadline)
    await this.feedback.close()
    await this.admin?.close()
    this.log.flush()
  }

  /** Is the primary reachable? (`GET /readyz`) */
  ready (): Promise<Readiness> {
    const b = this.runtime.snapshot.primary
    return this.#probe.check(b.url, b.label)
  }

  /** The in-process admin backend: the shared operations table, run on this process. */
  backend (): AdminBackend {
    const op = OPERATIONS
    return {
      metrics: async () => ({ contentType: this.metrics.registry.contentType, body: await this.metrics.registry.metrics() }),
      ready: () => this.ready(),
      config: () => redactConfig(this.config),
      shadows: async () => op.shadows(this),
      experiments: async () => op.experiments(this).map(withAnalysis),
      patchExperiment: async (name, patch) => op.patchExperiment(this, { name, patch }),
      postEvents: async (events) => this.postEvents(events, false),
      patchShadow: async (name, patch) => op.patch(this, { name, patch }),
      mismatches: async (q) => op.mismatches(this, q),
      mismatch: async (id) => op.mismatch(this, id),
      report: async () => this.reportJson(),
      noise: async () => op.noise(this),
      postFeedback: async (items) => this.feedback.ingest(items),
      quality: async () => this.qualityJson(),
      statusPage: statusPageHtml,
      backends: async () => this.describeBackends(true),
      primary: async () => this.selection.status,
      switchPrimary: async (req, who) => this.switchPrimary(req, who),
      rollbackPrimary: async (who) => this.rollbackPrimary(who),
      chaosEnabled: () => this.chaos !== null,
      chaosList: async () => op.chaosList(this),
      chaosStart: async (spec, who) => op.chaosStart(this, { spec, who }),
      chaosStop: async (name, who) => op.chaosStop(this, { name, who }),
      chaosStopAll: async (who) => op.chaosStopAll(this, { who }),
      drift: async () => op.drift(this),
      assertions: async (q) => op.assertions(this, q),
      pinDriftReference: async (model) => op.driftReference(this, { model }),
      canary: async () => op.canary(this),
      canaryCommand: async (cmd, who) => await op.canaryCommand(this, { cmd, who }),
      canaryWeight: async (req, who) => await op.canaryWeight(this, { req, who })
    }
  }

  /** `GET /canary` of this process. */
  canaryStatus (): unknown {
    return this.#canaryOrThrow().status()
  }

  canaryCommand (cmd: CanaryCommand, who: string): Promise<unknown> {
    return this.#canaryOrThrow().command(cmd, who)
  }

  canaryWeight (req: CanaryWeightRequest, who: string): Promise<unknown> {
    return this.#canaryOrThrow().setWeight(req, who)
  }

  /** A --workers worker: this process's cumulative canary counters, for the primary's controller. */
  canaryTotals (): Promise<CanaryTotals> {
    return this.#canaryOrThrow().totals()
  }

  /** A --workers worker: route as the primary's controller decided. */
  async canaryApply (state: unknown): Promise<null> {
    // From the cluster primary's own controller (IPC, structured clone): a CanaryState.
    await this.#canaryOrThrow().controller.follow(state as CanaryState)
    return null
  }

  /** `GET /backends`: each backend, its reachability (when `probe`), in-flight requests and roles. */
  async describeBackends (probe: boolean): Promise<unknown[]> {
    const active = this.runtime.snapshot.primary.name
    return Promise.all(this.backends.list.map(async (b) => ({
      name: b.name,
      url: b.url,
      roles: backendRoles(b.name, active, this.config),
      inflight: b.inflight,
      ...(probe ? { reachable: await this.#probe.check(b.url, `backend "${b.name}"`) } : undefined),
      config: b.cfg
    })))
  }

  /**
   * Blue/green: requests that start after this call go to `req.backend`; those in flight finish
   * where they are. With `requireReady`, a backend that does not accept a connection is refused.
   */
  async switchPrimary (req: PrimarySwitchRequest, who: string): Promise<PrimarySwitch> {
    const b = this.backends.get(req.backend)
    if (b === undefined) throw new PenumbraError('PENUMBRA_NOT_FOUND', `no backend named "${req.backend}"`)
    if (req.requireReady === true) {
      const r = await this.#probe.check(b.url, `backend "${b.name}"`, true)
      if (!r.ready) throw new PenumbraError('PENUMBRA_BACKEND_NOT_READY', `not switched: ${r.reason ?? 'unreachable'}`)
    }
    return this.#applied(this.selection.switchTo(req.backend, (n) => this.backends.has(n)), who)
  }

  /** `POST /primary/rollback`: back to the previous primary. */
  rollbackPrimary (who: string): PrimarySwitch {
    return this.#applied(this.selection.rollback((n) => this.backends.has(n)), who)
  }

  /** A worker told by its primary process: route as `status` says (counted there, not here). */
  applyPrimary (status: PrimaryStatus): PrimaryStatus {
    this.selection.switchTo(status.backend, (n) => this.backends.has(n))
    this.runtime.applyPrimary(status)
    this.metrics.setPrimaryBackend(status.backend, this.backends.names)
    this.#refreshCanary()
    return this.selection.status
  }

  /** A canary whose baseline is the active primary routes to the new one at once. */
  #refreshCanary (): void {
    const c = this.canary
    if (c === null || c.cfg.baseline !== null) return
    c.controller.refresh().catch((err: unknown) => this.log.error({ err }, 'canary refresh failed'))
  }

  #applied (sw: PrimarySwitch, who: string): PrimarySwitch {
    if (!sw.switched) return sw
    this.runtime.applyPrimary(sw.status)
    this.metrics.primarySwitches.inc({ from: sw.from, to: sw.to })
    this.metrics.setPrimaryBackend(sw.to, this.backends.names)
    this.log.info({ from: sw.from, to: sw.to, who }, 'primary switched')
    this.#refreshCanary()
    return sw
  }

  describeShadows (): unknown[] {
    return this.runtime.snapshot.shadows.map((e) => e.target.describe(e))
  }

  /** PATCH /shadows/:name: a new runtime snapshot; requests already planned keep the old state. */
  patchShadow (name: string, patch: ShadowPatch): unknown {
    const e = this.runtime.patchShadow(name, patch)
    if (e === undefined) throw new PenumbraError('PENUMBRA_NOT_FOUND', `no shadow named "${name}"`)
    this.log.info({ shadow: name, patch }, 'shadow state changed')
    return e.target.describe(e)
  }

  describeExperiments (): unknown[] {
    return this.runtime.snapshot.experiments.map((e) => describeExperiment(e, this.outcomes))
  }

  /**
   * `POST /events`. In a `--workers` process (`byUnitOnly`) an event naming a request id is
   * refused: the request may have been answered by another worker, whose exposure log this one
   * cannot see; post outcomes by unit there.
   */
  postEvents (events: unknown[], byUnitOnly: boolean): unknown {
    if (!byUnitOnly) return this.outcomes.ingest(events, this.runtime.snapshot.experiments)
    return this.outcomes.ingest(events, this.runtime.snapshot.experiments, 'with --workers, outcomes name a unit, not a request id')
  }

  /** PATCH /experiments/:name: `enabled: false` sends everyone it matches to the control at once. */
  patchExperiment (name: string, patch: ExperimentPatch): unknown {
    const e = this.runtime.patchExperiment(name, patch)
    if (e === undefined) throw new PenumbraError('PENUMBRA_NOT_FOUND', `no experiment named "${name}"`)
    this.log.info({ experiment: name, patch }, 'experiment state changed')
    return withAnalysis(describeExperiment(e, this.outcomes))
  }

  /** Compiles the config's experiments into the runtime snapshot (at start and on reload). */
  #loadExperiments (config: Config): void {
    const factory = this.metrics.experimentMetrics()
    this.runtime.setExperiments(config.experiments.map((e) => new Experiment(e, this.backends, factory)))
  }

  #chaosOn (): ChaosRegistry {
    if (this.chaos === null) throw new PenumbraError('PENUMBRA_CHAOS_DISABLED', 'chaos is disabled (chaos.enabled: false in the config)')
    return this.chaos
  }

  /** `GET /chaos/experiments`. */
  chaosList (): unknown {
    return this.#chaosOn().list()
  }

  /** `POST /chaos/experiments` (the body validated by the admin server). */
  chaosStart (spec: ChaosExperimentSpec, who: string): unknown {
    return this.#chaosOn().start(spec, who)
  }

  chaosStop (name: string, who: string): unknown {
    return this.#chaosOn().stop(name, who)
  }

  chaosStopAll (who: string): unknown {
    return this.#chaosOn().stopAll(who)
  }

  listMismatches (q: { shadow?: string, limit?: number }): unknown[] {
    return this.compare.store.list(q)
  }

  getMismatch (id: string): unknown {
    return this.compare.store.get(id)
  }

  noiseSnapshot (): unknown {
    return this.compare.noise.snapshot()
  }

  reportData (): ProcessReport {
    return {
      shadows: this.runtime.snapshot.shadows.map((e) => ({ name: e.target.name, view: e.target.view(e), data: this.compare.report(e.target.name).data() })),
      pending: this.compare.pending,
      stored: this.compare.store.size
    }
  }

  /** Feedback tallies of this process (`--workers`: summed by the primary). */
  feedbackData (): QualityData {
    return this.feedback.data()
  }

  /** `POST /feedback` items, from the `--workers` primary (which counts the results itself). */
  ingestFeedback (items: unknown[]): Promise<unknown> {
    return this.feedback.ingest(items, false)
  }

  /** `GET /quality` of this process. */
  qualityJson (): unknown {
    // Drift and assertions (src/drift/) belong to the same picture of a model's quality.
    const d = this.drift
    return qualityBody([this.feedbackData()], this.feedback.settings, {
      drift: d.driftEnabled ? d.driftSnapshot() : null,
      assertions: d.assertionsConfigured ? d.driftQuality().assertions : null
    })
  }

  /** `GET /drift`; 404 when drift is not configured (the status page then hides its panel). */
  driftSnapshot (): unknown {
    if (!this.drift.driftEnabled) throw new PenumbraError('PENUMBRA_NOT_FOUND', 'drift is not configured (add a `drift:` section; with --workers it is not available)')
    return this.drift.driftSnapshot()
  }

  /** `GET /assertions`; 404 when no assertion is configured. */
  assertionsSnapshot (q: { model?: string, assertion?: string, limit?: number }): unknown {
    if (!this.drift.assertionsConfigured) throw new PenumbraError('PENUMBRA_NOT_FOUND', 'no assertions are configured (add an `assertions:` list)')
    return this.drift.assertionsSnapshot(q)
  }

  /** `POST /drift/reference`: 409 when drift is off or nothing could be pinned, 404 for an unknown model. */
  pinDriftReference (model?: string): unknown {
    if (!this.drift.driftEnabled) throw new PenumbraError('PENUMBRA_CONFLICT', 'drift is not configured (add a `drift:` section)')
    if (model !== undefined && !this.drift.has(model)) throw new PenumbraError('PENUMBRA_NOT_FOUND', `no predictions seen from a model named "${model}"`)
    const r = this.drift.pin(model)
    if (r.pinned.length === 0) throw new PenumbraError('PENUMBRA_CONFLICT', 'nothing pinned: no model has predictions in its current window')
    return { ...r, drift: this.drift.driftSnapshot() }
  }

  /** `GET /report` of this process. */
  reportJson (): unknown {
    return mergeReports([this.reportData()], { version: VERSION })
  }
}

/** What a backend is used for: "primary" (answers clients), "shadow:<name>" (receives that shadow's copies). */
export function backendRoles (name: string, active: string, config: Config): string[] {
  const roles = name === active ? ['primary'] : []
  for (const s of config.shadows) if (s.backend === name) roles.push(`shadow:${s.name}`)
  return roles
}
