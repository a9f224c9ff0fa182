import type { IncomingHttpHeaders } from 'node:http'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Config } from '../config/schema.js'
import type { AssertionConfig, DriftConfig } from '../config/drift-schema.js'
import { decodeBody } from '../compare/body.js'
import { digestAnswer, digestSpec, type AnswerDigest, type DigestSpec } from './digest.js'
import { compileAssertion, inputKeyOf, type Assertion } from './assertions.js'
import { AssertionStore, type ViolationRecord } from './assertion-store.js'
import { requestInstancesOf } from './extract-prediction.js'
import { ModelDrift, type ModelDriftView } from './model-drift.js'

/** The request a model answered, as much of it as drift and assertions read. */
export interface ObservedRequest {
  requestId: string
  method: string
  url: string
  requestHeaders: IncomingHttpHeaders
  requestBody: Buffer | null
}

/** Per assertion and model: instances checked, violated, and not checked (`stable` without an input to pair). */
export interface AssertionCounts { checked: number, violations: number, skipped: number }

/** `GET /drift`, and `drift` in `GET /quality`. */
export interface DriftSnapshot {
  enabled: boolean
  windowMs: number
  reference: 'first' | 'pinned'
  thresholds: DriftConfig['thresholds']
  minSamples: number
  models: ModelDriftView[]
}

/** One assertion in `GET /assertions` and `assertions` in `GET /quality`. */
export interface AssertionView {
  name: string
  rule: string
  path: string
  /** Totals over its models. */
  checked: number
  violations: number
  skipped: number
  models: Array<{ model: string } & AssertionCounts>
}

/** Counts of one assertion and model, with their bound metric series (a label lookup per inc costs ~1 µs). */
interface Counted extends AssertionCounts {
  checks: Counter.Internal
  violated: Counter.Internal
}

/** Request bodies larger than this are not decoded to pair instances with their inputs (`stable`). */
const MAX_REQUEST_DECODE_BYTES = 4 * 1024 * 1024

/**
 * Drift and assertions over every model's answers (docs/drift.md): fed by the comparison stage
 * with each parsed answer of a compared mirrored request (the serving backend's once, each
 * shadow's), off the client's path. Per instance: the label and top score go to the model's
 * {@link ModelDrift}; each assertion that applies to the model is checked, violations counted
 * and stored redacted. Never throws into the caller.
 */
export class DriftMonitor {
  readonly store: AssertionStore
  readonly #now: () => number
  #drift: DriftConfig | null = null
  #assertions: Assertion[] = []
  #stable = false
  readonly #models = new Map<string, ModelDrift>()
  readonly #counts = new Map<string, Map<string, Counted>>()
  readonly #driftGauge: Gauge<'model' | 'statistic'>
  readonly #violations: Counter<'model' | 'assertion'>
  readonly #checks: Counter<'model' | 'assertion'>
  #digestConfig: { drift: boolean, paths: string[], redact: string[] } = { drift: false, paths: [], redact: [] }
  #spec: DigestSpec = digestSpec(false, [], [])
  /** Decoded request instances, per request: a job's answers (primary, shadows) share its input. */
  #inputs = new WeakMap<object, unknown[] | null>()

