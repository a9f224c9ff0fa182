import type { Config } from '../config/schema.js'
import type { Metrics } from '../metrics/metrics.js'
import type { Logger } from '../log/logger.js'
import { Comparator, releasePrimaryCache } from './comparator.js'
import { NoiseTracker } from './noise.js'
import { PathLimiter } from './path-limiter.js'
import { MismatchStore } from './mismatch-store.js'
import { normalisePath } from './json-pointer.js'
import type { CapturedResponse, CompareJob, CompareResult } from './types.js'
import { CompareWorker, toWire, type ObserveSpec, type ThreadItem } from './compare-worker.js'
import type { AnswerDigest } from '../drift/digest.js'
import type { CompareTarget, JobConsumer, JobRecord } from './job-record.js'
import { ShadowReport, type ComparisonOutcome } from './shadow-report.js'
import { answerUsage, streamStats, type StreamStats } from './llm/stream-timing.js'
import { decodeBody } from './body.js'
import { resolveFormat } from './formats/index.js'

/**
 * Time one drain of the queue may take before yielding to the event loop again. A client request
 * that arrives during a slice waits for its end, so this is added to the tail latency under load;
 * 1 ms holds ~70 comparisons of ~1 KB bodies, and a setImmediate per slice costs ~1 µs.
 */
const SLICE_MS = 1

/** Largest captured stream replayed for its timing (the capture itself is bounded already). */
const STREAM_STATS_MAX_BYTES = 16 * 1024 * 1024

/**
 * Receives every parsed answer of a compared job (drift and assertions, src/drift/): the serving
 * backend's once per job, each shadow's. Called on the comparison stage's slices, never on the
 * client's path: an answer compared here is handed over parsed; one compared on the thread
 * (large bodies) comes back digested there (`digestConfig` is what the thread digests with).
 */
export interface AnswerObserver {
  readonly active: boolean
  readonly digestConfig: ObserveSpec
  observe (model: string, status: number, format: string, body: unknown, req: JobRecord): void
  observeDigest (model: string, status: number, digest: AnswerDigest, req: JobRecord): void
}

/** What a job waiting at the comparison thread needs when its results come back. */
interface Submitted {
  job: JobRecord
  /** Per thread item: the target index in the job. */
  targets: number[]
  inputs: Array<CompareJob | null>
}

/**
 * The comparison stage (docs/architecture.md, step 6): finished mirrored requests (plain {@link JobRecord}s) are queued and compared in
 * `setImmediate` slices of at most SLICE_MS, never on the client's path. Jobs with large bodies
 * (`compare.workerMinBytes`, 64 KiB by default) go to a worker thread ({@link CompareWorker}),
 * so that even a 4 MiB body, parsed and diffed in one go, never holds the event loop; small ones
 * are compared here, where they cost less than a thread round trip (measured: with every job on
 * the thread, the event loop saved nothing on ~1 KB bodies and the process spent ~20 µs more CPU
 * per comparison). One comparison is not interruptible. Jobs waiting here or at the
 * thread are capped (`compare.maxPending` jobs and `compare.maxPendingBytes` of captured
 * bodies): past it, jobs are dropped and counted, so a burst of large responses can neither grow
 * memory without bound nor queue minutes of CPU. Outcomes go to metrics and the report;
 * mismatches to the store and sink.
 */
export class CompareStage implements JobConsumer {
  readonly store: MismatchStore
  readonly noise: NoiseTracker
  readonly reports = new Map<string, ShadowReport>()
  readonly #metrics: Metrics
  readonly #log: Logger
  readonly #limiter = new PathLimiter(100)
  /** Keyed by a target's compare settings object (one per shadow per config load). */
  #comparators = new WeakMap<CompareTarget['compare'], Comparator>()
  #noiseComparator!: Comparator
  #noiseComparatorConfig!: Config['compare']
  #noiseEnabled!: boolean
  #maxPending!: number
  #maxPendingBytes!: number
  #pendingBytes = 0
  #queue: JobRecord[] = []
  #scheduled = false
  #workerMinBytes!: number | null
  #worker: CompareWorker<Submitted> | null = null
  /** Drift and assertions (set by the composition root), or null. */
  observer: AnswerObserver | null = null

