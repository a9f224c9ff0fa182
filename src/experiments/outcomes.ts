import { z } from 'zod'
import type { Counter } from 'prom-client'
import type { ExperimentEntry } from './experiment.js'
import { enrolment } from './experiment.js'
import type { ExposureLog } from './exposure-log.js'

/** Most events one `POST /events` may carry (more is 413). */
export const MAX_EVENTS = 10_000

/** How one event ended (`penumbra_events_total{result}`). */
export type EventResult = 'accepted' | 'invalid' | 'unknown_experiment' | 'unknown_metric' | 'not_enrolled' | 'unknown_request' | 'invalid_value'
export const EVENT_RESULTS: readonly EventResult[] = ['accepted', 'invalid', 'unknown_experiment', 'unknown_metric', 'not_enrolled', 'unknown_request', 'invalid_value']

const eventSchema = z.strictObject({
  unit: z.string().min(1).optional(),
  requestId: z.string().min(1).optional(),
  experiment: z.string().min(1).optional(),
  name: z.string().min(1),
  value: z.number().refine(Number.isFinite, 'must be a finite number'),
  at: z.union([z.string(), z.number()]).optional()
}).refine((e) => (e.unit === undefined) !== (e.requestId === undefined), 'needs exactly one of unit and requestId')

/** Running sums of one metric in one arm: enough for proportions, means and Welch's test, and mergeable across replicas. */
export interface Moments { n: number, sum: number, sumSq: number }

/** The Prometheus counters of the sufficient statistics. */
export interface OutcomeCounters {
  count: Counter<'experiment' | 'variant' | 'metric'>
  sum: Counter<'experiment' | 'variant' | 'metric'>
  sumSquares: Counter<'experiment' | 'variant' | 'metric'>
  events: Counter<'result'>
}

export interface IngestResult {
  accepted: number
  rejected: Array<{ index: number, reason: EventResult, message: string }>
}

/**
 * Outcome events of experiments: each names a unit (its arm is recomputed from the hash: no
 * state) or a request id (looked up in the exposure log), and a metric of the experiment. Good
 * events add to the arm's running sums (here, for the admin view, and as Prometheus counters, so
 * replicas can be analysed together); bad ones are reported by index and counted, and never
 * stop the good ones of the same batch.
 */
export class Outcomes {
  readonly #moments = new Map<string, Moments>()
  readonly #counters: OutcomeCounters
  readonly #log: ExposureLog

  constructor (counters: OutcomeCounters, log: ExposureLog) {
    this.#counters = counters
    this.#log = log
    for (const result of EVENT_RESULTS) counters.events.inc({ result }, 0)
  }

  /** The running sums of one arm's metric (zeros when nothing arrived). */
  moments (experiment: string, variant: string, metric: string): Moments {
    return this.#moments.get(key(experiment, variant, metric)) ?? { n: 0, sum: 0, sumSq: 0 }
  }

  /** `noRequestIds`: refuse events by request id with this message (see Penumbra.postEvents). */
  ingest (events: readonly unknown[], experiments: readonly ExperimentEntry[], noRequestIds?: string): IngestResult {
    const out: IngestResult = { accepted: 0, rejected: [] }
    events.forEach((raw, index) => {
      const r = noRequestIds !== undefined && typeof raw === 'object' && raw !== null && 'requestId' in raw
        ? { result: 'unknown_request' as const, message: noRequestIds }
        : this.#one(raw, experiments)
      this.#counters.events.inc({ result: r.result })
      if (r.result === 'accepted') out.accepted++
      else out.rejected.push({ index, reason: r.result, message: r.message })
    })
    return out
  }

