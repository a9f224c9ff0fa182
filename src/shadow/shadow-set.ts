import type { IncomingMessage } from 'node:http'
import type { Dispatcher } from 'undici'
import type { Config, ShadowConfig } from '../config/schema.js'
import type { Metrics } from '../metrics/metrics.js'
import { mergeCompareConfig } from '../compare/merge-config.js'
import { ShadowRuntime } from './shadow-runtime.js'
import { MirrorJob, type MirrorJobSink } from './mirror-job.js'
import type { ShadowCall } from './shadow-call.js'
import { BodyTee } from './body-tee.js'
import { LiveList } from './live-list.js'
import { sampleKey, StickyHash } from './sampler.js'
import type { Backend } from '../upstream/backend.js'
import type { BackendSet } from '../upstream/backend-set.js'
import type { ShadowResult } from './shadow-call.js'
import type { JobConsumer } from '../compare/job-record.js'
import type { Logger } from '../log/logger.js'
import type { RuntimeSnapshot, RuntimeState, ShadowEntry } from '../runtime/runtime-state.js'

/** How long a replaced shadow pool stays open after a reload, beyond the shadow's timeout. */
const RETIRE_GRACE_MS = 30_000

/** At most one "shadow requests are failing" warning per shadow per this many ms. */
const FAILING_WARN_MS = 60_000

/** The noise replay's name in reports; outside the shadow-name pattern, so it cannot collide. */
export const NOISE_TARGET = '__primary_replay__'

/**
 * The shadows of one config load and the per-request planning (docs/architecture.md, step 2): which shadows
 * want this request is decided from the head alone, so a request that no shadow wants never pays
 * for a body copy. One uniform draw per request is shared by all random-sampled shadows, so a
 * lower-rate shadow sees a subset of a higher-rate one's requests.
 */
export class ShadowSet implements MirrorJobSink {
  runtimes: readonly ShadowRuntime[] = []
  #byName = new Map<string, ShadowRuntime>()
  #noise: ShadowRuntime | null = null
  #noiseRate = 0
  #hash = new StickyHash('')
  #captureLimit = 0
  readonly #metrics: Metrics
  readonly #consumer: JobConsumer
  readonly #backends: BackendSet
  /** In flight, for graceful shutdown: a linked list, not a Set (see LiveList for why). */
  readonly #calls = new LiveList<ShadowCall>()
  #idle: Array<() => void> = []

  readonly #runtime: RuntimeState
  readonly #log: Logger

  /** Chaos faults for shadows with their own pool (null: chaos disabled). */
  readonly #interceptor: Dispatcher.DispatcherComposeInterceptor | null

  constructor (config: Config, metrics: Metrics, consumer: JobConsumer, backends: BackendSet, runtime: RuntimeState, log: Logger, interceptor: Dispatcher.DispatcherComposeInterceptor | null = null) {
    this.#interceptor = interceptor
    this.#log = log
    this.#metrics = metrics
    this.#consumer = consumer
    this.#backends = backends
    this.#runtime = runtime
    this.load(config)
  }

