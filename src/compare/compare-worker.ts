import { Worker } from 'node:worker_threads'
import type { IncomingHttpHeaders } from 'node:http'
import type { CompareConfig } from '../config/schema.js'
import type { CapturedResponse, CompareResult } from './types.js'

/** A captured response as it crosses to the thread: the body copied into its own ArrayBuffer. */
export interface WireResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Uint8Array
  truncated: boolean
  durationMs: number
}

/** One comparison of a job: which comparator, which response, and for which noise set. */
export interface ThreadItem {
  /** Comparator key (see {@link CompareWorker.keyFor}). */
  key: number
  /** Shadow whose noisy-path set is the noise predicate; null: no predicate (noise off, or a replay). */
  noiseShadow: string | null
  /** A primary-vs-primary noise replay: its differences are learnt, never stored. */
  learn: boolean
  /** Digest both answers for drift and assertions (the primary's once per job). */
  observe?: boolean
  response: WireResponse
}

/** One mirrored request: the primary response once, compared against each item. */
export interface ThreadJob {
  id: number
  requestId: string
  method: string
  url: string
  primary: WireResponse
  items: ThreadItem[]
}

/** Messages to the thread. */
export type ToThread =
  | { type: 'config', key: number, compare: CompareConfig }
  | { type: 'noisy', shadow: string, paths: string[] }
  | { type: 'reset' }
  | { type: 'observe', spec: ObserveSpec | null }
  | { type: 'jobs', jobs: ThreadJob[] }

/** The thread's answer to one job: one result per item (null: unknown comparator key). */
export interface ThreadReply {
  id: number
  results: Array<CompareResult | null>
}

/** What the thread digests answers with (drift/digest.ts `digestSpec` arguments). */
export interface ObserveSpec { drift: boolean, paths: string[], redact: string[] }

/** The thread answers a batch of jobs with one message. */
export type FromThread = ThreadReply[]

/** Called once per submitted job: the results, or null when the thread failed before answering. */
export type ThreadCallback<T> = (ctx: T, results: Array<CompareResult | null> | null) => void

/** The thread's old generation is capped: a pathological body kills the thread, not the proxy. */
const MAX_OLD_GENERATION_MB = 512
const RESTART_MIN_MS = 1000
const RESTART_MAX_MS = 30_000

/**
 * Runs comparisons on one worker thread (jobs of at least `compare.workerMinBytes`), so that
 * parsing and diffing, up to `compare.maxBodyBytes` per body, never hold the event loop that
 * serves clients (the client path is never harmed; a 4 MiB JSON body takes tens of ms to parse).
 *
 * Protocol: comparator configs are sent once per thread and referred to by key; the noise
 * predicate travels as each shadow's set of noisy paths, refreshed by the caller; a job carries
 * the primary response once and one item per shadow (plus the noise replay), so the primary body
 * is parsed once per request as on the inline path. Bodies are copied into fresh buffers (a
 * pooled Buffer would drag its whole pool along) and transferred, not cloned. Jobs are sent in
 * batches ({@link flush}) and answered in batches: every message wakes a thread.
 *
 * When the thread dies (crash, out of memory), every job it held is answered with null (the
 * caller counts them dropped), and jobs are refused for a backoff of 1 s doubling to 30 s before
 * a new thread starts. The thread is unref'd: it never keeps the process alive on its own.
 */
export class CompareWorker<T> {
  readonly #onDone: ThreadCallback<T>
  readonly #onFailure: (err: Error) => void
  readonly #keys = new WeakMap<CompareConfig, number>()
  readonly #configs = new Map<number, CompareConfig>()
  readonly #noisy = new Map<string, string[]>()
  #observe: ObserveSpec | null = null
  #observeKey = 'null'
  readonly #pending = new Map<number, T>()
  #worker: Worker | null = null
  #sent = new Set<number>()
  #nextKey = 1
  #nextId = 1
  #downUntil = 0
  #backoff = RESTART_MIN_MS
  #closed = false
  #drained: (() => void) | null = null
  readonly #script: URL
  #batch: ThreadJob[] = []
  #transfer: ArrayBuffer[] = []

  /**
   * @param onDone receives each job's results (or null), with the context given to `submit`.
   * @param onFailure told when the thread dies (for the log).
   * @param opts.script the thread's entry (tests substitute one that crashes).
   */
  constructor (onDone: ThreadCallback<T>, onFailure: (err: Error) => void, opts: { script?: URL } = {}) {
    this.#onDone = onDone
    this.#onFailure = onFailure
    this.#script = opts.script ?? new URL('./compare-thread.js', import.meta.url)
  }

  /** Jobs submitted and not answered yet. */
  get inflight (): number {
    return this.#pending.size
  }

