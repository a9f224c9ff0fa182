import type { Config } from '../config/schema.js'
import type { Metrics } from '../metrics/metrics.js'
import type { Logger } from '../log/logger.js'
import { Comparator } from '../compare/comparator.js'
import { NoiseTracker } from '../compare/noise.js'
import { PathLimiter } from '../compare/path-limiter.js'
import { MismatchStore } from '../compare/mismatch-store.js'
import { normalisePath } from '../compare/json-pointer.js'
import type { CompareJob, CompareResult } from '../compare/types.js'
import type { MirrorJob } from './mirror-job.js'
import type { JobConsumer } from './shadow-set.js'
import type { ShadowRuntime } from './shadow-runtime.js'
import { ShadowReport, type ComparisonOutcome } from './shadow-report.js'

/** Time one drain of the queue may take before yielding to the event loop again. */
const SLICE_MS = 5

/**
 * The comparison stage (design.md step 6): finished mirror jobs are queued and compared in
 * `setImmediate` slices of at most SLICE_MS, never on the client's path. The queue is capped
 * (`compare.maxPending` jobs and `compare.maxPendingBytes` of captured bodies): past it, jobs
 * are dropped and counted, so a burst of large responses can neither grow memory without bound
 * nor queue minutes of CPU. One comparison itself is not interruptible: a single huge body
 * (up to `compare.maxBodyBytes`) is parsed and diffed in one go on the event loop, which is why
 * that limit is 4 MiB by default. A CPU-heavy diff can never
 * starve the proxy. Outcomes go to metrics and the report; mismatches to the store and sink.
 */
export class CompareStage implements JobConsumer {
  readonly store: MismatchStore
  readonly noise: NoiseTracker
  readonly reports = new Map<string, ShadowReport>()
  readonly #metrics: Metrics
  readonly #log: Logger
  readonly #limiter = new PathLimiter(100)
  #comparators = new WeakMap<ShadowRuntime, Comparator>()
  #noiseComparator: Comparator
  #noiseEnabled: boolean
  #maxPending: number
  #maxPendingBytes: number
  #pendingBytes = 0
  #queue: MirrorJob[] = []
  #scheduled = false

  constructor (config: Config, metrics: Metrics, log: Logger) {
    this.#metrics = metrics
    this.#log = log
    this.store = new MismatchStore(config.compare.mismatches, {
      onSinkDrop: () => metrics.mismatchSinkDropped.inc(),
      onSinkError: (err: Error) => log.warn({ err: err.message }, 'mismatch sink write failed')
    })
    this.noise = new NoiseTracker(config.compare.noise)
    this.#noiseComparator = new Comparator(config.compare)
    this.#noiseEnabled = config.compare.noise.enabled
    this.#maxPending = config.compare.maxPending
    this.#maxPendingBytes = config.compare.maxPendingBytes
  }

  /** Applies a reloaded config (the store and the noise statistics are kept). */
  reload (config: Config): void {
    this.#comparators = new WeakMap()
    this.#noiseComparator = new Comparator(config.compare)
    this.#noiseEnabled = config.compare.noise.enabled
    this.#maxPending = config.compare.maxPending
    this.#maxPendingBytes = config.compare.maxPendingBytes
  }

  report (name: string): ShadowReport {
    let r = this.reports.get(name)
    if (r === undefined) {
      r = new ShadowReport()
      this.reports.set(name, r)
    }
    return r
  }

  consume (job: MirrorJob): void {
    const bytes = jobBytes(job)
    if (this.#queue.length >= this.#maxPending || (this.#pendingBytes + bytes > this.#maxPendingBytes && this.#queue.length > 0)) {
      for (const rt of job.targets) if (!rt.internal) this.#drop(rt.name, 'queue_full')
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

  /** Comparisons waiting. */
  get pending (): number {
    return this.#queue.length
  }

  #drain = (): void => {
    const until = performance.now() + SLICE_MS
    const q = this.#queue
    let i = 0
    while (i < q.length) {
      const job = q[i++]!
      this.#pendingBytes -= job.bytes
      try {
        this.#process(job)
      } catch (err) {
        // A bug in a comparator must never take the proxy down: count it and go on.
        this.#log.error({ err, requestId: job.requestId }, 'comparison failed')
      }
      if (performance.now() >= until) break
    }
    this.#queue = i === q.length ? [] : q.slice(i)
    if (this.#queue.length > 0) setImmediate(this.#drain)
    else this.#scheduled = false
  }

  #drop (shadow: string, reason: string): void {
    this.#metrics.comparisonsDropped.inc({ shadow, reason })
    const r = this.report(shadow)
    r.dropped[reason] = (r.dropped[reason] ?? 0) + 1
  }

  #process (job: MirrorJob): void {
    const primary = job.primary
    for (let i = 0; i < job.targets.length; i++) {
      const rt = job.targets[i]!
      const result = job.results[i]
      if (result === undefined) continue // never sent (body too large, upload failed)
      if (rt.internal) {
        if (result.response !== null && primary.response !== null) this.#learnNoise(job, result.response)
        continue
      }
      if (result.outcome === 'error') { this.#count(rt.name, 'shadow_error'); continue }
      if (result.outcome === 'timeout') { this.#count(rt.name, 'shadow_timeout'); continue }
      if (primary.response === null) { this.#drop(rt.name, 'primary_error'); continue }
      if (!rt.compare.enabled) { this.#drop(rt.name, 'disabled'); continue }
      const input: CompareJob = {
        shadow: rt.name,
        requestId: job.requestId,
        method: job.method,
        url: job.url,
        requestHeaders: job.requestHeaders,
        requestBody: job.requestBody,
        primary: primary.response,
        shadowResponse: result.response!
      }
      const res = this.#comparator(rt).compare(input, this.#noiseEnabled ? (p) => this.noise.isNoisy(p, rt.name) : undefined)
      this.#record(rt, input, res)
    }
  }

  #comparator (rt: ShadowRuntime): Comparator {
    let c = this.#comparators.get(rt)
    if (c === undefined) {
      c = new Comparator(rt.compare)
      this.#comparators.set(rt, c)
    }
    return c
  }

  #count (shadow: string, outcome: ComparisonOutcome): ShadowReport {
    this.#metrics.comparisons.inc({ shadow, outcome })
    const r = this.report(shadow)
    r.outcomes[outcome]++
    return r
  }

  #record (rt: ShadowRuntime, input: CompareJob, res: CompareResult): void {
    const m = this.#metrics
    const shadow = rt.name
    const r = this.#count(shadow, res.outcome)
    const delta = (input.shadowResponse.durationMs - input.primary.durationMs) / 1000
    m.latencyDelta.observe({ shadow }, delta)
    r.primaryLatency.observe(input.primary.durationMs)
    r.shadowLatency.observe(input.shadowResponse.durationMs)
    if (res.outcome === 'unparseable') return

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

  #learnNoise (job: MirrorJob, replay: NonNullable<MirrorJob['results'][number]>['response'] & object): void {
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

  async close (): Promise<void> {
    await this.store.close()
  }
}

/** Bytes a queued job holds: the request body and every captured response body. */
function jobBytes (job: MirrorJob): number {
  let n = job.requestBody?.length ?? 0
  n += job.primary.response?.body.length ?? 0
  for (const r of job.results) n += r?.response?.body.length ?? 0
  return n
}
