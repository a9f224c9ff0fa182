import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { UPSTREAM_ERROR_REASONS } from '../upstream/upstream-error.js'
import type { ExperimentMetricsFactory } from '../experiments/experiment.js'
import { EXPERIMENT_LATENCY_BUCKETS } from '../experiments/arm-tally.js'
import type { OutcomeCounters } from '../experiments/outcomes.js'
import { LLM_KINDS, type LlmComparison } from '../compare/llm/agreement.js'
import { FeedbackMetrics } from '../feedback/feedback-metrics.js'

// Every metric penumbra exports is defined here: the names and labels are the public contract of
// issues #2, #3 and #4 (README "Metrics reference"). Label values come from config (shadow names)
// or bounded sets (outcome, reason, normalised and capped field paths): never from a request.

/** Client-facing and upstream latency: 0.5 ms … 30 s (model inference tails exceed 10 s). */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
/** Shadow minus primary latency, signed: negative means the shadow was faster. */
export const LATENCY_DELTA_BUCKETS = [-5, -1, -0.5, -0.25, -0.1, -0.05, -0.025, -0.01, -0.005, -0.001, 0,
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5]
/** Max absolute score difference per instance (probabilities and logits alike). */
export const SCORE_DELTA_BUCKETS = [0, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.5, 1, 10]

/** Time to first token: 5 ms … 60 s (a long prompt's prefill, a cold model). */
export const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
/** Time per output token: 1 ms … 2.5 s (OpenTelemetry GenAI semantic conventions' advice, trimmed). */
export const TPOT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5]

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'])

/** Reasons of `penumbra_shadow_skipped_total`. */
export const SKIP_REASONS = ['concurrency', 'body_too_large', 'not_matched', 'disabled', 'response_too_large', 'rewrite_failed', 'stateful', 'budget'] as const
/** Outcomes of `penumbra_comparisons_total`. */
export const COMPARISON_OUTCOMES = ['match', 'mismatch', 'shadow_error', 'shadow_timeout', 'unparseable', 'unsupported'] as const
/** Reasons of `penumbra_comparisons_dropped_total`. */
export const DROP_REASONS = ['queue_full', 'primary_error', 'primary_truncated', 'disabled', 'worker_failed'] as const

/** Request methods outside the standard set share one label value, keeping cardinality bounded. */
export function methodLabel (method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'OTHER'
}

/**
 * `penumbra_config_reloads_total`. In `--workers` mode the primary process reads the file and
 * counts the reloads in a registry of its own, so the workers' copies (never incremented there)
 * are left out of the aggregated /metrics (`aggregator: 'omit'`; a single process ignores it).
 */
export function configReloadsCounter (registers: Registry[]): Counter<'result'> {
  const c = new Counter({ name: 'penumbra_config_reloads_total', help: 'Config reloads (SIGHUP) by result (ok, invalid).', labelNames: ['result'], aggregator: 'omit', registers })
  for (const result of ['ok', 'invalid']) c.inc({ result }, 0)
  return c
}

/**
 * `penumbra_primary_switches_total`. Like the reloads, counted where the switch is decided: in
 * `--workers` mode by the primary process (the workers' copies are omitted from the aggregate).
 */
export function primarySwitchesCounter (registers: Registry[]): Counter<'from' | 'to'> {
  return new Counter({ name: 'penumbra_primary_switches_total', help: 'Switches of the active primary backend (PUT /primary, rollback, a reload that removed it), by from and to.', labelNames: ['from', 'to'], aggregator: 'omit', registers })
}

/** The canary's series (issue #18), as the controller updates them. */
export interface CanaryMetrics {
  canaryWeight: Gauge<'canary'>
  canaryStep: Gauge<'canary'>
  canaryDecisions: Counter<'canary' | 'gate' | 'result'>
  canaryState: Gauge<'canary' | 'state'>
}

/**
 * The canary's series. Over --workers processes the gauges aggregate by max (each worker reports
 * the weight it routes by); `omit`: decided and exported by the cluster primary instead.
 */