  /**
   * Swaps in the shadows of a (re)loaded config in one assignment. Runtime state set through
   * PATCH is replaced by the file's values; counters and the in-flight count (the concurrency
   * semaphore) carry over for shadows that keep their name, and so does the connection pool when
   * the new config would build the same one; a replaced pool closes after a grace period. A
   * shadow that names a backend uses that backend's dispatcher (the BackendSet, loaded first,
   * owns and retires it).
   */
  load (config: Config): void {
    const old = this.#byName
    const next: ShadowRuntime[] = []
    const kept = new Set<ShadowRuntime>()
    const byName = new Map<string, ShadowRuntime>()
    const llm = { mirrorStateful: config.llm.mirrorStateful, workers: config.workers }
    for (const cfg of config.shadows) {
      const prev = old.get(cfg.name)
      const merged = mergeCompareConfig(config.compare, cfg.compare)
      let rt: ShadowRuntime
      if (cfg.backend !== undefined) {
        const b = this.#backends.get(cfg.backend)!
        rt = new ShadowRuntime(cfg, merged, this.#metrics, { shared: prev?.shared, pool: b.dispatcher, ownsPool: false, url: b.url, ...llm })
      } else {
        // Keep the pool when it would be the same: requests planned before the reload (their body
        // still uploading) are then sent as usual instead of failing on a closed pool.
        const pool = prev !== undefined && prev.samePool(cfg) ? prev.pool : undefined
        if (pool !== undefined) kept.add(prev!)
        rt = new ShadowRuntime(cfg, merged, this.#metrics, { shared: prev?.shared, pool, ownsPool: true, ...llm, interceptor: this.#interceptor })
      }
      next.push(rt)
      byName.set(cfg.name, rt)
    }
    const noise = config.compare.noise
    const oldNoise = this.#noise
    this.#noise = noise.enabled && next.length > 0
      ? new ShadowRuntime(noiseTargetConfig(config), config.compare, this.#metrics, { kind: 'noise', pool: NO_POOL, ownsPool: false, url: config.backends[config.primary]!.url, mirrorStateful: config.llm.mirrorStateful })
      : null
    this.#noiseRate = noise.sampleRate
    this.#hash = new StickyHash(config.sampling.salt)
    // An experiment arm's answer captured for drift alone is read up to compare.maxBodyBytes too.
    let limit = config.drift !== undefined && config.drift.enabled && config.experiments.length > 0 ? config.compare.maxBodyBytes : 0
    for (const rt of next) limit = Math.max(limit, rt.compare.maxBodyBytes)
    // The canary's mirrors (issue #18) compare with the top-level settings.
    if (config.canary !== null) limit = Math.max(limit, config.compare.maxBodyBytes)
    this.#captureLimit = limit
    this.runtimes = next
    this.#byName = byName
    this.#runtime.setShadows(next)
    // A replaced pool is closed once the requests planned before the reload had time to go out
    // (close() itself waits for those in flight).
    const retired = [...old.values()].filter((rt) => rt.ownsPool && !kept.has(rt))
    void oldNoise // replays use the answering backend's dispatcher: nothing of its own to close
    if (retired.length > 0) {
      const grace = Math.max(...retired.map((rt) => rt.cfg.timeoutMs)) + RETIRE_GRACE_MS
      setTimeout(() => { for (const rt of retired) void rt.pool.close().catch(() => {}) }, grace).unref()
    }
  }

  get (name: string): ShadowRuntime | undefined {
    return this.#byName.get(name)
  }

  /**
   * Decides, from the request head, which shadows get a copy; returns the join record and the
   * body to forward to the primary (the client's stream, or a tee that copies it), or null when
   * no shadow wants the request. With `observe` (an experiment arm's answer sampled for drift and
   * assertions), a job without shadows captures the answer alone.
   */
  plan (req: IncomingMessage, snapshot: RuntimeSnapshot, requestId: string, upstreamHeaders: string[], hasBody: boolean, buffered: boolean, backend: Backend, observe = false): { job: MirrorJob, body: NodeJS.ReadableStream | null } | null {
    const canary = snapshot.canary?.mirrors ?? NO_MIRRORS
    if (snapshot.shadows.length === 0 && canary.length === 0 && !observe) return null
    const method = req.method ?? 'GET'
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const declared = hasBody ? contentLength(req) : 0
    let u = -1
    let targets: ShadowRuntime[] | null = null
    let bodyLimit = 0
    // The configured shadows, then the canary's mirrors (issue #18), which copy only the requests
    // their `servedBy` backend answered.
    for (let pass = 0; pass < 2; pass++) {
      const list = pass === 0 ? snapshot.shadows : canary
      for (let i = 0; i < list.length; i++) {
        const entry = list[i]!
        const rt = entry.target
        if (entry.servedBy !== undefined && entry.servedBy !== backend) continue
        // A canary mirror's match is the canary's: a request it does not split is not a skip.
        if (!rt.matches(method, path)) { if (pass === 0) rt.skip('not_matched'); continue }
        if (!entry.enabled) { rt.skip('disabled'); continue }
        let draw: number
        if (rt.sampleBy.kind === 'random') {
          if (u < 0) u = Math.random()
          draw = u
        } else {
          const key = sampleKey(rt.sampleBy, req)
          if (key === undefined) continue // sticky mode: a request without the key is not mirrored
          draw = this.#hash.of(key)
        }
        if (draw >= entry.sampleRate) continue
        if (declared > rt.cfg.maxBodyBytes) { rt.skip('body_too_large'); continue }
        if (rt.budget !== null && rt.budget.exhausted()) { rt.skip('budget'); continue }
        if (!rt.tryAcquire()) continue
        ;(targets ??= []).push(rt)
        if (rt.cfg.maxBodyBytes > bodyLimit) bodyLimit = rt.cfg.maxBodyBytes
      }
    }
    if (targets === null) {
      if (!observe) return null
      targets = []
    } else if (this.#noise !== null && Math.random() < this.#noiseRate) {
      const nt = this.#noise
      if (declared > nt.cfg.maxBodyBytes) nt.skip('body_too_large')
      else if (nt.tryAcquire()) targets.push(nt) // else counted as skipped (concurrency)
    }
    const job = new MirrorJob({
      requestId,
      method,
      url,
      requestHeaders: req.headers,
      upstreamHeaders,
      targets,
      backend,
      captureLimit: this.#captureLimit,
      sink: this
    })
    // Without a body, or with a small one the proxy server reads whole, the server hands the
    // body to the job (onRequestBody) right after dispatching the primary.
    if (!hasBody || buffered) return { job, body: null }
    // A large or chunked body streams to the primary through a tee that keeps a bounded copy.
    // pipe() rather than pipeline(): no AbortController per request (measured: ~2x the CPU of
    // the whole mirror path on Node 20). When the client goes away, the primary request is
    // aborted and undici destroys its body, the tee, which tells the job.
    const tee = new BodyTee(bodyLimit, job)
    req.pipe(tee)
    return { job, body: tee }
  }

  // -- MirrorJobSink -------------------------------------------------------------------------

  /**
   * One target's call ended: counted now, not when the whole mirrored request joins, so that a
   * stalled shadow does not hold back the counters of a healthy one of the same request.
   */
  shadowDone (rt: ShadowRuntime, r: ShadowResult): void {
    const m = this.#metrics
    if (rt.kind === 'noise') {
      m.noiseRequests.inc({ outcome: r.outcome })
      return
    }
    rt.observer?.(r)
    rt.counters[r.outcome]++
    m.shadowRequests.inc({ shadow: rt.name, outcome: r.outcome })
    if (r.outcome === 'ok') m.upstreamDuration.observe({ upstream: rt.name }, r.durationMs / 1000)
    else {
      m.upstreamErrors.inc({ upstream: rt.name, reason: r.reason ?? 'other' })
      this.#warnFailing(rt, r)
    }
    if (r.response?.truncated === true) rt.skip('response_too_large')
  }

  /**
   * A shadow that keeps failing is logged, at most once a minute: the metrics count it, but a
   * shadow whose host never resolves should not need a dashboard to be noticed.
   */
  #warnFailing (rt: ShadowRuntime, r: ShadowResult): void {
    const w = rt.shared.failing
    w.failures++
    const now = Date.now()
    if (now - w.warnedAt < FAILING_WARN_MS) return
    this.#log.warn({ shadow: rt.name, url: rt.url, failures: w.failures, outcome: r.outcome, reason: r.reason },
      `shadow "${rt.name}" requests are failing (${w.failures} since the last warning; last: ${r.reason ?? r.outcome}); the client path is not affected`)
    w.failures = 0
    w.warnedAt = now
  }

  jobDone (job: MirrorJob): void {
    this.#consumer.consume(job.record())
  }

  callStarted (call: ShadowCall): void {
    this.#calls.add(call)
  }

  callEnded (call: ShadowCall): void {
    if (!this.#calls.remove(call)) return
    if (this.#calls.size === 0 && this.#idle.length > 0) {
      const waiters = this.#idle
      this.#idle = []
      for (const w of waiters) w()
    }
  }

  /** Mirrored requests still in flight. */
  get inflight (): number {
    return this.#calls.size
  }

  /**
   * Graceful shutdown: waits for in-flight shadow requests until `deadline` (ms since epoch),
   * then abandons the rest, and closes the pools. Returns how many were abandoned.
   */
  async close (deadline: number): Promise<number> {
    let abandoned = 0
    if (this.#calls.size > 0) {
      const wait = deadline - Date.now()
      if (wait > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait)
          this.#idle.push(() => { clearTimeout(t); resolve() })
        })
      }
      for (const call of this.#calls.toArray()) { call.abandon(); abandoned++ }
    }
    // Only the shadows' own pools: the backends' dispatchers are the BackendSet's to close.
    await Promise.all(this.runtimes.filter((rt) => rt.ownsPool).map((rt) => rt.pool.destroy().catch(() => {})))
    return abandoned
  }
}

const NO_MIRRORS: readonly ShadowEntry[] = []

function contentLength (req: IncomingMessage): number {
  const cl = req.headers['content-length']
  return cl === undefined ? 0 : Number(cl)
}

/**
 * The noise replay's placeholder pool: a replay is sent to the backend that answered the request
 * (MirrorJob), never through this.
 */
const NO_POOL = { dispatch () { throw new Error('the noise replay goes to the answering backend') } } as unknown as import('undici').Dispatcher

/** The noise replay target: the answering backend again, under the shadow isolation rules. */
function noiseTargetConfig (config: Config): ShadowConfig {
  const first = config.shadows[0]!
  return {
    ...first,
    name: NOISE_TARGET,
    url: config.backends[config.primary]!.url,
    backend: undefined,
    enabled: true,
    sampleRate: 1,
    sampleBy: 'random',
    headers: { set: {}, remove: [] },
    rewrite: undefined,
    compare: undefined,
    // A replay of a stateful call would store it twice at the primary: never, whatever the shadows say.
    llm: { mirrorStateful: false, maxTokensPerMinute: null, stream: 'keep' }
  }
}
