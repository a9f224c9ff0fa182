import cluster, { type Worker } from 'node:cluster'
import { AggregatorRegistry, type Registry } from 'prom-client'
import type { Config } from '../config/schema.js'
import { redactConfig } from '../config/load.js'
import type { AdminBackend } from '../admin/admin-server.js'
import { isOperation, mergeReports, runOperation, type CanaryCommandName, type CanaryWeightBody, type ExperimentPatch, type OperationName, type ProcessOps, type ProcessReport, type ShadowPatch } from '../admin/operations.js'
import { ErrorCodes, PenumbraError, type ErrorCode } from '../errors.js'
import { PrimarySelection, type PrimaryStatus, type PrimarySwitch } from '../runtime/primary-selection.js'
import { OriginProbe } from '../upstream/probe.js'
import { withAnalysis } from '../experiments/analysis.js'
import { primarySwitchesCounter } from '../metrics/metrics.js'
import { mergeAssertions } from '../drift/drift-monitor.js'
import type { CanaryController } from '../rollout/canary-controller.js'
import type { Counter } from 'prom-client'
import { mergeIngest, type IngestResponse } from '../feedback/feedback-input.js'
import { feedbackTotalCounter } from '../feedback/feedback-metrics.js'
import { qualityBody } from '../feedback/quality-body.js'
import type { QualityData } from '../feedback/quality.js'
import type { ChaosExperimentSpec } from '../config/chaos-schema.js'

// `--workers N` (issue #2): the primary process forks N workers that share the proxy port
// (node:cluster), and serves the admin port itself. /metrics is prom-client's
// AggregatorRegistry over all workers; the other admin reads are gathered from the workers over
// IPC and merged; PATCH is applied to every worker.

interface AdminRequest { type: 'penumbra:admin', id: number, op: OperationName | string, args?: unknown }
interface AdminResponse { type: 'penumbra:admin:res', id: number, ok: boolean, value?: unknown, error?: { code: string, message: string } }

/** In a worker: answers the primary's admin requests from this process's state. */
export function serveWorkerAdmin (app: ProcessOps): void {
  process.on('message', (msg: AdminRequest) => {
    if (msg?.type !== 'penumbra:admin') return
    void answer(app, msg).then((reply) => { process.send?.(reply) })
  })
}

async function answer (app: ProcessOps, msg: AdminRequest): Promise<AdminResponse> {
  try {
    if (!isOperation(msg.op)) throw new PenumbraError('PENUMBRA_NOT_FOUND', `unknown admin op ${msg.op}`)
    return { type: 'penumbra:admin:res', id: msg.id, ok: true, value: await runOperation(app, msg.op, msg.args) }
  } catch (err) {
    const e = err as PenumbraError
    return { type: 'penumbra:admin:res', id: msg.id, ok: false, error: { code: e.code ?? 'PENUMBRA_INTERNAL', message: e.message } }
  }
}

/**
 * When every answer is the same client error (4xx: no such shadow, an invalid value), that error
 * as the workers put it: it is the answer to the op. Otherwise null.
 */
function clientError (answers: AdminResponse[]): PenumbraError | null {
  const e = answers[0]?.error
  if (e === undefined || !(e.code in ErrorCodes) || !answers.every((a) => a.error?.code === e.code)) return null
  const code = e.code as ErrorCode
  return ErrorCodes[code] >= 400 && ErrorCodes[code] < 500 ? new PenumbraError(code, e.message) : null
}

/** In the primary: the admin backend that asks every live worker and merges the answers. */
export class ClusterBackend implements AdminBackend {
  readonly #registry = new AggregatorRegistry()
  #config: Config
  #nextId = 1
  readonly #pending = new Map<number, { resolve: (v: AdminResponse) => void }>()
  readonly #ready: () => Promise<{ ready: boolean, reason?: string }>
  readonly statusPage?: () => string
  /** This (primary) process's own metrics, appended to the workers' aggregate. */
  readonly #own: Registry | null
  /** The authoritative blue/green choice: workers are told, and new workers start with it. */
  readonly #selection: PrimarySelection
  readonly #switches: Counter<'from' | 'to'> | null
  /** `penumbra_feedback_total`: counted here, where the workers' answers to a batch are merged. */
  readonly #feedbackTotal: Counter<'result'> | null
  readonly #probe = new OriginProbe()
  readonly #log: { info (o: object, m: string): void } | null