  /** The key of a comparator config; each config object is sent to the thread once. */
  keyFor (cfg: CompareConfig): number {
    let key = this.#keys.get(cfg)
    if (key === undefined) {
      key = this.#nextKey++
      this.#keys.set(cfg, key)
    }
    if (!this.#configs.has(key)) this.#configs.set(key, cfg)
    return key
  }

  /** Replaces a shadow's noisy-path set (empty: none); sent to the thread only when it changed. */
  setNoisy (shadow: string, paths: string[]): void {
    const last = this.#noisy.get(shadow)
    if (last !== undefined && sameStrings(last, paths)) return
    this.#noisy.set(shadow, paths)
    this.#worker?.postMessage({ type: 'noisy', shadow, paths } satisfies ToThread)
  }

  /** Sets what answers are digested with (null: none); sent to the thread only when it changed. */
  setObserve (spec: ObserveSpec | null): void {
    if (spec === this.#observe) return // the same object: the usual case, one per config load
    const key = JSON.stringify(spec)
    if (key === this.#observeKey) return
    this.#observe = spec
    this.#observeKey = key
    this.#worker?.postMessage({ type: 'observe', spec } satisfies ToThread)
  }

  /**
   * Forgets the comparator configs sent so far, here and in the thread (after a reload, whose
   * shadows bring new configs): configs still in use are sent again on their next job, so the
   * thread only keeps live comparators. Jobs already submitted are sent first.
   */
  forgetConfigs (): void {
    this.flush()
    this.#configs.clear()
    this.#sent.clear()
    this.#worker?.postMessage({ type: 'reset' } satisfies ToThread)
  }

  /**
   * Whether jobs can be submitted now: starts the thread when needed; false while it is in its
   * restart backoff or closed.
   */
  up (): boolean {
    return this.#thread() !== null
  }

  /**
   * Queues a job for the next {@link flush} (check {@link up} first); its callback comes exactly
   * once.
   */
  submit (ctx: T, job: Omit<ThreadJob, 'id'>): void {
    const w = this.#thread()
    if (w === null) throw new Error('compare worker: submit while the thread is down')
    const id = this.#nextId++
    for (const item of job.items) {
      if (!this.#sent.has(item.key)) {
        const compare = this.#configs.get(item.key)
        if (compare === undefined) throw new Error(`compare worker: unknown comparator key ${item.key}`)
        w.postMessage({ type: 'config', key: item.key, compare } satisfies ToThread)
        this.#sent.add(item.key)
      }
    }
    this.#transfer.push(job.primary.body.buffer as ArrayBuffer)
    for (const item of job.items) this.#transfer.push(item.response.body.buffer as ArrayBuffer)
    this.#pending.set(id, ctx)
    this.#batch.push({ id, ...job })
  }

  /** Sends the jobs submitted since the last flush, as one message. */
  flush (): void {
    if (this.#batch.length === 0) return
    const jobs = this.#batch
    const transfer = this.#transfer
    this.#batch = []
    this.#transfer = []
    // A thread that died since submit: #died has answered (or will answer) these jobs.
    this.#worker?.postMessage({ type: 'jobs', jobs } satisfies ToThread, transfer)
  }

  /** Waits up to `deadline` (epoch ms) for the jobs in flight, then stops the thread. */
  async close (deadline: number): Promise<void> {
    this.flush()
    this.#closed = true
    if (this.#pending.size > 0 && this.#worker !== null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(0, deadline - Date.now()))
        t.unref()
        this.#drained = () => { clearTimeout(t); resolve() }
      })
    }
    const w = this.#worker
    this.#worker = null
    this.#failAll()
    if (w !== null) await w.terminate()
  }

  #thread (): Worker | null {
    if (this.#closed) return null
    if (this.#worker !== null) return this.#worker
    if (Date.now() < this.#downUntil) return null
    const w = new Worker(this.#script, {
      resourceLimits: { maxOldGenerationSizeMb: MAX_OLD_GENERATION_MB }
    })
    w.unref()
    w.on('message', (replies: FromThread) => { for (const r of replies) this.#reply(r) })
    w.on('error', (err) => this.#died(w, err))
    w.on('exit', (code) => this.#died(w, new Error(`compare thread exited with code ${code}`)))
    this.#worker = w
    this.#sent = new Set()
    for (const [shadow, paths] of this.#noisy) w.postMessage({ type: 'noisy', shadow, paths } satisfies ToThread)
    if (this.#observe !== null) w.postMessage({ type: 'observe', spec: this.#observe } satisfies ToThread)
    return w
  }

  #reply (reply: ThreadReply): void {
    const ctx = this.#pending.get(reply.id)
    if (ctx === undefined) return
    this.#pending.delete(reply.id)
    this.#backoff = RESTART_MIN_MS // a thread that answers is a healthy one
    this.#onDone(ctx, reply.results)
    if (this.#pending.size === 0 && this.#drained !== null) this.#drained()
  }

  #died (w: Worker, err: Error): void {
    if (this.#worker !== w) return // already replaced, or closed on purpose
    this.#worker = null
    this.#downUntil = Date.now() + this.#backoff
    this.#backoff = Math.min(this.#backoff * 2, RESTART_MAX_MS)
    this.#onFailure(err)
    this.#failAll()
  }

  #failAll (): void {
    this.#batch = []
    this.#transfer = []
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    for (const ctx of pending) this.#onDone(ctx, null)
    if (this.#drained !== null) this.#drained()
  }
}

function sameStrings (a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** A captured response prepared for {@link CompareWorker.submit} (the body copied exactly). */
export function toWire (r: CapturedResponse): WireResponse {
  return { status: r.status, headers: r.headers, body: new Uint8Array(r.body), truncated: r.truncated, durationMs: r.durationMs }
}