  constructor (config: Config, metrics: Metrics, log: Logger) {
    this.#metrics = metrics
    this.#log = log
    this.store = new MismatchStore(config.compare.mismatches, {
      onSinkDrop: () => metrics.mismatchSinkDropped.inc(),
      onSinkError: (err: Error) => log.warn({ err: err.message }, 'mismatch sink write failed')
    }, config.shadows.length)
    this.noise = new NoiseTracker(config.compare.noise)
    this.#apply(config)
  }

  /** Applies a reloaded config (the store and the noise statistics are kept). */
  reload (config: Config): void {
    this.#comparators = new WeakMap()
    this.#apply(config)
    this.store.setShadowCount(config.shadows.length)
    this.#worker?.forgetConfigs()
  }

  /** Takes the settings of `config` this stage reads per job. */
  #apply (config: Config): void {
    const c = config.compare
    this.#noiseComparator = new Comparator(c)
    this.#noiseComparatorConfig = c
    this.#noiseEnabled = c.noise.enabled
    this.#maxPending = c.maxPending
    this.#maxPendingBytes = c.maxPendingBytes
    this.#workerMinBytes = c.workerMinBytes
  }

  report (name: string): ShadowReport {
    let r = this.reports.get(name)
    if (r === undefined) {
      r = new ShadowReport()
      this.reports.set(name, r)
    }
    return r
  }

  consume (job: JobRecord): void {
    // An experiment arm's answer captured alone (no shadow): for drift and assertions, queued
    // like a comparison (never parsed on the path that finished the response).
    const observeOnly = job.targets.length === 0
    if (observeOnly && this.observer?.active !== true) return
    // Nothing to compare (every target has comparisons off): count the outcomes now, no queueing.
    if (!observeOnly && !needsComparison(job)) {
      this.#process(job)
      return
    }
    const bytes = jobBytes(job)
    if (this.#queue.length + (this.#worker?.inflight ?? 0) >= this.#maxPending || (this.#pendingBytes + bytes > this.#maxPendingBytes && this.#queue.length > 0)) {
      for (const t of job.targets) if (t.kind === 'shadow') this.#drop(t.name, 'queue_full')
      // Not compared, but what the shadow spent still counts against its budget: an overloaded
      // stage is exactly when copies must not overspend.
      this.#spendBudgets(job)
      return
    }
    job.bytes = bytes
    this.#pendingBytes += bytes
    this.#queue.push(job)
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(this.#drain)
    }
  }

  /** Jobs waiting for comparison, here or at the comparison thread. */
  get pending (): number {
    return this.#queue.length + (this.#worker?.inflight ?? 0)
  }

  #drain = (): void => {
    const until = performance.now() + SLICE_MS
    const q = this.#queue
    let i = 0
    while (i < q.length) {
      const job = q[i++]!
      try {
        // A job handed to the thread keeps its bytes counted until its results are back.
        if (this.#onThread(job)) {
          this.#recordStreams(job)
          this.#submit(job)
        } else {
          this.#pendingBytes -= job.bytes
          this.#process(job)
        }
      } catch (err) {
        // A bug in a comparator must never take the proxy down: count it and go on.
        this.#log.error({ err, requestId: job.requestId }, 'comparison failed')
      }
      if (performance.now() >= until) break
    }
    this.#worker?.flush()
    this.#queue = i === q.length ? [] : q.slice(i)
    if (this.#queue.length > 0) setImmediate(this.#drain)
    else this.#scheduled = false
  }

  #drop (shadow: string, reason: string): void {
    this.#metrics.comparisonsDropped.inc({ shadow, reason })
    const r = this.report(shadow)
    r.dropped[reason] = (r.dropped[reason] ?? 0) + 1
  }

  /** Does this job go to the comparison thread (`compare.workerMinBytes`)? */
  #onThread (job: JobRecord): boolean {
    const min = this.#workerMinBytes
    if (min === null || job.targets.length === 0) return false
    return job.bytes - (job.requestBody?.length ?? 0) >= min
  }

  /** Compares a job here, on the event loop. */
  #process (job: JobRecord): void {
    if (job.targets.length === 0) { this.#observeAlone(job); return }
    this.#recordStreams(job)
    const obs = this.observer?.active === true ? this.observer : null
    let primarySeen = false
    for (const t of job.targets) {
      if (t.kind === 'noise') {
        if (learns(job, t)) this.#learnNoise(job, t.result!.response!)
        continue
      }
      const input = this.#input(job, t)
      if (input === null) continue
      const res = this.#comparator(t).compare(input, this.#noiseEnabled ? (p) => this.noise.isNoisy(p, t.name) : undefined)
      this.#record(t, input, res)
      if (obs !== null) primarySeen = this.#observe(obs, job, t, input, res, primarySeen)
    }
    releasePrimaryCache()
  }

  /** Hands the parsed answers of one comparison to the observer; returns whether the primary's was. */
  #observe (obs: AnswerObserver, job: JobRecord, t: CompareTarget, input: CompareJob, res: CompareResult, primarySeen: boolean): boolean {
    try {
      if (!primarySeen && res.primaryBody !== undefined) obs.observe(job.backend, input.primary.status, res.format, res.primaryBody, job)
      if (res.shadowBody !== undefined) obs.observe(t.name, input.shadowResponse.status, res.format, res.shadowBody, job)
    } catch (err) {
      this.#log.error({ err, requestId: job.requestId }, 'drift/assertions failed on an answer')
    }
    return primarySeen || res.primaryBody !== undefined
  }

  /**
   * An answer captured for drift and assertions only (an experiment arm, no shadow): decoded
   * here, on the comparison slices, when smaller than `compare.workerMinBytes` (larger ones and
   * event streams are skipped: they would hold the event loop, and no thread job carries them).
   */
  #observeAlone (job: JobRecord): void {
    const obs = this.observer
    const p = job.primary.response
    if (obs?.active !== true || p === null || p.truncated || p.arrivals !== undefined) return
    const cfg = this.#noiseComparatorConfig
    if (this.#workerMinBytes !== null && p.body.length >= this.#workerMinBytes) return
    const decoded = decodeBody(p, cfg.maxBodyBytes)
    if (!decoded.ok) return
    try {
      obs.observe(job.backend, p.status, resolveFormat(cfg.format, job.url, decoded.value, undefined).name, decoded.value, job)
    } catch (err) {
      this.#log.error({ err, requestId: job.requestId }, 'drift/assertions failed on an answer')
    }
  }

  /**
   * The comparison input for target i, or null when there is nothing to compare; the outcomes
   * that need no comparison (shadow error or timeout, no primary response, comparisons off) are
   * counted here.
   */
  #input (job: JobRecord, t: CompareTarget): CompareJob | null {
    const result = t.result
    if (result === undefined) return null // never sent (body too large, upload failed)
    if (result.outcome === 'error') { this.#count(t.name, 'shadow_error'); return null }
    if (result.outcome === 'timeout') { this.#count(t.name, 'shadow_timeout'); return null }
    const primary = job.primary.response
    if (primary === null) { this.#drop(t.name, 'primary_error'); return null }
    if (!t.compare.enabled) { this.#drop(t.name, 'disabled'); return null }
    return {
      shadow: t.name,
      requestId: job.requestId,
      method: job.method,
      url: job.url,
      requestHeaders: job.requestHeaders,
      requestBody: job.requestBody,
      primary,
      shadowResponse: result.response!
    }
  }

  /**
   * Hands a job to the comparison thread. While the thread is in its restart backoff the job's
   * comparisons are dropped (`worker_failed`) rather than run on the event loop.
   */
  #submit (job: JobRecord): void {
    const w = this.#thread()
    const items: ThreadItem[] = []
    const targets: number[] = []
    const inputs: Array<CompareJob | null> = []
    const observe = this.observer?.active === true
    w.setObserve(observe ? this.observer!.digestConfig : null)
    for (let i = 0; i < job.targets.length; i++) {
      const t = job.targets[i]!
      if (t.kind === 'noise') {
        if (!learns(job, t)) continue
        items.push({ key: w.keyFor(this.#noiseComparatorConfig), noiseShadow: null, learn: true, response: toWire(t.result!.response!) })
        targets.push(i)
        inputs.push(null)
        continue
      }
      const input = this.#input(job, t)
      if (input === null) continue
      // The thread's copy of the noisy paths, recomputed per job (a handful of tracked paths).
      if (this.#noiseEnabled) w.setNoisy(t.name, this.noise.noisyPaths(t.name))
      items.push({ key: w.keyFor(t.compare), noiseShadow: this.#noiseEnabled ? t.name : null, learn: false, observe, response: toWire(input.shadowResponse) })
      targets.push(i)
      inputs.push(input)
    }
    if (items.length === 0) {
      this.#pendingBytes -= job.bytes
      return
    }
    if (!w.up()) {
      this.#done({ job, targets, inputs }, null)
      return
    }
    try {
      w.submit({ job, targets, inputs }, { requestId: job.requestId, method: job.method, url: job.url, primary: toWire(job.primary.response!), items })
    } catch (err) {
      // Not submitted, so no callback will release the job's bytes.
      this.#pendingBytes -= job.bytes
      throw err
    }
  }

  #thread (): CompareWorker<Submitted> {
    this.#worker ??= new CompareWorker<Submitted>(
      (ctx, results) => this.#done(ctx, results),
      (err) => this.#log.error({ err: err.message }, 'comparison thread failed; its pending comparisons are dropped and it restarts after a backoff')
    )
    return this.#worker
  }

  /** Results from the thread (null: the thread died first, the comparisons are dropped). */
  #done (ctx: Submitted, results: Array<CompareResult | null> | null): void {
    const { job, targets, inputs } = ctx
    this.#pendingBytes -= job.bytes
    for (let k = 0; k < targets.length; k++) {
      const t = job.targets[targets[k]!]!
      const res = results?.[k] ?? null
      const input = inputs[k]!
      if (t.kind === 'noise') {
        if (res !== null && res.outcome !== 'unparseable') this.noise.recordNoise(res.differences)
        continue
      }
      if (res === null) { this.#drop(t.name, 'worker_failed'); continue }
      try {
        this.#record(t, input, res)
        const obs = this.observer
        if (res.digests !== undefined && obs?.active === true) {
          if (res.digests.primary !== undefined) obs.observeDigest(job.backend, input.primary.status, res.digests.primary, job)
          if (res.digests.shadow !== undefined) obs.observeDigest(t.name, input.shadowResponse.status, res.digests.shadow, job)
        }
      } catch (err) {
        this.#log.error({ err, requestId: job.requestId }, 'comparison failed')
      }
    }
  }

  #comparator (t: CompareTarget): Comparator {
    let c = this.#comparators.get(t.compare)
    if (c === undefined) {
      c = new Comparator(t.compare)
      this.#comparators.set(t.compare, c)
    }
    return c
  }

  #count (shadow: string, outcome: ComparisonOutcome): ShadowReport {
    this.#metrics.comparisons.inc({ shadow, outcome })
    const r = this.report(shadow)
    r.outcomes[outcome]++
    return r
  }

  #record (t: CompareTarget, input: CompareJob, res: CompareResult): void {
    const m = this.#metrics
    const shadow = t.name
    // A stream cut off before its end: the shadow's is a failed answer (shadow_error, reason
    // truncated); the primary's (the client's own abort included) leaves nothing to compare.
    if (res.streamTruncated === 'primary') { this.#drop(shadow, 'primary_truncated'); return }
    if (res.streamTruncated === 'shadow') {
      this.#count(shadow, 'shadow_error')
      m.comparisonErrors.inc({ shadow, reason: 'truncated' })
      return
    }
    const r = this.#count(shadow, res.outcome)
    const delta = (input.shadowResponse.durationMs - input.primary.durationMs) / 1000
    m.latencyDelta.observe({ shadow }, delta)
    r.primaryLatency.observe(input.primary.durationMs)
    r.shadowLatency.observe(input.shadowResponse.durationMs)
    if (res.outcome === 'unparseable' || res.outcome === 'unsupported') return

    const inst = res.instances
    if (inst.compared > 0) {
      m.instancesCompared.inc({ shadow }, inst.compared)
      r.instancesCompared += inst.compared
    }
    if (inst.disagreements > 0) {
      m.instanceDisagreements.inc({ shadow }, inst.disagreements)
      r.instanceDisagreements += inst.disagreements
    }
    for (const d of inst.scoreDeltas) m.scoreDelta.observe({ shadow }, d)
    if (res.llm !== undefined) {
      m.recordLlmAgreement(shadow, res.llm)
      r.llm.recordComparison(res.llm)
    }

    // One count per path per request (a batch of 32 differing labels is one path, counted once).
    const seen = new Set<string>()
    for (const d of res.differences) {
      const path = normalisePath(d.path)
      if (seen.has(path)) continue
      seen.add(path)
      m.fieldMismatches.inc({ shadow, path: this.#limiter.label(shadow, path) })
      r.countPath(path)
    }
    if (this.#noiseEnabled) this.noise.recordShadow(shadow, [...res.differences, ...(res.noisy ?? [])])
    if (res.outcome === 'mismatch') this.store.add(input, res)
  }

  #learnNoise (job: JobRecord, replay: CapturedResponse): void {
    const res = this.#noiseComparator.compare({
      shadow: 'primary',
      requestId: job.requestId,
      method: job.method,
      url: job.url,
      requestHeaders: job.requestHeaders,
      requestBody: job.requestBody,
      primary: job.primary.response!,
      shadowResponse: replay
    })
    if (res.outcome !== 'unparseable') this.noise.recordNoise(res.differences)
  }

  /**
   * Streamed LLM answers of a job: time to first token, time per output token and tokens, per
   * upstream (the serving backend, each shadow), from the capture's chunk arrival times; the
   * report's side-by-side time to first token; and each budgeted shadow's reported usage.
   */
  #recordStreams (job: JobRecord): void {
    const p = job.primary.response
    const ps = p?.arrivals !== undefined ? this.#streamMetrics(job.backend, p) : null
    for (const t of job.targets) {
      const r = t.result?.response
      if (t.kind !== 'shadow' || r == null) continue
      const ss = r.arrivals !== undefined ? this.#streamMetrics(t.name, r) : null
      if (ps !== null && ss !== null) this.report(t.name).llm.recordTiming(ps, ss)
      if (t.budget != null) {
        const u = ss ?? (r.arrivals === undefined ? answerUsage(r, t.compare.maxBodyBytes) : null)
        if (u !== null) t.budget.spend((u.inputTokens ?? 0) + (u.outputTokens ?? 0))
      }
    }
  }

  /** Each budgeted shadow's reported usage, spent on its budget (for a job that is not compared). */
  #spendBudgets (job: JobRecord): void {
    for (const t of job.targets) {
      const r = t.result?.response
      if (t.kind !== 'shadow' || r == null || t.budget == null) continue
      const u = r.arrivals !== undefined ? streamStats(r, STREAM_STATS_MAX_BYTES) : answerUsage(r, t.compare.maxBodyBytes)
      if (u !== null) t.budget.spend((u.inputTokens ?? 0) + (u.outputTokens ?? 0))
    }
  }

  #streamMetrics (upstream: string, res: CapturedResponse): StreamStats | null {
    const s = streamStats(res, STREAM_STATS_MAX_BYTES)
    if (s === null) return null
    const m = this.#metrics
    if (s.timeToFirstTokenMs !== null) m.llmTimeToFirstToken.observe({ upstream }, s.timeToFirstTokenMs / 1000)
    if (s.timePerOutputTokenMs !== null) m.llmTimePerOutputToken.observe({ upstream }, s.timePerOutputTokenMs / 1000)
    if (s.inputTokens === null && s.outputTokens === null) m.llmTokens.inc({ upstream, kind: 'unknown' })
    if (s.inputTokens !== null) m.llmTokens.inc({ upstream, kind: 'input' }, s.inputTokens)
    if (s.outputTokens !== null) m.llmTokens.inc({ upstream, kind: 'output' }, s.outputTokens)
    return s
  }

  /** Waits for the comparisons at the thread (until `deadline`, epoch ms), then closes the store. */
  async close (deadline = Date.now() + 2000): Promise<void> {
    while (this.#queue.length > 0 && Date.now() < deadline) this.#drain()
    await this.#worker?.close(deadline)
    await this.store.close()
  }
}

/** Whether some target of the job is compared or learns noise (else only counting is left). */
function needsComparison (job: JobRecord): boolean {
  for (const t of job.targets) if (t.kind === 'noise' || t.compare.enabled) return true
  return false
}

/** Is `t` a noise replay with both responses to learn from? */
function learns (job: JobRecord, t: CompareTarget): boolean {
  return t.result !== undefined && t.result.response !== null && job.primary.response !== null
}

/** Bytes a queued job holds: the request body and every captured response body. */
function jobBytes (job: JobRecord): number {
  let n = job.requestBody?.length ?? 0
  n += job.primary.response?.body.length ?? 0
  for (const t of job.targets) n += t.result?.response?.body.length ?? 0
  return n
}