export function canaryMetrics (registers: Registry[], omit = false): CanaryMetrics {
  const g = omit ? 'omit' : 'max'
  return {
    canaryWeight: new Gauge({ name: 'penumbra_canary_weight', help: 'Share of the canary\'s split traffic sent to the candidate (0..1).', labelNames: ['canary'], aggregator: g, registers }),
    canaryStep: new Gauge({ name: 'penumbra_canary_step', help: 'The canary\'s current step (1-based; 0 before the ramp: idle, shadow).', labelNames: ['canary'], aggregator: g, registers }),
    canaryDecisions: new Counter({ name: 'penumbra_canary_decisions_total', help: 'Canary gate verdicts by gate (errorRate, latency.p99, latency.p50, disagreement, accuracy, comparisons) and result (pass, fail, inconclusive); gate="decision" counts the actions (advance, hold, rollback, promote, complete, pause, start, abort, retry, restart, set).', labelNames: ['canary', 'gate', 'result'], aggregator: omit ? 'omit' : 'sum', registers }),
    canaryState: new Gauge({ name: 'penumbra_canary_state', help: '1 for the canary\'s current state (idle, shadow, step, paused, rolled_back, promoted, completed), 0 for the others.', labelNames: ['canary', 'state'], aggregator: g, registers })
  }
}

/** All penumbra metrics, bound to one registry (one per process; tests make their own). */
export class Metrics {
  readonly registry: Registry
  readonly requests: Counter<'method' | 'code'>
  readonly requestDuration: Histogram
  readonly upstreamDuration: Histogram<'upstream'>
  readonly upstreamErrors: Counter<'upstream' | 'reason'>
  readonly inflight: Gauge
  readonly connectionsOpen: Gauge
  readonly connectionsDropped: Counter
  readonly bodyTooLarge: Counter<'framing'>
  readonly upgrades: Counter<'outcome'>
  readonly upgradesOpen: Gauge
  readonly backendRequests: Counter<'backend' | 'code'>
  readonly primarySwitches: Counter<'from' | 'to'>
  readonly primaryBackend: Gauge<'backend'>
  readonly shadowRequests: Counter<'shadow' | 'outcome'>
  readonly shadowSkipped: Counter<'shadow' | 'reason'>
  readonly shadowInflight: Gauge<'shadow'>
  readonly comparisons: Counter<'shadow' | 'outcome'>
  readonly comparisonsDropped: Counter<'shadow' | 'reason'>
  readonly fieldMismatches: Counter<'shadow' | 'path'>
  readonly instancesCompared: Counter<'shadow'>
  readonly instanceDisagreements: Counter<'shadow'>
  readonly scoreDelta: Histogram<'shadow'>
  readonly latencyDelta: Histogram<'shadow'>
  readonly noiseRequests: Counter<'outcome'>
  readonly mismatchSinkDropped: Counter
  readonly comparisonErrors: Counter<'shadow' | 'reason'>
  readonly llmAgreement: Counter<'shadow' | 'kind' | 'outcome'>
  readonly llmTimeToFirstToken: Histogram<'upstream'>
  readonly llmTimePerOutputToken: Histogram<'upstream'>
  readonly llmTokens: Counter<'upstream' | 'kind'>
  readonly configReloads: Counter<'result'>
  readonly buildInfo: Gauge<'version' | 'node'>
  readonly experimentExposures: Counter<'experiment' | 'variant'>
  readonly experimentNotEnrolled: Counter<'experiment' | 'reason'>
  readonly experimentRequests: Counter<'experiment' | 'variant' | 'code'>
  readonly experimentDuration: Histogram<'experiment' | 'variant'>
  readonly experimentUnits: Counter<'experiment' | 'variant'>
  readonly outcomes: OutcomeCounters
  /** Prediction log, labels and online quality (issue #19). */
  readonly feedback: FeedbackMetrics
  readonly faultsInjected: Counter<'experiment' | 'target' | 'kind'>
  readonly chaosActive: Gauge<'experiment'>
  readonly canaryWeight: Gauge<'canary'>
  readonly canaryStep: Gauge<'canary'>
  readonly canaryDecisions: Counter<'canary' | 'gate' | 'result'>
  readonly canaryState: Gauge<'canary' | 'state'>

