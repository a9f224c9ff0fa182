import type { Config } from '../config/schema.js'
import type { Logger } from '../log/logger.js'
import type { CapturedResponse } from '../compare/types.js'
import type { JobRecord } from '../compare/job-record.js'
import { compileRedactions, type RedactionPatterns } from '../compare/redact.js'
import { compilePathGlob, StickyHash } from '../shadow/sampler.js'

/** The prediction log's sampling draw, its salt hashed once. */
const SAMPLE_HASH = new StickyHash('penumbra-feedback')
import { PenumbraError } from '../errors.js'
import { extractResponse, kindOf, type InstancePrediction } from './extract.js'
import { labelKey, type ModelPrediction, type ModelRole, type PredictionRecord, type PredictionStore } from './prediction-store.js'
import { MemoryStore } from './memory-store.js'
import { RedisStore } from './redis-store.js'
import type { FeedbackMetrics, FeedbackResult } from './feedback-metrics.js'
import { ArmTap } from './arm-tap.js'
import { parseItem, type FeedbackItem, type IngestResponse, type ItemResult } from './feedback-input.js'
import { addHistory, analyseQuality, emptyModel, emptyQuality, type ModelTally, type QualityData, type QualityReport } from './quality.js'

/** Answers waiting for extraction; past it new ones are dropped and counted (`store_errors{op="queue"}`). */
const MAX_QUEUED = 10_000
/** …and at most this many captured bytes waiting (the bodies are held until extracted). */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024
/**
 * Largest captured answer extracted. Extraction parses on the event loop (in 1 ms slices between
 * requests, but one answer is not interruptible): measured 1.3 ms for 61 KB holding 1,000 class
 * predictions (decoding 1.0 ms, extraction 0.3 ms), so up to ~5 ms at this bound, which keeps
 * long streamed LLM answers (SSE is several times the text). Larger answers are not logged
 * (`store_errors{op="too_large"}`).
 */
const MAX_EXTRACT_BYTES = 256 * 1024
/** One drain of the extraction queue yields to the event loop after this long. */
const SLICE_MS = 1
/** Classes counted by name in metrics when `feedback.classes` is empty; the rest are `other`. */
const MAX_CLASSES = 20
/** Largest decoded (decompressed) body the extraction reads. */
const MAX_DECODED = 4 * MAX_EXTRACT_BYTES

/** An answer waiting for extraction: a mirrored request's record, or an arm's answer. */
type Pending =
  | { job: JobRecord, arm: null, bytes: number }
  | { job: null, arm: { requestId: string, url: string, backend: string, res: CapturedResponse }, bytes: number }

/** A label as stored for idempotency: its kind and value. */
type Encoded = string

/**
 * The feedback room (issue #19): logs the predictions of the requests a shadow or an experiment
 * touches, joins the labels posted later to them, and keeps each model's online quality.
 *
 * Logging is off the client's path: finished mirrored requests (the same records the comparison
 * stage gets) and experiment-arm answers are queued and extracted in 1 ms slices on later turns of
 * the event loop; the store write is fire-and-forget (a failure drops the prediction and counts
 * it). Labels are idempotent per (requestId, instance, source), across replicas with Redis.
 */
export class Feedback {
  readonly store: PredictionStore
  readonly #metrics: FeedbackMetrics
  readonly #log: Logger
  #config!: Config['feedback']
  #compareFormat!: Config['compare']['format']
  #redact!: RedactionPatterns
  #routes!: Array<{ methods: Set<string>, paths: RegExp[], rate: number }>
  #classes!: Set<string> | null
  readonly #seenClasses = new Map<string, Set<string>>()
  #queue: Pending[] = []
  #queuedBytes = 0
  #scheduled = false
  #quality: QualityData = emptyQuality()
  #captureLimit!: number
  #closed = false