  #one (raw: unknown, experiments: readonly ExperimentEntry[]): { result: EventResult, message: string } {
    const parsed = eventSchema.safeParse(raw)
    if (!parsed.success) {
      const i = parsed.error.issues[0]!
      return { result: 'invalid', message: `${i.path.length > 0 ? i.path.join('.') : 'event'}: ${i.code === 'unrecognized_keys' ? `unknown key ${i.keys.join(', ')}` : i.message}` }
    }
    const e = parsed.data
    const named = e.experiment === undefined ? experiments : experiments.filter((x) => x.experiment.name === e.experiment)
    if (named.length === 0) return { result: 'unknown_experiment', message: `no experiment named "${e.experiment ?? ''}"` }
    const withMetric = named.filter((x) => x.experiment.cfg.metrics.some((m) => m.name === e.name))
    if (withMetric.length === 0) return { result: 'unknown_metric', message: `no experiment${e.experiment !== undefined ? ` "${e.experiment}"` : ''} has a metric "${e.name}"` }
    // Every arm the event belongs to: by request id, the one that answered it; by unit, the arm of
    // each experiment (with that metric) that enrols the unit.
    const arms: Array<{ entry: ExperimentEntry, variant: string }> = []
    if (e.requestId !== undefined) {
      const x = this.#log.get(e.requestId)
      const entry = x === undefined ? undefined : withMetric.find((w) => w.experiment.name === x.experiment)
      if (x === undefined || entry === undefined) return { result: 'unknown_request', message: `request id "${e.requestId}" was not exposed to ${e.experiment ?? 'an experiment with this metric'} within experimentSettings.eventWindowMs` }
      arms.push({ entry, variant: x.variant })
    } else {
      for (const entry of withMetric) if (enrolment(entry, e.unit!) === 'enrolled') arms.push({ entry, variant: entry.experiment.variantOf(e.unit!).name })
      if (arms.length === 0) return { result: 'not_enrolled', message: `unit "${e.unit!}" is not enrolled in ${e.experiment ?? 'any experiment with this metric'}` }
    }
    for (const { entry } of arms) {
      const kind = entry.experiment.cfg.metrics.find((m) => m.name === e.name)!.kind
      if (kind === 'binary' && e.value !== 0 && e.value !== 1) return { result: 'invalid_value', message: `value: metric "${e.name}" of ${entry.experiment.name} is binary: 0 or 1` }
      // The sums are Prometheus counters, which only go up (replicas are analysed from them).
      if (kind === 'mean' && e.value < 0) return { result: 'invalid_value', message: `value: metric "${e.name}" of ${entry.experiment.name} takes values >= 0` }
    }
    for (const { entry, variant } of arms) this.#add(entry.experiment.name, variant, e.name, e.value)
    return { result: 'accepted', message: '' }
  }

  #add (experiment: string, variant: string, metric: string, value: number): void {
    const k = key(experiment, variant, metric)
    let m = this.#moments.get(k)
    if (m === undefined) {
      m = { n: 0, sum: 0, sumSq: 0 }
      this.#moments.set(k, m)
    }
    m.n++
    m.sum += value
    m.sumSq += value * value
    const labels = { experiment, variant, metric }
    this.#counters.count.inc(labels)
    this.#counters.sum.inc(labels, value)
    this.#counters.sumSquares.inc(labels, value * value)
  }
}

function key (experiment: string, variant: string, metric: string): string {
  return `${experiment}\0${variant}\0${metric}`
}

/**
 * The events of a `POST /events` body: one JSON event, a JSON array, or NDJSON (one event per
 * line). A line that is not JSON stays in the list as itself, to be reported as invalid at its
 * index. Null when the body is not JSON at all (and not NDJSON).
 */
export function parseEvents (text: string, ndjson: boolean): unknown[] | null {
  if (ndjson) {
    return text.split('\n').filter((l) => l.trim() !== '').map((line) => {
      try { return JSON.parse(line) as unknown } catch { return { __invalidLine: line.slice(0, 80) } }
    })
  }
  let doc: unknown
  try { doc = JSON.parse(text) } catch { return null }
  return Array.isArray(doc) ? doc : [doc]
}