  /**
   * `canaryInPrimary`: a --workers worker whose canary is decided by the cluster primary, which
   * exports the canary series itself (this process's copies are omitted from the aggregate).
   */
  constructor (opts: { version: string, defaultMetrics?: boolean, canaryInPrimary?: boolean }) {
    const registry = this.registry = new Registry()
    if (opts.defaultMetrics !== false) {
      collectDefaultMetrics({ register: registry })
      // prom-client names these gauges with a counter's `_total` suffix, which `promtool check
      // metrics` rejects; the same numbers stay available per type (nodejs_active_handles, …).
      for (const n of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(n)
    }
    const r = [registry]

    this.requests = new Counter({ name: 'penumbra_requests_total', help: 'Client requests answered, by method and status code.', labelNames: ['method', 'code'], registers: r })
    this.requestDuration = new Histogram({ name: 'penumbra_request_duration_seconds', help: 'Client-facing request duration, from the request head to the last response byte.', buckets: LATENCY_BUCKETS, registers: r })
    this.upstreamDuration = new Histogram({ name: 'penumbra_upstream_duration_seconds', help: 'Upstream duration from dispatch to the last response byte; upstream is the backend that answered the client, or a shadow name.', labelNames: ['upstream'], buckets: LATENCY_BUCKETS, registers: r })
    this.upstreamErrors = new Counter({ name: 'penumbra_upstream_errors_total', help: 'Upstream failures by upstream and reason (refused, reset, timeout, dns, bad_response, bad_request, aborted, other).', labelNames: ['upstream', 'reason'], registers: r })
    this.inflight = new Gauge({ name: 'penumbra_inflight_requests', help: 'Client requests in flight.', registers: r })
    this.connectionsOpen = new Gauge({ name: 'penumbra_client_connections', help: 'Client connections open on the proxy listener.', registers: r })
    this.connectionsDropped = new Counter({ name: 'penumbra_client_connections_dropped_total', help: 'Client connections closed on arrival because listen.maxConnections were open.', registers: r })
    this.bodyTooLarge = new Counter({ name: 'penumbra_request_body_too_large_total', help: 'Requests refused with 413 for a body above listen.maxBodyBytes, by framing (content-length: before any upstream; chunked: cut off when it crossed the limit).', labelNames: ['framing'], registers: r })
    for (const framing of ['content-length', 'chunked']) this.bodyTooLarge.inc({ framing }, 0)
    this.upgrades = new Counter({ name: 'penumbra_upgrades_total', help: 'WebSocket/Upgrade handshakes by outcome (upgraded, declined: the upstream answered without switching, refused: by penumbra\'s request policy, limit: proxy.maxUpgrades, timeout, error).', labelNames: ['outcome'], registers: r })
    for (const outcome of ['upgraded', 'declined', 'refused', 'limit', 'timeout', 'error']) this.upgrades.inc({ outcome }, 0)
    this.upgradesOpen = new Gauge({ name: 'penumbra_upgrades_open', help: 'WebSocket/Upgrade connections open or opening (capped by proxy.maxUpgrades).', registers: r })
    this.backendRequests = new Counter({ name: 'penumbra_backend_requests_total', help: 'Client requests answered through each backend, by status code (499: the client went away first).', labelNames: ['backend', 'code'], registers: r })
    this.primarySwitches = primarySwitchesCounter(r)
    // max, not sum: in --workers mode every worker reports 1 for the backend it routes to.
    this.primaryBackend = new Gauge({ name: 'penumbra_primary_backend', help: '1 for the backend that answers clients (the active primary), 0 for the others.', labelNames: ['backend'], aggregator: 'max', registers: r })

    this.shadowRequests = new Counter({ name: 'penumbra_shadow_requests_total', help: 'Requests mirrored to a shadow, by outcome (ok, error, timeout).', labelNames: ['shadow', 'outcome'], registers: r })
    this.shadowSkipped = new Counter({ name: 'penumbra_shadow_skipped_total', help: 'Requests a shadow wanted but did not get, or whose response was cut off, by reason.', labelNames: ['shadow', 'reason'], registers: r })
    this.shadowInflight = new Gauge({ name: 'penumbra_shadow_inflight', help: 'Mirrored requests in flight per shadow.', labelNames: ['shadow'], registers: r })

    this.comparisons = new Counter({ name: 'penumbra_comparisons_total', help: 'Primary-vs-shadow comparisons by outcome (match, mismatch, shadow_error, shadow_timeout, unparseable).', labelNames: ['shadow', 'outcome'], registers: r })
    this.comparisonsDropped = new Counter({ name: 'penumbra_comparisons_dropped_total', help: 'Comparisons not made, by reason (queue_full, primary_error, disabled, worker_failed).', labelNames: ['shadow', 'reason'], registers: r })
    this.fieldMismatches = new Counter({ name: 'penumbra_field_mismatches_total', help: 'Differences per normalised field path (array indices as *); at most 100 paths per shadow, the rest as "other".', labelNames: ['shadow', 'path'], registers: r })
    this.instancesCompared = new Counter({ name: 'penumbra_instances_compared_total', help: 'Prediction instances compared (a batch of 32 counts 32).', labelNames: ['shadow'], registers: r })
    this.instanceDisagreements = new Counter({ name: 'penumbra_instance_disagreements_total', help: 'Prediction instances on which the shadow disagrees with the primary.', labelNames: ['shadow'], registers: r })
    this.scoreDelta = new Histogram({ name: 'penumbra_score_delta', help: 'Max absolute score difference per compared instance.', labelNames: ['shadow'], buckets: SCORE_DELTA_BUCKETS, registers: r })
    this.latencyDelta = new Histogram({ name: 'penumbra_latency_delta_seconds', help: 'Shadow minus primary upstream duration per compared request (signed; negative: shadow faster).', labelNames: ['shadow'], buckets: LATENCY_DELTA_BUCKETS, registers: r })
    this.noiseRequests = new Counter({ name: 'penumbra_noise_requests_total', help: 'Primary-vs-primary replays for noise cancellation, by outcome (ok, error, timeout, skipped).', labelNames: ['outcome'], registers: r })
    this.mismatchSinkDropped = new Counter({ name: 'penumbra_mismatch_sink_dropped_total', help: 'Mismatch records not written to the JSONL sink because it was backed up or failing.', registers: r })
    this.llmAgreement = new Counter({ name: 'penumbra_llm_agreement_total', help: 'LLM answer choices compared, by agreement kind (content, tool_calls, finish_reason, json_valid, refusal) and outcome (agree, disagree).', labelNames: ['shadow', 'kind', 'outcome'], registers: r })
    this.llmTimeToFirstToken = new Histogram({ name: 'penumbra_llm_time_to_first_token_seconds', help: 'Streamed LLM answers: request sent to the first content or tool-call delta, per upstream (the primary backend or a shadow).', labelNames: ['upstream'], buckets: TTFT_BUCKETS, registers: r })
    this.llmTimePerOutputToken = new Histogram({ name: 'penumbra_llm_time_per_output_token_seconds', help: 'Streamed LLM answers: (last token time - first token time) / (output tokens - 1), per upstream.', labelNames: ['upstream'], buckets: TPOT_BUCKETS, registers: r })
    this.llmTokens = new Counter({ name: 'penumbra_llm_tokens_total', help: 'Tokens the upstream reported in its usage, by kind (input, output, unknown: an answer that reported no usage, counted once).', labelNames: ['upstream', 'kind'], registers: r })
    this.configReloads = configReloadsCounter(r)
    this.comparisonErrors = new Counter({ name: 'penumbra_comparison_shadow_errors_total', help: 'Comparisons counted as shadow_error because of the shadow\'s answer itself, by reason (truncated: its stream ended before [DONE] / response.completed).', labelNames: ['shadow', 'reason'], registers: r })
    this.buildInfo = new Gauge({ name: 'penumbra_build_info', help: 'Constant 1, labelled with the penumbra and Node.js versions.', labelNames: ['version', 'node'], aggregator: 'first', registers: r })
    this.buildInfo.set({ version: opts.version, node: process.version }, 1)
    for (const outcome of ['ok', 'error', 'timeout', 'skipped']) this.noiseRequests.inc({ outcome }, 0)

    this.experimentExposures = new Counter({ name: 'penumbra_experiment_exposures_total', help: 'Requests an experiment assigned to a variant (which then answered the client).', labelNames: ['experiment', 'variant'], registers: r })
    this.experimentNotEnrolled = new Counter({ name: 'penumbra_experiment_not_enrolled_total', help: 'Requests an experiment matched but did not enrol, by reason (no_unit, targeting, traffic, other_experiment).', labelNames: ['experiment', 'reason'], registers: r })
    this.experimentRequests = new Counter({ name: 'penumbra_experiment_requests_total', help: 'Client requests answered by each experiment variant, by status code (499: the client went away first).', labelNames: ['experiment', 'variant', 'code'], registers: r })
    const om = ['experiment', 'variant', 'metric'] as const
    this.outcomes = {
      count: new Counter({ name: 'penumbra_experiment_outcome_count_total', help: 'Outcome events accepted per experiment arm and metric (n of the running sums).', labelNames: om, registers: r }),
      sum: new Counter({ name: 'penumbra_experiment_outcome_sum_total', help: 'Sum of the accepted outcome values per experiment arm and metric.', labelNames: om, registers: r }),
      sumSquares: new Counter({ name: 'penumbra_experiment_outcome_sum_squares_total', help: 'Sum of the squared outcome values per experiment arm and metric (for variances).', labelNames: om, registers: r }),
      events: new Counter({ name: 'penumbra_events_total', help: 'Outcome events posted to POST /events, by result (accepted, invalid, unknown_experiment, unknown_metric, not_enrolled, unknown_request, invalid_value).', labelNames: ['result'], registers: r })
    }
    const canary = canaryMetrics(r, opts.canaryInPrimary === true)
    this.canaryWeight = canary.canaryWeight
    this.canaryStep = canary.canaryStep
    this.canaryDecisions = canary.canaryDecisions
    this.canaryState = canary.canaryState
    // Chaos (issue #20). max, not sum: with --workers every worker runs the same experiments.
    this.faultsInjected = new Counter({ name: 'penumbra_faults_injected_total', help: 'Chaos faults injected, by experiment, target (a backend, or shadow:<name>) and kind.', labelNames: ['experiment', 'target', 'kind'], registers: r })
    this.chaosActive = new Gauge({ name: 'penumbra_chaos_active', help: '1 while the chaos experiment runs, 0 once it stopped.', labelNames: ['experiment'], aggregator: 'max', registers: r })
    this.feedback = new FeedbackMetrics(registry)
    // Finer buckets than the proxy's (25% apart): the latency verdicts are computed from them.
    this.experimentDuration = new Histogram({ name: 'penumbra_experiment_duration_seconds', help: 'Client-facing duration of the requests each experiment variant answered (a client that went away first, 499, is not observed).', labelNames: ['experiment', 'variant'], buckets: [...EXPERIMENT_LATENCY_BUCKETS], registers: r })
    this.experimentUnits = new Counter({ name: 'penumbra_experiment_units_total', help: 'Distinct units first exposed to each experiment variant in this process (the sample-ratio test reads it).', labelNames: ['experiment', 'variant'], registers: r })
  }

  /** Binds an experiment's series (created at 0, so rates exist before traffic). */
  experimentMetrics (): ExperimentMetricsFactory {
    return {
      variant: (experiment, variant) => ({
        exposures: zeroed(this.experimentExposures.labels({ experiment, variant })),
        requests: boundByCode(this.experimentRequests, experiment, variant),
        duration: this.experimentDuration.labels({ experiment, variant }),
        units: zeroed(this.experimentUnits.labels({ experiment, variant }))
      }),
      notEnrolled: (experiment, reason) => zeroed(this.experimentNotEnrolled.labels({ experiment, reason }))
    }
  }

  /** The active primary: its gauge series 1, every other backend's 0 (stale names are removed). */
  setPrimaryBackend (active: string, backends: string[]): void {
    this.primaryBackend.reset()
    for (const b of backends) {
      this.primaryBackend.set({ backend: b }, b === active ? 1 : 0)
      this.#initUpstream(b)
    }
  }

  /** Error series of an upstream (a backend or a shadow) at 0, so dashboards show 0, not "No data". */
  #initUpstream (upstream: string): void {
    for (const reason of UPSTREAM_ERROR_REASONS) this.upstreamErrors.inc({ upstream, reason }, 0)
  }

