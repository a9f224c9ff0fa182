import type { IncomingMessage } from 'node:http'
import type { Counter, Histogram } from 'prom-client'
import type { Config } from '../config/schema.js'
import type { Backend } from '../upstream/backend.js'
import type { BackendSet } from '../upstream/backend-set.js'
import { compilePathGlob, parseSampleBy, sampleKey, StickyHash, type SampleBy } from '../shadow/sampler.js'
import { variantIndex } from './assignment.js'
import type { Moments } from './outcomes.js'
import { LRUCache } from 'lru-cache'
import { ArmTally } from './arm-tally.js'

/** Distinct units remembered per experiment for the unit counts (~100 bytes each). */
const MAX_TRACKED_UNITS = 100_000

/** Why a request an experiment matched was not enrolled (`penumbra_experiment_not_enrolled_total`). */
export type NotEnrolledReason = 'no_unit' | 'targeting' | 'traffic' | 'other_experiment'
export const NOT_ENROLLED_REASONS: readonly NotEnrolledReason[] = ['no_unit', 'targeting', 'traffic', 'other_experiment']

/**
 * Where one request goes: the backend, and the experiment arm when one assigned it. Routes are
 * built once per snapshot (one per variant, one for the primary), so routing a request
 * allocates nothing.
 */
export interface Route {
  readonly backend: Backend
  readonly experiment: Experiment | null
  readonly variant: Variant | null
  /** `x-penumbra-experiment` for the client and the backend: `name=variant`. */
  readonly header: string | null
  /** What the exposure log keeps for an outcome posted by request id (null: not an arm). */
  readonly exposure: { experiment: string, variant: string } | null
  /** The canary arm that counts this request (issue #18), when the canary routed it. */
  readonly canary?: { record (status: number, upstreamMs: number, errorReason: string | null): void }
}

/** Counters and histograms of one experiment arm, bound to its labels once. */
export interface VariantMetrics {
  exposures: Counter.Internal
  /** Requests by status code, bound per code on first use (label hashing once, not per request). */
  requests: (code: number) => Counter.Internal
  duration: Histogram.Internal<string>
  /** `penumbra_experiment_units_total`: distinct units first seen in this process. */
  units: Counter.Internal
}

export interface Variant {
  readonly name: string
  readonly index: number
  readonly backend: Backend
  readonly weight: number
  readonly route: Route
  readonly metrics: VariantMetrics
  /** Exposures in this process (the admin view; Prometheus has the counter). */
  exposures: number
  /** Distinct units exposed in this process (see Experiment.noteUnit), for the SRM test. */
  units: number
  /** Requests, errors and latency as the proxy measured them (the guardrail verdicts). */
  readonly tally: ArmTally
}

/** What the metrics module provides to bind an experiment's series. */
export interface ExperimentMetricsFactory {
  variant: (experiment: string, variant: string) => VariantMetrics
  notEnrolled: (experiment: string, reason: NotEnrolledReason) => Counter.Internal
}

/** One experiment of a config load, compiled: match rules, unit source, variants and their weights. */
export class Experiment {
  readonly name: string
  readonly layer: string
  readonly seed: string
  readonly cfg: Config['experiments'][number]
  readonly unit: SampleBy
  readonly variants: readonly Variant[]
  /** Cumulative weight boundaries, normalised to end at 1. */
  readonly bounds: readonly number[]
  readonly notEnrolled: Record<NotEnrolledReason, Counter.Internal>
  /** Where its requests go while it is switched off: the control's backend, no label. */
  readonly offRoute: Route
  /** Requests not enrolled in this process, by reason (the admin view). */
  readonly notEnrolledCounts: Record<NotEnrolledReason, number> = { no_unit: 0, targeting: 0, traffic: 0, other_experiment: 0 }
  /** Units seen, bounded: past it a returning unit may be counted again (documented). */
  readonly #seen = new LRUCache<string, true>({ max: MAX_TRACKED_UNITS })
  readonly #methods: Set<string>
  readonly #paths: RegExp[] | null
  readonly #targeting: Array<{ header: string, in: Set<string> }>
  /** The two draws of assignment.ts, their salts hashed once. */
  readonly #slotHash: StickyHash
  readonly #variantHash: StickyHash

  constructor (cfg: Config['experiments'][number], backends: BackendSet, metrics: ExperimentMetricsFactory) {
    this.cfg = cfg
    this.name = cfg.name
    this.layer = cfg.layer ?? cfg.name
    this.seed = cfg.seed ?? cfg.name
    this.unit = parseSampleBy(cfg.unit)
    this.#slotHash = new StickyHash(`layer:${this.layer}`)
    this.#variantHash = new StickyHash(`experiment:${this.seed}`)
    this.#methods = new Set(cfg.match.methods)
    this.#paths = cfg.match.paths.includes('/**') ? null : cfg.match.paths.map(compilePathGlob)
    this.#targeting = cfg.targeting.map((t) => ({ header: t.header.toLowerCase(), in: new Set(t.in) }))
    const total = cfg.variants.reduce((a, v) => a + v.weight, 0)
    let acc = 0
    const bounds: number[] = []
    this.variants = cfg.variants.map((v, index) => {
      acc += v.weight
      bounds.push(index === cfg.variants.length - 1 ? 1 : acc / total)
      const backend = backends.get(v.backend)!
      const variant: Variant = {
        name: v.name,
        index,
        backend,
        weight: v.weight / total,
        route: null as unknown as Route,
        metrics: metrics.variant(cfg.name, v.name),
        exposures: 0,
        units: 0,
        tally: new ArmTally()
      }
      ;(variant as { route: Route }).route = { backend, experiment: this, variant, header: `${cfg.name}=${v.name}`, exposure: { experiment: cfg.name, variant: v.name } }
      return variant
    })
    this.bounds = bounds
    this.offRoute = { backend: this.variants[0]!.backend, experiment: null, variant: null, header: null, exposure: null }
    this.notEnrolled = {
      no_unit: metrics.notEnrolled(cfg.name, 'no_unit'),
      targeting: metrics.notEnrolled(cfg.name, 'targeting'),
      traffic: metrics.notEnrolled(cfg.name, 'traffic'),
      other_experiment: metrics.notEnrolled(cfg.name, 'other_experiment')
    }
  }