  constructor (config: Config, registry: Registry, opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now
    this.store = new AssertionStore(config.compare.mismatches)
    const registers = [registry]
    const views = (): ModelDriftView[] => this.#views()
    this.#driftGauge = new Gauge({
      name: 'penumbra_prediction_drift',
      help: 'Output drift of each model (serving backend, shadow) against its reference: statistic psi (population stability index) or js (Jensen-Shannon distance, base 2), the larger of its label and top-score distributions. Absent until both have drift.minSamples.',
      labelNames: ['model', 'statistic'],
      registers,
      collect () {
        this.reset()
        for (const v of views()) {
          if (v.psi !== null) this.set({ model: v.model, statistic: 'psi' }, v.psi)
          if (v.js !== null) this.set({ model: v.model, statistic: 'js' }, v.js)
        }
      }
    })
    this.#violations = new Counter({ name: 'penumbra_assertion_violations_total', help: 'Answer instances that violated a model assertion, by model and assertion.', labelNames: ['model', 'assertion'], registers })
    this.#checks = new Counter({ name: 'penumbra_assertion_checks_total', help: 'Answer instances a model assertion was checked on, by model and assertion (the denominator of the violation rate).', labelNames: ['model', 'assertion'], registers })
    this.reload(config)
  }

  /** Whether anything is configured (else the comparison stage skips the call). */
  get active (): boolean {
    return this.#drift !== null || this.#assertions.length > 0
  }

  /**
   * Applies a (re)loaded config. Drift state is kept when the `drift` section is unchanged, else
   * started over; assertion counts are kept per name, the `stable` memory is not.
   */
  reload (config: Config): void {
    const next = config.drift !== undefined && config.drift.enabled ? config.drift : null
    if (JSON.stringify(next) !== JSON.stringify(this.#drift)) this.#models.clear()
    // A backend or shadow the new config no longer has: its series go (names come from config only).
    const known = new Set([...Object.keys(config.backends), ...config.shadows.map((sh) => sh.name)])
    for (const name of [...this.#models.keys()]) if (!known.has(name)) this.#models.delete(name)
    this.#drift = next
    this.#assertions = config.assertions.map((a: AssertionConfig) => compileAssertion(a))
    this.#stable = this.#assertions.some((a) => a.needsInput)
    this.#digestConfig = { drift: next !== null, paths: config.assertions.map((a) => a.path), redact: config.compare.mismatches.redact.paths }
    this.#spec = digestSpec(this.#digestConfig.drift, this.#digestConfig.paths, this.#digestConfig.redact)
    for (const name of [...this.#counts.keys()]) if (!this.#assertions.some((a) => a.name === name)) this.#counts.delete(name)
  }

  /**
   * One model's answer to one request: `body` is the parsed JSON, `format` the comparison's
   * resolved format. Only 2xx answers are observed (an error body is no prediction).
   */
  observe (model: string, status: number, format: string, body: unknown, req: ObservedRequest): void {
    if (status < 200 || status > 299 || body === undefined) return
    this.observeDigest(model, status, digestAnswer(format, body, this.#spec), req)
  }

  /**
   * The same for an answer digested elsewhere (the comparison thread, with {@link digestSpec}):
   * drift counts its predictions, each assertion that applies to the model checks its values.
   */
  observeDigest (model: string, status: number, digest: AnswerDigest, req: ObservedRequest): void {
    if (status < 200 || status > 299) return
    const now = this.#now()
    if (this.#drift !== null) {
      let d = this.#models.get(model)
      if (d === undefined) {
        d = new ModelDrift(model, this.#drift, now)
        this.#models.set(model, d)
      }
      for (const p of digest.predictions) d.observe(p.label, p.score, now)
    }
    if (this.#assertions.length > 0 && digest.values.length === this.#assertions.length) this.#assert(model, digest, req, now)
  }

  /** The digest settings of the current config (sent to the comparison thread). */
  get digestConfig (): { drift: boolean, paths: string[], redact: string[] } {
    return this.#digestConfig
  }

  #assert (model: string, digest: AnswerDigest, req: ObservedRequest, now: number): void {
    const inputs = this.#stable ? this.#inputsOf(req) : null
    for (let k = 0; k < this.#assertions.length; k++) {
      const a = this.#assertions[k]!
      if (a.models !== null && !a.models.has(model)) continue
      const c = this.#countsOf(a.name, model)
      const values = digest.values[k]!
      const checkedBefore = c.checked
      for (let i = 0; i < values.length; i++) {
        const value = values[i]
        let inputKey: string | null = null
        if (a.needsInput) {
          const input = inputs !== null && inputs.length === values.length ? inputs[i] : values.length === 1 ? this.#wholeBody(req) : undefined
          if (input === undefined) { c.skipped++; continue }
          inputKey = inputKeyOf(input)
        }
        c.checked++
        const reason = a.check(value, { model, inputKey, now })
        if (reason === null) continue
        c.violations++
        c.violated.inc()
        // Stored values come from the redacted body.
        const stored = digest.redacted === undefined ? value : digest.redacted[k]![i]
        this.store.add({ requestId: req.requestId, model, assertion: a.name, rule: a.kind, method: req.method, url: req.url, instance: i, reason, value: stored }, now)
      }
      if (c.checked > checkedBefore) c.checks.inc(c.checked - checkedBefore)
    }
  }

  #countsOf (assertion: string, model: string): Counted {
    let byModel = this.#counts.get(assertion)
    if (byModel === undefined) { byModel = new Map(); this.#counts.set(assertion, byModel) }
    let c = byModel.get(model)
    if (c === undefined) {
      // Both series from the first check at 0, so the violation rate is defined before a violation.
      c = { checked: 0, violations: 0, skipped: 0, checks: this.#checks.labels({ model, assertion }), violated: this.#violations.labels({ model, assertion }) }
      c.checks.inc(0)
      c.violated.inc(0)
      byModel.set(model, c)
    }
    return c
  }

  /** The request's instances (null: none found or undecodable), decoded once per request. */
  #inputsOf (req: ObservedRequest): unknown[] | null {
    if (this.#inputs.has(req)) return this.#inputs.get(req) ?? null
    const body = this.#requestBody(req)
    const list = body === undefined ? null : requestInstancesOf(body)
    this.#inputs.set(req, list)
    return list
  }

  #wholeBody (req: ObservedRequest): unknown {
    return this.#requestBody(req)
  }

  #requestBody (req: ObservedRequest): unknown {
    if (req.requestBody === null || req.requestBody.length === 0) return undefined
    const d = decodeBody({ headers: req.requestHeaders, body: req.requestBody }, MAX_REQUEST_DECODE_BYTES)
    return d.ok ? d.value : undefined
  }

  /**
   * `POST /drift/reference`: the current window of `model` (every model when absent) becomes
   * its reference, and its window starts empty. Returns the models pinned and those skipped
   * (an empty window has nothing to pin).
   */
  pin (model?: string): { pinned: string[], empty: string[] } {
    const now = this.#now()
    const pinned: string[] = []
    const empty: string[] = []
    for (const [name, d] of this.#models) {
      if (model !== undefined && name !== model) continue
      if (d.pin(now)) pinned.push(name)
      else empty.push(name)
    }
    return { pinned, empty }
  }

  /** Whether drift is configured, and the models it has seen. */
  get driftEnabled (): boolean {
    return this.#drift !== null
  }

  get assertionsConfigured (): boolean {
    return this.#assertions.length > 0
  }

  has (model: string): boolean {
    return this.#models.has(model)
  }

  #views (): ModelDriftView[] {
    const now = this.#now()
    return [...this.#models.values()].map((d) => d.view(now))
  }

  /** `GET /drift`. */
  driftSnapshot (): DriftSnapshot {
    const d = this.#drift
    return {
      enabled: d !== null,
      windowMs: d?.windowMs ?? 0,
      reference: d?.reference ?? 'first',
      thresholds: d?.thresholds ?? { psi: { warn: 0.1, alert: 0.25 }, js: { warn: 0.1, alert: 0.2 } },
      minSamples: d?.minSamples ?? 0,
      models: this.#views()
    }
  }

  /** Per assertion: its rule and counts, per model. */
  assertionViews (): AssertionView[] {
    return this.#assertions.map((a) => {
      const models = [...(this.#counts.get(a.name) ?? new Map<string, Counted>()).entries()].map(([model, c]) => ({ model, checked: c.checked, violations: c.violations, skipped: c.skipped }))
      return {
        name: a.name,
        rule: a.kind,
        path: a.path,
        checked: models.reduce((n, m) => n + m.checked, 0),
        violations: models.reduce((n, m) => n + m.violations, 0),
        skipped: models.reduce((n, m) => n + m.skipped, 0),
        models
      }
    })
  }

  /** `GET /assertions`: the assertions with their counts, and the newest stored violations. */
  assertionsSnapshot (q: { model?: string, assertion?: string, limit?: number } = {}): { assertions: AssertionView[], violations: ViolationRecord[] } {
    return { assertions: this.assertionViews(), violations: this.store.list(q) }
  }

  /** What `GET /quality` includes under `drift` and `assertions`. */
  driftQuality (): { drift: DriftSnapshot, assertions: AssertionView[] } {
    return { drift: this.driftSnapshot(), assertions: this.assertionViews() }
  }
}

/**
 * `GET /assertions` over several processes (`--workers`): counts summed per assertion and model,
 * violations merged newest first. Drift itself is refused with workers (drift-schema.ts).
 */
export function mergeAssertions (parts: Array<{ assertions: AssertionView[], violations: ViolationRecord[] }>, limit = 100): { assertions: AssertionView[], violations: ViolationRecord[] } {
  const byName = new Map<string, AssertionView>()
  for (const part of parts) {
    for (const a of part.assertions) {
      let m = byName.get(a.name)
      if (m === undefined) {
        m = { ...a, checked: 0, violations: 0, skipped: 0, models: [] }
        byName.set(a.name, m)
      }
      m.checked += a.checked
      m.violations += a.violations
      m.skipped += a.skipped
      for (const mm of a.models) {
        const have = m.models.find((x) => x.model === mm.model)
        if (have === undefined) m.models.push({ ...mm })
        else { have.checked += mm.checked; have.violations += mm.violations; have.skipped += mm.skipped }
      }
    }
  }
  const violations = parts.flatMap((p) => p.violations).sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0)).slice(0, limit)
  return { assertions: [...byName.values()], violations }
}