  /** Counts the agreement kinds of one LLM comparison (`penumbra_llm_agreement_total`). */
  recordLlmAgreement (shadow: string, llm: LlmComparison): void {
    for (const kind of LLM_KINDS) {
      const c = llm.kinds[kind]
      if (c === undefined) continue
      if (c.agree > 0) this.llmAgreement.inc({ shadow, kind, outcome: 'agree' }, c.agree)
      if (c.disagree > 0) this.llmAgreement.inc({ shadow, kind, outcome: 'disagree' }, c.disagree)
    }
  }

  /** Creates the series of a shadow up front, so rates are 0 rather than absent before traffic. */
  initShadow (shadow: string): void {
    for (const outcome of ['ok', 'error', 'timeout']) this.shadowRequests.inc({ shadow, outcome }, 0)
    for (const reason of SKIP_REASONS) this.shadowSkipped.inc({ shadow, reason }, 0)
    for (const outcome of COMPARISON_OUTCOMES) this.comparisons.inc({ shadow, outcome }, 0)
    for (const reason of DROP_REASONS) this.comparisonsDropped.inc({ shadow, reason }, 0)
    this.comparisonErrors.inc({ shadow, reason: 'truncated' }, 0)
    this.#initUpstream(shadow)
    this.instancesCompared.inc({ shadow }, 0)
    this.instanceDisagreements.inc({ shadow }, 0)
    // inc by 0, not set(0): a reload must not reset the gauge under calls still in flight.
    this.shadowInflight.inc({ shadow }, 0)
  }
}

/** A bound counter whose series exists from now on (at 0). */
function zeroed<T extends { inc: (n?: number) => void }> (c: T): T {
  c.inc(0)
  return c
}

/** `penumbra_experiment_requests_total` of one arm, bound per status code on first use. */
function boundByCode (c: Counter<'experiment' | 'variant' | 'code'>, experiment: string, variant: string): (code: number) => Counter.Internal {
  const byCode = new Map<number, Counter.Internal>()
  return (code) => {
    let b = byCode.get(code)
    if (b === undefined) {
      b = c.labels({ experiment, variant, code: String(code) })
      byCode.set(code, b)
    }
    return b
  }
}
