import type { Config } from '../config/schema.js'
import type { Metrics } from '../metrics/metrics.js'
import type { Logger } from '../log/logger.js'
import { Comparator, releasePrimaryCache } from '../compare/comparator.js'
import { NoiseTracker } from '../compare/noise.js'
import { PathLimiter } from '../compare/path-limiter.js'
import { MismatchStore } from '../compare/mismatch-store.js'
import { normalisePath } from '../compare/json-pointer.js'
import type { CompareJob, CompareResult } from '../compare/types.js'
import { CompareWorker, toWire, type ThreadItem } from '../compare/compare-worker.js'
import type { MirrorJob } from './mirror-job.js'
import type { JobConsumer } from './shadow-set.js'
import type { ShadowRuntime } from './shadow-runtime.js'
import { ShadowReport, type ComparisonOutcome } from './shadow-report.js'

/**
 * Time one drain of the queue may take before yielding to the event loop again. A client request
 * that arrives during a slice waits for its end, so this is added to the tail latency under load;
 * 1 ms holds ~70 comparisons of ~1 KB bodies, and a setImmediate per slice costs ~1 µs.
 */
const SLICE_MS = 1

/** What a job waiting at the comparison thread needs when its results come back. */
interface Submitted {
  job: MirrorJob
  /** Per thread item: the target index in the job. */
  targets: number[]
  inputs: Array<CompareJob | null>
}