  constructor (config: Config, ready: () => Promise<{ ready: boolean, reason?: string }>, opts: { statusPage?: () => string, own?: Registry, log?: { info (o: object, m: string): void } } = {}) {
    this.#config = config
    this.#ready = ready
    this.#own = opts.own ?? null
    this.#switches = this.#own === null ? null : primarySwitchesCounter([this.#own])
    this.#feedbackTotal = this.#own === null ? null : feedbackTotalCounter([this.#own])
    this.#log = opts.log ?? null
    this.#selection = new PrimarySelection(config.primary)
    if (opts.statusPage !== undefined) this.statusPage = opts.statusPage
    cluster.on('message', (_worker, msg: AdminResponse) => {
      if (msg?.type !== 'penumbra:admin:res') return
      const p = this.#pending.get(msg.id)
      if (p !== undefined) { this.#pending.delete(msg.id); p.resolve(msg) }
    })
  }

  /** A reloaded config; returns the note of PrimarySelection.reload (the workers apply the same rule). */
  setConfig (config: Config): string | null {
    this.#config = config
    const before = this.#selection.status.backend
    const note = this.#selection.reload(config.primary, (n) => n in config.backends)
    const after = this.#selection.status.backend
    if (after !== before) this.#switches?.inc({ from: before, to: after })
    return note
  }

  /** The active primary, for a worker that is (re)started. */
  get primaryStatus (): PrimaryStatus {
    return this.#selection.status
  }

  async primary (): Promise<unknown> {
    return this.#selection.status
  }

  /** The primary's probe (reachability), merged with the workers' in-flight counts. */
  async backends (): Promise<unknown> {
    const lists = await this.#values('backends') as Array<Array<Record<string, any>>>
    const first = lists[0] ?? []
    return Promise.all(first.map(async (b, i) => ({
      ...b,
      inflight: lists.reduce((a, l) => a + (l[i]?.inflight ?? 0), 0),
      reachable: await this.#probe.check(b.url, `backend "${String(b.name)}"`)
    })))
  }

  async switchPrimary (req: { backend: string, requireReady?: boolean }, who: string): Promise<unknown> {
    const cfg = this.#config.backends[req.backend]
    if (cfg === undefined) throw new PenumbraError('PENUMBRA_NOT_FOUND', `no backend named "${req.backend}"`)
    if (req.requireReady === true) {
      const r = await this.#probe.check(cfg.url, `backend "${req.backend}"`, true)
      if (!r.ready) throw new PenumbraError('PENUMBRA_BACKEND_NOT_READY', `not switched: ${r.reason ?? 'unreachable'}`)
    }
    return this.#broadcast(this.#selection.switchTo(req.backend, (n) => n in this.#config.backends), who)
  }

  /** The canary controller of this (primary) process (canary.controller: internal), or null. */
  #canary: CanaryController | null = null

  setCanaryController (c: CanaryController | null): void {
    this.#canary = c
  }

  /** `GET /canary`: this process's controller; with an external one, the workers' (the first answer stands for all). */
  async canary (): Promise<unknown> {
    if (this.#canary !== null) return { ...this.#canary.status(), baseline: this.#canary.cfg.baseline ?? this.#selection.status.backend }
    const values = await this.#values('canary')
    if (values.length === 0) throw new PenumbraError('PENUMBRA_WORKER_UNAVAILABLE', 'no worker is running (they may be restarting)')
    return values[0]
  }

  /** A canary command or an external controller's weight, applied by every worker (200 only when all did). */
  async canaryCommand (cmd: CanaryCommandName, who: string): Promise<unknown> {
    const c = this.#canary
    if (c !== null) return await c[cmd](who)
    return this.#everyWorker('canaryCommand', { cmd, who })
  }

  async canaryWeight (req: CanaryWeightBody, who: string): Promise<unknown> {
    if (this.#canary !== null) throw new PenumbraError('PENUMBRA_CONFLICT', 'canary.controller is internal: this penumbra decides its weight itself (set controller: external to drive it with `penumbra canary`)')
    return this.#everyWorker('canaryWeight', { req, who })
  }

  async #everyWorker (op: OperationName, args: unknown): Promise<unknown> {
    const answers = await this.ask(op, args)
    if (answers.length === 0) throw new PenumbraError('PENUMBRA_WORKER_UNAVAILABLE', 'no worker is running (they may be restarting)')
    const failed = answers.filter((a) => !a.ok)
    if (failed.length === answers.length) throw clientError(answers) ?? new PenumbraError('PENUMBRA_WORKER_UNAVAILABLE', failed[0]!.error?.message ?? 'no worker applied it')
    if (failed.length > 0) throw new PenumbraError('PENUMBRA_WORKER_UNAVAILABLE', `applied in ${answers.length - failed.length} of ${answers.length} workers (${[...new Set(failed.map((a) => a.error?.message ?? 'failed'))].join('; ')}): repeat it`)
    return answers[0]!.value
  }

  async rollbackPrimary (who: string): Promise<unknown> {
    return this.#broadcast(this.#selection.rollback((n) => n in this.#config.backends), who)
  }

  /**
   * Tells every worker the new status (also when nothing changed here: a repeated PUT reaches the
   * workers a failed one missed). 200 only when every live worker applied it.
   */
  async #broadcast (sw: PrimarySwitch, who: string): Promise<PrimarySwitch> {
    if (sw.switched) {
      this.#switches?.inc({ from: sw.from, to: sw.to })
      this.#log?.info({ from: sw.from, to: sw.to, who }, 'primary switched')
    }
    const answers = await this.ask('applyPrimary', sw.status)
    if (answers.length === 0) throw new PenumbraError('PENUMBRA_WORKER_UNAVAILABLE', 'no worker is running (they may be restarting); new workers start with the new primary')
    const failed = answers.filter((a) => !a.ok)
    if (failed.length > 0) {
      const why = [...new Set(failed.map((a) => a.error?.message ?? 'failed'))].join('; ')
      throw new PenumbraError('PENUMBRA_WORKER_UNAVAILABLE', `switched in ${answers.length - failed.length} of ${answers.length} workers (${why}): repeat the PUT (it is idempotent)`)
    }
    return sw
  }

  /** Sends one op to every worker; resolves with the answers of those that answered in 5 s. */
  async ask (op: OperationName, args?: unknown): Promise<AdminResponse[]> {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected())
    return Promise.all(workers.map(async (w) => this.#askOne(w, op, args)))
  }

  #askOne (w: Worker, op: OperationName, args?: unknown): Promise<AdminResponse> {
    return new Promise<AdminResponse>((resolve) => {
      const id = this.#nextId++
      const t = setTimeout(() => {
        this.#pending.delete(id)
        resolve({ type: 'penumbra:admin:res', id, ok: false, error: { code: 'PENUMBRA_INTERNAL', message: `worker ${w.id} did not answer` } })
      }, 5000)
      this.#pending.set(id, { resolve: (v) => { clearTimeout(t); resolve(v) } })
      w.send({ type: 'penumbra:admin', id, op, args } satisfies AdminRequest)
    })
  }

  async #values (op: OperationName, args?: unknown): Promise<unknown[]> {
    const answers = await this.ask(op, args)
    if (answers.length > 0 && answers.every((a) => !a.ok)) {
      throw clientError(answers) ?? new PenumbraError('PENUMBRA_INTERNAL', answers[0]!.error?.message ?? 'no worker answered')
    }
    return answers.filter((a) => a.ok).map((a) => a.value)
  }

