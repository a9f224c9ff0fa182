import type { IncomingHttpHeaders } from 'node:http'
import type { CapturedResponse, CompareJob } from '../../src/compare/types.js'

/** A deterministic PRNG (mulberry32): fixtures are the same on every run. */
export function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']

/** One KServe v1 prediction object per instance. */
export interface KservePrediction {
  label: string
  class_id: number
  scores: number[]
  model_version: string
}

/**
 * KServe v1 predictions for a batch: each `{label, class_id, scores[10], model_version}`, scores a
 * softmax printed with full float64 precision (32 instances ≈ 8–10 KB of JSON). With `jitter`,
 * every score moves by up to ±jitter (float32 noise between two builds).
 */
export function kservePredictions (jitter: number, opts: { seed?: number, instances?: number } = {}): KservePrediction[] {
  const seed = opts.seed ?? 7
  const r = rng(seed)
  const j = rng(seed + 1)
  const predictions: KservePrediction[] = []
  for (let i = 0; i < (opts.instances ?? 32); i++) {
    const logits = CLASSES.map(() => r() * 6)
    const z = logits.reduce((acc, x) => acc + Math.exp(x), 0)
    const scores = logits.map((x) => Math.exp(x) / z + (j() - 0.5) * 2 * jitter)
    let best = 0
    for (let k = 1; k < scores.length; k++) if ((scores[k] as number) > (scores[best] as number)) best = k
    predictions.push({ label: CLASSES[best] as string, class_id: best, scores, model_version: '3' })
  }
  return predictions
}

/** The JSON body of {@link kservePredictions}. */
export function kserveBody (jitter: number, seed = 7): Buffer {
  return Buffer.from(JSON.stringify({ predictions: kservePredictions(jitter, { seed }) }))
}

/** A captured 200 JSON response. */
export function captured (body: Buffer | string | object, opts: Partial<Omit<CapturedResponse, 'body'>> = {}): CapturedResponse {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
  return {
    status: opts.status ?? 200,
    headers: opts.headers ?? { 'content-type': 'application/json' },
    body: bytes,
    truncated: opts.truncated ?? false,
    durationMs: opts.durationMs ?? 10
  }
}

/** A compare job for a POST to `url`. */
export function makeJob (opts: { url?: string, primary: CapturedResponse, shadow: CapturedResponse, requestBody?: Buffer | null, requestHeaders?: IncomingHttpHeaders, shadowName?: string }): CompareJob {
  return {
    shadow: opts.shadowName ?? 'candidate',
    requestId: 'req-1',
    method: 'POST',
    url: opts.url ?? '/predict',
    requestHeaders: opts.requestHeaders ?? { 'content-type': 'application/json' },
    requestBody: opts.requestBody ?? null,
    primary: opts.primary,
    shadowResponse: opts.shadow
  }
}
