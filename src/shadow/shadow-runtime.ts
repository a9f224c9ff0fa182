import type { Dispatcher } from 'undici'
import type { CompareConfig, ShadowConfig } from '../config/schema.js'
import { SKIP_REASONS, type Metrics } from '../metrics/metrics.js'
import { createUpstreamPool } from '../upstream/pool.js'
import { compilePathGlob, parseSampleBy, type SampleBy } from './sampler.js'
import { RequestRewrite } from './rewrite.js'
import { redactShadowSecrets } from '../config/load.js'
import type { TargetKind } from '../compare/job-record.js'
import { LlmCopyPolicy } from './llm-copy.js'
import { TokenBudget } from './token-budget.js'

/** Reasons of `penumbra_shadow_skipped_total`. */
export type SkipReason = typeof SKIP_REASONS[number]

/** Counters kept per shadow for `GET /shadows` and `GET /report` (cheap plain numbers). */
export interface ShadowCounters {
  mirrored: number
  ok: number
  error: number
  timeout: number
  skipped: Record<SkipReason, number>
}

/**
 * What a shadow keeps across config reloads (shared by name between the old runtime and the new
 * one): the in-flight count, so the `maxConcurrency` semaphore still holds while calls started
 * before the reload finish, and the counters those calls still report to.
 */
export interface ShadowShared {
  inflight: number
  counters: ShadowCounters
  /** Failures since the last "shadow requests are failing" warning, and when that was (ms). */
  failing: { failures: number, warnedAt: number }
  /** The token budget's minute and spend (`llm.maxTokensPerMinute`); null until one is configured. */
  budget: TokenBudget | null
}

/** A shadow's LLM settings and budget, as `GET /report` shows them. */
export interface ShadowLlmView {
  stream: 'keep' | 'off'
  mirrorStateful: boolean
  /** This process's budget and what it spent this minute (summed over --workers); null: none. */
  budget: { tokensPerMinute: number, spentThisMinute: number } | null
}

/** Runtime state that PATCH /shadows/:name changes without a restart (kept in the runtime snapshot). */
export interface ShadowState {
  sampleRate: number
  enabled: boolean
}

/**
 * One shadow: its validated config (immutable), its own undici Pool, the compiled match rules
 * and rewrites, and the runtime state and counters. Built once per config load.
 */
export class ShadowRuntime {
  readonly name: string
  readonly cfg: ShadowConfig
  readonly compare: CompareConfig
  /** The shadow's own pool (`url:`), or the named backend's dispatcher (`backend:`), shared with the client path. */
  readonly pool: Dispatcher
  /** True when `pool` is this shadow's own (closed with it); false for a backend's. */
  readonly ownsPool: boolean
  /** Where its copies go (the backend's URL for `backend:`). */
  readonly url: string
  readonly sampleBy: SampleBy
  readonly rewrite: RequestRewrite
  readonly setHeaders: Array<[string, string]>
  readonly removeHeaders: Set<string>
  readonly #methods: Set<string>
  readonly #paths: RegExp[] | null
  readonly #metrics: Metrics
  readonly #redactedCfg: ShadowConfig

  /** In-flight count and counters, carried over reloads. */
  readonly shared: ShadowShared
  /** Lower-case names of `headers.set`: the client's values of these are replaced, not joined. */
  readonly setHeaderNames: Set<string>

  /**
   * `noise`: the primary replay (primary-vs-primary), under the same isolation rules but sent to
   * the backend that answered, with no per-shadow metric series.
   */
  readonly kind: TargetKind

  /** Told every call's result (the canary's baseline mirror counts them as its arm, issue #18). */
  observer: ((r: import('../compare/job-record.js').CallResult) => void) | null = null

  /** LLM rules for the copy: stateful calls, stream mode (issue #16). */
  readonly llm: LlmCopyPolicy
  /** This process's token budget (`llm.maxTokensPerMinute`, divided among `--workers`); null: none. */
  readonly budget: TokenBudget | null