  constructor (config: Config, metrics: FeedbackMetrics, log: Logger) {
    this.#metrics = metrics
    this.#log = log
    const f = config.feedback
    this.store = f.store === 'redis'
      ? new RedisStore({ url: f.redis.url, keyPrefix: f.redis.keyPrefix, ttlMs: f.ttlMs, commandTimeoutMs: f.redis.commandTimeoutMs, onError: this.#redisError })
      : new MemoryStore({ ttlMs: f.ttlMs, maxBytes: f.maxBytes })
    this.#apply(config)
  }

  /** Takes a reloaded config (the store kind and its connection need a restart). */
  reload (config: Config): string[] {
    const notes: string[] = []
    const a = this.#config
    const b = config.feedback
    if (a.store !== b.store || a.redis.url !== b.redis.url || a.ttlMs !== b.ttlMs || a.maxBytes !== b.maxBytes) notes.push('feedback: store changes need a restart; kept the old store')
    this.#apply(config)
    return notes
  }

  #apply (config: Config): void {
    this.#config = config.feedback
    this.#compareFormat = config.compare.format
    this.#captureLimit = config.compare.maxBodyBytes
    this.#redact = compileRedactions(config.compare.mismatches.redact.paths)
    this.#routes = config.feedback.routes.map((r) => ({ methods: new Set(r.methods), paths: r.paths.map(compilePathGlob), rate: r.sampleRate }))
    this.#classes = config.feedback.classes.length > 0 ? new Set(config.feedback.classes) : null
  }

  #lastRedisError = 0
  #redisError = (err: Error): void => {
    // A down Redis reports every reconnection attempt: one warning a minute is enough.
    const now = Date.now()
    if (now - this.#lastRedisError < 60_000) return
    this.#lastRedisError = now
    this.#log.warn({ err: err.message }, 'feedback store (redis) unavailable: predictions are dropped (counted) until it is back')
  }

  /** The sample rate of a request: the first matching route's, else `feedback.sampleRate`. */
  rateFor (method: string, url: string): number {
    if (this.#routes.length === 0) return this.#config.sampleRate
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    for (const r of this.#routes) {
      if (r.methods.has(method) && r.paths.some((p) => p.test(path))) return r.rate
    }
    return this.#config.sampleRate
  }

  /** Is this request's prediction logged? Sticky by request id, so every replica decides alike. */
  sampled (requestId: string, method: string, url: string): boolean {
    const rate = this.rateFor(method, url)
    if (rate >= 1) return true
    if (rate <= 0) return false
    return SAMPLE_HASH.of(requestId) < rate
  }

  /** A finished mirrored request (the comparison stage's record): log the serving model's and every shadow's prediction. */
  consume (job: JobRecord): void {
    if (this.#closed || !this.sampled(job.requestId, job.method, job.url)) return
    const primary = job.primary.response
    if (primary === null) return
    let bytes = primary.body.length
    for (const t of job.targets) bytes += t.result?.response?.body.length ?? 0
    this.#enqueue({ job, arm: null, bytes })
  }

  #logJob (job: JobRecord): void {
    const models: Record<string, ModelPrediction> = {}
    const served = this.#extract(job.primary.response!, this.#compareFormat, job.url, 'primary')
    if (served === null) return
    models[job.backend] = served
    for (const t of job.targets) {
      if (t.kind !== 'shadow' || t.result?.response == null || t.name in models) continue
      const m = this.#extract(t.result.response, t.compare.format, job.url, 'shadow')
      if (m !== null) models[t.name] = m
    }
    this.#put(job.requestId, { at: Date.now(), served: job.backend, models })
  }

  /**
   * The tap of an experiment arm's answer when nothing mirrors the request (null: not sampled).
   * Called on the request path: one sampling decision and, when sampled, one small object.
   */
  armTap (requestId: string, method: string, url: string, backend: string): ArmTap | null {
    if (this.#closed || !this.sampled(requestId, method, url)) return null
    return new ArmTap(this, requestId, url, backend, this.#captureLimit)
  }

  /** An experiment arm answered a request nothing mirrored: log its prediction. */
  recordArm (requestId: string, url: string, backend: string, res: CapturedResponse): void {
    if (this.#closed) return
    this.#enqueue({ job: null, arm: { requestId, url, backend, res }, bytes: res.body.length })
  }

  #extract (res: CapturedResponse, format: Config['compare']['format'], url: string, role: ModelRole): ModelPrediction | null {
    if (res.body.length > MAX_EXTRACT_BYTES) {
      this.#metrics.storeErrors.inc({ op: 'too_large' })
      return null
    }
    const e = extractResponse(res, format, url, this.#redact, MAX_DECODED)
    return e === null ? null : { role, format: e.format, instances: e.instances }
  }

  #put (requestId: string, record: PredictionRecord): void {
    const n = record.models[record.served]!.instances.length
    this.store.put(requestId, record).then(() => {
      this.#quality.coverage.logged += n
      for (const [model, m] of Object.entries(record.models)) this.#metrics.predictions.inc({ model }, m.instances.length)
    }, () => {
      this.#metrics.storeErrors.inc({ op: 'put' })
    })
  }

  #enqueue (p: Pending): void {
    if (this.#queue.length >= MAX_QUEUED || (this.#queuedBytes + p.bytes > MAX_QUEUED_BYTES && this.#queue.length > 0)) {
      this.#metrics.storeErrors.inc({ op: 'queue' })
      return
    }
    this.#queuedBytes += p.bytes
    this.#queue.push(p)
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(this.#drain)
    }
  }

  #drain = (): void => {
    const until = performance.now() + SLICE_MS
    const q = this.#queue
    let i = 0
    while (i < q.length) {
      const p = q[i++]!
      this.#queuedBytes -= p.bytes
      try {
        if (p.job !== null) this.#logJob(p.job)
        else this.#logArm(p.arm.requestId, p.arm.url, p.arm.backend, p.arm.res)
      } catch (err) {
        // A body the extraction trips on must never take the proxy down.
        this.#log.error({ err }, 'prediction extraction failed')
      }
      if (performance.now() >= until) break
    }
    this.#queue = i === q.length ? [] : q.slice(i)
    if (this.#queue.length > 0) setImmediate(this.#drain)
    else this.#scheduled = false
  }

  #logArm (requestId: string, url: string, backend: string, res: CapturedResponse): void {
    const m = this.#extract(res, this.#compareFormat, url, 'arm')
    if (m !== null) this.#put(requestId, { at: Date.now(), served: backend, models: { [backend]: m } })
  }

  /** Resolves once every queued extraction ran (tests, and shutdown). */
  async flushed (): Promise<void> {
    while (this.#queue.length > 0 || this.#scheduled) await new Promise((resolve) => setImmediate(resolve))
  }

  /**
   * `POST /feedback`: each item is joined to its logged prediction and counted. Bad items are
   * reported by index and never stop the good ones. `count: false` leaves `penumbra_feedback_total`
   * to the caller (the `--workers` primary, which merges the workers' answers).
   *
   * @throws {PenumbraError} PENUMBRA_STORE_UNAVAILABLE when the store cannot be read (nothing
   *   was recorded: the call can be repeated as is).
   */
  async ingest (raw: readonly unknown[], count = true): Promise<IngestResponse> {
    const results: ItemResult[] = new Array(raw.length)
    const valid: Array<{ index: number, item: FeedbackItem }> = []
    raw.forEach((r, index) => {
      const p = parseItem(r)
      if (p.item !== null) valid.push({ index, item: p.item })
      else results[index] = { index, result: 'invalid', message: p.message }
    })
    const ids = [...new Set(valid.map((v) => v.item.requestId))]
    let lookups
    try {
      lookups = await this.store.getMany(ids)
    } catch (err) {
      this.#metrics.storeErrors.inc({ op: 'get' })
      throw new PenumbraError('PENUMBRA_STORE_UNAVAILABLE', `the prediction log (${this.store.kind}) cannot be read: ${(err as Error).message}; nothing was recorded, repeat the call`)
    }
    const byId = new Map(ids.map((id, i) => [id, lookups[i]!]))
    const toSwap: Array<{ index: number, item: FeedbackItem, record: PredictionRecord, key: string, label: Encoded }> = []
    for (const { index, item } of valid) {
      const l = byId.get(item.requestId)!
      if (l.record === null) {
        results[index] = l.expired
          ? { index, result: 'expired', message: `the prediction of request "${item.requestId}" has expired (feedback.ttlMs) or was evicted (feedback.maxBytes)` }
          : { index, result: 'unknown', message: `no prediction was logged for request "${item.requestId}"` }
        continue
      }
      const bad = kindProblem(l.record, item)
      if (bad !== null) { results[index] = { index, result: 'invalid', message: bad }; continue }
      toSwap.push({ index, item, record: l.record, key: labelKey(item.requestId, item.instance, item.source), label: encode(item) })
    }
    let previous: Array<string | null>
    try {
      previous = await this.store.swapLabels(toSwap)
    } catch (err) {
      this.#metrics.storeErrors.inc({ op: 'label' })
      throw new PenumbraError('PENUMBRA_STORE_UNAVAILABLE', `the prediction log (${this.store.kind}) cannot store labels: ${(err as Error).message}; repeat the call (labels already stored count once)`)
    }
    toSwap.forEach((s, k) => {
      const prev = previous[k] ?? null
      if (prev === s.label) {
        results[s.index] = { index: s.index, result: 'duplicate' }
        return
      }
      if (prev !== null) {
        // The same (request, instance, source) labelled differently: replace, never add.
        this.#tally(s.record, s.item.instance, decode(prev), s.item.source, -1, false)
        this.#tally(s.record, s.item.instance, decode(s.label), s.item.source, 1, false)
        results[s.index] = { index: s.index, result: 'joined', replaced: true }
        return
      }
      this.#tally(s.record, s.item.instance, decode(s.label), s.item.source, 1, true)
      results[s.index] = { index: s.index, result: 'joined' }
    })
    const counts: Record<FeedbackResult, number> = { joined: 0, unknown: 0, expired: 0, duplicate: 0, invalid: 0 }
    for (const r of results) counts[r.result]++
    if (count) this.countResults(counts)
    return { counts, results }
  }

  /** `penumbra_feedback_total` for one batch. */
  countResults (counts: Record<FeedbackResult, number>): void {
    for (const [result, n] of Object.entries(counts)) if (n > 0) this.#metrics.total.inc({ result }, n)
  }

  /**
   * Adds (sign 1) or removes (sign −1) one label's contribution to every model that predicted
   * the instance, and to each served-vs-shadow pair. Counters only ever add (`metrics`): a
   * replaced label changes `GET /quality`, not the Prometheus series.
   */
  #tally (record: PredictionRecord, instance: number, label: Label, source: string, sign: 1 | -1, metrics: boolean): void {
    const q = this.#quality
    const verdicts = new Map<string, boolean>()
    for (const [model, m] of Object.entries(record.models)) {
      const p = m.instances[instance]
      if (p === undefined) continue
      const t = q.models[model] ??= this.#newModel(model, m.role)
      if (label.kind === 'value') {
        if (p.value === undefined) continue
        const e = p.value - label.value
        const r = t.regression
        r.n += sign; r.absSum += sign * Math.abs(e); r.sqSum += sign * e * e; r.quadSum += sign * e ** 4
        if (metrics) {
          this.#metrics.labelled.inc({ model })
          this.#metrics.absErrorSum.inc({ model }, Math.abs(e))
          this.#metrics.sqErrorSum.inc({ model }, e * e)
        }
        continue
      }
      const right = judge(p, label.value)
      if (right === null) continue
      verdicts.set(model, right)
      addHistory(q, model, record.at, right, sign)
      t.labelled += sign
      if (right) t.correct += sign
      if (metrics) {
        this.#metrics.labelled.inc({ model })
        if (right) this.#metrics.correct.inc({ model })
      }
      if (p.label !== undefined) {
        const add = (raw: string, outcome: 'tp' | 'fp' | 'fn'): void => {
          // The same bounded class names in GET /quality as in the metrics: labels come from callers.
          const cls = this.#classLabel(model, raw)
          const c = t.classes[cls] ??= { tp: 0, fp: 0, fn: 0 }
          c[outcome] += sign
          if (metrics) this.#metrics.classes.inc({ model, class: cls, outcome })
        }
        if (right) add(label.value, 'tp')
        else { add(p.label, 'fp'); add(label.value, 'fn') }
      }
    }
    if (record.models[record.served]?.instances[instance] !== undefined) {
      q.coverage.bySource[source] = (q.coverage.bySource[source] ?? 0) + sign
    }
    const served = verdicts.get(record.served)
    if (served === undefined) return
    for (const [model, right] of verdicts) {
      if (model === record.served || record.models[model]!.role !== 'shadow') continue
      const key = `${record.served}\u0000${model}`
      const pair = q.pairs[key] ??= { primary: record.served, shadow: model, n: 0, b: 0, c: 0, bothRight: 0 }
      pair.n += sign
      if (served && !right) pair.b += sign
      else if (!served && right) pair.c += sign
      else if (served && right) pair.bothRight += sign
    }
  }

  #newModel (model: string, role: ModelRole): ModelTally {
    this.#metrics.initModel(model)
    return emptyModel(role)
  }

  /** A class's metric label: configured classes by name, else the first 20 seen per model; the rest `other`. */
  #classLabel (model: string, cls: string): string {
    if (this.#classes !== null) return this.#classes.has(cls) ? cls : 'other'
    let seen = this.#seenClasses.get(model)
    if (seen === undefined) this.#seenClasses.set(model, seen = new Set())
    if (seen.has(cls)) return cls
    if (seen.size >= MAX_CLASSES) return 'other'
    seen.add(cls)
    return cls
  }

  /** This process's tallies (summed over workers by the `--workers` primary). */
  data (): QualityData {
    return structuredClone(this.#quality)
  }

  /** The canary's accuracy gate reads this: labelled and correct instances of a model, in this process. */
  accuracy (model: string): { labelled: number, correct: number } {
    const t = this.#quality.models[model]
    return t === undefined ? { labelled: 0, correct: 0 } : { labelled: t.labelled, correct: t.correct }
  }

  /** This process's `GET /quality` parts. */
  report (): QualityReport {
    return analyseQuality(this.#quality, { confidence: this.#config.confidence, minCoverage: this.#config.minCoverage })
  }

  get settings (): { confidence: number, minCoverage: number } {
    return { confidence: this.#config.confidence, minCoverage: this.#config.minCoverage }
  }

  async close (): Promise<void> {
    this.#closed = true
    await this.flushed()
    await this.store.close()
  }
}

type Label = { kind: 'label', value: string } | { kind: 'value', value: number }

function encode (item: FeedbackItem): Encoded {
  return item.value !== undefined ? `v:${item.value}` : `l:${String(item.label)}`
}

function decode (s: Encoded): Label {
  return s.startsWith('v:') ? { kind: 'value', value: Number(s.slice(2)) } : { kind: 'label', value: s.slice(2) }
}

/** Right or wrong against a class or text label; null when the prediction is of another kind. */
function judge (p: InstancePrediction, label: string): boolean | null {
  if (p.label !== undefined) return p.label === label
  if (p.text !== undefined) return normaliseText(p.text) === normaliseText(label)
  if (p.tools !== undefined) return p.tools.join(',') === label
  return null
}

function normaliseText (s: string): string {
  return s.trim().replace(/\s+/g, ' ').toLowerCase()
}

/** Why a label does not fit the served model's prediction of that instance (null: it fits). */
function kindProblem (record: PredictionRecord, item: FeedbackItem): string | null {
  const served = record.models[record.served]
  const n = served?.instances.length ?? 0
  if (served === undefined || item.instance >= n) return `instance: request "${item.requestId}" has ${n} instance${n === 1 ? '' : 's'} (0..${Math.max(0, n - 1)}), not ${item.instance}`
  const p = served.instances[item.instance]!
  const kind = kindOf(p)
  const where = `instance ${item.instance} of ${record.served}`
  if (kind === 'none') return `label: the prediction (${where}) has no label, score, value or text to judge`
  if (item.value !== undefined && kind !== 'regression') return `value: the prediction (${where}) is a ${kind === 'class' ? 'class label' : 'generated text'}: send label, not value`
  if (item.label !== undefined && kind === 'regression') return `label: the prediction (${where}) is a regression value: send value (a number), not label`
  return null
}
