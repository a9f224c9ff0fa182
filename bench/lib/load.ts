// autocannon wrapper. One call = one fixed-duration, closed-loop run (fixed connections,
// pipelining 1, research A6). autocannon's own percentiles are whole milliseconds (its HDR
// histogram has lowestDiscernibleValue 1), too coarse for a proxy that adds tens of µs, so the
// float response times it emits per response are also kept here and give µs-resolution p50/p99.
import autocannon from 'autocannon'

export interface LoadResult {
  /** Completed responses per second over the run (all status codes). */
  rps: number
  /** autocannon's integer-millisecond percentiles of 2xx responses. */
  p50Ms: number
  p99Ms: number
  /** autocannon's latency.average (ms, float). */
  avgMs: number
  maxMs: number
  /** µs-resolution percentiles from the per-response times (2xx only, like autocannon). */
  p50Us: number
  p99Us: number
  total: number
  errors: number
  timeouts: number
  non2xx: number
  durationS: number
  /** CPU time of the process (tree) under test per completed request, µs; NaN for direct. Filled in by run.ts. */
  cpuUsPerReq: number
  /** Garbage-collection pause time of a penumbra target per completed request, µs (its `nodejs_gc_duration_seconds`); NaN for others. Filled in by run.ts. */
  gcUsPerReq: number
  /** Share of machine CPU (all cores = 100%) used by processes the bench did not start. Filled in by run.ts. */
  foreignCpuPct: number
  /** When the run started (ms since epoch): ratios pair each run with the baseline run nearest in time. */
  startedAt: number
  /** Blue/green scenarios: primary switches completed during the run. Filled in by run.ts. */
  switches?: number
}

export interface LoadOptions {
  url: string
  connections: number
  durationS: number
  body: Buffer
  /** Per-request timeout (s); a hanging target then shows up as timeouts instead of a stall. */
  timeoutS?: number
  /** Extra request headers (e.g. the experiment unit). */
  headers?: Record<string, string>
}

/** Growable float buffer: an array of JS numbers would cost ~4x the memory at 100k+ samples. */
class Samples {
  buf = new Float64Array(1 << 16)
  n = 0
  push (v: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2)
      next.set(this.buf)
      this.buf = next
    }
    this.buf[this.n++] = v
  }

  percentile (p: number, sorted: Float64Array): number {
    if (sorted.length === 0) return Number.NaN
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]
  }
}

export async function runLoad (opts: LoadOptions): Promise<LoadResult> {
  const samples = new Samples()
  const startedAt = Date.now()
  // The callback overload returns the Instance (an EventEmitter); the promise overload would hide it.
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({
      url: opts.url,
      connections: opts.connections,
      pipelining: 1,
      duration: opts.durationS,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...opts.headers },
      body: opts.body,
      timeout: opts.timeoutS ?? 10
    }, (err: unknown, result: autocannon.Result) => {
      if (err !== null && err !== undefined) reject(err instanceof Error ? err : new Error(String(err)))
      else resolve(result)
    })
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) samples.push(responseTime)
    })
  })
  const sorted = samples.buf.slice(0, samples.n).sort()
  const non2xx = r.non2xx
  return {
    rps: r.duration > 0 ? r.requests.total / r.duration : 0,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    avgMs: r.latency.average,
    maxMs: r.latency.max,
    p50Us: samples.percentile(0.5, sorted) * 1000,
    p99Us: samples.percentile(0.99, sorted) * 1000,
    total: r.requests.total,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx,
    durationS: r.duration,
    cpuUsPerReq: Number.NaN,
    gcUsPerReq: Number.NaN,
    foreignCpuPct: Number.NaN,
    startedAt
  }
}

/** KServe v1 request: `{"instances": [[f, f, ...], ...]}` of roughly `bytes` bytes. */
export function predictBody (bytes: number): Buffer {
  const row = [5.1, 3.5, 1.4, 0.2, 6.7, 3.1, 4.4, 1.4]
  const rowJson = JSON.stringify(row) // 33 bytes
  const rows = Math.max(1, Math.round((bytes - 16) / (rowJson.length + 1)))
  return Buffer.from(`{"instances":[${Array(rows).fill(rowJson).join(',')}]}`)
}