  async metrics (): Promise<{ contentType: string, body: string }> {
    const body = await this.#registry.clusterMetrics()
    return { contentType: this.#registry.contentType, body: this.#own === null ? body : body + await this.#own.metrics() }
  }

  ready (): Promise<{ ready: boolean, reason?: string }> {
    return this.#ready()
  }

  config (): unknown {
    return redactConfig(this.#config)
  }

  async shadows (): Promise<unknown> {
    const lists = await this.#values('shadows') as Array<Array<Record<string, any>>>
    if (lists.length === 0) return []
    // Same config everywhere; counters and in-flight are summed over the workers.
    return lists[0]!.map((s, i) => {
      const merged = structuredClone(s)
      for (const other of lists.slice(1)) {
        const o = other[i]
        if (o === undefined) continue
        merged.state.inflight += o.state.inflight
        for (const k of ['mirrored', 'ok', 'error', 'timeout']) merged.counters[k] += o.counters[k]
        for (const k of Object.keys(merged.counters.skipped)) merged.counters.skipped[k] += o.counters.skipped[k]
      }
      return merged
    })
  }

  /**
   * Applies a PATCH in every worker. Success means every live worker applied it: a worker that
   * failed or did not answer would go on with the old state while the caller is told otherwise.
   */
  async patchShadow (name: string, patch: ShadowPatch): Promise<unknown> {
    return this.#everywhere('patch', { name, patch })
  }

  async patchExperiment (name: string, patch: ExperimentPatch): Promise<unknown> {
    return this.#everywhere('patchExperiment', { name, patch })
  }

  /**
   * `POST /events` with --workers: one worker takes the batch (assignment by unit is the same in
   * every worker; the outcome counters are summed by the aggregated /metrics). Events naming a
   * request id are refused with a reason: its exposure is in whichever worker answered it.
   */
  async postEvents (events: unknown[]): Promise<unknown> {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected())
    if (workers.length === 0) throw new PenumbraError('PENUMBRA_WORKER_UNAVAILABLE', 'no worker is running (they may be restarting): no event was recorded')
    const answer = await this.#askOne(workers[0]!, 'events', { events })
    if (!answer.ok) throw new PenumbraError('PENUMBRA_WORKER_UNAVAILABLE', `no event was recorded: ${answer.error?.message ?? 'the worker failed'}`)
    return answer.value
  }

  /** Experiments as one process would show them, with the workers' counts summed. */
  async experiments (): Promise<unknown> {
    const lists = await this.#values('experiments') as Array<Array<Record<string, any>>>
    if (lists.length === 0) return []
    return lists[0]!.map((e, i) => {
      const merged = structuredClone(e)
      for (const other of lists.slice(1)) {
        const o = other[i]
        if (o === undefined) continue
        merged.variants.forEach((v: { exposures: number, units: number, requests: number, errors: number, latency: number[], outcomes: Record<string, { n: number, sum: number, sumSq: number }> }, j: number) => {
          const ov = o.variants[j]
          if (ov === undefined) return
          v.exposures += ov.exposures
          v.units += ov.units
          v.requests += ov.requests
          v.errors += ov.errors
          v.latency = v.latency.map((c, k) => c + (ov.latency[k] ?? 0))
          for (const [metric, m] of Object.entries(v.outcomes)) {
            const om = ov.outcomes[metric]
            if (om !== undefined) { m.n += om.n; m.sum += om.sum; m.sumSq += om.sumSq }
          }
        })
        for (const k of Object.keys(merged.notEnrolled)) merged.notEnrolled[k] += o.notEnrolled[k] ?? 0
      }
      return withAnalysis(merged)
    })
  }

  /** Runs a mutation in every worker; success only when every live worker applied it. */
  async #everywhere (op: OperationName, args: unknown): Promise<unknown> {
    const answers = await this.ask(op, args)
    if (answers.length === 0) throw new PenumbraError('PENUMBRA_WORKER_UNAVAILABLE', 'no worker is running (they may be restarting): nothing was changed')
    const failed = answers.filter((a) => !a.ok)
    if (failed.length === 0) return answers[0]!.value
    const refused = clientError(answers)
    if (refused !== null) throw refused
    const why = [...new Set(failed.map((a) => a.error?.message ?? 'failed'))].join('; ')
    throw new PenumbraError('PENUMBRA_WORKER_UNAVAILABLE',
      `applied in ${answers.length - failed.length} of ${answers.length} workers (${why}); the others keep their previous state: repeat the PATCH (it is idempotent)`)
  }