  /** Does the request's method and path fall under this experiment? */
  matches (method: string, path: string): boolean {
    if (!this.#methods.has(method)) return false
    if (this.#paths === null) return true
    for (const re of this.#paths) if (re.test(path)) return true
    return false
  }

  /** Every targeting rule holds. */
  targets (req: IncomingMessage): boolean {
    for (const t of this.#targeting) {
      const v = req.headers[t.header]
      const value = Array.isArray(v) ? v[0] : v
      if (value === undefined || !t.in.has(value)) return false
    }
    return true
  }

  /** The unit of a request, or undefined when it carries none. */
  unitOf (req: IncomingMessage): string | undefined {
    return sampleKey(this.unit, req)
  }

  /** The variant of a unit (enrolment is decided by the layer). */
  variantOf (unit: string): Variant {
    return this.variants[variantIndex(this.#variantHash.of(unit), this.bounds)]!
  }

  /** The unit's slot in the experiment's layer (layerSlot of assignment.ts). */
  slotOf (unit: string): number {
    return this.#slotHash.of(unit)
  }

  /** The control: the first variant. */
  get control (): Variant {
    return this.variants[0]!
  }

  /** Counts a unit's first exposure in its arm (units, not requests, are what SRM tests). */
  noteUnit (unit: string, v: Variant): void {
    if (this.#seen.get(unit) !== undefined) return
    this.#seen.set(unit, true)
    v.units++
    v.metrics.units.inc()
  }

  countNotEnrolled (reason: NotEnrolledReason): void {
    this.notEnrolledCounts[reason]++
    this.notEnrolled[reason].inc()
  }
}

/** An experiment with its runtime state and its slot range in its layer. */
export interface ExperimentEntry {
  readonly experiment: Experiment
  readonly enabled: boolean
  readonly traffic: number
  /** Its slots: [start, start + traffic) of the layer. */
  readonly start: number
  /** Slots of the layer owned by some experiment: [0, layerUsed). */
  layerUsed: number
}

/**
 * Lays out the experiments' slot ranges: per layer, in config order, each experiment owns the
 * next `traffic` of the slots. Recomputed whenever a traffic changes (PATCH, reload).
 */
export function layoutExperiments (list: ReadonlyArray<{ experiment: Experiment, enabled: boolean, traffic: number }>): ExperimentEntry[] {
  const next = new Map<string, number>()
  const out = list.map((e) => {
    const start = next.get(e.experiment.layer) ?? 0
    next.set(e.experiment.layer, start + e.traffic)
    return { experiment: e.experiment, enabled: e.enabled, traffic: e.traffic, start, layerUsed: 0 }
  })
  for (const e of out) e.layerUsed = next.get(e.experiment.layer)!
  return out
}

/** Where a unit's slot falls: enrolled in `entry`, or the reason it is not. */
export function enrolment (entry: ExperimentEntry, unit: string): 'enrolled' | 'traffic' | 'other_experiment' {
  const slot = entry.experiment.slotOf(unit)
  if (slot >= entry.start && slot < entry.start + entry.traffic) return 'enrolled'
  // In another experiment's range of the layer, or in the share no experiment owns.
  return slot < entry.layerUsed ? 'other_experiment' : 'traffic'
}

/** `GET /experiments` for one experiment: config, runtime state, slots and counts of this process. */
export function describeExperiment (e: ExperimentEntry, outcomes: { moments: (experiment: string, variant: string, metric: string) => Moments }): Record<string, unknown> {
  const ex = e.experiment
  return {
    name: ex.name,
    layer: ex.layer,
    unit: ex.cfg.unit,
    state: { enabled: e.enabled, traffic: e.traffic, slots: [e.start, e.start + e.traffic] },
    match: ex.cfg.match,
    targeting: ex.cfg.targeting,
    variants: ex.variants.map((v) => ({
      name: v.name,
      backend: v.backend.name,
      weight: v.weight,
      exposures: v.exposures,
      units: v.units,
      ...v.tally.toJSON(),
      // The running sums of each outcome metric (mergeable: n, sum, sum of squares).
      outcomes: Object.fromEntries(ex.cfg.metrics.map((m) => [m.name, outcomes.moments(ex.name, v.name, m.name)]))
    })),
    notEnrolled: { ...ex.notEnrolledCounts },
    metrics: ex.cfg.metrics,
    minEffect: ex.cfg.minEffect,
    alpha: ex.cfg.alpha
  }
}
