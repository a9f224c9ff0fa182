import type { Dispatcher } from 'undici'
import type { ChaosExperimentSpec, FaultSpec } from '../config/chaos-schema.js'
import { MODEL_FAULT_KINDS } from '../config/chaos-schema.js'
import { compilePathGlob } from '../shadow/sampler.js'
import { gaussian, ModelFaultState, type ModelFault } from './model-faults.js'

type Delay = Extract<FaultSpec, { kind: 'delay' }>
type Abort = Extract<FaultSpec, { kind: 'abort' }>

const MODEL = new Set<string>(MODEL_FAULT_KINDS)

/** A header value of a dispatch's headers (undici accepts a flat array or an object). */
export function headerOf (headers: Dispatcher.DispatchOptions['headers'], name: string): string | undefined {
  if (headers == null) return undefined
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) {
      const k = headers[i]
      if (typeof k === 'string' && k.length === name.length && k.toLowerCase() === name) {
        const v = headers[i + 1]
        return Array.isArray(v) ? v.join(', ') : String(v)
      }
    }
    return undefined
  }
  for (const [k, v] of Object.entries(headers as Record<string, unknown>)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? v.join(', ') : v == null ? undefined : String(v)
  }
  return undefined
}

/**
 * One running chaos experiment, compiled: its scope as matchers, its faults split into transport
 * and model faults, what it has injected, and when it ends.
 */
export class ChaosExperiment {
  readonly spec: ChaosExperimentSpec
  readonly name: string
  readonly target: string
  readonly startedAt: number
  readonly expiresAt: number
  readonly startedBy: string
  readonly delay: Delay | null
  readonly abort: Abort | null
  readonly timeout: boolean
  readonly bytesPerSecond: number
  readonly model: ModelFault[]
  readonly state = new ModelFaultState()
  /** Faults injected, by kind. */
  readonly injected: Record<string, number> = {}
  /** Requests in scope but not faulted because of chaos.maxClientShare. */
  capped = 0
  timer: NodeJS.Timeout | null = null
  readonly #methods: Set<string> | null
  readonly #paths: RegExp[] | null

  constructor (spec: ChaosExperimentSpec, who: string, now = Date.now()) {
    this.spec = spec
    this.name = spec.name
    this.target = spec.target
    this.startedAt = now
    this.expiresAt = now + spec.durationMs
    this.startedBy = who
    let delay: Delay | null = null
    let abort: Abort | null = null
    let timeout = false
    let bps = 0
    const model: ModelFault[] = []
    for (const f of spec.faults) {
      if (f.kind === 'delay') delay = f
      else if (f.kind === 'abort') abort = f
      else if (f.kind === 'timeout') timeout = true
      else if (f.kind === 'slow_body') bps = f.bytesPerSecond
      else if (MODEL.has(f.kind)) model.push(f as ModelFault)
    }
    // stale replaces the whole answer: it goes first, the other model faults act on what it chose.
    model.sort((a, b) => (a.kind === 'stale' ? -1 : 0) - (b.kind === 'stale' ? -1 : 0))
    this.delay = delay
    this.abort = abort
    this.timeout = timeout
    this.bytesPerSecond = bps
    this.model = model
    for (const f of spec.faults) this.injected[f.kind] = 0
    const s = spec.scope
    this.#methods = s.methods === undefined ? null : new Set(s.methods)
    this.#paths = s.paths === undefined || s.paths.includes('/**') ? null : s.paths.map(compilePathGlob)
  }

  /** Does a request (its method, path and headers) fall in the scope? Probability is drawn by the caller. */
  matches (opts: Dispatcher.DispatchOptions): boolean {
    const s = this.spec.scope
    if (this.#methods !== null && !this.#methods.has(opts.method)) return false
    if (this.#paths !== null) {
      const q = opts.path.indexOf('?')
      const path = q === -1 ? opts.path : opts.path.slice(0, q)
      if (!this.#paths.some((re) => re.test(path))) return false
    }
    if (s.header !== undefined) {
      const v = headerOf(opts.headers, s.header.name)
      if (v === undefined || (s.header.in !== undefined && !s.header.in.includes(v))) return false
    }
    if (s.variant !== undefined && headerOf(opts.headers, 'x-penumbra-experiment') !== s.variant) return false
    if (s.units !== undefined) {
      const unit = unitOf(s.units.from, opts)
      if (unit === undefined || !s.units.in.includes(unit)) return false
    }
    return true
  }

  /** The delay of one request, in ms (drawn from the configured distribution, never negative). */
  delayMs (): number {
    const d = this.delay
    if (d === null) return 0
    if (d.distribution === 'fixed') return d.ms!
    if (d.distribution === 'uniform') return d.minMs! + Math.random() * (d.maxMs! - d.minMs!)
    const v = gaussian(d.meanMs!, d.stdMs!)
    return Math.min(d.maxMs ?? Infinity, Math.max(d.minMs ?? 0, v))
  }

  count (kind: string): void {
    this.injected[kind] = (this.injected[kind] ?? 0) + 1
  }

  /** `GET /chaos/experiments`. */
  describe (): Record<string, unknown> {
    return {
      ...this.spec,
      startedAt: new Date(this.startedAt).toISOString(),
      expiresAt: new Date(this.expiresAt).toISOString(),
      startedBy: this.startedBy,
      injected: { ...this.injected },
      capped: this.capped
    }
  }
}

function unitOf (from: string, opts: Dispatcher.DispatchOptions): string | undefined {
  const colon = from.indexOf(':')
  const kind = from.slice(0, colon)
  const key = from.slice(colon + 1)
  if (kind === 'header') return headerOf(opts.headers, key.toLowerCase())
  if (kind === 'query') {
    const q = opts.path.indexOf('?')
    return q === -1 ? undefined : new URLSearchParams(opts.path.slice(q + 1)).get(key) ?? undefined
  }
  const cookie = headerOf(opts.headers, 'cookie')
  if (cookie === undefined) return undefined
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === key) return part.slice(eq + 1).trim()
  }
  return undefined
}