  constructor (cfg: ShadowConfig, compare: CompareConfig, metrics: Metrics, opts: { kind?: TargetKind, shared?: ShadowShared, pool?: Dispatcher, ownsPool?: boolean, url?: string, mirrorStateful?: boolean, workers?: number, interceptor?: Dispatcher.DispatcherComposeInterceptor | null } = {}) {
    this.kind = opts.kind ?? 'shadow'
    this.name = cfg.name
    this.cfg = cfg
    this.compare = compare
    this.#metrics = metrics
    this.sampleBy = parseSampleBy(cfg.sampleBy)
    this.rewrite = new RequestRewrite(cfg.rewrite)
    this.#redactedCfg = structuredClone(cfg)
    redactShadowSecrets(this.#redactedCfg)
    this.setHeaders = Object.entries(cfg.headers.set)
    this.setHeaderNames = new Set(Object.keys(cfg.headers.set))
    this.shared = opts.shared ?? {
      inflight: 0,
      failing: { failures: 0, warnedAt: -Infinity },
      budget: null,
      counters: {
        mirrored: 0,
        ok: 0,
        error: 0,
        timeout: 0,
        skipped: Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>
      }
    }
    this.removeHeaders = new Set(cfg.headers.remove)
    this.llm = new LlmCopyPolicy(cfg.llm, opts.mirrorStateful ?? false, compare.format)
    const perMinute = cfg.llm.maxTokensPerMinute
    if (perMinute === null) this.budget = null
    else {
      // Each --workers process holds its share, so that together they never spend more.
      const limit = Math.max(1, Math.floor(perMinute / Math.max(1, opts.workers ?? 1)))
      this.budget = this.shared.budget ??= new TokenBudget(limit)
      this.budget.limit = limit
    }
    this.#methods = new Set(cfg.match.methods)
    this.#paths = cfg.match.paths.includes('/**') ? null : cfg.match.paths.map(compilePathGlob)
    this.url = opts.url ?? cfg.url!
    this.ownsPool = opts.pool === undefined || opts.ownsPool === true
    let pool = opts.pool
    if (pool === undefined) {
      const own = createUpstreamPool({
        url: this.url,
        connections: cfg.connections ?? cfg.maxConcurrency,
        connectTimeoutMs: cfg.connectTimeoutMs
      })
      // Chaos faults on a shadow with its own pool (a backend's pool has them already).
      pool = opts.interceptor != null ? own.compose(opts.interceptor) : own
    }
    this.pool = pool
    if (this.kind === 'shadow') metrics.initShadow(this.name)
  }

  /** True when `cfg` (a shadow with its own `url`) would build the same pool as this runtime's (so a reload can keep it). */
  samePool (cfg: ShadowConfig): boolean {
    const a = this.cfg
    return this.ownsPool && cfg.url !== undefined && a.url === cfg.url && (a.connections ?? a.maxConcurrency) === (cfg.connections ?? cfg.maxConcurrency) && a.connectTimeoutMs === cfg.connectTimeoutMs
  }

  /** Method and path (query excluded) match `match.methods` and `match.paths`. */
  matches (method: string, path: string): boolean {
    if (!this.#methods.has(method)) return false
    if (this.#paths === null) return true
    for (const re of this.#paths) if (re.test(path)) return true
    return false
  }

  /** undici requests of this shadow in flight: the `maxConcurrency` semaphore. */
  get inflight (): number {
    return this.shared.inflight
  }

  get counters (): ShadowCounters {
    return this.shared.counters
  }

  skip (reason: SkipReason): void {
    this.counters.skipped[reason]++
    if (this.kind === 'shadow') this.#metrics.shadowSkipped.inc({ shadow: this.name, reason })
    else this.#metrics.noiseRequests.inc({ outcome: 'skipped' }) // a replay drawn but not sent
  }

  /** Takes one place of the `maxConcurrency` semaphore; false (and counted) when full. Never queues. */
  tryAcquire (): boolean {
    if (this.inflight >= this.cfg.maxConcurrency) {
      this.skip('concurrency')
      return false
    }
    this.shared.inflight++
    if (this.kind === 'shadow') this.#metrics.shadowInflight.inc({ shadow: this.name })
    return true
  }

  release (): void {
    this.shared.inflight--
    if (this.kind === 'shadow') this.#metrics.shadowInflight.dec({ shadow: this.name })
  }

  /** Runtime state (from the runtime snapshot) and counters, as the report shows them. */
  view (state: ShadowState): { state: ShadowState, counters: ShadowCounters, llm: ShadowLlmView } {
    return { state: { enabled: state.enabled, sampleRate: state.sampleRate }, counters: this.counters, llm: this.llmView() }
  }

  /** The LLM settings the report shows next to the numbers (TTFT is not measured with `stream: off`). */
  llmView (): ShadowLlmView {
    const b = this.budget
    return {
      stream: this.llm.streamOff ? 'off' : 'keep',
      mirrorStateful: this.llm.mirrorStateful,
      budget: b === null ? null : { tokensPerMinute: b.limit, spentThisMinute: b.spent() }
    }
  }

  /** Config, state (from the runtime snapshot) and counters for `GET /shadows`. */
  describe (state: ShadowState): Record<string, unknown> {
    return {
      name: this.name,
      url: this.url,
      ...(this.cfg.backend !== undefined ? { backend: this.cfg.backend } : undefined),
      state: { enabled: state.enabled, sampleRate: state.sampleRate, inflight: this.inflight },
      config: this.#redactedCfg,
      counters: this.counters
    }
  }
}