  /**
   * `POST /feedback` with --workers. With the Redis store one worker takes the batch (every
   * worker reads the same log); with the memory store every worker is asked, since the
   * prediction is in whichever one answered the request, and the answers are merged item by
   * item. Repeating a batch is safe (labels are idempotent).
   */
  async postFeedback (items: unknown[]): Promise<unknown> {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected())
    if (workers.length === 0) throw new PenumbraError('PENUMBRA_WORKER_UNAVAILABLE', 'no worker is running (they may be restarting): no label was recorded')
    const targets = this.#config.feedback.store === 'redis' ? [workers[0]!] : workers
    const answers = await Promise.all(targets.map(async (w) => this.#askOne(w, 'feedback', { items })))
    const failed = answers.filter((a) => !a.ok)
    if (failed.length > 0) {
      const refused = clientError(failed)
      if (failed.length === answers.length && refused !== null) throw refused
      const code = failed.every((a) => a.error?.code === 'PENUMBRA_STORE_UNAVAILABLE') ? 'PENUMBRA_STORE_UNAVAILABLE' : 'PENUMBRA_WORKER_UNAVAILABLE'
      throw new PenumbraError(code, `${failed.length} of ${answers.length} workers could not take the labels (${failed[0]!.error?.message ?? 'failed'}): repeat the call (labels already recorded count once)`)
    }
    const merged = mergeIngest(answers.map((a) => a.value as IngestResponse))
    for (const [result, n] of Object.entries(merged.counts)) if (n > 0) this.#feedbackTotal?.inc({ result }, n)
    return merged
  }

  /** `GET /quality` over every worker's tallies. */
  async quality (): Promise<unknown> {
    const parts = await this.#values('feedbackData') as QualityData[]
    const f = this.#config.feedback
    // Drift is refused with --workers; assertions are summed over the workers.
    const assertions = this.#config.assertions.length === 0 ? null : (await this.assertions({}) as ReturnType<typeof mergeAssertions>).assertions
    return qualityBody(parts, { confidence: f.confidence, minCoverage: f.minCoverage }, { workers: parts.length, drift: null, assertions })
  }

  // -- chaos (issue #20): every worker runs the same experiments, started and stopped in all of them.

  chaosEnabled (): boolean {
    return this.#config.chaos.enabled
  }

  /** The experiments as one process shows them, with the workers' counts summed. */
  async chaosList (): Promise<unknown> {
    const lists = await this.#values('chaosList') as Array<{ experiments: Array<Record<string, any>>, maxClientShare: number, lastMinute: { requests: number, faulted: number } }>
    if (lists.length === 0) return { experiments: [], workers: 0 }
    const merged = structuredClone(lists[0]!)
    for (const other of lists.slice(1)) {
      merged.lastMinute.requests += other.lastMinute.requests
      merged.lastMinute.faulted += other.lastMinute.faulted
      for (const e of merged.experiments) {
        const o = other.experiments.find((x) => x.name === e.name)
        if (o === undefined) continue
        e.capped += o.capped
        for (const k of Object.keys(e.injected)) e.injected[k] += o.injected[k] ?? 0
      }
    }
    return { ...merged, workers: lists.length }
  }

  async chaosStart (spec: ChaosExperimentSpec, who: string): Promise<unknown> {
    return this.#everywhere('chaosStart', { spec, who })
  }

  async chaosStop (name: string, who: string): Promise<unknown> {
    return this.#everywhere('chaosStop', { name, who })
  }

  async chaosStopAll (who: string): Promise<unknown> {
    return this.#everywhere('chaosStopAll', { who })
  }

  async mismatches (q: { shadow?: string, limit?: number }): Promise<unknown> {
    const lists = await this.#values('mismatches', q) as Array<Array<{ time: string }>>
    const all = lists.flat().sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0))
    return all.slice(0, q.limit ?? 100)
  }

  async mismatch (id: string): Promise<unknown> {
    const values = await this.#values('mismatch', id)
    return values.find((v) => v !== null) ?? null
  }

  async noise (): Promise<unknown> {
    return { workers: await this.#values('noise') }
  }

  async report (): Promise<unknown> {
    const parts = await this.#values('report') as ProcessReport[]
    return mergeReports(parts, { workers: parts.length })
  }

  /** `GET /drift`: drift is refused with --workers (drift-schema.ts), so this says it is off. */
  async drift (): Promise<unknown> {
    return (await this.#values('drift'))[0] ?? null
  }

  /** `GET /assertions`: counts summed over the workers, violations merged newest first. */
  async assertions (q: { model?: string, assertion?: string, limit?: number }): Promise<unknown> {
    return mergeAssertions(await this.#values('assertions', q) as Parameters<typeof mergeAssertions>[0], q.limit)
  }

  async pinDriftReference (): Promise<unknown> {
    throw new PenumbraError('PENUMBRA_CONFLICT', 'drift is not available with --workers (each worker would have its own reference)')
  }
}
