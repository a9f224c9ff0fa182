import { request } from 'undici'
import type { DescribedExperiment } from '../experiments/analysis.js'
import { EXPERIMENT_LATENCY_BUCKETS } from '../experiments/arm-tally.js'

/** What of an experiment's definition the analysis needs (from `GET /experiments/:name` or a config file). */
export interface ExperimentDefinition {
  name: string
  alpha: number
  minEffect: number
  metrics: Array<{ name: string, kind: 'binary' | 'mean' }>
  variants: Array<{ name: string, weight: number }>
}

interface VectorSample { metric: Record<string, string>, value: [number, string] }

/** One instant query; the result vector. */
async function query (prometheus: string, expr: string): Promise<VectorSample[]> {
  const url = new URL('/api/v1/query', prometheus)
  url.searchParams.set('query', expr)
  const res = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`${url.origin} answered ${res.statusCode} to ${expr}: ${text.slice(0, 300)}`)
  const body = JSON.parse(text) as { status: string, data?: { resultType: string, result: VectorSample[] } }
  if (body.status !== 'success' || body.data?.resultType !== 'vector') throw new Error(`unexpected answer to ${expr}: ${text.slice(0, 300)}`)
  return body.data.result
}

/** PromQL string literal (the experiment name is [a-z0-9_-], but quote it properly anyway). */
function lit (s: string): string {
  return JSON.stringify(s)
}

/**
 * Builds an experiment's counts from Prometheus: the counters and histograms of every replica it
 * scrapes, summed (`sum by (variant)`), so the verdicts are those of all replicas together. Units
 * are summed per process (a unit served by two replicas counts once in each: both arms alike).
 * A replica that restarted contributes its counts since the restart.
 */
export async function experimentFromPrometheus (prometheus: string, def: ExperimentDefinition): Promise<DescribedExperiment & { source: string }> {
  const sel = `experiment=${lit(def.name)}`
  const [units, requests, errors, buckets, count, sum, sumSq] = await Promise.all([
    query(prometheus, `sum by (variant) (penumbra_experiment_units_total{${sel}})`),
    query(prometheus, `sum by (variant) (penumbra_experiment_requests_total{${sel},code!="499"})`),
    query(prometheus, `sum by (variant) (penumbra_experiment_requests_total{${sel},code=~"5.."})`),
    query(prometheus, `sum by (variant, le) (penumbra_experiment_duration_seconds_bucket{${sel}})`),
    query(prometheus, `sum by (variant, metric) (penumbra_experiment_outcome_count_total{${sel}})`),
    query(prometheus, `sum by (variant, metric) (penumbra_experiment_outcome_sum_total{${sel}})`),
    query(prometheus, `sum by (variant, metric) (penumbra_experiment_outcome_sum_squares_total{${sel}})`)
  ])
  const byVariant = (r: VectorSample[], variant: string): number => Number(r.find((s) => s.metric.variant === variant)?.value[1] ?? 0)
  const byMetric = (r: VectorSample[], variant: string, metric: string): number => Number(r.find((s) => s.metric.variant === variant && s.metric.metric === metric)?.value[1] ?? 0)
  const variants = def.variants.map((v) => {
    // Cumulative `le` buckets back to per-bucket counts, in the order of the shared bounds.
    const cum = new Map<string, number>()
    for (const s of buckets) if (s.metric.variant === v.name && s.metric.le !== undefined) cum.set(s.metric.le, Number(s.value[1]))
    const latency: number[] = []
    let below = 0
    for (const b of EXPERIMENT_LATENCY_BUCKETS) {
      // prom-client writes a bound in `le` as JavaScript's shortest round-trip form.
      const c = cum.get(String(b)) ?? below
      latency.push(Math.max(0, Math.round(c - below)))
      below = Math.max(below, c)
    }
    latency.push(Math.max(0, Math.round((cum.get('+Inf') ?? below) - below)))
    return {
      name: v.name,
      weight: v.weight,
      units: byVariant(units, v.name),
      requests: byVariant(requests, v.name),
      errors: byVariant(errors, v.name),
      latency,
      outcomes: Object.fromEntries(def.metrics.map((m) => [m.name, { n: byMetric(count, v.name, m.name), sum: byMetric(sum, v.name, m.name), sumSq: byMetric(sumSq, v.name, m.name) }]))
    }
  })
  return { name: def.name, alpha: def.alpha, minEffect: def.minEffect, metrics: def.metrics, variants, source: prometheus }
}
