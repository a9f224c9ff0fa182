import { request } from 'undici'
import type { CanaryConfig } from '../config/canary-schema.js'
import type { CanaryIO } from './canary-controller.js'
import { describePhase, type ArmTotals, type CanaryState, type CanaryTotals } from './canary-engine.js'
import { CANARY_TO_BASELINE, CANARY_TO_CANDIDATE } from './canary.js'

/** One instant-vector sample of the Prometheus HTTP API. */
interface PromSample { metric: Record<string, string>, value: [number, string] }

/**
 * The external controller's IO (`penumbra canary`): the gates' inputs are read from Prometheus
 * as raw counter values summed over every replica (no rate(), so no extrapolation: a step is
 * judged on the difference between two reads, exactly as in-process), and each decision is sent
 * to every replica's admin API (`PUT /canary/weight`; `PUT /primary` to promote).
 *
 * The series are penumbra's own: client requests per backend (`penumbra_backend_requests_total`,
 * 5xx as errors, 499 left out), upstream latency per backend (`penumbra_upstream_duration_seconds`,
 * its buckets), the canary mirrors' comparisons (`penumbra_comparisons_total{shadow="canary:…"}`)
 * and, at a 100% step, the baseline's mirrored calls (`penumbra_shadow_requests_total`).
 */
export class PrometheusCanaryIO implements CanaryIO {
  readonly #prom: string
  readonly #admins: string[]
  readonly #headers: Record<string, string>
  readonly #cfg: CanaryConfig
  readonly #baseline: string
  readonly #extraSelector: string

  constructor (opts: { prometheus: string, admins: string[], token?: string, cfg: CanaryConfig, baseline: string, selector?: string }) {
    this.#prom = opts.prometheus.replace(/\/+$/, '')
    this.#admins = opts.admins.map((a) => a.replace(/\/+$/, ''))
    this.#headers = opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` }
    this.#cfg = opts.cfg
    this.#baseline = opts.baseline
    // e.g. job="penumbra": which scrape targets are this deployment's replicas.
    this.#extraSelector = opts.selector === undefined || opts.selector === '' ? '' : `,${opts.selector}`
  }

  async #query (q: string): Promise<PromSample[]> {
    const res = await request(`${this.#prom}/api/v1/query?query=${encodeURIComponent(q)}`, { headersTimeout: 10_000, bodyTimeout: 10_000 })
    const body = await res.body.json() as { status: string, error?: string, data?: { result: PromSample[] } }
    if (res.statusCode !== 200 || body.status !== 'success') throw new Error(`prometheus: ${q}: ${body.error ?? `HTTP ${res.statusCode}`}`)
    return body.data?.result ?? []
  }

  async #scalar (q: string): Promise<number> {
    const r = await this.#query(q)
    const v = r.length === 0 ? 0 : Number(r[0]!.value[1])
    return Number.isFinite(v) ? Math.round(v) : 0
  }

  /** Per-bucket counts (ms bounds) from cumulative `le` buckets summed over replicas. */
  async #latency (upstream: string): Promise<ArmTotals['latency']> {
    const r = await this.#query(`sum by (le) (penumbra_upstream_duration_seconds_bucket{upstream=${quote(upstream)}${this.#extraSelector}})`)
    const rows = r.map((s) => ({ le: s.metric.le === '+Inf' ? Infinity : Number(s.metric.le), c: Math.round(Number(s.value[1])) }))
      .filter((x) => !Number.isNaN(x.le)).sort((a, b) => a.le - b.le)
    const bounds: number[] = []
    const counts: number[] = []
    let prev = 0
    for (const x of rows) {
      // +Inf has no upper bound: reported as twice the last finite one (a ratio then stays finite).
      const bound = Number.isFinite(x.le) ? x.le * 1000 : (bounds.length > 0 ? bounds[bounds.length - 1]! * 2 : 60_000)
      bounds.push(bound)
      counts.push(Math.max(0, x.c - prev))
      prev = Math.max(prev, x.c)
    }
    return { bounds, counts }
  }

  async #arm (backend: string): Promise<ArmTotals> {
    const sel = `backend=${quote(backend)},code!="499"${this.#extraSelector}`
    const [requests, errors, latency] = await Promise.all([
      this.#scalar(`sum(penumbra_backend_requests_total{${sel}})`),
      this.#scalar(`sum(penumbra_backend_requests_total{${sel},code=~"5.."})`),
      this.#latency(backend)
    ])
    return { requests, errors, latency }
  }

  async #mirrorArm (): Promise<ArmTotals> {
    const sel = `shadow=${quote(CANARY_TO_BASELINE)}${this.#extraSelector}`
    const [requests, errors, latency] = await Promise.all([
      this.#scalar(`sum(penumbra_shadow_requests_total{${sel}})`),
      this.#scalar(`sum(penumbra_shadow_requests_total{${sel},outcome=~"error|timeout"})`),
      this.#latency(CANARY_TO_BASELINE)
    ])
    return { requests, errors, latency }
  }

  async totals (): Promise<CanaryTotals> {
    const cmp = `shadow=~${quote(`${CANARY_TO_BASELINE}|${CANARY_TO_CANDIDATE}`)}${this.#extraSelector}`
    const [candidate, baseline, baselineMirror, compared, mismatches] = await Promise.all([
      this.#arm(this.#cfg.candidate),
      this.#arm(this.#baseline),
      this.#mirrorArm(),
      this.#scalar(`sum(penumbra_comparisons_total{${cmp},outcome=~"match|mismatch"})`),
      this.#scalar(`sum(penumbra_comparisons_total{${cmp},outcome="mismatch"})`)
    ])
    // Ground truth is not exported to Prometheus yet: the accuracy gate stays inconclusive.
    return { candidate, baseline, baselineMirror, comparisons: { compared, mismatches }, accuracy: null }
  }

  async apply (state: CanaryState, reason: string): Promise<void> {
    const body = JSON.stringify({ weight: state.weight, phase: state.phase, step: state.step + 1, reason: state.reason ?? undefined, summary: `${describePhase(this.#cfg, state)}: ${reason}`.slice(0, 4096) })
    // A rollback that misses a replica would leave traffic on the candidate there: try again.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#everyReplica('PUT', '/canary/weight', body)
        return
      } catch (err) {
        if (attempt >= APPLY_ATTEMPTS) throw err
        await new Promise((resolve) => setTimeout(resolve, 1000))
      }
    }
  }

  async promote (): Promise<void> {
    await this.#everyReplica('PUT', '/primary', JSON.stringify({ backend: this.#cfg.candidate }))
  }

  /** Sends to every replica; throws naming those that did not take it (the others keep it: repeating is safe). */
  async #everyReplica (method: 'PUT', path: string, body: string): Promise<void> {
    const failed: string[] = []
    await Promise.all(this.#admins.map(async (a) => {
      try {
        const res = await request(`${a}${path}`, { method, body, headers: { ...this.#headers, 'content-type': 'application/json' }, headersTimeout: 10_000, bodyTimeout: 10_000 })
        const text = await res.body.text()
        if (res.statusCode !== 200) failed.push(`${a}: ${res.statusCode} ${text.slice(0, 300)}`)
      } catch (err) {
        failed.push(`${a}: ${(err as Error).message}`)
      }
    }))
    if (failed.length > 0) throw new Error(`${method} ${path} did not reach every replica: ${failed.join('; ')}`)
  }
}

const APPLY_ATTEMPTS = 5

function quote (s: string): string {
  return JSON.stringify(s)
}