/**
 * The comparison stage (design.md step 6): finished mirror jobs are queued and compared in
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
  #comparators = new WeakMap<ShadowRuntime, Comparator>()
  #noiseComparator: Comparator
  #noiseComparatorConfig: Config['compare']
  #noiseEnabled: boolean
  #maxPending: number
  #maxPendingBytes: number
  #pendingBytes = 0
  #queue: MirrorJob[] = []
  #scheduled = false
  #workerMinBytes: number | null
  #worker: CompareWorker<Submitted> | null = null

  constructor (config: Config, metrics: Metrics, log: Logger) {
    this.#metrics = metrics
    this.#log = log
    this.store = new MismatchStore(config.compare.mismatches, {
      onSinkDrop: () => metrics.mismatchSinkDropped.inc(),
      onSinkError: (err: Error) => log.warn({ err: err.message }, 'mismatch sink write failed')
    })
    this.noise = new NoiseTracker(config.compare.noise)
    this.#noiseComparator = new Comparator(config.compare)
    this.#noiseComparatorConfig = config.compare
    this.#noiseEnabled = config.compare.noise.enabled
    this.#maxPending = config.compare.maxPending
    this.#maxPendingBytes = config.compare.maxPendingBytes
    this.#workerMinBytes = config.compare.workerMinBytes
  }

  /** Applies a reloaded config (the store and the noise statistics are kept). */
  reload (config: Config): void {
    this.#comparators = new WeakMap()
    this.#noiseComparator = new Comparator(config.compare)
    this.#noiseComparatorConfig = config.compare
    this.#noiseEnabled = config.compare.noise.enabled
    this.#maxPending = config.compare.maxPending
    this.#maxPendingBytes = config.compare.maxPendingBytes
    this.#workerMinBytes = config.compare.workerMinBytes
    this.#worker?.forgetConfigs()
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
    // Nothing to compare (every target has comparisons off): count the outcomes now, no queueing.
    if (!needsComparison(job)) {
      this.#process(job)
      return
    }
    const bytes = jobBytes(job)
    if (this.#queue.length + (this.#worker?.inflight ?? 0) >= this.#maxPending || (this.#pendingBytes + bytes > this.#maxPendingBytes && this.#queue.length > 0)) {
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
  #onThread (job: MirrorJob): boolean {
    const min = this.#workerMinBytes
    if (min === null) return false
    return job.bytes - (job.requestBody?.length ?? 0) >= min
  }

  /** Compares a job here, on the event loop. */
  #process (job: MirrorJob): void {
    for (let i = 0; i < job.targets.length; i++) {
      const rt = job.targets[i]!
      if (rt.internal) {
        if (this.#learns(job, i)) this.#learnNoise(job, job.results[i]!.response!)
        continue
      }
      const input = this.#input(job, i)
      if (input === null) continue
      const res = this.#comparator(rt).compare(input, this.#noiseEnabled ? (p) => this.noise.isNoisy(p, rt.name) : undefined)
      this.#record(rt, input, res)
    }
    releasePrimaryCache()
  }

  /** Is target i a noise replay with both responses to learn from? */
  #learns (job: MirrorJob, i: number): boolean {
    const r = job.results[i]
    return r !== undefined && r.response !== null && job.primary.response !== null
  }

  /**
   * The comparison input for target i, or null when there is nothing to compare; the outcomes
   * that need no comparison (shadow error or timeout, no primary response, comparisons off) are
   * counted here.
   */
  #input (job: MirrorJob, i: number): CompareJob | null {
    const rt = job.targets[i]!
    const result = job.results[i]
    if (result === undefined) return null // never sent (body too large, upload failed)
    if (result.outcome === 'error') { this.#count(rt.name, 'shadow_error'); return null }
    if (result.outcome === 'timeout') { this.#count(rt.name, 'shadow_timeout'); return null }
    const primary = job.primary.response
    if (primary === null) { this.#drop(rt.name, 'primary_error'); return null }
    if (!rt.compare.enabled) { this.#drop(rt.name, 'disabled'); return null }
    return {
      shadow: rt.name,
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
  #submit (job: MirrorJob): void {
    const w = this.#thread()
    const items: ThreadItem[] = []
    const targets: number[] = []
    const inputs: Array<CompareJob | null> = []
    for (let i = 0; i < job.targets.length; i++) {
      const rt = job.targets[i]!
      if (rt.internal) {
        if (!this.#learns(job, i)) continue
        items.push({ key: w.keyFor(this.#noiseComparatorConfig), noiseShadow: null, learn: true, response: toWire(job.results[i]!.response!) })
        targets.push(i)
        inputs.push(null)
        continue
      }
      const input = this.#input(job, i)
      if (input === null) continue
      // The thread's copy of the noisy paths, recomputed per job (a handful of tracked paths).
      if (this.#noiseEnabled) w.setNoisy(rt.name, this.noise.noisyPaths(rt.name))
      items.push({ key: w.keyFor(rt.compare), noiseShadow: this.#noiseEnabled ? rt.name : null, learn: false, response: toWire(input.shadowResponse) })
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
      const rt = job.targets[targets[k]!]!
      const res = results?.[k] ?? null
      const input = inputs[k]!
      if (rt.internal) {
        if (res !== null && res.outcome !== 'unparseable') this.noise.recordNoise(res.differences)
        continue
      }
      if (res === null) { this.#drop(rt.name, 'worker_failed'); continue }
      try {
        this.#record(rt, input, res)
      } catch (err) {
        this.#log.error({ err, requestId: job.requestId }, 'comparison failed')
      }
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
    if (res.llm !== undefined) m.recordLlmAgreement(shadow, res.llm)

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

  /** Waits for the comparisons at the thread (until `deadline`, epoch ms), then closes the store. */
  async close (deadline = Date.now() + 2000): Promise<void> {
    while (this.#queue.length > 0 && Date.now() < deadline) this.#drain()
    await this.#worker?.close(deadline)
    await this.store.close()
  }
}

/** Whether some target of the job is compared or learns noise (else only counting is left). */
function needsComparison (job: MirrorJob): boolean {
  for (const rt of job.targets) if (rt.internal || rt.compare.enabled) return true
  return false
}

/** Bytes a queued job holds: the request body and every captured response body. */
function jobBytes (job: MirrorJob): number {
  let n = job.requestBody?.length ?? 0
  n += job.primary.response?.body.length ?? 0
  for (const r of job.results) n += r?.response?.body.length ?? 0
  return n
}
